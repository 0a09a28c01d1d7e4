"""Case-bootstrap intervals of the decision-band ECE and Brier: per-image bin sums score exactly what
the pooled pixels score, cases are resampled whole, and too few cases give no interval."""

from __future__ import annotations

import numpy as np
import pytest

from training.calibration import PIXEL_BINS, bin_sums, ece_brier, reliability, reliability_of_sums, sums_of
from training.calibration_intervals import calibration_intervals


def _images(n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        prob = rng.random(rng.integers(50, 400))
        # each image miscalibrated its own way: the truth rate is the probability shifted by a per-image offset
        truth = (rng.random(prob.size) < np.clip(prob + rng.normal(0, 0.2), 0, 1)).astype(float)
        out.append((prob, truth))
    return out


def _by_definition(prob: np.ndarray, truth: np.ndarray, bins: int) -> tuple[float, float]:
    """ECE (equal-width bins, weighted |observed - mean probability|) and Brier, from the pixels."""
    idx = np.minimum((prob * bins).astype(int), bins - 1)
    ece = sum(np.mean(idx == b) * abs(truth[idx == b].mean() - prob[idx == b].mean()) for b in np.unique(idx))
    return float(ece), float(np.mean((prob - truth) ** 2))


def test_summed_bin_sums_score_what_the_pooled_pixels_score():
    images = _images(6, seed=1)
    sums = sum(bin_sums(p, t, PIXEL_BINS) for p, t in images)
    prob, truth = np.concatenate([p for p, _ in images]), np.concatenate([t for _, t in images])
    want_ece, want_brier = _by_definition(prob, truth, PIXEL_BINS)
    ece, brier = ece_brier(sums)
    assert ece == pytest.approx(want_ece, abs=1e-12)
    assert brier == pytest.approx(want_brier, abs=1e-12)
    pooled = reliability(prob, truth, PIXEL_BINS)
    assert (pooled["ece"], pooled["brier"]) == pytest.approx((want_ece, want_brier), abs=1e-12)
    # the per-image tables (as summary.json keeps them) add up to the pooled table, bin by bin
    tables = reliability_of_sums(sum(sums_of(reliability(p, t, PIXEL_BINS)) for p, t in images))
    for key in ("count", "confidence", "observed", "squared_error"):
        np.testing.assert_allclose(tables[key], pooled[key], rtol=1e-12, atol=1e-12)
    assert all(np.isnan(ece_brier(np.zeros((4, PIXEL_BINS)))))


def test_interval_brackets_the_figure_and_narrows_with_more_cases():
    few = _images(6, seed=2)
    many = few + _images(54, seed=3)

    def interval(images):
        sums = np.stack([bin_sums(p, t, PIXEL_BINS) for p, t in images])
        cases = [f"case{i}" for i in range(len(images))]
        ci, reasons = calibration_intervals(sums, cases, seed=0, n_resamples=400)
        assert reasons == {}
        ece, brier = ece_brier(sums.sum(axis=0))
        assert ci["brier_pixel"][0] <= brier <= ci["brier_pixel"][1]
        # ECE is biased upward under resampling, so its point value may sit near the low end
        assert ci["ece_pixel"][0] <= ece * 1.05 and ci["ece_pixel"][1] > ece
        return ci["ece_pixel"][1] - ci["ece_pixel"][0]

    assert interval(many) < interval(few)


def test_images_of_one_case_are_resampled_together():
    # two images of one case, one perfectly and one badly calibrated, and nothing else: the case
    # bootstrap can only redraw that one case, so a second case is needed for any interval
    good = bin_sums(np.full(100, 0.3), np.array([1] * 30 + [0] * 70), PIXEL_BINS)
    bad = bin_sums(np.full(100, 0.9), np.zeros(100), PIXEL_BINS)
    ci, reasons = calibration_intervals(np.stack([good, bad]), ["a", "a"], seed=0, n_resamples=50)
    assert all(np.isnan(ci["ece_pixel"])) and "1 case(s)" in reasons["ece_pixel"]
    # as two cases the resamples differ: all good (ECE 0), all bad (0.9), or both (0.45)
    ci, reasons = calibration_intervals(np.stack([good, bad]), ["a", "b"], seed=0, n_resamples=400)
    assert reasons == {}
    assert ci["ece_pixel"][0] == pytest.approx(0.0, abs=1e-9) and ci["ece_pixel"][1] == pytest.approx(0.9)


def test_images_without_band_pixels_do_not_count_as_cases():
    empty = np.zeros((4, PIXEL_BINS))
    some = bin_sums(np.full(10, 0.5), np.ones(10), PIXEL_BINS)
    ci, reasons = calibration_intervals(np.stack([some, empty, empty]), ["a", "b", "c"], seed=0)
    assert (
        all(np.isnan(ci["brier_pixel"])) and "1 case(s) have decision-band pixels" in reasons["brier_pixel"]
    )
    with pytest.raises(ValueError, match="3 images but 2 case ids"):
        calibration_intervals(np.stack([some, empty, empty]), ["a", "b"])
