"""A training or pretraining run whose loss or weights become NaN/inf stops with one line naming the
epoch (and iteration), never saves the non-finite weights, and keeps what earlier epochs wrote; the
configs that make every loss NaN (all-zero class weights, a vanishing data.std) are refused.
Real runs of `sonomap` (in process) on the vendored BUSI sample at 64x64, width 4."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml
from cli import one_line_error

import training.pretrain as pretrain_module
import training.train as train_module
from edge_runtime.cli import main as sonomap
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import load_manifest
from training.checkpoint import read_checkpoint
from training.checkpoint_save import save_checkpoint
from training.config import load_config
from training.config_schema import MAX_LR
from training.data import read_cases
from training.engine import NonFiniteLoss
from training.train import run

TINY = {
    "name": "tiny",
    "model": {"arch": "unet_small", "width": 4},
    "data": {"input_height": 64, "input_width": 64, "mean": "auto", "std": "auto"},
    "train": {"epochs": 2, "batch_size": 4, "warmup_iters": 2, "lr": 3.0e-3},
}
ITERS_PER_EPOCH = 5  # 21 train images in batches of 4, the ragged one dropped
LR_BLOWUP = 1.0e6  # x the largest lr a config takes: SGD's weights overflow float32 within an epoch


def _config(folder: Path, **train) -> Path:
    cfg = {**TINY, "train": {**TINY["train"], **train}}
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _all_finite(state: dict) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())


def test_configs_that_make_every_loss_nan_are_refused(tmp_path):
    for section, key, value in (("train", "class_weights", [0, 0]), ("data", "std", 1e-300)):
        cfg = {**TINY, section: {**TINY[section], key: value}}
        path = tmp_path / f"{key}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        with pytest.raises(ConfigError, match=f"'{section}.{key}'"):
            load_config(path)
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump({**TINY, "train": {"class_weights": [0, 1]}}))
    assert load_config(tmp_path / "ok.yaml").train.class_weights == [0, 1]


def test_a_diverging_run_is_one_line_naming_epoch_and_iteration_and_saves_nothing(
    tmp_path, busi_dataset, capsys, monkeypatch
):
    """The reviewer's case: plain SGD at lr 1e6 without gradient clipping. The config refuses an lr
    over MAX_LR, so the optimiser is built at the largest lr it takes and scaled up after."""
    real_build_optimizer = train_module.build_optimizer

    def runaway_optimizer(model, tc):
        optimizer = real_build_optimizer(model, tc)
        for group in optimizer.param_groups:
            group["lr"] *= LR_BLOWUP
        return optimizer

    monkeypatch.setattr(train_module, "build_optimizer", runaway_optimizer)
    cfg = _config(tmp_path, optimizer="sgd", lr=MAX_LR, grad_clip=0)
    out = tmp_path / "run"
    args = [
        "train",
        "--config",
        cfg,
        "--data",
        busi_dataset,
        "--out",
        out,
        "--no-progress",
        "--device",
        "cpu",
    ]
    err = one_line_error(capsys, sonomap([str(a) for a in args]))
    assert "epoch 0" in err and "iteration" in err and "not finite" in err, err
    assert not (out / "best.pt").exists() and not (out / "summary.json").exists()


def test_a_nan_loss_in_a_later_epoch_keeps_the_earlier_best(tmp_path, busi_dataset, monkeypatch):
    real_build_loss = train_module.build_loss
    calls = {"n": 0}

    def nan_from_epoch_1(tc):
        loss_fn = real_build_loss(tc)
        real_forward = loss_fn.forward

        def forward(out, y):
            calls["n"] += 1
            loss = real_forward(out, y)
            return loss * math.nan if calls["n"] == ITERS_PER_EPOCH + 2 else loss

        loss_fn.forward = forward
        return loss_fn

    monkeypatch.setattr(train_module, "build_loss", nan_from_epoch_1)
    out = tmp_path / "run"
    with pytest.raises(NonFiniteLoss, match="epoch 1, iteration 2: the training loss is nan"):
        run(_config(tmp_path), busi_dataset, out, show_progress=False, device="cpu")
    best = read_checkpoint(out / "best.pt")
    assert best["epoch"] == 0 and _all_finite(best["model"])
    assert read_checkpoint(out / "last.pt")["epoch"] == 0  # resume state of the good epoch
    assert not (out / "summary.json").exists()  # the run did not finish


def test_weights_that_went_non_finite_on_a_finite_loss_are_never_saved(tmp_path, busi_dataset, monkeypatch):
    """The last step of an epoch can leave NaN weights with a finite loss: they validate to Dice 0,
    which beat the initial best of -1 and used to be saved as best.pt."""
    real_build_optimizer = train_module.build_optimizer

    def poisoned(model, tc):
        optimizer = real_build_optimizer(model, tc)
        real_step, steps = optimizer.step, {"n": 0}

        def step(*args, **kwargs):
            result = real_step(*args, **kwargs)
            steps["n"] += 1
            if steps["n"] == ITERS_PER_EPOCH:  # the epoch's last step
                with torch.no_grad():
                    next(model.parameters()).fill_(math.nan)
            return result

        optimizer.step = step
        return optimizer

    monkeypatch.setattr(train_module, "build_optimizer", poisoned)
    out = tmp_path / "run"
    with pytest.raises(NonFiniteLoss, match="epoch 0: weight .* not finite"):
        run(_config(tmp_path), busi_dataset, out, show_progress=False, device="cpu")
    assert not (out / "best.pt").exists() and not (out / "last.pt").exists()


def test_pretrain_with_an_absurd_lr_stops_with_one_line(tmp_path, busi_dataset, capsys, monkeypatch):
    """--lr over MAX_LR is refused; a schedule that runs away (here 1e12 x the largest lr) is stopped."""
    monkeypatch.setattr(pretrain_module, "lr_factor", lambda progress: LR_BLOWUP * LR_BLOWUP)
    cfg = _config(tmp_path)
    out = tmp_path / "pre"
    args = [
        "pretrain",
        "--config",
        cfg,
        "--data",
        busi_dataset,
        "--out",
        out,
        "--epochs",
        "2",
        "--lr",
        MAX_LR,
    ]
    err = one_line_error(capsys, sonomap([str(a) for a in args]))
    assert "epoch 0" in err and "not finite" in err, err
    assert not (out / "pretrained.pt").exists() and not (out / "summary.json").exists()


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory, busi_dataset) -> Path:
    """A finished one-epoch run: RUN/best.pt + best.pt.yaml."""
    folder = tmp_path_factory.mktemp("one_epoch")
    out = folder / "run"
    run(_config(folder, epochs=1), busi_dataset, out, show_progress=False, device="cpu")
    return out


def test_evaluate_refuses_a_model_with_nan_probabilities_in_one_line(
    one_epoch, busi_dataset, tmp_path, capsys
):
    state = read_checkpoint(one_epoch / "best.pt")
    for value in state["model"].values():
        if value.is_floating_point():
            value.fill_(math.nan)
    broken = tmp_path / "broken" / "best.pt"
    save_checkpoint(state, broken, load_manifest(one_epoch / "best.pt"))
    report = tmp_path / "report"
    args = ["evaluate", "--checkpoint", broken, "--data", busi_dataset, "--split", "val", "--out", report]
    err = one_line_error(capsys, sonomap([str(a) for a in args]))
    first = next(s for s in read_cases(busi_dataset) if s.split == "val")
    assert str(broken) in err and f"id {first.id}" in err and "non-finite" in err, err
    assert not report.exists()
