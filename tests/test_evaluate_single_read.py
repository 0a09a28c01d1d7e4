"""`sonomap evaluate` reads, decodes and validates each label (and image) of the split once: the label
check (training/label_check.py) counts the same array that is scored. Proved two ways without
mocking the image library: a counting wrapper around the project's own loader (`training.data`'s
`read_image`, which calls the real one), and, in a child process, Python's audit log of every file
open. A broken label still fails in one line naming it (wrong size, RGB, RGBA, 16-bit, empty, not an
image, missing), at its image: no later image is read, and an earlier REPORT is left as it was; a
split of 0/255 masks without cancer is still refused with nothing written. The gallery keeps only
the images it shows, and the model file is hashed once. Real commands on copies of the vendored BUSI
sample's dataset."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from export_fixtures import shared_tiny_onnx
from file_reads import decodes, opened_under  # noqa: F401 (decodes: a fixture)
from file_trees import tree_bytes

import edge_runtime.manifest as manifest_module
from edge_runtime.cli import main as sonomap
from edge_runtime.manifest import sha256_file
from edge_runtime.privacy import redact
from training.data import CANCER, IGNORE_INDEX, read_cases
from training.metrics import Counts
from training.report import GALLERY_MAX, GALLERY_POSITIVE, GalleryPicks

EXIT_USER_ERROR = 2
SPLIT = "test"


def _copy(busi_dataset: Path, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(busi_dataset, data)
    return data


def _split(data: Path) -> list:
    return [s for s in read_cases(data) if s.split == SPLIT]


def _args(data: Path) -> list[str]:
    return ["evaluate", "--checkpoint", str(shared_tiny_onnx()), "--data", str(data), "--split", SPLIT]


def _evaluate(data: Path, out: Path) -> int:
    return sonomap([*_args(data), "--out", str(out)])


def test_evaluate_decodes_each_label_and_image_of_the_split_once(busi_dataset, tmp_path, decodes):
    out = tmp_path / "report"
    assert _evaluate(busi_dataset, out) == 0
    samples = _split(busi_dataset)
    expected = Counter({s.label: 1 for s in samples} | {s.image: 1 for s in samples})
    assert decodes == expected  # the label check and the scores share one read; no other split is read
    assert json.loads((out / "summary.json").read_text())["n_images"] == len(samples)


def test_the_model_file_is_hashed_once_and_the_summary_names_its_digest(busi_dataset, tmp_path, monkeypatch):
    """The digest in summary.json is the one the model was loaded against, not a second read."""
    model = shared_tiny_onnx()
    hashed: Counter = Counter()
    real = manifest_module.sha256_file

    def counting(path):
        hashed[Path(path).resolve()] += 1
        return real(path)

    monkeypatch.setattr(manifest_module, "sha256_file", counting)
    out = tmp_path / "report"
    assert _evaluate(busi_dataset, out) == 0
    assert hashed[model.resolve()] == 1, hashed
    assert json.loads((out / "summary.json").read_text())["checkpoint_sha256"] == sha256_file(model)


def test_the_files_opened_by_evaluate_are_each_label_and_image_once(busi_dataset, tmp_path):
    """An access log, not a wrapper: every open() of a file under the dataset, in a real process."""
    out = tmp_path / "report"
    child, opened = opened_under(busi_dataset, [*_args(busi_dataset), "--out", str(out)])
    assert child.returncode == 0, child.stderr[-2000:]
    samples = _split(busi_dataset)
    for s in samples:
        for path in (s.label, s.image):
            assert opened[str(path.relative_to(busi_dataset))] == 1, (path, opened)
    labels = {k: n for k, n in opened.items() if k.startswith("labels/")}
    assert len(labels) == len(samples), labels  # no label of another split


def _rgb(label: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(label, cv2.COLOR_GRAY2BGR)


def _rgba(label: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(label, cv2.COLOR_GRAY2BGRA)


BROKEN = {
    "wrong size": (lambda lab: lab[:-3], "label size"),
    "RGB": (_rgb, "label must be single-channel uint8, got shape"),
    "RGBA": (_rgba, "label must be single-channel uint8, got shape"),
    "16-bit": (lambda lab: lab.astype(np.uint16) * 257, "label must be single-channel uint8"),
    "value 2": (lambda lab: np.where(lab == 0, 2, lab).astype(np.uint8), "label values [2] outside"),
    "empty file": (b"", "unreadable image (an empty file)"),
    "not an image": (b"not a png", "unreadable image (not an image format OpenCV decodes)"),
}


@pytest.mark.parametrize("broken", list(BROKEN))
def test_a_broken_label_is_one_line_at_its_image_and_keeps_the_earlier_report(
    broken, busi_dataset, tmp_path, capsys, decodes
):
    data = _copy(busi_dataset, tmp_path)
    out = tmp_path / "report"
    assert _evaluate(data, out) == 0
    before = tree_bytes(out)
    samples = _split(data)
    victim = samples[len(samples) // 2]
    change, expected = BROKEN[broken]
    if isinstance(change, bytes):
        victim.label.write_bytes(change)
    else:
        cv2.imwrite(str(victim.label), change(cv2.imread(str(victim.label), cv2.IMREAD_UNCHANGED)))
    capsys.readouterr()
    decodes.clear()
    code = _evaluate(data, out)
    err = capsys.readouterr().err.strip()
    assert code == EXIT_USER_ERROR and "\n" not in err and "Traceback" not in err, err
    assert redact(str(victim.label)) in err and expected in err, err
    later = {p for s in samples[len(samples) // 2 + 1 :] for p in (s.image, s.label)}
    assert not later & set(decodes), "images after the broken label were read"
    assert tree_bytes(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "report"]  # no staging folder left


def test_a_missing_label_is_one_line_before_any_image_is_read(busi_dataset, tmp_path, capsys, decodes):
    data = _copy(busi_dataset, tmp_path)
    victim = _split(data)[-1]
    victim.label.unlink()
    out = tmp_path / "report"
    err_code = _evaluate(data, out)
    err = capsys.readouterr().err.strip()
    assert err_code == EXIT_USER_ERROR and "\n" not in err, err
    assert redact(f"{victim.label}: listed in {data / 'cases.csv'}") in err and "but missing" in err, err
    assert not decodes and not out.exists()


def test_a_split_of_0_255_masks_is_refused_after_one_read_with_nothing_written(
    busi_dataset, tmp_path, capsys, decodes
):
    data = _copy(busi_dataset, tmp_path)
    for sample in read_cases(data):
        label = cv2.imread(str(sample.label), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(sample.label), np.where(label == CANCER, IGNORE_INDEX, label).astype(np.uint8))
    out = tmp_path / "report"
    code = _evaluate(data, out)
    err = capsys.readouterr().err.strip()
    assert code == EXIT_USER_ERROR and "\n" not in err, err
    assert redact(f"{data / 'cases.csv'}: split '{SPLIT}' has no cancer pixel") in err, err
    assert "holds only 0 and 255" in err, err
    assert set(decodes.values()) == {1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no report, no staging folder


def _counts(kind: str) -> Counts:
    """Confusion counts of an image with cancer, without, or with no labelled pixel."""
    tp, fn, tn = {"cancer": (5, 1, 10), "benign": (0, 0, 10), "unlabelled": (0, 0, 0)}[kind]
    return Counts(tp=tp, fp=0, fn=fn, tn=tn)


def test_the_gallery_keeps_only_the_images_it_shows_in_the_order_it_always_chose():
    kinds = ["benign"] * 3 + ["unlabelled"] + ["cancer"] * 9 + ["benign"] * 20
    picks = GalleryPicks()
    for i, kind in enumerate(kinds):
        picks.offer(_counts(kind), f"img{i}", None, None, None)
    assert len(picks.positives) + len(picks.negatives) <= GALLERY_POSITIVE + GALLERY_MAX
    positives = [f"img{i}" for i, k in enumerate(kinds) if k == "cancer"][:GALLERY_POSITIVE]
    negatives = [f"img{i}" for i, k in enumerate(kinds) if k == "benign"]
    assert [sid for sid, *_ in picks.chosen()] == (positives + negatives)[:GALLERY_MAX]
