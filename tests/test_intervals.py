"""95 % intervals of one evaluation's headline figures: case bootstrap from counts, Wilson for shares."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.intervals import HEADLINE, case_bootstrap_figures, headline_intervals, wilson
from training.metrics import Counts, scores, summarize


def _images(seed: int, n: int) -> list[Counts]:
    """``n`` images with cancer of varied size and quality, and every third one without cancer."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        if i % 3 == 2:
            out.append(Counts(0, int(rng.integers(0, 50)), 0, 10_000))
        else:
            tp, fp, fn = (int(v) for v in rng.integers(10, 2_000, size=3))
            out.append(Counts(tp, fp, fn, 10_000))
    return out


def test_every_interval_holds_its_estimate_and_a_seed_repeats_it():
    counts = _images(0, 24)
    cases = [f"c{i // 2}" for i in range(24)]  # two images per case
    summary = summarize(counts)
    first = headline_intervals(counts, cases, seed=3, n_resamples=500)
    assert first == headline_intervals(counts, cases, seed=3, n_resamples=500)
    assert first != headline_intervals(counts, cases, seed=4, n_resamples=500)
    for name in HEADLINE:
        low, high = first["ci95"][name]
        assert low < summary[name] < high, (name, low, summary[name], high)
    assert first["ci95_cases"] == 12


def test_one_case_cannot_vary_so_its_interval_is_the_pooled_estimate():
    """Resampling is by case: every resample of a single case is that case, scored from its summed
    counts, so the pooled interval collapses onto the pooled Dice, not a mean of per-image Dice."""
    counts = [Counts(90, 10, 0, 900), Counts(1, 0, 99, 900)]
    rows = case_bootstrap_figures(counts, ["one", "one"], seed=0, n_resamples=50)
    pooled_dice = scores(counts[0] + counts[1])["dice"]
    mean_dice = np.mean([scores(c)["dice"] for c in counts])
    assert rows["dice_pooled"]["low"] == rows["dice_pooled"]["high"] == pytest.approx(pooled_dice)
    assert rows["dice_pos_mean"]["low"] == rows["dice_pos_mean"]["high"] == pytest.approx(mean_dice)
    assert abs(pooled_dice - mean_dice) > 0.1


def test_more_cases_narrow_the_interval():
    widths = []
    for n in (12, 96):
        counts = _images(1, n)
        row = case_bootstrap_figures(counts, [f"c{i}" for i in range(n)], seed=0, n_resamples=400)
        widths.append(row["dice_pos_mean"]["high"] - row["dice_pos_mean"]["low"])
    assert widths[1] < 0.6 * widths[0]


def test_resamples_without_an_image_with_cancer_are_left_out_and_counted():
    counts = [Counts(50, 5, 5, 900), Counts(0, 0, 0, 1000), Counts(0, 3, 0, 997)]
    rows = case_bootstrap_figures(counts, ["a", "b", "c"], seed=0, n_resamples=300)
    skipped = rows["dice_pos_mean"]["undefined_resamples"]
    assert 0 < skipped < 300  # (2/3)^3 of resamples miss the one image with cancer
    assert rows["dice_mean"]["undefined_resamples"] == 0


def test_wilson_matches_the_textbook_value_and_the_benign_share_uses_it():
    low, high = wilson(1, 8)  # Wilson 95 % for 1 of 8: 0.0224 .. 0.4709
    assert (low, high) == pytest.approx((0.0224, 0.4709), abs=5e-4)
    assert all(np.isnan(wilson(0, 0)))
    counts = [Counts(50, 5, 5, 900)] + [Counts(0, 1 if i == 0 else 0, 0, 999) for i in range(8)]
    out = headline_intervals(counts, [f"c{i}" for i in range(9)], n_resamples=50)
    assert out["ci95"]["benign_fp_share"] == pytest.approx([low, high])
    assert out["benign_fp_share"] == pytest.approx(1 / 8) and out["benign_cases"] == 8
    json.dumps(out, allow_nan=False)  # the report's summary.json stays plain JSON


def test_mismatched_case_ids_are_refused():
    with pytest.raises(ValueError, match="3 images but 2 case ids"):
        case_bootstrap_figures(_images(0, 3), ["a", "b"])
