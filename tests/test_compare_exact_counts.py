"""`evaluate --compare` runs its paired statistics on per-image scores taken from each image's exact
confusion counts, not on metrics.csv's score columns (rounded to 8 decimals): two models whose
per-image Dice differs only below the 8th decimal still give non-zero, untied differences, and the
statistics are those of the counts. The two evaluations are stand-ins that write metrics.csv as
`evaluate` does (its own writer), so no model is trained and no dataset is read."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

import training.evaluate as evaluate_module
from training.metrics import METRICS, Counts, scores, summarize
from training.metrics_csv import ImageResult, write_metrics_csv
from training.stats import METHOD_EXACT, compare_models

BIG = 10**9  # pixels per image: enough that a few pixels move Dice by less than 1e-8
IMAGES = 8


def _counts(model: str) -> list[Counts]:
    """Image j: A misses 3 cancer pixels, B 3 + j more; Dice about 0.8, B - A about -3e-10 * j."""
    return [
        Counts(BIG + 1000 * j, BIG // 2, 3 + (j if model == "B" else 0), 10**6) for j in range(1, IMAGES + 1)
    ]


IDS = [f"img{j}" for j in range(1, IMAGES + 1)]
CASES = [f"case{j}" for j in range(1, IMAGES + 1)]


def _no_inputs(checkpoints, data, split, device):
    """Stands in for loading the models and the split: the stand-in scores need neither."""
    return None, None, None


def _fake_scores(checkpoints, data, split, outs, inputs, seed):
    """What scoring leaves for compare: each OUT/metrics.csv (its writer) and each summary."""
    return [_fake_evaluate(ck, out) for ck, out in zip(checkpoints, outs, strict=True)]


def _fake_evaluate(ck, out):
    """One model's OUT/metrics.csv (evaluate's writer) and its summary."""
    counts = _counts(str(ck))
    results = [ImageResult(i, c, k, scores(k)) for i, c, k in zip(IDS, CASES, counts, strict=True)]
    Path(out).mkdir(parents=True)
    write_metrics_csv(Path(out) / "metrics.csv", results)
    # the checkpoint as evaluate's summary names it: file name and digest (report.md's labels)
    return {**summarize(counts), "checkpoint": f"{ck}.pt", "checkpoint_sha256": f"{ord(str(ck)):064x}"}


def _dice_column(folder: Path) -> list[str]:
    with open(folder / "metrics.csv", newline="") as fh:
        return [row["dice"] for row in csv.DictReader(fh)]


@pytest.fixture
def captured(monkeypatch):
    """Runs `compare` on the stand-in evaluations; -> the arrays its statistics got and the table."""
    got = {}

    def spy(per_a, per_b, cases, seed, *args, **kwargs):
        got.update(per_a=per_a, per_b=per_b, cases=cases, seed=seed)
        got["table"] = compare_models(per_a, per_b, cases, seed, *args, **kwargs)
        return got["table"]

    monkeypatch.setattr(evaluate_module, "load_inputs", _no_inputs)
    monkeypatch.setattr(evaluate_module, "score_reports", _fake_scores)
    monkeypatch.setattr(evaluate_module, "compare_models", spy)
    return got


def test_differences_below_the_csv_rounding_are_kept(captured, tmp_path):
    report = tmp_path / "report"
    evaluate_module.compare("A", "B", tmp_path / "data", "test", report, seed=3)
    # the premise: metrics.csv's Dice columns of A and B are the same text for every image
    assert _dice_column(report / "A") == _dice_column(report / "B")
    diff = captured["per_b"]["dice"] - captured["per_a"]["dice"]
    assert np.all(diff < 0), diff  # no zero difference, B is worse on every image
    assert np.unique(diff).size == diff.size, diff  # and no tie
    row = captured["table"]["dice"]
    assert row["wilcoxon_method"] == METHOD_EXACT and row["n_cases"] == IMAGES
    assert row["wilcoxon_p"] == pytest.approx(2 / 2**IMAGES)  # every case worse: the exact two-sided p


def test_statistics_equal_those_of_the_exact_counts(captured, tmp_path):
    report = tmp_path / "report"
    evaluate_module.compare("A", "B", tmp_path / "data", "test", report, seed=3)
    exact = {k: [scores(c) for c in _counts(k)] for k in "AB"}
    for m in METRICS:
        assert np.array_equal(captured["per_a"][m], [s[m] for s in exact["A"]], equal_nan=True), m
        assert np.array_equal(captured["per_b"][m], [s[m] for s in exact["B"]], equal_nan=True), m
    assert captured["cases"] == CASES
    want = compare_models(
        {m: np.array([s[m] for s in exact["A"]]) for m in METRICS},
        {m: np.array([s[m] for s in exact["B"]]) for m in METRICS},
        CASES,
        3,
    )
    for m in METRICS:
        for key, value in want[m].items():
            assert captured["table"][m][key] == pytest.approx(value, nan_ok=True), (m, key)
    with open(report / "compare.csv", newline="") as fh:
        written = {r["metric"]: r for r in csv.DictReader(fh)}
    assert float(written["dice"]["wilcoxon_p"]) == pytest.approx(want["dice"]["wilcoxon_p"])
    assert written["dice"]["wilcoxon_method"] == METHOD_EXACT


def test_a_comparison_over_one_case_says_why_it_has_no_interval(tmp_path):
    """Two images of one case: no bootstrap resample differs from another, so each interval says so
    in report.md (it read `[+nan, +nan]`); over two cases the intervals are numbers."""
    from training.compare_report import write_compare_report

    per_a = {"dice": np.array([0.5, 0.6])}
    per_b = {"dice": np.array([0.7, 0.9])}
    summary = {"dice_pooled": 0.5, "pixel_accuracy_pooled": 0.9}
    for cases, expected in (
        (["c1", "c1"], "[none: 1 case(s), a bootstrap needs >= 2]"),
        (["c1", "c2"], "[+"),
    ):
        out = tmp_path / str(len(set(cases)))
        out.mkdir()
        table = compare_models(per_a, per_b, cases, seed=0, n_resamples=200)
        write_compare_report(out, "A", "B", summary, summary, table, 2, len(set(cases)), "test")
        row = next(line for line in (out / "report.md").read_text().splitlines() if line.startswith("| dice"))
        assert "nan" not in row and row.count(expected) == 2, row
