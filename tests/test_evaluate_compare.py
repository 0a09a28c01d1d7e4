"""`evaluate --compare`'s paired statistics, checked against scipy on two small trained models.

The study's own pair (FCN-101 vs DeepLabV3, torchvision, weights=None) is trained, evaluated and
compared end to end by configs/study-models.sh in test_study_script.py; here two quick CPU models
(one architecture, two seeds) keep the statistics' checks to seconds."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats as sps

from training.busi import prepare_busi
from training.compare_report import write_compare_report
from training.evaluate import compare
from training.metrics import COUNTS, Counts, scores
from training.stats import (
    case_bootstrap,
    compare_metric,
    compare_models,
    holm,
    mcnemar_exact,
    wilcoxon_method,
)
from training.train import run

SUBSET = {"train": 4, "val": 2, "test": 3}  # the vendored sample's test split has 3 images


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory, busi_sample) -> Path:
    out = tmp_path_factory.mktemp("ds") / "busi"
    prepare_busi(busi_sample, out, seed=0)
    rows = list(csv.DictReader(open(out / "cases.csv")))
    kept, taken = [], {k: 0 for k in SUBSET}
    # benign and malignant taken in turn (the rows are sorted by id, benign first): a train split of
    # benign images only has no cancer to learn, and train refuses it
    turn, seen = {}, {}
    for row in rows:
        label = row["id"].split("_")[0]  # benign_001, malignant_002
        turn[row["id"]], seen[label] = seen.get(label, 0), seen.get(label, 0) + 1
    rows.sort(key=lambda r: (turn[r["id"]], r["id"]))
    for row in rows:  # keep the run to a few iterations
        if taken[row["split"]] < SUBSET[row["split"]]:
            taken[row["split"]] += 1
            kept.append(row)
    with open(out / "cases.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["id", "case_id", "split"])
        writer.writeheader()
        writer.writerows(kept)
    return out


def _train(tmp: Path, data: Path, name: str, seed: int) -> Path:
    cfg = {
        "name": name,
        "model": {"arch": "unet_small"},
        "data": {"input_height": 64, "input_width": 64},
        "train": {
            "epochs": 1,
            "batch_size": 4,
            "optimizer": "sgd",
            "lr": 0.01,
            "warmup_iters": 0,
            "seed": seed,
        },
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp / name
    run(path, data, out, show_progress=False)
    return out / "best.pt"


def _exact_dice(path: Path) -> list[float]:
    """Per-image Dice from metrics.csv's exact counts (what compare's statistics use; the dice
    column is rounded to 8 decimals)."""
    with open(path, newline="") as fh:
        return [scores(Counts(*(int(r[k]) for k in COUNTS)))["dice"] for r in csv.DictReader(fh)]


@pytest.mark.slow
def test_compare_of_two_trained_models_writes_paired_stats_that_match_scipy(tmp_path, small_dataset):
    ck_a = _train(tmp_path, small_dataset, "model_a", seed=1)
    ck_b = _train(tmp_path, small_dataset, "model_b", seed=2)
    rep = tmp_path / "cmp"
    table = compare(ck_a, ck_b, small_dataset, "test", rep, seed=1)
    assert "Wilcoxon" in table and "| dice |" in table
    rows = {r["metric"]: r for r in csv.DictReader(open(rep / "compare.csv"))}
    assert set(rows) == {"pixel_accuracy", "dice", "recall", "precision", "iou", "specificity"}
    a, b = (_exact_dice(rep / m / "metrics.csv") for m in "AB")
    assert int(rows["dice"]["n"]) == len(a) == SUBSET["test"]
    assert float(rows["dice"]["mean_diff"]) == pytest.approx(np.mean(np.array(b) - np.array(a)), abs=1e-9)
    assert float(rows["dice"]["ttest_p"]) == pytest.approx(sps.ttest_rel(b, a).pvalue, nan_ok=True)
    assert (rep / "report.md").read_text().count("| dice |") == 1
    assert (rep / "A" / "report.md").is_file() and (rep / "B" / "gallery.png").is_file()


def test_paired_tests_match_scipy_and_bootstrap_resamples_cases():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.3, 0.9, 30)
    b = a + rng.normal(0.05, 0.05, 30)
    cases = [f"p{i // 3}" for i in range(30)]  # 3 images per patient
    row = compare_metric(a, b, cases, seed=0, n_resamples=500)
    a_case, b_case = a.reshape(10, 3).mean(axis=1), b.reshape(10, 3).mean(axis=1)
    assert row["wilcoxon_p"] == pytest.approx(sps.wilcoxon(a_case, b_case, zero_method="wilcox").pvalue)
    assert row["wilcoxon_method"] == "exact"
    assert row["ttest_p"] == pytest.approx(sps.ttest_rel(b_case, a_case).pvalue)
    assert (row["n"], row["n_cases"]) == (30, 10)
    assert row["mean_ci_low"] < row["mean_diff"] < row["mean_ci_high"]
    # resampling patients: a difference that is constant within each patient gives bootstrap
    # means that are averages of whole-patient values only
    d = np.repeat(np.arange(10, dtype=float), 3)
    ci = case_bootstrap(d, cases, seed=0, n_resamples=200)
    assert 0.0 <= ci["mean_ci_low"] < 4.5 < ci["mean_ci_high"] <= 9.0


def test_a_case_that_scores_the_same_in_another_order_is_a_zero_not_float_noise():
    """Case z's images score 0.1, 0.2, 0.3 under A and 0.3, 0.2, 0.1 under B: its mean difference is
    0 (float arithmetic leaves -5.6e-17). Wilcoxon drops a zero; ranking it instead changed p from
    0.0625 (6 non-zero cases, all sign flips) to 0.078 and the method from permutation to exact."""
    a = np.array([0.1, 0.2, 0.3, 0.40, 0.55, 0.30, 0.62, 0.20, 0.71])
    b = np.array([0.3, 0.2, 0.1, 0.52, 0.70, 0.50, 0.60, 0.45, 0.80])
    cases = ["z", "z", "z", "c1", "c2", "c3", "c4", "c5", "c6"]
    assert b[:3].mean() - a[:3].mean() != 0.0  # the float noise this is about
    row = compare_metric(a, b, cases, seed=0, n_resamples=200)
    assert row["wilcoxon_method"] == "permutation (all sign flips)"
    assert row["wilcoxon_p"] == pytest.approx(0.0625)
    # equal differences reached by different sums (2/3 - 1/3 and 1 - 2/3) are one tie
    hits_a = np.array([1, 0, 0, 2 / 3, 0.2, 0.9])
    hits_b = np.array([1, 1, 0, 1.0, 0.7, 0.1])
    row = compare_metric(hits_a, hits_b, ["t", "t", "t", "u", "v", "w"], seed=0, n_resamples=200)
    assert row["wilcoxon_method"] == "permutation (all sign flips)"


def test_tests_run_on_cases_not_on_near_identical_images_of_one_case():
    """8 patients x 6 near-identical frames: 48 image differences would make a small per-patient
    effect look certain (per-image Wilcoxon p ~ 0.002); the 8 per-case means do not (p = 0.25)."""
    rng = np.random.default_rng(0)
    effect = np.array([0.04, 0.03, 0.05, -0.02, 0.02, -0.03, 0.01, 0.015])
    cases = [f"p{i}" for i in range(8) for _ in range(6)]
    a = np.full(48, 0.7)
    b = a + np.repeat(effect, 6) + rng.normal(0, 0.002, 48)
    assert sps.wilcoxon(a, b).pvalue < 0.01  # what testing the images would claim
    row = compare_models({"dice": a}, {"dice": b}, cases, seed=0, n_resamples=200)["dice"]
    assert (row["n"], row["n_cases"]) == (48, 8)
    assert row["wilcoxon_p"] == pytest.approx(0.25)  # exact: 8 distinct per-case differences
    assert row["wilcoxon_method"] == "exact"
    case_diff = (b - a).reshape(8, 6).mean(axis=1)
    assert row["ttest_p"] == pytest.approx(sps.ttest_1samp(case_diff, 0).pvalue)


def test_wilcoxon_method_follows_ties_and_size():
    assert wilcoxon_method(np.array([0.1, -0.2, 0.3])) == "exact"
    assert wilcoxon_method(np.array([0.1, -0.1, 0.3])) == "permutation (all sign flips)"
    assert wilcoxon_method(np.array([0.0, 0.2, 0.3])) == "permutation (all sign flips)"
    tied = np.tile([0.1, -0.2], 10)
    assert wilcoxon_method(tied) == "normal approximation"
    assert wilcoxon_method(np.arange(1, 52) / 100) == "normal approximation"


def test_constant_nonzero_case_differences_have_no_t_test():
    a = np.array([0.5, 0.5, 0.6, 0.6])
    row = compare_metric(a, a + 0.25, ["x", "x", "y", "y"], seed=0, n_resamples=20)
    assert row["n_cases"] == 2 and np.isnan(row["ttest_p"])


def test_nan_pairs_are_excluded_and_counted():
    a = np.array([0.5, np.nan, 0.7, 0.2])
    b = np.array([0.6, 0.4, np.nan, 0.3])
    row = compare_metric(a, b, ["a", "b", "c", "d"], seed=0, n_resamples=50)
    assert row["n"] == 2 and row["n_excluded"] == 2
    assert row["mean_diff"] == pytest.approx(0.1)


def test_identical_models_give_p_one():
    a = np.array([0.1, 0.5, 0.9])
    row = compare_metric(a, a.copy(), ["x", "y", "z"], seed=0, n_resamples=50)
    assert row["wilcoxon_p"] == 1.0 and row["mean_diff"] == 0.0


def test_holm_and_mcnemar():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    hit_a = np.array([1, 1, 1, 0, 0, 1], bool)
    hit_b = np.array([1, 0, 0, 0, 1, 1], bool)
    res = mcnemar_exact(hit_a, hit_b)
    assert (res["only_a"], res["only_b"]) == (2, 1)
    assert res["p"] == pytest.approx(sps.binomtest(2, 3, 0.5).pvalue)


def test_a_metric_no_image_defines_gets_no_p_and_does_not_count_in_holm():
    defined = np.array([0.2, 0.4, 0.5, 0.8, 0.3, 0.6])
    better = defined + np.array([0.1, 0.2, 0.15, 0.05, 0.12, 0.3])
    undefined = np.full(6, np.nan)  # e.g. Dice on a split without cancer under the empty-mask policy
    cases = [f"c{i}" for i in range(6)]
    row = compare_metric(undefined, undefined, cases, seed=0, n_resamples=50)
    assert row["n"] == 0 and np.isnan(row["wilcoxon_p"])
    table = compare_models(
        {"dice": undefined, "recall": defined}, {"dice": undefined, "recall": better}, cases, 0, 50
    )
    assert np.isnan(table["dice"]["wilcoxon_p_holm"])
    # only one metric was tested: Holm leaves its p as it is
    assert table["recall"]["wilcoxon_p_holm"] == pytest.approx(table["recall"]["wilcoxon_p"])


def test_compare_report_names_the_split_it_compared_on(tmp_path):
    a = np.array([0.2, 0.4, 0.5])
    b = a + np.array([0.1, 0.2, 0.05])
    cases = ["x", "y", "z"]
    table = compare_models({"dice": a}, {"dice": b}, cases, 0, 50)
    pooled = {"dice_pooled": 0.5, "pixel_accuracy_pooled": 0.9}
    write_compare_report(tmp_path, "a.pt", "b.pt", pooled, pooled, table, 3, 3, "val")
    report = (tmp_path / "report.md").read_text()
    assert "3 images of split val" in report and "test images" not in report
    assert "per-case mean differences" in report and "image-level" in report
    rows = list(csv.DictReader(open(tmp_path / "compare.csv")))
    assert [r["split"] for r in rows] == ["val"]
    # the McNemar figures are in compare.csv too, not only in report.md
    assert int(rows[0]["mcnemar_hit_only_b"]) == table["dice"]["mcnemar_hit_only_b"] == 1
    assert float(rows[0]["mcnemar_hit_p"]) == pytest.approx(table["dice"]["mcnemar_hit_p"])
