"""Warmup + poly lr schedule, and the --max-minutes budget annealing the lr to zero."""

from __future__ import annotations

import csv

import pytest
import torch
import yaml

from training.optim import WARMUP_START, PolySchedule
from training.train import run


def test_warmup_then_poly():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = PolySchedule(opt, warmup_iters=4, power=0.9)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * WARMUP_START)
    sched.step(0.1)  # iteration 1 of 4 warmup, 10% of the run done
    assert opt.param_groups[0]["lr"] == pytest.approx(
        0.1 * (WARMUP_START + (1 - WARMUP_START) / 4) * 0.9**0.9
    )
    for _ in range(3):
        sched.step(0.5)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**0.9)  # warmup over
    sched.step(1.0)
    assert opt.param_groups[0]["lr"] == 0.0
    clone = PolySchedule(opt, 0, 1.0)
    clone.load_state_dict(sched.state_dict())
    assert clone.iteration == 5 and clone.warmup_iters == 4


def test_time_budget_stops_early_and_anneals_lr_to_zero(tmp_path, busi_dataset):
    data = busi_dataset
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "model": {"arch": "unet_small", "width": 4},
                "data": {"input_height": 32, "input_width": 32},
                "train": {"epochs": 100000, "batch_size": 4, "warmup_iters": 0},
            }
        )
    )
    summary = run(cfg, data, tmp_path / "run", max_minutes=0.01, show_progress=False)
    assert summary["epochs_done"] < 100000
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert float(rows[-1]["lr"]) == 0.0  # the step that used up the budget ran at progress 1
    assert (tmp_path / "run" / "best.pt").is_file()


def test_cpu_bfloat16_autocast_trains(tmp_path, busi_dataset):
    data = busi_dataset
    cfg = tmp_path / "bf16.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "model": {"arch": "unet_small", "width": 4},
                "data": {"input_height": 32, "input_width": 32},
                "train": {"epochs": 1, "batch_size": 4, "amp_cpu_bf16": True},
            }
        )
    )
    run(cfg, data, tmp_path / "run", device="cpu", show_progress=False)
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    loss = float(rows[0]["train_loss"])
    assert 0.0 < loss < 10.0  # finite, and the weights stay float32 for export
    state = torch.load(tmp_path / "run" / "best.pt", weights_only=True)["model"]
    assert all(t.dtype in (torch.float32, torch.int64) for t in state.values())
