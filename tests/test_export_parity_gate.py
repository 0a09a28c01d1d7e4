"""The parity gate measures what the cart shows: the mask after the manifest's mask filter, the
verdict (a finding shown or not) on every frame, and a named limit on max |dprob|; an FP16 twin's
record is the chain of its checks (torch -> FP32 -> FP16), and `export tensorrt --fp16` checks the
twin it makes.

Small arrays for each gate; the shipped model for the figures (a candidate 6 % lower passes the
pooled pixel bar but wipes a finding on one frame); real exports and conversions for the chain.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from export_fixtures import copy_model, shared_checkpoint

from edge_runtime.backends import create_backend
from edge_runtime.cli import main
from edge_runtime.config import DEFAULT_MODEL
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import load_manifest, save_manifest
from edge_runtime.mask_filter import MaskFilter
from export.parity import (
    FP16_AGREEMENT_BAR,
    MAX_PROB_DIFF,
    count_frame,
    ort_session,
    run_ort,
    summarise,
)
from export.samples import fit_frame, load_frames

CANCER = 1
THRESHOLD = 0.5
SIDE = 100
LOWER = 0.94  # the candidate of the review: probabilities 6 % lower everywhere
PARITY_FRAMES = 8  # export's default
MAX_HW = (1080, 1920)  # the shipped model's profile maximum
STRONGLY_TYPED_TRT = SimpleNamespace(__version__="10.12.0", BuilderFlag=SimpleNamespace(FP16=1))


def _summary(ref_prob, test_prob, rule=None):
    counts = [
        count_frame(
            "f",
            (ref_prob >= THRESHOLD).astype(np.uint8),
            (test_prob >= THRESHOLD).astype(np.uint8),
            ref_prob,
            test_prob,
            CANCER,
            rule,
        )
    ]
    return summarise(counts, FP16_AGREEMENT_BAR, "ref", "cand", rule)


def _blob(peak: float) -> np.ndarray:
    prob = np.full((SIDE, SIDE), 0.1, np.float32)
    prob[20:60, 20:60] = peak
    return prob


def test_a_finding_the_filter_shows_in_one_run_only_fails():
    """Same thresholded masks, |dprob| 0.01, but the peak falls under min_peak in the candidate."""
    s = _summary(_blob(0.905), _blob(0.895), MaskFilter(min_peak=0.9))
    assert s["mask_agreement"] == 1.0 and s["max_prob_diff"] <= MAX_PROB_DIFF
    assert s["verdict_flips"] == 1 and s["verdict_flip_frames"] == ["f"] and s["passed"] is False
    assert any("finding shown by one run only" in f for f in s["failures"])


def test_served_masks_must_agree_too():
    """A part that drops under min_area_fraction in the candidate: the thresholded masks agree to
    99.78 % (over the FP16 bar), the served ones by 98.8 %."""
    ref = np.full((SIDE, SIDE), 0.1, np.float32)
    ref[5:45, 5:45] = 0.95  # a large part, shown by both
    ref[70:81, 70:81] = 0.95  # 121 px: over the 100 px minimum
    test = ref.copy()
    ref[79:81, 70:81] = 0.505  # two rows just over the threshold in the reference...
    test[79:81, 70:81] = 0.495  # ...just under it in the candidate: 99 px, under the minimum
    s = _summary(ref, test, MaskFilter(min_area_fraction=0.01))
    assert s["mask_agreement"] >= FP16_AGREEMENT_BAR and s["verdict_flips"] == 0
    assert s["served_mask_agreement"] < FP16_AGREEMENT_BAR and s["passed"] is False
    assert [f.split(" ")[0:3] for f in s["failures"]] == [["served", "mask", "agreement"]]


@pytest.mark.parametrize("shift, passed", [(0.01, True), (MAX_PROB_DIFF * 1.5, False)])
def test_max_prob_diff_has_a_named_limit(shift, passed):
    ref = np.full((SIDE, SIDE), 0.2, np.float32)
    s = _summary(ref, ref + np.float32(shift))
    assert s["mask_agreement"] == 1.0 and s["max_prob_diff_limit"] == MAX_PROB_DIFF
    assert s["passed"] is passed


def test_on_the_shipped_model_a_lower_candidate_fails_and_the_fp16_twin_passes():
    manifest = load_manifest(DEFAULT_MODEL)
    assert manifest.mask_filter is not None and manifest.mask_filter.min_peak > 0
    ref = ort_session(DEFAULT_MODEL)
    half = ort_session(DEFAULT_MODEL.with_name("model.fp16.onnx"))
    lower, fp16 = [], []
    for frame_id, gray in load_frames(None, PARITY_FRAMES):
        gray = fit_frame(gray, None, MAX_HW)
        prob, mask = run_ort(ref, gray)
        low = (prob * LOWER).astype(np.float32)
        low_mask = (low >= manifest.threshold).astype(np.uint8)
        lower.append(count_frame(frame_id, mask, low_mask, prob, low, CANCER, manifest.mask_filter))
        h_prob, h_mask = run_ort(half, gray)
        fp16.append(count_frame(frame_id, mask, h_mask, prob, h_prob, CANCER, manifest.mask_filter))
    low_s = summarise(lower, FP16_AGREEMENT_BAR, "fp32", "lower", manifest.mask_filter)
    assert low_s["mask_agreement"] >= FP16_AGREEMENT_BAR  # what the pooled pixel bar alone let through
    assert low_s["passed"] is False and low_s["verdict_flips"] == 1
    flipped = next(c for c in lower if c.finding_ref != c.finding_test)
    assert flipped.served_ref > 0 and flipped.served_test == 0  # the shown finding vanishes
    fp16_s = summarise(fp16, FP16_AGREEMENT_BAR, "fp32", "fp16", manifest.mask_filter)
    assert fp16_s["passed"] is True and fp16_s["max_prob_diff"] < MAX_PROB_DIFF / 2


def test_the_twin_of_a_failed_export_records_the_failed_chain_and_is_refused(
    tmp_path, busi_sample, monkeypatch, capsys
):
    import export.onnx_export
    from export.staging import failed_path

    # an FP32 check that cannot pass (the FP16 step itself passes): the chain must still fail
    monkeypatch.setattr(export.onnx_export, "FP32_AGREEMENT_BAR", 1.0000001)
    out = tmp_path / "model.onnx"
    frames = ["--frames", str(busi_sample / "images"), "--parity-frames", "2"]
    rc = main(
        ["export", "onnx", "--checkpoint", str(shared_checkpoint()), "--out", str(out), "--fp16", *frames]
    )
    assert rc == 1 and "PARITY FAILED" in capsys.readouterr().out
    twin = failed_path(out) / "model.fp16.onnx"
    record = load_manifest(twin).extra["parity"]
    assert record["passed"] is False
    assert [(x["candidate"], x["passed"]) for x in record["chain"]] == [
        ("onnxruntime-fp32", False),
        ("onnxruntime-fp16", True),
    ]
    with pytest.raises(ConfigError, match=r"failed parity check \(onnxruntime-fp32 vs torch-fp32"):
        create_backend("onnxruntime", twin, load_manifest(twin), device="cpu")


def test_export_tensorrt_checks_the_twin_it_makes(tmp_path, capsys):
    from export.fp16 import fp16_path
    from export.tensorrt_command import ensure_fp16_twin

    model = copy_model(DEFAULT_MODEL, tmp_path / "m")
    ensure_fp16_twin(model, STRONGLY_TYPED_TRT)
    record = load_manifest(fp16_path(model)).extra["parity"]
    assert record["passed"] is True and record["candidate"] == "onnxruntime-fp16"
    assert [x["candidate"] for x in record["chain"]] == ["onnxruntime-fp32", "onnxruntime-fp16"]
    assert record["chain"][1]["frames"] > 0 and "served masks" in capsys.readouterr().out


def test_export_tensorrt_refuses_a_twin_that_fails_its_check(tmp_path, monkeypatch):
    import export.parity
    from export.fp16 import fp16_path
    from export.tensorrt_command import ensure_fp16_twin

    monkeypatch.setattr(export.parity, "MAX_PROB_DIFF", 0.0)  # any FP16 rounding now fails
    model = copy_model(DEFAULT_MODEL, tmp_path / "m")
    with pytest.raises(ConfigError, match="no FP16 engine is built"):
        ensure_fp16_twin(model, STRONGLY_TYPED_TRT)
    assert load_manifest(fp16_path(model)).extra["parity"]["passed"] is False


def test_export_tensorrt_refuses_an_fp16_twin_of_a_model_never_checked(tmp_path):
    """A hand-made FP32 model (no parity record): its twin's chained record cannot pass, and the
    engine build would refuse it, so the export says so and what to run instead."""
    from export.tensorrt_command import ensure_fp16_twin

    model = copy_model(DEFAULT_MODEL, tmp_path / "m")
    manifest = load_manifest(model)
    manifest.extra = {k: v for k, v in manifest.extra.items() if k != "parity"}
    save_manifest(manifest, model)
    with pytest.raises(ConfigError, match="records no parity check of its own"):
        ensure_fp16_twin(model, STRONGLY_TYPED_TRT)
