"""Parity counting and verdicts (count first, score second) on small real arrays."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_runtime.errors import InputError
from export.parity import (
    FP32_AGREEMENT_BAR,
    checked_file,
    count_frame,
    parity_path,
    summarise,
    write_parity,
)

CANCER = 1


def _frame(fid, ref_mask, test_mask, test_prob=None):
    prob = ref_mask.astype(np.float32)
    return count_frame(fid, ref_mask, test_mask, prob, prob if test_prob is None else test_prob, CANCER)


def test_counts_and_pooled_agreement():
    ref = np.zeros((10, 100), np.uint8)
    ref[:, :50] = 1
    test = ref.copy()
    test[0, :2] = 0  # 2 of 1000 pixels differ
    a = _frame("a", ref, test)
    assert (a.pixels, a.agree, a.cancer_ref, a.cancer_test, a.cancer_both) == (1000, 998, 500, 498, 498)
    b = _frame("b", ref, ref)
    s = summarise([a, b], FP32_AGREEMENT_BAR, "ref", "cand")
    assert s["mask_agreement"] == pytest.approx(1998 / 2000) and s["worst_frame_agreement"] == pytest.approx(
        0.998
    )
    assert s["passed"] is True and s["cancer_iou"] == pytest.approx(998 / 1000)
    assert summarise([a], FP32_AGREEMENT_BAR, "ref", "cand")["passed"] is False  # 99.8% < 99.9%


def test_empty_masks_agree_and_report_no_iou():
    empty = np.zeros((8, 8), np.uint8)
    s = summarise([_frame("e", empty, empty)], FP32_AGREEMENT_BAR, "ref", "cand")
    assert s["passed"] and s["cancer_iou"] is None and s["cancer_pixels_reference"] == 0


def test_nonfinite_probability_fails_even_when_masks_agree():
    mask = np.zeros((4, 4), np.uint8)
    prob = np.zeros((4, 4), np.float32)
    prob[0, 0] = np.nan
    s = summarise([_frame("n", mask, mask, prob)], FP32_AGREEMENT_BAR, "ref", "cand")
    assert s["mask_agreement"] == 1.0 and s["nonfinite_prob_candidate"] == 1 and s["passed"] is False


def test_shape_mismatch_and_no_frames_are_errors():
    with pytest.raises(InputError, match="frame x"):
        _frame("x", np.zeros((4, 4), np.uint8), np.zeros((4, 5), np.uint8), np.zeros((4, 4), np.float32))
    with pytest.raises(InputError, match="no frames"):
        summarise([], FP32_AGREEMENT_BAR, "ref", "cand")


def test_write_parity_replaces_the_old_report_whole(tmp_path):
    """A report describes one export: sections of an earlier one (its FP16 twin's) never survive
    beside a new model's, and a damaged report is simply replaced."""
    model = tmp_path / "model.onnx"
    write_parity(model, {"fp32": {"passed": True}, "fp16": {"passed": True}})
    write_parity(model, {"fp32": {"passed": False}})
    report = tmp_path / "model.onnx.parity.json"
    assert json.loads(report.read_text()) == {"fp32": {"passed": False}}
    report.write_text("{broken")
    write_parity(model, {"fp32": {"passed": True}})
    assert json.loads(report.read_text()) == {"fp32": {"passed": True}}
    assert not list(tmp_path.glob("*.tmp"))


def test_checked_file_names_the_model_and_its_sha256(tmp_path):
    section = checked_file(tmp_path / "model.fp16.onnx", "ab" * 32, {"passed": True})
    assert section == {"model": "model.fp16.onnx", "model_sha256": "ab" * 32, "passed": True}


def test_two_models_in_one_folder_keep_a_report_each(tmp_path):
    write_parity(
        tmp_path / "model.onnx", {"fp32": {"candidate": "model"}, "fp16": {"candidate": "model-fp16"}}
    )
    write_parity(tmp_path / "other.onnx", {"fp32": {"candidate": "other"}})
    write_parity(tmp_path / "model.ts", {"torchscript": {"candidate": "ts"}})
    assert json.loads((tmp_path / "model.onnx.parity.json").read_text()) == {
        "fp32": {"candidate": "model"},
        "fp16": {"candidate": "model-fp16"},
    }
    assert json.loads((tmp_path / "other.onnx.parity.json").read_text()) == {"fp32": {"candidate": "other"}}
    assert json.loads((tmp_path / "model.ts.parity.json").read_text()) == {"torchscript": {"candidate": "ts"}}
    assert parity_path(tmp_path / "model.onnx") == tmp_path / "model.onnx.parity.json"
    assert not (tmp_path / "parity.json").exists()
