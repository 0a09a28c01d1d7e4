"""A training batch of one sample on a model whose BatchNorm then sees one value per channel (DeepLabV3:
BatchNorm after the ASPP's global pooling): a ragged last batch of one is dropped whatever the train
split's size, other ragged batches of a small split still train, and `train.batch_size: 1` or a train
split of one image is refused before training (and by `sonomap bench-train`) in one line naming the
key; `python -m training.average`
re-estimates BatchNorm without a batch of one. Real `sonomap train` (in process) and checkpoints on the
vendored BUSI sample with torchvision's DeepLabV3-MobileNetV3 at 32x32."""

from __future__ import annotations

import csv
import shutil

import pytest
import yaml
from cli import one_line_error
from export_fixtures import make_checkpoint

from edge_runtime.cli import main as sonomap
from edge_runtime.manifest import load_manifest
from edge_runtime.privacy import redact
from training.average import BN_BATCH, average_checkpoints
from training.average import main as average_main
from training.data import read_cases, select_split

DEEPLAB = {
    "name": "tiny-deeplab",
    "model": {"arch": "deeplabv3_mobilenet_v3_large"},
    "data": {"input_height": 32, "input_width": 32, "mean": 0.4, "std": 0.2},
    "train": {"epochs": 1, "batch_size": 4, "warmup_iters": 0},
}


def _config(folder, arch: str = DEEPLAB["model"]["arch"], **train):
    path = folder / "tiny.yaml"
    path.write_text(
        yaml.safe_dump({**DEEPLAB, "model": {"arch": arch}, "train": {**DEEPLAB["train"], **train}})
    )
    return path


def _train(cfg, data, out) -> int:
    return sonomap(["train", "--config", str(cfg), "--data", str(data), "--out", str(out), "--no-progress"])


def _iterations(out) -> int:
    with open(out / "metrics.csv", newline="") as fh:
        return int(list(csv.DictReader(fh))[-1]["iteration"])


def _cut_train_split(busi_dataset, data, images: int):
    """A copy of the prepared sample whose train split keeps its first ``images`` images, malignant
    first (a train split needs cancer)."""
    shutil.copytree(busi_dataset, data)
    with open(data / "cases.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    train = sorted((r for r in rows if r["split"] == "train"), key=lambda r: not r["id"].startswith("malig"))
    with open(data / "cases.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows([r for r in rows if r["split"] != "train"] + train[:images])
    return data


def test_a_small_train_split_drops_a_last_batch_of_one_and_keeps_a_last_batch_of_two(tmp_path, busi_dataset):
    """A batch of n - 1 images leaves a lone last sample: dropped (one step). A batch of n - 2 leaves
    a pair, which a split smaller than two batches keeps, as before (two steps)."""
    images = len(select_split(read_cases(busi_dataset), "train", busi_dataset))
    for short, iterations in ((1, 1), (2, 2)):
        folder = tmp_path / f"short{short}"
        folder.mkdir()
        out = folder / "run"
        assert _train(_config(folder, batch_size=images - short), busi_dataset, out) == 0
        assert _iterations(out) == iterations and (out / "best.pt").is_file()


def test_batch_size_one_is_refused_before_training_naming_the_key(tmp_path, busi_dataset, capsys):
    """DeepLabV3 is refused; LRASPP, whose BatchNorm layers all see a map (none after its global
    pooling), still trains one image a step."""
    cfg, out = _config(tmp_path, batch_size=1), tmp_path / "run"
    err = one_line_error(capsys, _train(cfg, busi_dataset, out))
    assert (
        redact(f"{cfg}: config key 'train.batch_size' is 1, so each training batch holds one sample") in err
    )
    assert "one value per channel" in err and "set train.batch_size to 2 or more" in err
    assert not out.exists()
    cfg = _config(tmp_path, arch="lraspp_mobilenet_v3_large", batch_size=1)
    assert _train(cfg, busi_dataset, out) == 0
    assert _iterations(out) == len(select_split(read_cases(busi_dataset), "train", busi_dataset))


def test_bench_train_refuses_batch_size_one_in_one_line_before_any_worker(tmp_path, busi_dataset, capsys):
    """bench-train runs each variant in a worker process: a DeepLabV3 at batch size 1 failed there with
    torch's traceback; it is refused before any worker starts, with train's words."""
    cfg = _config(tmp_path, batch_size=1)
    code = sonomap(
        ["bench-train", "--config", str(cfg), "--data", str(busi_dataset), "--iters", "1", "--rounds", "1"]
    )
    err = one_line_error(capsys, code)
    assert (
        redact(f"{cfg}: config key 'train.batch_size' is 1, so each training batch holds one sample") in err
    )
    assert "set train.batch_size to 2 or more" in err and "worker" not in err


def test_a_train_split_of_one_image_is_refused_before_training_naming_the_key(tmp_path, busi_dataset, capsys):
    data = _cut_train_split(busi_dataset, tmp_path / "data", 1)
    cfg, out = _config(tmp_path), tmp_path / "run"
    err = one_line_error(capsys, _train(cfg, data, out))
    assert redact(f"{cfg}: config key 'train.batch_size' is 4") in err
    assert redact(f"{data / 'cases.csv'} gives split 'train' 1 image") in err and "add images" in err
    assert not out.exists()


def test_averaging_re_estimates_batchnorm_without_a_batch_of_one(tmp_path, busi_dataset, capsys):
    """Nine train images in batches of BN_BATCH (8) leave a lone last one: left out, the average is
    written. A train split of one image cannot re-estimate such a BatchNorm: one line, nothing written."""
    ck = make_checkpoint(tmp_path / "ck", arch=DEEPLAB["model"]["arch"], size=32, steps=1)
    nine = _cut_train_split(busi_dataset, tmp_path / "nine", BN_BATCH + 1)
    soup = average_checkpoints([ck, ck], nine, tmp_path / "soup" / "best.pt")
    assert load_manifest(soup).source["averaged_from"][0]["checkpoint"] == ck.name
    one = _cut_train_split(busi_dataset, tmp_path / "one", 1)
    out = tmp_path / "soup1" / "best.pt"
    with pytest.raises(SystemExit) as stopped:  # its parser's exit: status 2 and one line
        average_main([str(ck), str(ck), "--data", str(one), "--out", str(out)])
    err = one_line_error(capsys, stopped.value.code)
    assert redact(f"{one / 'cases.csv'}: split 'train' has 1 image, and BatchNorm layer") in err
    assert not out.exists()
