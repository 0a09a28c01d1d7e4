"""`sonomap crossval` stopped by SIGTERM (`timeout`, a batch scheduler) as by Ctrl-C: one line saying so,
exit 143 (128 + SIGTERM), no hidden temp file or staging folder left in OUT, the fold already finished
byte for byte as it was, and the fold under way not evaluated. A real process and a real signal, sent
as fold 2's training starts writing its first checkpoint's temp file (tests/sigterm_stop.py
`sigterm_at_write`): fold 1 was run first (`--fold 1`), so that temp file is the first the command
opens, and the signal comes at one known moment."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from sigterm_stop import sigterm_at_write
from test_crossval import FOLDS, TINY

from edge_runtime.cli import main as sonomap
from training.crossval_layout import FOLD_DATA, FOLD_EVAL, SETUP_FILE, fold_dir, fold_evaluated

CHECKPOINT_TEMP = ".*.pt.*.tmp"  # the atomic writer's temp file of best.pt or last.pt


def _tree(folder: Path) -> dict[str, bytes | str]:
    """Every file's bytes and every link's target under ``folder``, by relative path (links not followed)."""
    out: dict[str, bytes | str] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            key = str(path.relative_to(folder))
            if path.is_symlink():
                out[key] = os.readlink(path)
            elif path.is_file():
                out[key] = path.read_bytes()
    return out


def test_sigterm_stops_crossval_and_keeps_the_finished_fold(tmp_path, busi_dataset):
    cfg, out = tmp_path / "tiny.yaml", tmp_path / "cv"
    cfg.write_text(yaml.safe_dump(TINY))
    args = [
        "crossval",
        "--config",
        cfg,
        "--data",
        busi_dataset,
        "--out",
        out,
        "--folds",
        FOLDS,
        "--no-calibration",
    ]
    assert sonomap([*map(str, args), "--fold", "1"]) == 0
    fold1, setup = _tree(fold_dir(out, 1)), (out / SETUP_FILE).read_bytes()
    assert fold_evaluated(fold_dir(out, 1))
    stderr = sigterm_at_write(args, CHECKPOINT_TEMP, tmp_path / "writing")
    assert len(stderr.strip().splitlines()) == 1, stderr
    hidden = [str(p.relative_to(out)) for p in out.rglob(".*")]
    assert hidden == [], hidden  # no checkpoint temp file, no staged report
    assert _tree(fold_dir(out, 1)) == fold1 and (out / SETUP_FILE).read_bytes() == setup
    assert (fold_dir(out, 2) / FOLD_DATA / "cases.csv").is_file()  # stopped in fold 2, which is not evaluated
    assert not (fold_dir(out, 2) / FOLD_EVAL).exists() and not fold_dir(out, 3).exists()
    assert not (out / "report.md").exists()
