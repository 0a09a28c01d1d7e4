"""95 % intervals for one model's headline figures on one split.

Input: an evaluation's per-image confusion counts (:class:`training.metrics.Counts`) and each
image's case id (a patient; for BUSI, a near-duplicate group). Output: a dict for summary.json.

- **The :data:`HEADLINE` figures**: mean Dice over images with cancer and over all images, mean
  recall over images with cancer, and pooled-pixel Dice, recall and accuracy (there is no interval
  for a per-image mean accuracy). Percentile bootstrap that resamples whole cases with replacement,
  because images of one case are not independent. Each resample scores its own counts (count
  first, score second): a pooled figure is the ratio of the resample's summed counts, a per-image
  mean is over the resample's images under the same empty-mask policy as the point estimate. A
  resample where a figure is undefined (no image with cancer, say) is left out of that figure's
  interval and counted; pooled Dice is undefined in a resample with neither a cancer nor a
  predicted pixel (:func:`training.metrics.pooled_scores`), as pooled recall is without cancer.
  A figure fewer than :data:`~training.stats.MIN_CONTRIBUTING_CASES` cases contribute to gets no
  interval (NaN, with the reason): one case resampled is always itself.
- **The share of images without cancer that get a false cancer pixel**: Wilson score interval over
  those images (scipy's ``binomtest(...).proportion_ci``). It treats the images as independent,
  so ``benign_cases`` is reported beside it. Images with no labelled pixel are not among them.

Small test splits give wide intervals; a figure is only as good as its interval says.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

from training.metrics import Counts, is_cancer_free, is_unlabelled, nanmean, pooled_scores, scores
from training.stats import BOOTSTRAP_RESAMPLES, CI_LEVEL, MIN_CONTRIBUTING_CASES

HEADLINE = (
    "dice_pos_mean",
    "dice_mean",
    "recall_pos_mean",
    "dice_pooled",
    "recall_pooled",
    "pixel_accuracy_pooled",
)
METHOD = (
    "95 % intervals: percentile bootstrap over cases ({resamples} resamples, seed {seed}), each "
    "resample scored from its own counts; a figure fewer than {min_cases} cases contribute to has no "
    "interval; the benign false-positive share: Wilson score interval over images"
)


def _figures(counts: list[Counts], per: list[dict[str, float]]) -> dict[str, float]:
    """The :data:`HEADLINE` figures of one set of images (as :func:`training.metrics.summarize`)."""
    pos = [s for s, c in zip(per, counts, strict=True) if c.positives > 0]
    # pooled_scores, not scores(pooled(...)): a resample of cancer-free cases with no predicted
    # pixel has no pooled Dice (NaN, left out and counted), not the per-image convention's 1.0
    total = pooled_scores(counts)
    return {
        "dice_pos_mean": nanmean(s["dice"] for s in pos),
        "dice_mean": nanmean(s["dice"] for s in per),
        "recall_pos_mean": nanmean(s["recall"] for s in pos),
        "dice_pooled": total["dice"],
        "recall_pooled": total["recall"],
        "pixel_accuracy_pooled": total["pixel_accuracy"],
    }


def _contributes(c: Counts, s: dict[str, float]) -> dict[str, bool]:
    """Whether one image can move each :data:`HEADLINE` figure (a case contributes through any of
    its images): per-image means need the image's score defined (and cancer, for the ``_pos_``
    means), pooled figures need a non-zero count in the figure's denominator."""
    return {
        "dice_pos_mean": c.positives > 0 and not np.isnan(s["dice"]),
        "dice_mean": not np.isnan(s["dice"]),
        "recall_pos_mean": c.positives > 0 and not np.isnan(s["recall"]),
        "dice_pooled": 2 * c.tp + c.fp + c.fn > 0,
        "recall_pooled": c.positives > 0,
        "pixel_accuracy_pooled": c.tp + c.fp + c.fn + c.tn > 0,
    }


def contributing_cases(counts: list[Counts], cases: list[str]) -> dict[str, int]:
    """figure -> how many distinct cases have an image that moves it (see :func:`_contributes`)."""
    out = {name: set() for name in HEADLINE}
    for c, case in zip(counts, cases, strict=True):
        for name, moves in _contributes(c, scores(c)).items():
            if moves:
                out[name].add(case)
    return {name: len(found) for name, found in out.items()}


