"""How far a training session has come: its share of the learning-rate schedule and whether its time
budget is spent, decided on rank 0 and agreed by every rank.

Input: the run's schedule (its ``iteration``), the iterations of the whole run, the time budget in
seconds (``--max-minutes``; None: none) and the seconds earlier sessions of the run already spent
(from last.pt on ``--resume``). Output: :meth:`RunClock.progress` for the schedule (the larger of the
iteration share and the time share, so a budget that ends first still anneals the learning rate to
its end), :meth:`RunClock.time_up` for the epoch loop, :meth:`RunClock.elapsed` for the files. Writes
nothing.
"""

from __future__ import annotations

import time

import torch

from training import distributed as D

# (progress, time up) before the first decision: the start of the schedule, time left
NOT_DECIDED = (0.0, 0.0)


class RunClock:
    """The session's clock, started when it is made (just before the first epoch)."""

    def __init__(
        self,
        info: D.DistInfo,
        dev: torch.device,
        schedule,
        total_iters: int,
        budget_s: float | None,
        elapsed_before: float,
    ):
        self._info, self._dev, self._schedule = info, dev, schedule
        self._total_iters, self._budget_s, self._elapsed_before = total_iters, budget_s, elapsed_before
        self._decided = list(NOT_DECIDED)
        self._t0 = time.monotonic()

    def elapsed(self) -> float:
        """Seconds the run has trained, earlier sessions included."""
        return self._elapsed_before + time.monotonic() - self._t0

    def _decision(self) -> list[float]:
        prog = self._schedule.iteration / self._total_iters
        if self._budget_s:
            prog = max(prog, self.elapsed() / self._budget_s)
        up = 1.0 if self._budget_s and self.elapsed() >= self._budget_s else 0.0
        return D.broadcast_floats(self._info, [prog, up], self._dev)  # every rank takes rank 0's

    def progress(self) -> float:
        """Decide anew (every rank must call it at the same step): the run's share done, 0..1."""
        self._decided = self._decision()
        return self._decided[0]

    def last_progress(self) -> float:
        """The share done at the last decision, without deciding anew."""
        return self._decided[0]

    def time_up(self) -> bool:
        """Whether the time budget was spent at the last decision."""
        return bool(self._decided[1])
