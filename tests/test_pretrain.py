"""Self-supervised pretraining: the Models Genesis distortions, `sonomap pretrain` on the real BUSI
sample (train-split images only), starting a segmentation run from its weights, and a real
`sonomap pretrain` stopped by a real SIGTERM as Ctrl-C stops it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from sigterm_stop import sigterm_when

from edge_runtime.errors import ConfigError, InputError
from training import pretext
from training.checkpoint import load_model, read_checkpoint
from training.checkpoint_save import save_checkpoint
from training.data import read_cases, select_split
from training.models import build_model
from training.pretrain import pretext_images, run
from training.train import run as train_run
from training.warmstart import ALL_HEADS, in_heads, load_initial_weights

TINY = {
    "name": "tiny-pretext",
    "model": {"arch": "unet_small", "width": 4, "aux": True},
    "data": {"input_height": 48, "input_width": 48, "mean": 0.3, "std": 0.2},
    "train": {"epochs": 1, "batch_size": 4, "warmup_iters": 0, "lr": 1.0e-3},
}


def _image(seed: int = 0) -> np.ndarray:
    """A smooth gradient with a bright blob: every distortion visibly changes it."""
    yy, xx = np.mgrid[0:64, 0:80].astype(np.float32)
    img = 0.2 + 0.5 * xx / 80 + 0.3 * np.exp(-((yy - 30) ** 2 + (xx - 40) ** 2) / 200)
    return np.clip(img + np.random.default_rng(seed).normal(0, 0.02, img.shape), 0, 1).astype(np.float32)


def test_distort_is_seeded_in_range_and_changes_the_image():
    img = _image()
    a = pretext.distort(img, np.random.default_rng(3))
    b = pretext.distort(img, np.random.default_rng(3))
    assert a.shape == img.shape and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert 0.0 <= a.min() and a.max() <= 1.0
    changed = [not np.allclose(pretext.distort(img, np.random.default_rng(s)), img) for s in range(10)]
    assert sum(changed) >= 9  # only a draw with no distortion at all may leave it (about 0.5 %)
    with pytest.raises(ValueError, match="2-D"):
        pretext.distort(np.zeros((4, 4, 3), np.float32), np.random.default_rng(0))


def test_local_shuffle_moves_pixels_only_within_small_windows():
    img = _image()
    out = pretext._local_shuffle(img, np.random.default_rng(0))
    assert not np.array_equal(out, img)
    assert np.array_equal(np.sort(out.ravel()), np.sort(img.ravel()))  # the same values, moved
    # no pixel moves farther than a window: the 16x16 block means barely change
    coarse = lambda x: x.reshape(4, 16, 5, 16).mean(axis=(1, 3))  # noqa: E731
    assert np.abs(coarse(out) - coarse(img)).max() < 0.02


def test_intensity_map_is_monotone():
    ramp = np.linspace(0, 1, 200, dtype=np.float32)[None, :]
    for seed in range(8):
        mapped = pretext._bezier_map(ramp, np.random.default_rng(seed))[0]
        steps = np.diff(mapped)
        assert (steps >= -1e-6).all() or (steps <= 1e-6).all(), seed


def test_outpaint_keeps_boxes_of_the_image_inside_noise():
    img = _image()
    out = pretext._outpaint(img, np.random.default_rng(1))
    kept = np.isclose(out, img)
    assert 0.1 < kept.mean() < 0.9  # some of the image survives, the rest is noise
    inpainted = pretext._inpaint(img, np.random.default_rng(1))
    assert 0.5 < np.isclose(inpainted, img).mean() < 1.0


def test_pretext_images_are_the_train_split_only(busi_dataset, tmp_path):
    train = {s.image for s in select_split(read_cases(busi_dataset), "train", busi_dataset)}
    assert set(pretext_images(busi_dataset)) == train
    extra = tmp_path / "extra"
    extra.mkdir()
    with pytest.raises(InputError, match="no image files"):
        pretext_images(busi_dataset, [extra])
    with pytest.raises(InputError, match="not a folder"):
        pretext_images(busi_dataset, [tmp_path / "missing"])
    (extra / "frame.png").write_bytes(next(iter(train)).read_bytes())
    assert len(pretext_images(busi_dataset, [extra])) == len(train) + 1


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, busi_dataset) -> Path:
    out = tmp_path_factory.mktemp("pretext")
    cfg = out / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    summary = run(cfg, busi_dataset, out / "run", epochs=6, lr=3e-3)
    assert summary["epochs_done"] == 6
    return out / "run"


def test_pretrain_learns_to_restore_and_writes_a_headless_checkpoint(pretrained):
    rows = list(csv.DictReader(open(pretrained / "metrics.csv")))
    losses = [float(r["loss"]) for r in rows]
    assert len(losses) == 6
    assert losses[-1] < 0.8 * losses[0]  # restoration loss falls
    state = read_checkpoint(pretrained / "pretrained.pt")
    assert state["pretext"]["method"] == "models_genesis"
    assert state["pretext"]["epoch"] == 5
    assert not [k for k in state["model"] if in_heads(k, ALL_HEADS)]
    assert not [k for k in state["model"] if k.startswith(("net.head.", "net.aux_head."))]
    assert any(k.startswith("net.stem.") for k in state["model"])


def test_a_pretext_checkpoint_is_not_a_model(pretrained):
    with pytest.raises(InputError, match="pretraining checkpoint.*--init-from"):
        load_model(pretrained / "pretrained.pt")


def test_init_from_pretext_keeps_every_layer_but_the_fresh_head(pretrained, busi_dataset):
    state = read_checkpoint(pretrained / "pretrained.pt")
    model = build_model("unet_small", 2, aux=True, width=4)
    head_before = model.net.head.weight.detach().clone()
    loader = [(torch.rand(2, 1, 48, 48), torch.zeros(2, 48, 48, dtype=torch.long), torch.arange(2))]
    cfg = {"arch": "unet_small", "num_classes": 2, "width": 4}
    load_initial_weights(model, pretrained / "pretrained.pt", cfg, loader, torch.device("cpu"), (0.3, 0.2))
    mine = model.state_dict()
    for key, value in state["model"].items():
        assert torch.equal(mine[key], value), key
    assert torch.equal(model.net.head.weight, head_before)  # the head is not in the checkpoint


def test_a_headless_checkpoint_without_the_pretext_mark_is_refused(pretrained, tmp_path):
    state = read_checkpoint(pretrained / "pretrained.pt")
    del state["pretext"]
    save_checkpoint(state, tmp_path / "headless.pt")
    model = build_model("unet_small", 2, aux=True, width=4)
    cfg = {"arch": "unet_small", "num_classes": 2, "width": 4}
    with pytest.raises(ConfigError, match="do not fit"):
        load_initial_weights(model, tmp_path / "headless.pt", cfg, [], torch.device("cpu"), (0.3, 0.2))


def test_train_init_from_pretext_runs(pretrained, busi_dataset, tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    result = train_run(
        cfg, busi_dataset, tmp_path / "ft", show_progress=False, init_from=pretrained / "pretrained.pt"
    )
    assert result["init_from"].endswith("pretrained.pt")
    model, manifest = load_model(tmp_path / "ft" / "best.pt")
    assert manifest.source["init_from"].endswith("pretrained.pt")


def test_sigterm_stops_pretrain_cleanly(busi_dataset, tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "run"
    args = ["pretrain", "--config", cfg, "--data", busi_dataset, "--out", out, "--epochs", "10000"]
    sigterm_when(args, (out / "summary.json").exists)  # written after each epoch's pretrained.pt
    hidden = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert not hidden, hidden  # every atomic write removed its temp file
    assert read_checkpoint(out / "pretrained.pt")["pretext"]["epoch"] >= 0
    assert json.loads((out / "summary.json").read_text())["finished"] is False
