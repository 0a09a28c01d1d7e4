"""Paired statistics for two models scored on the same test images.

Input: per-image metric arrays ``a`` and ``b`` (same image order) and each image's case (patient)
id. Images of one case are not independent, so the tests run on cases: each case's images are
averaged first (its mean A, mean B and mean B - A, :func:`case_differences`), and Wilcoxon signed-rank (primary,
``zero_method='wilcox'``: zero differences are dropped, as scipy documents) and the paired t-test
(secondary) run on those per-case values. The p-value method of the Wilcoxon test is chosen
explicitly (:func:`wilcoxon_method`, scipy's own ``method='auto'`` rule written out) and reported.

Output per metric: ``n`` (images) and ``n_cases``, the mean/median of B - A over images, the test
statistics and p-values, a case-level bootstrap 95% CI of the mean and median image difference
(resampling patients), Holm-adjusted Wilcoxon p over the metrics tested (a metric no case
defines gets p NaN and is not counted), and, for Dice, an image-level exact McNemar test on
"hit" = Dice >= :data:`HIT_DICE` (it treats images as independent, which they are not when a case
has several). Images where either value is NaN (undefined under the empty-mask policy) are left
out of that metric and counted in ``n_excluded``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

BOOTSTRAP_RESAMPLES = 2000
CI_LEVEL = 0.95
HIT_DICE = 0.5
MIN_CONTRIBUTING_CASES = 2  # fewer distinct cases cannot vary between bootstrap resamples: no interval
ZERO_METHOD = "wilcox"
# scipy's method='auto' rule for the Wilcoxon p-value, written out so the report can name it:
EXACT_MAX_N = 50  # the exact null distribution for at most this many differences without ties/zeros
PERMUTATION_MAX_N = 13  # with ties or zeros: every one of the 2**n sign flips, for at most this many
# per-case differences that agree to this many decimals are equal: the float noise of a case's mean
# is ~1e-16, far below it, and a real difference under 1e-12 in a Dice or recall carries no rank
DIFF_DECIMALS = 12
METHOD_EXACT = "exact"
METHOD_PERMUTATION = "permutation (all sign flips)"
METHOD_NORMAL = "normal approximation"


def wilcoxon_method(d: np.ndarray) -> str:
    """The p-value method for the differences ``d`` (zeros included, as scipy counts them): exact
    without ties or zeros up to :data:`EXACT_MAX_N`; with ties or zeros an exhaustive permutation
    up to :data:`PERMUTATION_MAX_N`; otherwise the normal approximation (scipy's ``method='auto'``)."""
    nonzero = np.abs(d[d != 0])
    ties_or_zeros = nonzero.size < d.size or np.unique(nonzero).size < nonzero.size
    if d.size <= EXACT_MAX_N and not ties_or_zeros:
        return METHOD_EXACT
    if d.size <= PERMUTATION_MAX_N:
        return METHOD_PERMUTATION
    return METHOD_NORMAL


def case_differences(a_case: np.ndarray, b_case: np.ndarray) -> np.ndarray:
    """Per-case B - A, rounded to :data:`DIFF_DECIMALS`: a case's means are sums of ratios taken in
    floating point, so a case whose images score the same in another order differs by ~1e-16 and
    equal differences reached by different sums differ in the last bit. Unrounded, Wilcoxon would
    rank such a zero instead of dropping it and split such a tie, changing p and its method."""
    return np.round(b_case - a_case, DIFF_DECIMALS)


def _wilcoxon(d: np.ndarray) -> tuple[float, float, str]:
    """(statistic, p, method) of the signed-rank test of the differences ``d``; NaN p when nothing
    is paired."""
    if d.size == 0:  # nothing scored by both: no test, so NaN (which Holm leaves out), not p = 1
        return float("nan"), float("nan"), "none"
    if np.all(d == 0):
        return float("nan"), 1.0, "none"  # identical scores: no evidence of a difference
    method = wilcoxon_method(d)
    scipy_method = {
        METHOD_EXACT: "exact",
        METHOD_PERMUTATION: sps.PermutationMethod(),
        METHOD_NORMAL: "asymptotic",
    }[method]
    res = sps.wilcoxon(d, zero_method=ZERO_METHOD, method=scipy_method)
    return float(res.statistic), float(res.pvalue), method


def _ttest(d: np.ndarray) -> tuple[float, float]:
    """(t, p) of the paired t-test on the differences ``d`` (a one-sample test of their mean against
    0, as ``ttest_rel``): NaN with fewer than 2 pairs; p = 1 when every difference is 0; NaN when
    the differences are equal but not 0 (zero variance: t undefined)."""
    if d.size < 2:
        return float("nan"), float("nan")
    if np.all(d == d[0]):
        return float("nan"), 1.0 if d[0] == 0 else float("nan")
    res = sps.ttest_1samp(d, 0.0)
    return float(res.statistic), float(res.pvalue)


def case_means(values: np.ndarray, cases: list[str]) -> np.ndarray:
    """The mean of ``values`` per case, in sorted case-id order (one value per case)."""
    ids = np.asarray(cases)
    return np.array([values[ids == c].mean() for c in sorted(set(cases))], dtype=np.float64)


def case_bootstrap(
    diff: np.ndarray, cases: list[str], seed: int, n_resamples: int = BOOTSTRAP_RESAMPLES
) -> dict[str, float]:
    """Per-image ``diff`` and case ids -> percentile CI of the mean and median of ``diff``,
    resampling whole cases with replacement; NaN bounds when fewer than
    :data:`MIN_CONTRIBUTING_CASES` cases (one case resampled gives itself, a zero-width CI)."""
    rng = np.random.default_rng(seed)
    uniq = sorted(set(cases))
    if len(uniq) < MIN_CONTRIBUTING_CASES:
        nan = float("nan")
        return {"mean_ci_low": nan, "mean_ci_high": nan, "median_ci_low": nan, "median_ci_high": nan}
    members = [np.flatnonzero(np.asarray(cases) == c) for c in uniq]
    means, medians = np.empty(n_resamples), np.empty(n_resamples)
    for i in range(n_resamples):
        pick = rng.integers(0, len(uniq), size=len(uniq))
        sample = diff[np.concatenate([members[j] for j in pick])]
        means[i], medians[i] = sample.mean(), np.median(sample)
    lo, hi = 100 * (1 - CI_LEVEL) / 2, 100 * (1 + CI_LEVEL) / 2
    return {
        "mean_ci_low": float(np.percentile(means, lo)),
        "mean_ci_high": float(np.percentile(means, hi)),
        "median_ci_low": float(np.percentile(medians, lo)),
        "median_ci_high": float(np.percentile(medians, hi)),
    }


def holm(pvalues: list[float]) -> list[float]:
    """Holm step-down adjusted p-values (NaN stays NaN)."""
    idx = [i for i, p in enumerate(pvalues) if not math.isnan(p)]
    order = sorted(idx, key=lambda i: pvalues[i])
    out = [float("nan")] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * pvalues[i]))
        out[i] = running
    return out


