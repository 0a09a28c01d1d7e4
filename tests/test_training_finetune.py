"""Fine-tuning pieces: cosine warm restarts, --init-from with folded BatchNorm re-standardised,
per-cycle snapshots, and the image-level "contains cancer" loss (real BUSI sample, tiny sizes)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
import torch
import yaml

from edge_runtime.errors import ConfigError
from edge_runtime.manifest import sha256_file
from training.average import average_checkpoints
from training.checkpoint import read_checkpoint
from training.checkpoint_save import save_checkpoint
from training.losses import SegLoss, image_presence_loss
from training.models import build_model
from training.optim import WARMUP_START, CosineRestarts
from training.train import run
from training.warmstart import restandardize_batchnorm

TINY = {
    "name": "tiny-ft",
    "model": {"arch": "unet_small", "width": 4},
    "data": {"input_height": 48, "input_width": 48, "mean": 0.3, "std": 0.2},
    "train": {"epochs": 2, "batch_size": 4, "warmup_iters": 0, "lr": 1.0e-3},
}


def _config(tmp_path: Path, name: str, **train) -> Path:
    cfg = {**TINY, "train": {**TINY["train"], **train}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_cosine_restarts_cycle_from_base_to_zero():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.2)
    sched = CosineRestarts(opt, warmup_iters=2, cycles=3)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.2 * WARMUP_START)
    sched.step(0.0)
    sched.step(0.0)  # warmup over
    for progress, cycle, factor in (
        (0.0, 0, 1.0),
        (1 / 6, 0, 0.5),
        (1 / 3 - 1e-9, 0, 0.0),
        (1 / 3, 1, 1.0),  # warm restart
        (0.5, 1, 0.5),
        (2 / 3, 2, 1.0),
        (1.0, 2, 0.0),
        (1.5, 2, 0.0),  # a budget overrun stays at zero
    ):
        sched.apply(progress)
        assert sched.cycle(progress) == cycle
        assert opt.param_groups[0]["lr"] == pytest.approx(0.2 * factor, abs=1e-7), progress


def _fold_batchnorm(model: torch.nn.Module) -> None:
    """Make every BatchNorm look like training.recover writes it (identity plus a bias)."""
    torch.manual_seed(1)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.zero_()
                mod.running_var.fill_(1.0 - mod.eps)
                mod.weight.fill_(1.0)
                mod.bias.copy_(torch.randn_like(mod.bias) * 0.1)


def test_restandardize_keeps_the_eval_function_and_normalises_batches():
    model = build_model("unet_small", 2, width=4)
    _fold_batchnorm(model)
    torch.manual_seed(2)
    batches = [(torch.rand(4, 1, 48, 48) * 3.0 + 1.0, None, None) for _ in range(3)]
    x = batches[0][0]
    model.eval()
    with torch.no_grad():
        before = model(x)
    assert restandardize_batchnorm(model, batches, torch.device("cpu")) == 16
    model.eval()
    with torch.no_grad():
        after = model(x)
        bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
        assert not torch.all(bn.running_mean == 0)  # statistics measured, not left folded
        model.train()
        train_mode = model(x)
    assert torch.allclose(before, after, atol=1e-4)
    # Batch statistics now match the running ones, so train mode computes nearly the same function:
    # folded layers left as they were would rescale every activation here.
    assert (train_mode - before).abs().mean() < 0.1 * before.abs().mean()
    assert restandardize_batchnorm(model, batches, torch.device("cpu")) == 0  # nothing folded any more


def test_restandardize_finds_sync_batchnorm_as_torchrun_on_gpus_trains_it():
    """torchrun on GPUs turns every BatchNorm2d into a SyncBatchNorm (no subclass of it) before the
    --init-from weights load: its folded layers are re-standardised as the plain model's are."""
    plain = build_model("unet_small", 2, width=4)
    _fold_batchnorm(plain)
    sync = torch.nn.SyncBatchNorm.convert_sync_batchnorm(build_model("unet_small", 2, width=4))
    sync.load_state_dict(plain.state_dict())
    torch.manual_seed(2)
    batches = [(torch.rand(4, 1, 48, 48) * 3.0 + 1.0, None, None) for _ in range(2)]
    assert restandardize_batchnorm(sync, batches, torch.device("cpu")) == 16
    assert restandardize_batchnorm(plain, batches, torch.device("cpu")) == 16
    for key, tensor in plain.state_dict().items():
        torch.testing.assert_close(sync.state_dict()[key], tensor, msg=key)


