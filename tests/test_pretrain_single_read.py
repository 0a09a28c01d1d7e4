"""`sonomap pretrain` decodes each image it learns from once, also with a measured normalisation
(`mean: auto`): the statistics are taken on the train split's images the pretraining holds, as train
takes them on its pairs, and no label is read. Proved as in tests/test_calibrate_single_read.py: counting
wrappers around the real loader (`training.data`'s) and, in
a child process, Python's audit log of every file open. Real runs on the vendored BUSI sample's
dataset, one epoch of a tiny model."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml
from file_reads import decodes, opened_under  # noqa: F401 (decodes: a fixture)

from training.data import image_stats, read_cases, select_split
from training.pretrain import run

TINY = {
    "name": "tiny-pretext-single-read",
    "model": {"arch": "unet_small", "width": 4},
    "data": {"input_height": 32, "input_width": 32, "mean": "auto", "std": "auto"},
    "train": {"epochs": 1, "batch_size": 4, "warmup_iters": 0},
}


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    return config


def test_pretrain_decodes_each_image_once_with_a_measured_normalisation(busi_dataset, tmp_path, decodes):
    summary = run(_config(tmp_path), busi_dataset, tmp_path / "run", epochs=1)
    train = select_split(read_cases(busi_dataset), "train", busi_dataset)
    assert decodes == Counter(s.image for s in train)  # no second decode, no label
    measured = image_stats(train)  # as it was measured before, on a read of its own
    assert (summary["mean"], summary["std"]) == pytest.approx(measured, rel=1e-12)


def test_the_files_opened_by_pretrain_are_each_train_image_once(busi_dataset, tmp_path):
    """An access log, not a wrapper: every open() of a file under the dataset, in a real process."""
    args = ["pretrain", "--config", str(_config(tmp_path)), "--data", str(busi_dataset)]
    child, opened = opened_under(busi_dataset, [*args, "--out", str(tmp_path / "run"), "--epochs", "1"])
    assert child.returncode == 0, child.stderr[-2000:]
    files = {k: n for k, n in opened.items() if k.startswith(("images/", "labels/"))}
    train = select_split(read_cases(busi_dataset), "train", busi_dataset)
    assert files == {str(s.image.relative_to(busi_dataset)): 1 for s in train}
