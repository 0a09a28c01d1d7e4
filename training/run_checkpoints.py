"""The checkpoints `sonomap train` writes into RUN/ each epoch, with their manifests.

Input: a :class:`RunRecord` (what the run was made from: the config, the dataset, the normalisation,
the ``--init-from`` checkpoint; its time budget and world size), the :class:`TrainingParts` whose state
last.pt keeps, and the loop's state after an epoch (:class:`RunProgress`). Output files:
- ``best.pt`` and ``cycleK.pt`` (:func:`save_snapshot`): an epoch's scored weights (the weight average
  when there is one) with the manifest naming the metric that chose them and the validation figures;
- ``last.pt`` (:func:`save_last`): everything ``--resume`` needs to continue the run exactly.
Each is written atomically with its ``.yaml`` manifest (:func:`training.checkpoint_save.save_checkpoint`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from edge_runtime.manifest import Manifest
from training.checkpoint_save import save_checkpoint
from training.config import effective_dict
from training.config import model_config as checkpoint_model_config
from training.config_schema import TrainingConfig
from training.provenance import make_manifest
from training.rng import rng_state


@dataclass(frozen=True)
class RunRecord:
    """What the checkpoints of one run record of its inputs and settings. ``config`` and ``data``: as
    given on the command line; ``init_from``: the checkpoint the weights started from (None: none),
    with its SHA-256 ``init_sha``; ``budget_s``: the run's time budget in seconds (None: none);
    ``world``: its number of processes."""

    cfg: TrainingConfig
    config: str | Path
    config_sha: str
    data: str | Path
    data_sha: str
    mean: float
    std: float
    init_from: str | Path | None
    init_sha: str | None
    budget_s: float | None
    world: int

    @property
    def model_config(self) -> dict:
        """The ``model_config`` each checkpoint stores, from the config."""
        return checkpoint_model_config(self.cfg)

    def manifest(self, selected: dict, summary: dict) -> Manifest:
        """The manifest of weights chosen by ``selected`` ({metric, value, epoch}) with validation
        figures ``summary`` ({} for last.pt)."""
        return make_manifest(
            self.cfg,
            self.mean,
            self.std,
            self.data,
            self.data_sha,
            self.config,
            self.config_sha,
            selected,
            summary,
            self.init_from,
        )

    def init_record(self) -> dict:
        """``init_from`` as last.pt and summary.json record it, as the manifest does: base name and
        SHA-256 (a folder above may be the patient's)."""
        return {
            "init_from": Path(self.init_from).name if self.init_from else None,
            "init_from_sha256": self.init_sha,
        }


@dataclass(frozen=True)
class TrainingParts:
    """What is trained and whose state last.pt keeps: the model (unaveraged), the optimiser, the
    learning-rate schedule, the gradient scaler and the weight average (None: not used)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Any
    scaler: Any
    ema: Any


@dataclass(frozen=True)
class RunProgress:
    """Where the run stands after an epoch, as last.pt keeps it: the epoch just done, the best so far
    overall (``{metric, value, epoch}``) and per cycle (``{cycle: value}``), the seconds spent, whether
    the run is done, and one history row per epoch."""

    epoch: int
    best: dict
    cycle_best: dict
    elapsed_s: float
    finished: bool
    history: list[dict]


def save_snapshot(
    record: RunRecord, model: torch.nn.Module, path: Path, selected: dict, epoch: int, summary: dict
) -> None:
    """An epoch's weights with its manifest (``selected``: the metric that chose it)."""
    manifest = record.manifest(selected, summary)
    state = {
        "model": model.state_dict(),
        "model_config": record.model_config,
        "manifest": manifest.to_dict(),
    }
    save_checkpoint({**state, "epoch": epoch, "val": summary}, path, manifest)


def save_last(record: RunRecord, path: Path, parts: TrainingParts, progress: RunProgress) -> None:
    """The resume state after ``progress.epoch``, written to ``path`` (RUN/last.pt) with its manifest:
    the state of ``parts``, the RNG states taken now and ``progress``."""
    save_checkpoint(
        {
            "model": parts.model.state_dict(),
            "model_config": record.model_config,
            "manifest": record.manifest(progress.best, {}).to_dict(),
            "optimizer": parts.optimizer.state_dict(),
            "scheduler": parts.schedule.state_dict(),
            "scaler": parts.scaler.state_dict() if parts.scaler else None,
            "ema": parts.ema.state_dict() if parts.ema is not None else None,
            "epoch": progress.epoch,
            "rng": rng_state(),
            "best": progress.best,
            "cycle_best": progress.cycle_best,
            "elapsed_s": progress.elapsed_s,
            "budget_s": record.budget_s,
            "finished": progress.finished,
            **record.init_record(),
            "world_size": record.world,
            "history": progress.history,
            "config": effective_dict(record.cfg),
            "config_sha256": record.config_sha,
        },
        path,
    )
