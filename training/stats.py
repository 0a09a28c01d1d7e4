"""Paired statistics for two models scored on the same test images.

Input: per-image metric arrays ``a`` and ``b`` (same image order) and each image's
case (patient) id. Output per metric: mean/median of B - A, Wilcoxon signed-rank
(primary, ``zero_method='wilcox'``: zero differences are dropped, as scipy documents),
paired t-test (secondary), a case-level bootstrap 95% CI of the mean and median
difference (resampling patients, because images of one patient are not independent),
Holm-adjusted Wilcoxon p over the metrics tested (a metric no image defines gets p NaN and is
not counted), and an image-level exact McNemar test on
"hit" = Dice >= :data:`HIT_DICE`. Images where either value is NaN (undefined under the
empty-mask policy) are left out of that metric and counted.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

BOOTSTRAP_RESAMPLES = 2000
CI_LEVEL = 0.95
HIT_DICE = 0.5
ZERO_METHOD = "wilcox"


def _wilcoxon(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    d = b - a
    if d.size == 0:  # no image scored by both: no test, so NaN (which Holm leaves out), not p = 1
        return float("nan"), float("nan")
    if np.all(d == 0):
        return float("nan"), 1.0  # identical scores: no evidence of a difference
    res = sps.wilcoxon(a, b, zero_method=ZERO_METHOD)
    return float(res.statistic), float(res.pvalue)


def _ttest(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    d = b - a
    if d.size < 2:
        return float("nan"), float("nan")
    if np.all(d == d[0]):
        return float("nan"), 1.0 if d[0] == 0 else 0.0  # zero variance: t undefined
    res = sps.ttest_rel(b, a)
    return float(res.statistic), float(res.pvalue)


def case_bootstrap(
    diff: np.ndarray, cases: list[str], seed: int, n_resamples: int = BOOTSTRAP_RESAMPLES
) -> dict[str, float]:
    """Percentile CI of mean and median of ``diff``, resampling whole cases with replacement."""
    rng = np.random.default_rng(seed)
    uniq = sorted(set(cases))
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
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ok = ~(np.isnan(a) | np.isnan(b))
    a, b = a[ok], b[ok]
    kept_cases = [c for c, keep in zip(cases, ok, strict=False) if keep]
    d = b - a
    w_stat, w_p = _wilcoxon(a, b)
    t_stat, t_p = _ttest(a, b)
    row = {
        "n": int(ok.sum()),
        "n_excluded": int((~ok).sum()),
        "mean_a": float(a.mean()) if a.size else float("nan"),
        "mean_b": float(b.mean()) if b.size else float("nan"),
        "mean_diff": float(d.mean()) if d.size else float("nan"),
        "median_diff": float(np.median(d)) if d.size else float("nan"),
        "wilcoxon_stat": w_stat,
        "wilcoxon_p": w_p,
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
    """metric -> comparison row; adds Holm-adjusted Wilcoxon p and the image-level McNemar."""
    table = {m: compare_metric(per_a[m], per_b[m], cases, seed, n_resamples) for m in per_a}
    adjusted = holm([table[m]["wilcoxon_p"] for m in table])
    for m, p in zip(table, adjusted, strict=False):
        table[m]["wilcoxon_p_holm"] = p
    if "dice" in per_a:
        table["dice"].update(
            {
                f"mcnemar_hit_{k}": v
                for k, v in mcnemar_exact(
                    np.asarray(per_a["dice"]) >= HIT_DICE, np.asarray(per_b["dice"]) >= HIT_DICE
                ).items()
            }
        )
    return table
