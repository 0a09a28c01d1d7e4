"""`sonomap evaluate --compare` reads, decodes and validates each image and label of the split once, and
scores both models on those same arrays: each model's report (REPORT/A, REPORT/B) is byte for byte the
one `evaluate` writes for that model alone. Proved as in tests/test_evaluate_single_read.py: a
counting wrapper around the project's own loader (`training.data`'s `read_image`, which calls the real
one) and, in a child process, Python's audit log of every file open. A broken label still stops the
run at its image with one line naming it, nothing written. Real commands (a torch checkpoint against a
folded ONNX model) on copies of the vendored BUSI sample's dataset."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
from export_fixtures import shared_checkpoint, shared_tiny_onnx
from file_reads import decodes, opened_under  # noqa: F401 (decodes: a fixture)
from file_trees import tree_bytes

from edge_runtime.cli import main as sonomap
from edge_runtime.privacy import redact
from training.data import read_cases

EXIT_USER_ERROR = 2
SPLIT = "test"


def _split(data: Path) -> list:
    return [s for s in read_cases(data) if s.split == SPLIT]


def _compare(data: Path) -> list[str]:
    models = [str(shared_checkpoint()), str(shared_tiny_onnx())]
    return ["evaluate", "--compare", *models, "--data", str(data), "--split", SPLIT]


def _each_once(samples) -> Counter:
    return Counter({s.label: 1 for s in samples} | {s.image: 1 for s in samples})


def test_compare_decodes_each_label_and_image_of_the_split_once(busi_dataset, tmp_path, decodes):
    out = tmp_path / "report"
    assert sonomap([*_compare(busi_dataset), "--out", str(out)]) == 0
    assert decodes == _each_once(_split(busi_dataset))  # both models scored on one read, no other split
    assert (out / "A" / "summary.json").is_file() and (out / "B" / "summary.json").is_file()


def test_the_files_opened_by_compare_are_each_label_and_image_once(busi_dataset, tmp_path):
    """An access log, not a wrapper: every open() of a file under the dataset, in a real process."""
    child, opened = opened_under(busi_dataset, [*_compare(busi_dataset), "--out", str(tmp_path / "report")])
    assert child.returncode == 0, child.stderr[-2000:]
    files = {k: n for k, n in opened.items() if k.startswith(("images/", "labels/"))}
    expected = {str(p.relative_to(busi_dataset)): n for p, n in _each_once(_split(busi_dataset)).items()}
    assert files == expected


def test_each_compared_report_is_the_one_evaluate_writes_for_its_model_alone(busi_dataset, tmp_path):
    out = tmp_path / "report"
    assert sonomap([*_compare(busi_dataset), "--out", str(out), "--seed", "3"]) == 0
    for part, model in (("A", shared_checkpoint()), ("B", shared_tiny_onnx())):
        alone = tmp_path / f"alone_{part}"
        args = ["evaluate", "--checkpoint", str(model), "--data", str(busi_dataset), "--split", SPLIT]
        assert sonomap([*args, "--out", str(alone), "--seed", "3"]) == 0
        assert tree_bytes(out / part) == tree_bytes(alone), part


def test_a_broken_label_stops_compare_at_its_image_with_nothing_written(
    busi_dataset, tmp_path, capsys, decodes
):
    data = tmp_path / "data"
    shutil.copytree(busi_dataset, data)
    samples = _split(data)
    victim = samples[len(samples) // 2]
    label = cv2.imread(str(victim.label), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(victim.label), np.where(label == 0, 2, label).astype(np.uint8))
    code = sonomap([*_compare(data), "--out", str(tmp_path / "report")])
    err = capsys.readouterr().err.strip()
    assert code == EXIT_USER_ERROR and "\n" not in err and "Traceback" not in err, err
    assert redact(f"{victim.label}: label values [2] outside") in err, err
    assert decodes == _each_once(samples[: len(samples) // 2 + 1])  # once each, none after the victim
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no report, no staging folder