def mcnemar_exact(hit_a: np.ndarray, hit_b: np.ndarray) -> dict[str, float]:
    """Exact McNemar on paired binary outcomes: binomial test on the discordant pairs."""
    only_a = int(np.sum(hit_a & ~hit_b))
    only_b = int(np.sum(~hit_a & hit_b))
    n = only_a + only_b
    p = 1.0 if n == 0 else float(sps.binomtest(only_a, n, 0.5).pvalue)
    return {"only_a": only_a, "only_b": only_b, "p": p}


def compare_metric(
    a: np.ndarray, b: np.ndarray, cases: list[str], seed: int, n_resamples: int = BOOTSTRAP_RESAMPLES
) -> dict[str, float]:
    """Per-image scores ``a``, ``b`` and case ids -> one comparison row (see the module docstring):
    image counts and means, per-case Wilcoxon and t-test, case-bootstrap CIs of the image difference."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ok = ~(np.isnan(a) | np.isnan(b))
    a, b = a[ok], b[ok]
    kept_cases = [c for c, keep in zip(cases, ok, strict=False) if keep]
    d = b - a
    # the tests run on per-case means: a case's images are not independent observations
    a_case, b_case = case_means(a, kept_cases), case_means(b, kept_cases)
    case_d = case_differences(a_case, b_case)
    w_stat, w_p, w_method = _wilcoxon(case_d)
    t_stat, t_p = _ttest(case_d)
    row = {
        "n": int(ok.sum()),
        "n_cases": int(a_case.size),
        "n_excluded": int((~ok).sum()),
        "mean_a": float(a.mean()) if a.size else float("nan"),
        "mean_b": float(b.mean()) if b.size else float("nan"),
        "mean_diff": float(d.mean()) if d.size else float("nan"),
        "median_diff": float(np.median(d)) if d.size else float("nan"),
        "wilcoxon_stat": w_stat,
        "wilcoxon_p": w_p,
        "wilcoxon_method": w_method,
        "ttest_t": t_stat,
        "ttest_p": t_p,
    }
    if d.size:
        row.update(case_bootstrap(d, kept_cases, seed, n_resamples))
    return row


def compare_models(
    per_a: dict[str, np.ndarray],
    per_b: dict[str, np.ndarray],
    cases: list[str],
    seed: int,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
) -> dict[str, dict[str, float]]:
    """Per-image metric arrays of A and B (same image order) and case ids -> metric -> comparison
    row (:func:`compare_metric`), with the Holm-adjusted Wilcoxon p; the Dice row also gets the
    image-level exact McNemar on hit = Dice >= :data:`HIT_DICE` (images whose Dice is NaN for
    either model left out)."""
    table = {m: compare_metric(per_a[m], per_b[m], cases, seed, n_resamples) for m in per_a}
    adjusted = holm([table[m]["wilcoxon_p"] for m in table])
    for m, p in zip(table, adjusted, strict=False):
        table[m]["wilcoxon_p_holm"] = p
    if "dice" in per_a:
        dice_a, dice_b = np.asarray(per_a["dice"], float), np.asarray(per_b["dice"], float)
        ok = ~(np.isnan(dice_a) | np.isnan(dice_b))
        hits = mcnemar_exact(dice_a[ok] >= HIT_DICE, dice_b[ok] >= HIT_DICE)
        table["dice"].update({f"mcnemar_hit_{k}": v for k, v in hits.items()})
    return table