def test_init_from_starts_at_the_checkpoint_and_cycles_keep_snapshots(tmp_path, busi_dataset):
    base = run(_config(tmp_path, "base"), busi_dataset, tmp_path / "base", show_progress=False)
    assert base["init_from"] is None
    start = read_checkpoint(tmp_path / "base" / "last.pt")["model"]
    # lr so small that one epoch leaves the weights where they started
    cfg = _config(tmp_path, "ft", lr=1.0e-12, schedule="cosine", cycles=2, epochs=2)
    result = run(
        cfg, busi_dataset, tmp_path / "ft", show_progress=False, init_from=tmp_path / "base" / "last.pt"
    )
    assert result["init_from"].endswith("last.pt")
    assert read_checkpoint(tmp_path / "ft" / "best.pt")["manifest"]["source"]["init_from"].endswith("last.pt")
    tuned = read_checkpoint(tmp_path / "ft" / "last.pt")["model"]
    convs = [k for k in start if k.endswith(".weight") and start[k].dim() == 4]
    assert convs and all(torch.allclose(start[k], tuned[k], atol=1e-6) for k in convs)
    # two cycles of one epoch each: each cycle's best epoch kept
    assert sorted(p.name for p in (tmp_path / "ft").glob("cycle*.pt")) == ["cycle0.pt", "cycle1.pt"]
    assert set(result["cycle_best"]) == {"0", "1"}
    assert read_checkpoint(tmp_path / "ft" / "cycle1.pt")["epoch"] == 1


def test_init_from_another_architecture_is_refused(tmp_path, busi_dataset):
    run(_config(tmp_path, "base", epochs=1), busi_dataset, tmp_path / "base", show_progress=False)
    wide = {**TINY, "model": {**TINY["model"], "width": 8}}
    cfg = tmp_path / "wide.yaml"
    cfg.write_text(yaml.safe_dump(wide))
    with pytest.raises(ConfigError, match=r"--init-from .*best\.pt.*does not match"):
        run(
            cfg, busi_dataset, tmp_path / "wide", show_progress=False, init_from=tmp_path / "base" / "best.pt"
        )


def test_init_from_a_checkpoint_without_deep_supervision_starts_a_fresh_aux_head(tmp_path, busi_dataset):
    run(_config(tmp_path, "base", epochs=1), busi_dataset, tmp_path / "base", show_progress=False)
    start = read_checkpoint(tmp_path / "base" / "best.pt")["model"]
    deep = {
        **TINY,
        "model": {**TINY["model"], "aux": True},
        "train": {**TINY["train"], "lr": 1.0e-12, "epochs": 1},
    }
    cfg = tmp_path / "deep.yaml"
    cfg.write_text(yaml.safe_dump(deep))
    run(cfg, busi_dataset, tmp_path / "deep", show_progress=False, init_from=tmp_path / "base" / "best.pt")
    tuned = read_checkpoint(tmp_path / "deep" / "last.pt")["model"]
    assert set(tuned) - set(start) == {"net.aux_head.weight", "net.aux_head.bias"}
    convs = [k for k in start if k.endswith(".weight") and start[k].dim() == 4]
    assert convs and all(torch.allclose(start[k], tuned[k], atol=1e-6) for k in convs)
    # a key missing from the main network is still refused, naming the file and the key
    state = read_checkpoint(tmp_path / "base" / "best.pt")
    del state["model"]["net.head.weight"]
    save_checkpoint(state, tmp_path / "cut.pt")
    with pytest.raises(ConfigError, match=r"--init-from .*cut\.pt: .*'net\.head\.weight'"):
        run(cfg, busi_dataset, tmp_path / "cut", show_progress=False, init_from=tmp_path / "cut.pt")


def _logits(cancer_margin: torch.Tensor) -> torch.Tensor:
    """[N, H, W] cancer-minus-tissue margin -> [N, 2, H, W] logits."""
    return torch.stack([torch.zeros_like(cancer_margin), cancer_margin], dim=1)


