"""Metrics agree with scikit-learn to 1e-6, per image and pooled, incl. ignore and empty masks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, jaccard_score, precision_score, recall_score

from training.metrics import (
    Counts,
    cancer_free_marked,
    confusion_counts,
    confusion_matrix,
    is_cancer_free,
    is_unlabelled,
    pooled,
    scores,
    summarize,
)

TOL = 1e-6


def _sk(pred: np.ndarray, label: np.ndarray) -> dict[str, float]:
    valid = label != 255
    t, p = (label[valid] == 1).astype(int), pred[valid].astype(int)
    tn_side_t, tn_side_p = 1 - t, 1 - p
    return {
        "pixel_accuracy": accuracy_score(t, p),
        "dice": f1_score(t, p, zero_division=1.0),
        "iou": jaccard_score(t, p, zero_division=1.0),
        "recall": recall_score(t, p, zero_division=np.nan),
        "precision": precision_score(t, p, zero_division=np.nan),
        # specificity = recall of the negative class
        "specificity": recall_score(tn_side_t, tn_side_p, zero_division=np.nan),
    }


def _close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= TOL


def _random_case(rng: np.random.Generator, kind: str):
    h, w = rng.integers(5, 40, size=2)
    label = (rng.random((h, w)) < rng.uniform(0.05, 0.6)).astype(np.uint8)
    pred = rng.random((h, w)) < rng.uniform(0.05, 0.6)
    label[rng.random((h, w)) < 0.15] = 255  # unknown pixels
    if kind == "empty_truth":
        label[label == 1] = 0
    elif kind == "both_empty":
        label[label == 1] = 0
        pred[:] = False
    elif kind == "empty_pred":
        pred[:] = False
    return pred, label


@pytest.mark.parametrize("kind", ["random", "empty_truth", "both_empty", "empty_pred"])
def test_per_image_scores_match_sklearn(kind):
    rng = np.random.default_rng(123)
    for _ in range(25):
        pred, label = _random_case(rng, kind)
        ours, ref = scores(confusion_counts(pred, label)), _sk(pred, label)
        for name, value in ref.items():
            assert _close(ours[name], float(value)), (kind, name, ours[name], value)


def test_pooled_scores_match_sklearn_on_concatenated_pixels():
    rng = np.random.default_rng(7)
    cases = [_random_case(rng, k) for k in ("random", "empty_truth", "random", "both_empty")]
    counts = [confusion_counts(p, t) for p, t in cases]
    pred = np.concatenate([p.ravel() for p, _ in cases])
    label = np.concatenate([t.ravel() for _, t in cases])
    ours, ref = scores(pooled(counts)), _sk(pred, label)
    for name, value in ref.items():
        assert _close(ours[name], float(value)), name


def test_ignored_pixels_never_count():
    label = np.array([[1, 255], [0, 255]], np.uint8)
    pred = np.array([[1, 1], [0, 1]], bool)
    assert confusion_counts(pred, label) == Counts(tp=1, fp=0, fn=0, tn=1)


def test_empty_mask_policy_and_summary():
    both_empty = Counts(0, 0, 0, 10)
    s = scores(both_empty)
    assert s["dice"] == 1.0 and s["iou"] == 1.0
    assert math.isnan(s["recall"]) and math.isnan(s["precision"])
    summary = summarize([both_empty, Counts(tp=3, fp=1, fn=1, tn=5)])
    assert summary["n_positive"] == 1
    assert summary["dice_pos_mean"] == pytest.approx(0.75)
    assert summary["dice_mean"] == pytest.approx((1.0 + 0.75) / 2)
    assert summary["recall_n_undefined"] == 1
    assert summary["recall_mean"] == pytest.approx(0.75)  # NaN left out, not counted as 0
    assert summary["dice_pooled"] == pytest.approx(6 / 8)


def test_confusion_matrix_layout_matches_sklearn():
    from sklearn.metrics import confusion_matrix as sk_cm

    rng = np.random.default_rng(3)
    pred, label = _random_case(rng, "random")
    valid = label != 255
    ref = sk_cm(label[valid], pred[valid].astype(np.uint8), labels=[0, 1])
    np.testing.assert_array_equal(confusion_matrix(confusion_counts(pred, label)), ref)


def test_an_image_with_no_labelled_pixel_scores_nothing():
    """Every label pixel ignored: no score is 1 (or 0); the image is left out of every mean."""
    assert all(math.isnan(v) for v in scores(Counts(0, 0, 0, 0)).values())
    summary = summarize([Counts(10, 0, 10, 80), Counts(0, 0, 0, 0)])
    assert summary["dice_mean"] == pytest.approx(2 / 3)  # not (2/3 + 1) / 2
    assert summary["n_unlabelled"] == 1 and summary["dice_n_undefined"] == 1
    assert is_unlabelled(Counts(0, 0, 0, 0)) and not is_unlabelled(Counts(0, 0, 0, 1))


def test_an_unlabelled_image_is_no_clean_negative():
    from training.intervals import headline_intervals

    out = headline_intervals([Counts(0, 5, 0, 95), Counts(0, 0, 0, 0)], ["a", "b"], n_resamples=20)
    assert out["benign_fp_share"] == 1.0  # 1 of 1 benign image, not 1 of 2
    assert out["n_unlabelled"] == 1


def test_images_without_cancer_and_those_marked():
    """One definition for evaluate, cross-validation, the intervals and the mask-filter fit: labelled
    pixels and no cancer among them; an unlabelled image is neither; a false pixel marks it."""
    clean, marked, cancer, unlabelled = Counts(0, 0, 0, 9), Counts(0, 3, 0, 6), Counts(2, 0, 1, 6), Counts()
    assert [is_cancer_free(c) for c in (clean, marked, cancer, unlabelled)] == [True, True, False, False]
    assert cancer_free_marked([clean, marked, cancer, unlabelled, marked]) == {
        "n_negative": 3,
        "n_negative_with_fp": 2,
    }
