"""train.ema_decay: the averaged weights are what is validated and saved, and resuming keeps them."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
import yaml

from training.checkpoint import read_checkpoint
from training.train import run

EMA = {
    "name": "tiny-ema",
    "model": {"arch": "unet_small", "width": 4},
    "data": {"input_height": 64, "input_width": 64, "mean": "auto", "std": "auto"},
    "train": {"epochs": 2, "batch_size": 4, "warmup_iters": 2, "lr": 3.0e-3, "ema_decay": 0.8},
}


def _config(tmp_path: Path, **train) -> Path:
    cfg = copy.deepcopy(EMA)
    cfg["train"].update(train)
    path = tmp_path / "ema.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_best_checkpoint_holds_the_averaged_weights_not_the_raw_ones(tmp_path, busi_dataset):
    run(_config(tmp_path, epochs=1), busi_dataset, tmp_path / "run", deterministic=True, show_progress=False)
    best = read_checkpoint(tmp_path / "run" / "best.pt")["model"]
    last = read_checkpoint(tmp_path / "run" / "last.pt")
    averaged = {k.removeprefix("module."): v for k, v in last["ema"].items() if k.startswith("module.")}
    assert int(last["ema"]["n_averaged"]) == 21 // 4  # one update per optimiser step (last batch dropped)
    assert set(best) == set(averaged) == set(last["model"])
    for key in best:
        torch.testing.assert_close(best[key], averaged[key], rtol=0, atol=0, msg=key)
    weight = "net.stem.0.0.weight"
    assert not torch.equal(best[weight], last["model"][weight])  # the raw weights moved past it


def test_resume_restores_the_average_bit_for_bit(tmp_path, busi_dataset):
    config = _config(tmp_path)
    whole, split = tmp_path / "whole", tmp_path / "split"
    run(config, busi_dataset, whole, deterministic=True, show_progress=False)
    run(config, busi_dataset, split, deterministic=True, show_progress=False, stop_after_epochs=1)
    run(config, busi_dataset, split, resume=True, deterministic=True, show_progress=False)
    a, b = read_checkpoint(split / "last.pt")["ema"], read_checkpoint(whole / "last.pt")["ema"]
    assert set(a) == set(b)
    for key in b:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
