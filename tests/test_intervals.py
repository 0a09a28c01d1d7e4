"""95 % intervals of one evaluation's headline figures: case bootstrap from counts, Wilson for shares."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.intervals import HEADLINE, case_bootstrap_figures, headline_intervals, wilson
from training.metrics import Counts, summarize
from training.report_text import interval_text, report_markdown


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


def _report_line(summary: dict, start: str) -> str:
    """The line of report.md for an evaluation with SUMMARY's figures that starts with START."""
    described = {
        "checkpoint": "best.pt",
        "split": "test",
        "data": "dataset",
        "arch": "unet_small",
        "threshold": 0.5,
    }
    text = report_markdown({**described, **summary}, with_curves=False, pictures=[])
    return next(x for x in text.splitlines() if x.startswith(start))


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


def test_one_case_gets_no_interval_and_says_why():
    """Resampling one case gives that case every time: a zero-width interval would claim certainty,
    so every bootstrap figure of a one-case split is NaN with the reason."""
    counts = [Counts(50, 10, 40, 900), Counts(80, 5, 5, 910), Counts(0, 30, 0, 970)]
    out = headline_intervals(counts, ["only"] * 3, seed=0, n_resamples=50)
    for name in HEADLINE:
        assert all(np.isnan(out["ci95"][name])), name
        assert "1 case(s) contribute" in out["ci95_undefined_reason"][name]
    assert not np.isnan(summarize(counts)["dice_pooled"])  # the point estimate itself is kept


def test_a_figure_one_case_drives_gets_no_interval_and_left_out_resamples_are_printed():
    """3 cases, one with cancer: malignant Dice rests on one case (no interval); pooled Dice, which
    the false pixels of the benign case also move, keeps its interval."""
    counts = [Counts(50, 10, 40, 900), Counts(0, 0, 0, 1000), Counts(0, 3, 0, 997)]
    summary = summarize(counts)
    summary.update(headline_intervals(counts, ["a", "b", "c"], seed=0, n_resamples=300))
    assert all(np.isnan(summary["ci95"]["dice_pos_mean"]))
    assert "1 case(s) contribute" in summary["ci95_undefined_reason"]["dice_pos_mean"]
    low, high = summary["ci95"]["dice_pooled"]
    assert low < summary["dice_pooled"] <= high
    left_out = summary["ci95_undefined_resamples"]["dice_pos_mean"]
    assert 0 < left_out < 300  # resamples that miss the case with cancer
    line = _report_line(summary, "| dice_pos_mean |")  # report.md's interval table
    assert "none (1 case(s) contribute" in line and f"{left_out} of 300 resamples left out" in line
    assert "left out" not in _report_line(summary, "| dice_mean |")


def test_left_out_resamples_are_shown_beside_a_defined_interval():
    counts = [Counts(50, 10, 40, 900), Counts(30, 5, 20, 900), Counts(0, 0, 0, 1000), Counts(0, 3, 0, 997)]
    summary = summarize(counts)
    summary.update(headline_intervals(counts, ["a", "b", "c", "d"], seed=0, n_resamples=300))
    low, high = summary["ci95"]["dice_pos_mean"]
    assert low <= summary["dice_pos_mean"] <= high and low < high
    left_out = summary["ci95_undefined_resamples"]["dice_pos_mean"]
    assert 0 < left_out  # (1/2)^4 of resamples draw neither case with cancer
    assert interval_text(summary, "dice_pos_mean").endswith(
        f"; {left_out} of 300 resamples left out (undefined)"
    )


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
    with_cancer = [Counts(50, 5, 5, 900), Counts(40, 8, 9, 900)]
    counts = with_cancer + [Counts(0, 1 if i == 0 else 0, 0, 999) for i in range(8)]
    out = headline_intervals(counts, [f"c{i}" for i in range(10)], n_resamples=50)
    assert out["ci95"]["benign_fp_share"] == pytest.approx([low, high])
    assert out["benign_fp_share"] == pytest.approx(1 / 8) and out["benign_cases"] == 8
    json.dumps(out, allow_nan=False)  # the report's summary.json stays plain JSON


def test_mismatched_case_ids_are_refused():
    with pytest.raises(ValueError, match="3 images but 2 case ids"):
        case_bootstrap_figures(_images(0, 3), ["a", "b"])
