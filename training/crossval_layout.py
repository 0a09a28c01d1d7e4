"""Where cross-validation keeps each fold (the layout :mod:`training.crossval` writes and
:mod:`training.crossval_report` reads): OUT/crossval.json, then per fold OUT/fold<k>/ with
``data/`` (the fold's dataset), ``run/`` (its training run) and ``eval/`` (its test evaluation)."""

from __future__ import annotations

from pathlib import Path

SETUP_FILE = "crossval.json"
FOLD_DATA, FOLD_RUN, FOLD_EVAL = "data", "run", "eval"


def fold_dir(out: Path, k: int) -> Path:
    """OUT/fold<k>, k counted from 1 as the command line counts."""
    return out / f"fold{k}"


def fold_evaluated(fold: Path) -> bool:
    """Whether the test evaluation of FOLD (OUT/fold<k>) is written (its summary.json is written last)."""
    return (fold / FOLD_EVAL / "summary.json").is_file()