def test_image_presence_loss_punishes_a_false_blob_on_a_benign_image():
    benign = torch.zeros(1, 32, 32, dtype=torch.long)
    clean = torch.full((1, 32, 32), -6.0)
    blob = clean.clone()
    blob[:, 10:14, 10:14] = 6.0  # 16 confident false cancer pixels
    topk = 16 / (32 * 32)
    assert image_presence_loss(_logits(clean), benign, topk) < 0.01
    assert image_presence_loss(_logits(blob), benign, topk) == pytest.approx(
        math.log1p(math.exp(6.0)), rel=1e-4
    )
    # the same blob where the label says "unknown" (255) does not count
    ignored = benign.clone()
    ignored[:, 10:14, 10:14] = 255
    assert image_presence_loss(_logits(blob), ignored, topk) < 0.01
    # on an image with cancer, a confident lesion is the right answer
    malignant = benign.clone()
    malignant[:, 10:14, 10:14] = 1
    assert image_presence_loss(_logits(blob), malignant, topk) < 0.01
    # and the term is added to the pixel loss only when weighted
    plain, weighted = SegLoss("ce_dice"), SegLoss("ce_dice", image_weight=0.5, image_topk=topk)
    extra = weighted(_logits(blob), benign) - plain(_logits(blob), benign)
    assert float(extra) == pytest.approx(0.5 * math.log1p(math.exp(6.0)), rel=1e-4)


def test_schedule_and_image_loss_keys_are_checked(tmp_path, busi_dataset):
    for key, value, want in (
        ("schedule", "step", r"train\.schedule' must be one of"),
        ("cycles", 0, r"train\.cycles' must be an integer >= 1"),
        ("image_weight", -1, r"train\.image_weight' must be a number >= 0"),
        ("image_topk", 0, r"train\.image_topk' must be a number > 0"),
    ):
        with pytest.raises(ConfigError, match=want):
            run(_config(tmp_path, key, **{key: value}), busi_dataset, tmp_path / key, show_progress=False)


def test_average_of_two_runs_lies_between_them_with_batchnorm_measured_again(tmp_path, busi_dataset):
    run(_config(tmp_path, "a", epochs=1, seed=1), busi_dataset, tmp_path / "a", show_progress=False)
    run(_config(tmp_path, "b", epochs=1, seed=2), busi_dataset, tmp_path / "b", show_progress=False)
    cks = [tmp_path / "a" / "best.pt", tmp_path / "b" / "best.pt"]
    out = average_checkpoints(cks, busi_dataset, tmp_path / "soup" / "best.pt")
    a, b, soup = (read_checkpoint(p)["model"] for p in (*cks, out))
    key = "net.head.weight"
    assert not torch.equal(a[key], b[key]) and torch.allclose(soup[key], (a[key] + b[key]) / 2)
    bn = "net.stem.0.1.running_var"  # re-measured on the train images, not the mean of the two
    assert not torch.allclose(soup[bn], (a[bn] + b[bn]) / 2)
    # each input by file name and sha256, never by path (a folder above may be named after a patient)
    averaged_from = read_checkpoint(out)["manifest"]["source"]["averaged_from"]
    assert averaged_from == [{"checkpoint": "best.pt", "sha256": sha256_file(c)} for c in cks]
    assert averaged_from[0]["sha256"] != averaged_from[1]["sha256"]
    assert not any(sep in str(averaged_from) for sep in ("/", "\\", tmp_path.name))
    with pytest.raises(ConfigError, match="at least two"):
        average_checkpoints(cks[:1], busi_dataset, tmp_path / "one.pt")


def test_init_from_a_model_trained_with_another_normalisation_says_so(tmp_path, busi_dataset, caplog):
    run(_config(tmp_path, "base", epochs=1), busi_dataset, tmp_path / "base", show_progress=False)
    other = {
        **TINY,
        "data": {**TINY["data"], "mean": 0.4, "std": 0.25},
        "train": {**TINY["train"], "epochs": 1},
    }
    for name, cfg in (("same", TINY), ("other", other)):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({**cfg, "train": {**cfg["train"], "epochs": 1}}))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="sonomap"):
            run(
                path,
                busi_dataset,
                tmp_path / name,
                show_progress=False,
                init_from=tmp_path / "base" / "best.pt",
            )
        warned = [r.getMessage() for r in caplog.records if "mean/std" in r.getMessage()]
        if name == "same":
            assert warned == []
        else:
            assert warned == [
                "--init-from best.pt was trained with mean/std 0.3000/0.2000, this run uses 0.4000/0.2500: "
                "its weights see other input values at first (set data.mean and data.std to its values to "
                "fine-tune it as is)"
            ]
