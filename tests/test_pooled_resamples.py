"""The case bootstrap's pooled figures: a resample of cancer-free cases with no predicted pixel has
no pooled Dice (NaN, left out of the interval and counted), as it has no pooled recall; the
per-image empty-mask policy (Dice = IoU = 1.0 for an image with empty truth and prediction) and the
point estimate stay as they were. Plain counts, no model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.intervals import case_bootstrap_figures
from training.metrics import Counts, pooled, scores, summarize

RESAMPLES = 2000


def _split() -> tuple[list[Counts], list[str]]:
    """Two cases with cancer (Dice 2/3 and 1/3) and six clean cancer-free cases."""
    counts = [Counts(50, 0, 50, 900), Counts(20, 0, 80, 900)] + [Counts(0, 0, 0, 1000)] * 6
    return counts, ["m1", "m2"] + [f"b{i}" for i in range(6)]


def test_a_cancer_free_resample_has_no_pooled_dice():
    counts, cases = _split()
    boot = case_bootstrap_figures(counts, cases, seed=0, n_resamples=RESAMPLES)
    dice, recall = boot["dice_pooled"], boot["recall_pooled"]
    # the best any resample with cancer can score is case m1 alone: 100 / 150
    assert dice["high"] <= 2 / 3 + 1e-12, dice
    # the same resamples (no cancer, nothing predicted) are undefined for both pooled figures
    assert dice["undefined_resamples"] == recall["undefined_resamples"] > 0, boot
    assert dice["reason"] == "" and dice["contributing_cases"] == 2


def test_a_resample_with_a_false_pixel_keeps_its_pooled_dice_of_zero():
    """Cancer-free cases where the model marks a pixel: pooled Dice is defined, and 0."""
    counts = [Counts(0, 3, 0, 997), Counts(0, 0, 0, 1000), Counts(0, 5, 0, 995)]
    boot = case_bootstrap_figures(counts, ["a", "b", "c"], seed=1, n_resamples=200)
    assert boot["dice_pooled"]["high"] == 0.0
    # only resamples of case b alone ((1/3)**3 of them) have no pixel to overlap
    assert 0 < boot["dice_pooled"]["undefined_resamples"] < 40


def test_pooled_scores_leave_dice_and_iou_undefined_only_without_cancer_and_prediction():
    from training.metrics import pooled_scores

    clean = [Counts(0, 0, 0, 1000), Counts(0, 0, 0, 500)]
    got = pooled_scores(clean)
    assert math.isnan(got["dice"]) and math.isnan(got["iou"]) and math.isnan(got["recall"])
    assert got["pixel_accuracy"] == 1.0 and got["specificity"] == 1.0
    with_cancer = [Counts(50, 10, 50, 890), Counts(0, 0, 0, 1000)]
    assert pooled_scores(with_cancer) == scores(pooled(with_cancer))


def test_the_per_image_policy_and_the_point_estimate_are_unchanged():
    counts, cases = _split()
    assert scores(Counts(0, 0, 0, 1000))["dice"] == 1.0 == scores(Counts(0, 0, 0, 1000))["iou"]
    summary = summarize(counts)
    assert summary["dice_pooled"] == pytest.approx(2 * 70 / (2 * 70 + 130))
    assert summary["dice_mean"] == pytest.approx((2 / 3 + 1 / 3 + 6) / 8)
    # the per-image mean still counts a clean image as 1.0 in every resample (never undefined)
    boot = case_bootstrap_figures(counts, cases, seed=0, n_resamples=RESAMPLES)
    assert boot["dice_mean"]["undefined_resamples"] == 0 and boot["dice_mean"]["high"] == 1.0


def test_a_split_with_cancer_in_every_case_has_the_same_intervals_as_before():
    """Where every case has cancer, no resample is undefined: the pooled interval is that of the
    ratio of summed counts, as it always was."""
    rng = np.random.default_rng(3)
    counts = [Counts(int(t), int(f), int(n), 1000) for t, f, n in rng.integers(1, 60, size=(12, 3))]
    cases = [f"c{i // 2}" for i in range(12)]
    boot = case_bootstrap_figures(counts, cases, seed=5, n_resamples=300)
    assert boot["dice_pooled"]["undefined_resamples"] == 0
    members = {c: [k for k, x in enumerate(cases) if x == c] for c in sorted(set(cases))}
    uniq = sorted(members)
    draws = []
    rng = np.random.default_rng(5)
    for _ in range(300):
        picked = [k for j in rng.integers(0, len(uniq), size=len(uniq)) for k in members[uniq[j]]]
        draws.append(scores(pooled([counts[k] for k in picked]))["dice"])
    assert boot["dice_pooled"]["low"] == pytest.approx(float(np.percentile(draws, 2.5)))
    assert boot["dice_pooled"]["high"] == pytest.approx(float(np.percentile(draws, 97.5)))
