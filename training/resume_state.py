"""`sonomap train --resume`: what RUN/last.pt must match before a run continues, and what it restores.

Input: the payload of RUN/last.pt (:func:`training.checkpoint.read_checkpoint`) and what the resuming
command gives (config, dataset, ``--max-minutes``, the number of torchrun processes). A resume
continues the run exactly, so it is refused, in one line naming last.pt, when the config, the dataset
or the world size differs, and when the run already finished (its epochs done or its time budget
spent: another session would only run a step at learning rate 0, changing BatchNorm statistics and
best.pt). The run's own time budget and ``--init-from`` checkpoint are restored from last.pt, and
:func:`restore` loads the trained state and the RNG states into the resumed run.
"""

from __future__ import annotations

import logging
from pathlib import Path

from edge_runtime.errors import ConfigError
from training.rng import set_rng_state
from training.run_checkpoints import RunProgress, TrainingParts
from training.run_setup import check_resume_dataset

log = logging.getLogger("sonomap.train")
SECONDS_PER_MINUTE = 60.0


def stored_init_from(state: dict) -> str | None:
    """The ``--init-from`` checkpoint the run started from; older last.pt files record only its file
    name, in their manifest."""
    if state.get("init_from"):
        return str(state["init_from"])
    source = (state.get("manifest") or {}).get("source") or {}
    return source.get("init_from") or None


def stored_budget_s(state: dict) -> float | None:
    """The run's own time budget in seconds, as last.pt records it (None: no budget)."""
    return float(state["budget_s"]) if state.get("budget_s") else None


def _finished(state: dict, epochs: int) -> str | None:
    """Why the run in STATE has nothing left to do, or None while it has."""
    budget_s = stored_budget_s(state)
    if budget_s and float(state["elapsed_s"]) >= budget_s:
        return f"the run already finished its time budget of {budget_s / SECONDS_PER_MINUTE:g} min"
    if state.get("finished") or int(state["epoch"]) + 1 >= epochs:
        return f"the run already finished (epoch {int(state['epoch'])} of {epochs} was its last)"
    return None


def check_resume(
    last: Path,
    state: dict,
    config,
    config_sha: str,
    data,
    data_sha: str,
    epochs: int,
    max_minutes: float | None,
    world: int,
) -> None:
    """Raise ConfigError when LAST (payload STATE) cannot be continued by this command."""
    if state.get("config_sha256") != config_sha:
        raise ConfigError(
            f"{last}: was trained with a different config than {config} "
            "(checkpoint/config mismatch); start a new RUN or use the same config"
        )
    check_resume_dataset(last, state, data, data_sha)
    done = _finished(state, epochs)
    if done:
        raise ConfigError(
            f"{last}: {done}, so there is nothing to resume; start a new run in a new --out, "
            f"e.g. with --init-from {last.parent / 'best.pt'}"
        )
    trained_world = state.get("world_size")
    if trained_world is not None and int(trained_world) != world:
        # the sampler's shards, the iterations per epoch and so the lr schedule depend on it
        raise ConfigError(
            f"{last}: was trained by {int(trained_world)} process(es) but this resume has {world}; "
            "the iterations per epoch and the lr schedule would change: resume with the same torchrun "
            "--nproc_per_node"
        )
    budget_s = stored_budget_s(state)
    if max_minutes is not None and max_minutes * SECONDS_PER_MINUTE != budget_s:
        stored = f"{budget_s / SECONDS_PER_MINUTE:g} min" if budget_s else "none"
        # by file name: the log may leave the machine, and a folder above the run may name the patient
        log.warning(
            "%s: --max-minutes %g is ignored: a resume continues the run exactly, with its own time "
            "budget (%s)",
            last.name,
            max_minutes,
            stored,
        )


def restore(state: dict, parts: TrainingParts) -> RunProgress:
    """Load last.pt's payload STATE into the run's PARTS (their scaler and weight average only where
    both the run and last.pt have one) and set the RNG states it recorded. Returns the progress
    last.pt recorded, which the loop continues from: the epoch last done (the loop starts at the next),
    the best so far overall and per cycle, the seconds already spent and the history."""
    parts.model.load_state_dict(state["model"])
    parts.optimizer.load_state_dict(state["optimizer"])
    parts.schedule.load_state_dict(state["scheduler"])
    if parts.scaler is not None and state.get("scaler"):
        parts.scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"])
    if parts.ema is not None and state.get("ema"):
        parts.ema.load_state_dict(state["ema"])
    return RunProgress(
        epoch=int(state["epoch"]),
        best=dict(state["best"]),
        cycle_best=dict(state.get("cycle_best") or {}),
        elapsed_s=float(state["elapsed_s"]),
        finished=bool(state.get("finished")),
        history=list(state["history"]),
    )
