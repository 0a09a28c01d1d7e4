"""torchrun DDP with 2 CPU processes on gloo: trains, only rank 0 writes, and resumes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edge_runtime.manifest import load_manifest
from training.data import read_cases, select_split

WORLD = 2
BATCH = 4
CFG = {
    "name": "ddp-tiny",
    "model": {"arch": "unet_small", "width": 4},
    "data": {"input_height": 48, "input_width": 48},
    "train": {"epochs": 1, "batch_size": BATCH, "warmup_iters": 1},
}


@pytest.mark.slow
def test_torchrun_two_cpu_processes_gloo(tmp_path, busi_dataset):
    data = busi_dataset
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(CFG))
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={WORLD}",
        "-m",
        "edge_runtime.cli",
        "train",
        "--config",
        str(cfg),
        "--data",
        str(data),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--no-progress",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == WORLD and summary["device"] == "cpu"
    n_train = len(select_split(read_cases(data), "train", data))
    # DistributedSampler(drop_last) splits the train set over ranks: each rank steps on its share
    per_rank = n_train // WORLD
    assert per_rank >= 2 * BATCH  # so the ragged last batch is dropped, as in torchvision's reference
    assert summary["iterations"] == per_rank // BATCH
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert len(rows) == 1  # rank 1 wrote nothing (one header, one epoch row)
    assert load_manifest(out / "best.pt").arch == "unet_small"
    assert not list(Path(out).glob("*.tmp"))