def case_bootstrap_figures(
    counts: list[Counts], cases: list[str], seed: int = 0, n_resamples: int = BOOTSTRAP_RESAMPLES
) -> dict[str, dict]:
    """Per-image counts and case ids -> figure -> {"low", "high", "undefined_resamples",
    "contributing_cases", "reason"}: percentile intervals, resampling cases. A figure that fewer
    than :data:`~training.stats.MIN_CONTRIBUTING_CASES` cases move cannot vary between resamples:
    its interval is NaN and ``reason`` says why (empty otherwise). ``undefined_resamples``: the
    resamples where the figure is undefined, left out of its interval."""
    if len(counts) != len(cases):
        raise ValueError(f"{len(counts)} images but {len(cases)} case ids")
    per = [scores(c) for c in counts]
    uniq = sorted(set(cases))
    members = [[i for i, c in enumerate(cases) if c == case] for case in uniq]
    rng = np.random.default_rng(seed)
    draws = {name: np.full(n_resamples, np.nan) for name in HEADLINE}
    for r in range(n_resamples if uniq else 0):
        picked = [i for j in rng.integers(0, len(uniq), size=len(uniq)) for i in members[j]]
        figures = _figures([counts[i] for i in picked], [per[i] for i in picked])
        for name in HEADLINE:
            draws[name][r] = figures[name]
    contributing = contributing_cases(counts, cases)
    tail = 100 * (1 - CI_LEVEL) / 2
    out = {}
    for name, values in draws.items():
        defined = values[~np.isnan(values)]
        reason = ""
        if contributing[name] < MIN_CONTRIBUTING_CASES:
            reason = (
                f"{contributing[name]} case(s) contribute; a case bootstrap needs at least "
                f"{MIN_CONTRIBUTING_CASES} to vary"
            )
        elif not defined.size:
            reason = "undefined in every resample"
        low, high = (
            (float(np.percentile(defined, tail)), float(np.percentile(defined, 100 - tail)))
            if not reason
            else (float("nan"), float("nan"))
        )
        out[name] = {
            "low": low,
            "high": high,
            "undefined_resamples": int(values.size - defined.size),
            "contributing_cases": contributing[name],
            "reason": reason,
        }
    return out


def wilson(successes: int, trials: int) -> tuple[float, float]:
    """Wilson score interval of ``successes / trials`` at :data:`CI_LEVEL` (NaN when no trials)."""
    if trials == 0:
        return float("nan"), float("nan")
    ci = sps.binomtest(successes, trials).proportion_ci(confidence_level=CI_LEVEL, method="wilson")
    return float(ci.low), float(ci.high)


def headline_intervals(
    counts: list[Counts], cases: list[str], seed: int = 0, n_resamples: int = BOOTSTRAP_RESAMPLES
) -> dict:
    """Per-image counts and case ids -> the intervals for summary.json: ``ci95`` (figure -> [low,
    high]; NaN where no interval can be given, with the reason in ``ci95_undefined_reason``),
    ``ci95_undefined_resamples`` (figure -> resamples left out, where any), the benign share and its
    Wilson interval, what was resampled, and the method in words. Images with no labelled pixel are
    not benign images: they are left out of the share and counted in ``n_unlabelled``."""
    unlabelled = [is_unlabelled(c) for c in counts]
    benign = [(c, case) for c, case in zip(counts, cases, strict=True) if is_cancer_free(c)]
    with_fp = sum(c.fp > 0 for c, _ in benign)
    boot = case_bootstrap_figures(counts, cases, seed, n_resamples)
    ci95 = {name: [row["low"], row["high"]] for name, row in boot.items()}
    ci95["benign_fp_share"] = list(wilson(with_fp, len(benign)))
    reasons = {n: r["reason"] for n, r in boot.items() if r["reason"]}
    if not benign:
        reasons["benign_fp_share"] = "no image without cancer"
    return {
        "ci95": ci95,
        "ci95_undefined_resamples": {
            n: r["undefined_resamples"] for n, r in boot.items() if r["undefined_resamples"]
        },
        "ci95_undefined_reason": reasons,
        "ci95_resamples": n_resamples,
        "ci95_cases": len(set(cases)),
        "benign_fp_share": with_fp / len(benign) if benign else float("nan"),
        "benign_cases": len({case for _, case in benign}),
        "n_unlabelled": sum(unlabelled),
        "ci95_method": METHOD.format(resamples=n_resamples, seed=seed, min_cases=MIN_CONTRIBUTING_CASES),
    }
