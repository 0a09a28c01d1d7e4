"""`sonomap train --resume` continues a run exactly or refuses: a finished run (epochs done or time
budget spent) changes nothing, a fine-tuning run keeps its --init-from, another world size is
refused; under torchrun only rank 0 prints and train_loss is the mean over the ranks. A session
stopped before its first validation reports no best epoch (there is no best.pt yet) until a resume
validates one.
Real runs on the vendored BUSI sample at 64x64 (48x48 under torchrun), width 4."""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from edge_runtime.cli import main as sonomap
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import load_manifest, sha256_file
from training.checkpoint import read_checkpoint
from training.train import run

TINY = {
    "name": "tiny-resume",
    "model": {"arch": "unet_small", "width": 4},
    "data": {"input_height": 64, "input_width": 64, "mean": "auto", "std": "auto"},
    "train": {"epochs": 2, "batch_size": 4, "warmup_iters": 2, "lr": 3.0e-3},
}
TINY_BUDGET_MIN = 0.002  # an epoch takes longer: the run stops on its budget in epoch 0
LONG_EPOCHS = 500
WORLD = 2
DDP_TIMEOUT_S = 240
# Runs `sonomap` under torchrun and writes each rank's epoch loss, as train_one_epoch returns it, to
# LOSS_DIR/rankN (a file each: the ranks' stdout lines interleave).
RANK_LOSSES = """
import os, sys
from pathlib import Path
import training.train as T
real = T.train_one_epoch
def reporting(*args, **kwargs):
    stats = real(*args, **kwargs)
    Path(os.environ["LOSS_DIR"], "rank" + os.environ["RANK"]).write_text(repr(stats["loss"]))
    return stats
T.train_one_epoch = reporting
from edge_runtime.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _config(folder: Path, name: str = "tiny.yaml", **train) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump({**TINY, "train": {**TINY["train"], **train}}))
    return path


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}


def _train(cfg, data, out, **kw) -> dict:
    return run(cfg, data, out, show_progress=False, device="cpu", **kw)


def test_resuming_a_run_that_spent_its_budget_changes_nothing(tmp_path, busi_dataset, caplog):
    cfg = _config(tmp_path, epochs=LONG_EPOCHS)
    out = tmp_path / "run"
    _train(cfg, busi_dataset, out, max_minutes=TINY_BUDGET_MIN)
    before = _files(out)
    with pytest.raises(
        ConfigError, match=rf"last.pt: the run already finished its time budget of {TINY_BUDGET_MIN} min"
    ):
        _train(cfg, busi_dataset, out, max_minutes=5, resume=True)
    assert _files(out) == before  # no lr-0 step: BatchNorm statistics, best.pt and last.pt as they were


def test_resuming_a_run_whose_epochs_are_done_is_refused(tmp_path, busi_dataset):
    cfg = _config(tmp_path)
    out = tmp_path / "run"
    _train(cfg, busi_dataset, out)
    before = _files(out)
    with pytest.raises(ConfigError, match=r"last.pt: the run already finished \(epoch 1 of 2 was its last\)"):
        _train(cfg, busi_dataset, out, resume=True)
    assert _files(out) == before


def test_a_resume_keeps_the_stored_budget_and_says_so(tmp_path, busi_dataset, caplog):
    cfg = _config(tmp_path, epochs=3)
    out = tmp_path / "run"
    _train(cfg, busi_dataset, out, max_minutes=10, stop_after_epochs=1)
    with caplog.at_level(logging.WARNING, logger="sonomap.train"):
        _train(cfg, busi_dataset, out, max_minutes=20, resume=True, stop_after_epochs=1)
    assert "--max-minutes 20 is ignored" in caplog.text and "(10 min)" in caplog.text
    assert read_checkpoint(out / "last.pt")["budget_s"] == 600.0


def test_a_session_stopped_before_the_first_validation_reports_no_best_until_one_runs(
    tmp_path, busi_dataset, capsys, caplog
):
    """--stop-after-epochs 1 with val_every 5: no epoch was validated, so there is no best.pt. The
    command says so and how to continue, names only files that exist, and summary.json and
    metrics.csv hold no best figure (null, empty); --resume then validates the last epoch."""
    out = tmp_path / "run"
    args = ["train", "--config", str(_config(tmp_path, epochs=2, val_every=5)), "--data", str(busi_dataset)]
    args += ["--out", str(out), "--no-progress", "--device", "cpu"]
    with caplog.at_level(logging.INFO, logger="sonomap.train"):
        assert sonomap([*args, "--stop-after-epochs", "1"]) == 0
    said = capsys.readouterr().out
    assert not (out / "best.pt").exists()
    assert (
        "no validation has run yet" in said
        and "so there is no best.pt; continue the run with --resume" in said
    )
    assert "best checkpoint" not in said and '"value": -1' not in said and '"epoch": -1' not in said, said
    named = re.findall(rf"{re.escape(str(out))}/[\w.]+", said)
    assert named and all(Path(path).exists() for path in named), said
    assert "best none yet" in caplog.text and "(epoch -1)" not in caplog.text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best"] == {"metric": "dice_pos_mean", "value": None, "epoch": None}
    with open(out / "metrics.csv", newline="") as fh:
        assert [row["best"] for row in csv.DictReader(fh)] == [""]
    metrics = read_checkpoint(out / "last.pt")["manifest"]["metrics"]  # no best epoch to name, not -1
    assert "best_epoch" not in metrics and metrics["select_metric"] == "dice_pos_mean"
    assert sonomap([*args, "--resume"]) == 0  # the last epoch is always validated
    said = capsys.readouterr().out
    best = json.loads((out / "summary.json").read_text())["best"]
    assert best["epoch"] == 1 and 0.0 <= best["value"] <= 1.0 and (out / "best.pt").is_file()
    assert f"best checkpoint: {out / 'best.pt'}" in said and json.dumps(best) in said
    assert read_checkpoint(out / "last.pt")["manifest"]["metrics"]["best_epoch"] == 1


def test_a_resumed_fine_tuning_run_keeps_its_init_from(tmp_path, busi_dataset):
    base = tmp_path / "base"
    _train(_config(tmp_path, "base.yaml", epochs=1), busi_dataset, base)
    cfg = _config(tmp_path, epochs=3)
    out = tmp_path / "tuned"
    _train(cfg, busi_dataset, out, init_from=base / "best.pt", stop_after_epochs=1)
    summary = _train(cfg, busi_dataset, out, resume=True)  # as documented, without --init-from
    # by base name and SHA-256, as the manifest records it: a folder above may be the patient's
    init = {"init_from": "best.pt", "init_from_sha256": sha256_file(base / "best.pt")}
    state = read_checkpoint(out / "last.pt")
    for record in (summary, json.loads((out / "summary.json").read_text()), state):
        assert {k: record[k] for k in init} == init
    assert state["manifest"]["source"]["init_from"] == "best.pt"
    assert load_manifest(out / "best.pt").source["init_from"] == "best.pt"


@pytest.mark.slow
def test_torchrun_prints_once_means_the_loss_and_refuses_another_world_size(tmp_path, busi_dataset):
    cfg = _config(tmp_path, epochs=2)
    out = tmp_path / "run"
    script = tmp_path / "rank_losses.py"
    script.write_text(RANK_LOSSES)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    losses_dir = tmp_path / "losses"
    losses_dir.mkdir()
    env["LOSS_DIR"] = str(losses_dir)
    args = ["train", "--config", str(cfg), "--data", str(busi_dataset), "--out", str(out), "--no-progress"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD}"]
    res = subprocess.run(
        [*cmd, str(script), *args, "--device", "cpu", "--stop-after-epochs", "1"],
        capture_output=True,
        text=True,
        timeout=DDP_TIMEOUT_S,
        env=env,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("best checkpoint:") == 1  # rank 1 never validates: it prints nothing
    losses = [float(path.read_text()) for path in sorted(losses_dir.iterdir())]
    assert len(losses) == WORLD
    row = next(csv.DictReader(open(out / "metrics.csv")))
    assert float(row["train_loss"]) == pytest.approx(sum(losses) / WORLD, rel=1e-12)
    assert read_checkpoint(out / "last.pt")["world_size"] == WORLD
    before = _files(out)
    with pytest.raises(
        ConfigError, match=rf"last.pt: was trained by {WORLD} process\(es\) but this resume has 1"
    ):
        _train(cfg, busi_dataset, out, resume=True)
    assert _files(out) == before
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 0
