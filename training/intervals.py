"""95 % intervals for one model's headline figures on one split.

Input: an evaluation's per-image confusion counts (:class:`training.metrics.Counts`) and each
image's case id (a patient; for BUSI, a near-duplicate group). Output: a dict for summary.json.

- **Dice, recall and accuracy** (per-image means and pooled pixels): percentile bootstrap that
  resamples whole cases with replacement, because images of one case are not independent. Each
  resample scores its own counts (count first, score second): a pooled figure is the ratio of the
  resample's summed counts, a per-image mean is over the resample's images under the same
  empty-mask policy as the point estimate. A resample with no image a figure is defined on (no
  image with cancer, say) is left out of that figure's interval and counted.
- **The share of images without cancer that get a false cancer pixel**: Wilson score interval over
  those images (scipy's ``binomtest(...).proportion_ci``). It treats the images as independent,
  so ``benign_cases`` is reported beside it.

Small test splits give wide intervals; a figure is only as good as its interval says.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

from training.metrics import Counts, nanmean, pooled, scores
from training.stats import BOOTSTRAP_RESAMPLES, CI_LEVEL

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
    "resample scored from its own counts; the benign false-positive share: Wilson score interval "
    "over images"
)


def _figures(counts: list[Counts], per: list[dict[str, float]]) -> dict[str, float]:
    """The :data:`HEADLINE` figures of one set of images (as :func:`training.metrics.summarize`)."""
    pos = [s for s, c in zip(per, counts, strict=True) if c.positives > 0]
    total = scores(pooled(counts))
    return {
        "dice_pos_mean": nanmean(s["dice"] for s in pos),
        "dice_mean": nanmean(s["dice"] for s in per),
        "recall_pos_mean": nanmean(s["recall"] for s in pos),
        "dice_pooled": total["dice"],
        "recall_pooled": total["recall"],
        "pixel_accuracy_pooled": total["pixel_accuracy"],
    }


def case_bootstrap_figures(
    counts: list[Counts], cases: list[str], seed: int = 0, n_resamples: int = BOOTSTRAP_RESAMPLES
) -> dict[str, dict]:
    """figure -> {"low", "high", "undefined_resamples"}: percentile intervals, resampling cases."""
    if len(counts) != len(cases):
        raise ValueError(f"{len(counts)} images but {len(cases)} case ids")
    per = [scores(c) for c in counts]
    uniq = sorted(set(cases))
    members = [[i for i, c in enumerate(cases) if c == case] for case in uniq]
    rng = np.random.default_rng(seed)
    draws = {name: np.empty(n_resamples) for name in HEADLINE}
    for r in range(n_resamples):
        picked = [i for j in rng.integers(0, len(uniq), size=len(uniq)) for i in members[j]]
        figures = _figures([counts[i] for i in picked], [per[i] for i in picked])
        for name in HEADLINE:
            draws[name][r] = figures[name]
    tail = 100 * (1 - CI_LEVEL) / 2
    out = {}
    for name, values in draws.items():
        defined = values[~np.isnan(values)]
        low, high = (
            (float(np.percentile(defined, tail)), float(np.percentile(defined, 100 - tail)))
            if defined.size
            else (float("nan"), float("nan"))
        )
        out[name] = {"low": low, "high": high, "undefined_resamples": int(values.size - defined.size)}
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
    """The intervals for summary.json: ``ci95`` (figure -> [low, high]), the benign share's Wilson
    interval, what was resampled, and the method in words."""
    benign = [(c, case) for c, case in zip(counts, cases, strict=True) if c.positives == 0]
    with_fp = sum(c.fp > 0 for c, _ in benign)
    boot = case_bootstrap_figures(counts, cases, seed, n_resamples)
    ci95 = {name: [row["low"], row["high"]] for name, row in boot.items()}
    ci95["benign_fp_share"] = list(wilson(with_fp, len(benign)))
    return {
        "ci95": ci95,
        "ci95_undefined_resamples": {
            n: r["undefined_resamples"] for n, r in boot.items() if r["undefined_resamples"]
        },
        "ci95_cases": len(set(cases)),
        "benign_fp_share": with_fp / len(benign) if benign else float("nan"),
        "benign_cases": len({case for _, case in benign}),
        "ci95_method": METHOD.format(resamples=n_resamples, seed=seed),
    }
