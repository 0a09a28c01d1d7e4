"""`sonomap calibrate` (temperature, curve, mask filter) reads and decodes each image and label it needs
once: the label check (training/label_check.py `read_checked`) counts the same arrays the fit uses,
and refuses a split before the model runs. The mask filter also reads each train label once, alone
(no train image), for the smallest lesion. Besides, every file of the dataset is read once as bytes
for the digest the manifest records (`fitted_on`): two opens of a fitted file, one decode. `train`
with a measured normalisation (`mean: auto`) decodes its train split once too. Proved as in
tests/test_evaluate_single_read.py: a counting wrapper around the project's own loader
(`training.data`'s `read_image`, which calls the real one) and, in a child process, Python's audit
log of every file open. Real commands on copies of the vendored BUSI sample's dataset."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from export_fixtures import copy_model, shared_checkpoint
from file_reads import decodes, opened_under  # noqa: F401 (decodes: a fixture)

import training.evaluate as evaluate_module
import training.temperature as temperature_module
from edge_runtime.cli import main as sonomap
from edge_runtime.manifest import manifest_path
from edge_runtime.privacy import redact
from training.data import CANCER, image_stats, read_cases
from training.train import run

EXIT_USER_ERROR = 2
SPLIT = "val"
METHODS = ["temperature", "curve", "mask-filter"]
TINY = {
    "name": "tiny-single-read",
    "model": {"arch": "unet_small", "width": 4},
    "data": {"input_height": 32, "input_width": 32, "mean": "auto", "std": "auto"},
    "train": {"epochs": 1, "batch_size": 4, "warmup_iters": 1},
}


@pytest.fixture
def inferred(monkeypatch) -> list:
    """Every image the model is run on by calibrate (either method family), in order."""
    seen: list = []
    real_preprocess = temperature_module.preprocess_for
    real_served = evaluate_module.served_probabilities

    def preprocess(gray, manifest):
        seen.append(gray.shape)
        return real_preprocess(gray, manifest)

    def served(*args, **kwargs):
        manifest, probs = real_served(*args, **kwargs)
        return manifest, lambda gray: seen.append(gray.shape) or probs(gray)

    monkeypatch.setattr(temperature_module, "preprocess_for", preprocess)
    monkeypatch.setattr(evaluate_module, "served_probabilities", served)
    return seen


def _calibrate(method: str, ck: Path, data: Path) -> list[str]:
    return ["calibrate", "--method", method, "--checkpoint", str(ck), "--data", str(data), "--split", SPLIT]


def _needed(data: Path, method: str) -> Counter:
    """The files calibrate decodes: the split's images and labels, and (mask filter) the train labels."""
    samples = read_cases(data)
    files = [p for s in samples if s.split == SPLIT for p in (s.image, s.label)]
    if method == "mask-filter":
        files += [s.label for s in samples if s.split == "train"]
    return Counter(files)


@pytest.mark.parametrize("method", METHODS)
def test_calibrate_decodes_each_file_it_needs_once(method, busi_dataset, tmp_path, decodes, inferred):
    ck = copy_model(shared_checkpoint(), tmp_path / "run")
    before = manifest_path(ck).read_bytes()
    code = sonomap(_calibrate(method, ck, busi_dataset))
    assert decodes == _needed(busi_dataset, method)  # no second read for the check, no train image
    assert len(inferred) == sum(s.split == SPLIT for s in read_cases(busi_dataset))
    if method != "temperature":  # a temperature fit may end at a bound on this tiny model: refused
        assert code == 0
    assert (manifest_path(ck).read_bytes() != before) == (code == 0)


@pytest.mark.parametrize("method", ["temperature", "mask-filter"])
def test_calibrate_opens_each_file_once_for_the_digest_and_once_to_decode(method, busi_dataset, tmp_path):
    """An access log, not a wrapper: every open() of a file under the dataset, in a real process."""
    ck = copy_model(shared_checkpoint(), tmp_path / "run")
    child, opened = opened_under(busi_dataset, _calibrate(method, ck, busi_dataset))
    assert child.returncode in (0, EXIT_USER_ERROR), child.stderr[-2000:]
    assert "Traceback" not in child.stderr, child.stderr[-2000:]
    files = {k: n for k, n in opened.items() if k.startswith(("images/", "labels/"))}
    hashed = Counter(
        str(p.relative_to(busi_dataset)) for s in read_cases(busi_dataset) for p in (s.image, s.label)
    )
    decoded = Counter(str(p.relative_to(busi_dataset)) for p in _needed(busi_dataset, method))
    assert files == hashed + decoded


def _break_label(label: np.ndarray) -> np.ndarray:
    return np.where(label == 0, 2, label).astype(np.uint8)


def _no_cancer(label: np.ndarray) -> np.ndarray:
    return np.where(label == CANCER, 0, label).astype(np.uint8)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("broken", ["value 2", "no cancer"])
def test_a_refused_split_is_refused_on_its_one_read_before_the_model_runs(
    broken, method, busi_dataset, tmp_path, capsys, decodes, inferred
):
    data = tmp_path / "data"
    shutil.copytree(busi_dataset, data)
    split = [s for s in read_cases(data) if s.split == SPLIT]
    victims = split[len(split) // 2 : len(split) // 2 + 1] if broken == "value 2" else split
    for sample in victims:
        change = _break_label if broken == "value 2" else _no_cancer
        cv2.imwrite(str(sample.label), change(cv2.imread(str(sample.label), cv2.IMREAD_UNCHANGED)))
    ck = copy_model(shared_checkpoint(), tmp_path / "run")
    before = manifest_path(ck).read_bytes()
    code = sonomap(_calibrate(method, ck, data))
    err = capsys.readouterr().err.strip()
    assert code == EXIT_USER_ERROR and "\n" not in err and "Traceback" not in err, err
    if broken == "value 2":
        assert redact(f"{victims[0].label}: label values [2] outside") in err, err
        later = {p for s in split[len(split) // 2 + 1 :] for p in (s.image, s.label)}
        assert not later & set(decodes), "files after the broken label were read"
    else:
        assert redact(f"{data / 'cases.csv'}: split '{SPLIT}' has no cancer pixel") in err, err
    assert set(decodes.values()) == {1}
    assert not inferred, "the model ran on a refused split"
    assert manifest_path(ck).read_bytes() == before


def test_train_decodes_its_splits_once_with_a_measured_normalisation(busi_dataset, tmp_path, decodes):
    """`mean: auto` measures the train split on the pairs the training set holds: no second read."""
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    run(config, busi_dataset, tmp_path / "run", show_progress=False, device="cpu")
    samples = [s for s in read_cases(busi_dataset) if s.split in ("train", "val")]
    assert decodes == Counter(p for s in samples for p in (s.image, s.label))
    measured = image_stats([s for s in samples if s.split == "train"])  # as it was measured before
    norm = yaml.safe_load((tmp_path / "run" / "best.pt.yaml").read_text())["normalisation"]
    assert (norm["mean"], norm["std"]) == pytest.approx(measured, rel=1e-12)
