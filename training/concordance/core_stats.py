"""Core-level statistics over many cores: does the live prediction say "cancer" where pathology does?

Input: :class:`~training.concordance.cores.Core` records and the core-call threshold (the share of
the known band the prediction must cover for the model to "call" the core cancer). Output: plain
dicts, counts first and scores second:

- core confusion counts (tp: called and cancer by pathology, fp, fn, tn), then sensitivity and
  specificity from :func:`training.metrics.scores` (a zero denominator gives NaN, never 0 or 1);
- AUC of the predicted fraction against pathology (Mann-Whitney U / n_pos n_neg, ties counted
  half; NaN without both positive and negative cores);
- 95% percentile bootstrap CIs resampling *patients* (a patient's cores are not independent), as
  training/stats.py does for paired model comparisons; resamples where a score is undefined are
  left out and counted;
- pixel scores along the tract over the cores (training/metrics.py ``summarize``: per-core means
  and pooled counts, the same empty-mask policy);
- Bland-Altman agreement of predicted and observed cancer fraction: bias (mean of predicted -
  observed, with the patient bootstrap CI of training/stats.py) and 95% limits of agreement.
"""

from __future__ import annotations

import math

import numpy as np

from training.concordance.cores import Core
from training.metrics import EMPTY_POLICY, Counts, scores, summarize
from training.stats import BOOTSTRAP_RESAMPLES, CI_LEVEL, MIN_CONTRIBUTING_CASES, case_bootstrap

LOA_Z = 1.96  # Bland-Altman limits of agreement: bias +- 1.96 SD
CORE_SCORES = ("sensitivity", "specificity", "auc")
REDUCTION = (
    "core-level scores from counts pooled over cores; pixel scores per core, then the mean over cores "
    "(and pooled pixel counts); bootstrap resamples patients"
)


def core_counts(cores: list[Core], threshold: float) -> Counts:
    """Core-level confusion counts: called = predicted fraction >= threshold, truth = pathology."""
    called = [core.predicted_fraction >= threshold for core in cores]
    truth = [core.pathology_positive for core in cores]
    pairs = list(zip(called, truth, strict=True))
    return Counts(
        tp=sum(c and t for c, t in pairs),
        fp=sum(c and not t for c, t in pairs),
        fn=sum(t and not c for c, t in pairs),
        tn=sum(not c and not t for c, t in pairs),
    )


def auc(score: np.ndarray, truth: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` for boolean ``truth``; NaN without both classes."""
    pos, neg = score[truth], score[~truth]
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    # The Mann-Whitney U of pos against neg: for each positive, the negatives below it, ties counted
    # half. Counted on the sorted negatives directly, because the patient bootstrap asks 2000 times
    # and scipy.stats.mannwhitneyu also works out a p value each time, ~70x the cost of the count.
    ordered = np.sort(neg)
    below = np.searchsorted(ordered, pos, side="left")
    up_to = np.searchsorted(ordered, pos, side="right")
    return float((below.sum() + up_to.sum()) / 2 / (pos.size * neg.size))


def _core_scores(cores: list[Core], threshold: float) -> dict[str, float]:
    s = scores(core_counts(cores, threshold))
    frac = np.array([c.predicted_fraction for c in cores])
    truth = np.array([c.pathology_positive for c in cores], bool)
    return {"sensitivity": s["recall"], "specificity": s["specificity"], "auc": auc(frac, truth)}


def _percentiles(values: list[float]) -> tuple[float, float, int]:
    kept = [v for v in values if not math.isnan(v)]
    if not kept:
        return float("nan"), float("nan"), len(values)
    lo, hi = 100 * (1 - CI_LEVEL) / 2, 100 * (1 + CI_LEVEL) / 2
    return float(np.percentile(kept, lo)), float(np.percentile(kept, hi)), len(values) - len(kept)


def contributing_patients(cores: list[Core]) -> dict[str, int]:
    """score -> distinct patients whose cores can move it: sensitivity, patients with a core with
    cancer by pathology; specificity, with a core without; AUC, the fewer of the two, since it
    compares every cancer core with every benign one: with all benign cores from one patient, a
    resample holds that patient's cores or none (AUC undefined), and the interval only repeats the
    point value."""
    with_cancer = len({c.patient_id for c in cores if c.pathology_positive})
    without = len({c.patient_id for c in cores if not c.pathology_positive})
    return {"sensitivity": with_cancer, "specificity": without, "auc": min(with_cancer, without)}


def patient_bootstrap(
    cores: list[Core], threshold: float, seed: int, n_resamples: int = BOOTSTRAP_RESAMPLES
) -> dict[str, dict]:
    """Cores, the core-call threshold and a seed -> score -> {ci_low, ci_high, resamples_undefined,
    reason}, resampling whole patients with replacement. A score fewer than
    :data:`~training.stats.MIN_CONTRIBUTING_CASES` patients contribute to gets a NaN CI and the
    reason (one patient resampled is always itself); ``reason`` is empty otherwise."""
    rng = np.random.default_rng(seed)
    patients = sorted({c.patient_id for c in cores})
    members = {p: [c for c in cores if c.patient_id == p] for p in patients}
    draws: dict[str, list[float]] = {k: [] for k in CORE_SCORES}
    for _ in range(n_resamples if patients else 0):
        pick = rng.integers(0, len(patients), size=len(patients))
        sample = [c for j in pick for c in members[patients[j]]]
        for k, v in _core_scores(sample, threshold).items():
            draws[k].append(v)
    contributing = contributing_patients(cores)
    out = {}
    for k, vals in draws.items():
        lo, hi, undefined = _percentiles(vals)
        reason = ""
        if contributing[k] < MIN_CONTRIBUTING_CASES:
            lo, hi = float("nan"), float("nan")
            reason = _no_interval_reason(k, cores)
        out[k] = {"ci_low": lo, "ci_high": hi, "resamples_undefined": undefined, "reason": reason}
    return out


def _no_interval_reason(score: str, cores: list[Core]) -> str:
    """Why ``score`` gets no interval, in the patients on each side of it (the AUC needs both)."""
    with_cancer = len({c.patient_id for c in cores if c.pathology_positive})
    without = len({c.patient_id for c in cores if not c.pathology_positive})
    sides = {
        "sensitivity": f"cores with cancer come from {with_cancer} patient(s)",
        "specificity": f"cores without cancer come from {without} patient(s)",
        "auc": f"cores with cancer come from {with_cancer} patient(s), cores without from {without}",
    }
    need = "on each side" if score == "auc" else "to vary"
    return f"{sides[score]}; a patient bootstrap needs at least {MIN_CONTRIBUTING_CASES} {need}"


def bland_altman(cores: list[Core], seed: int) -> dict[str, float]:
    """Predicted - observed cancer fraction: bias (with CI), SD and the limits of agreement."""
    diff = np.array([c.predicted_fraction - c.observed_fraction for c in cores])
    if diff.size == 0:
        return {"n": 0}
    sd = float(diff.std(ddof=1)) if diff.size > 1 else float("nan")
    ci = case_bootstrap(diff, [c.patient_id for c in cores], seed)
    bias = float(diff.mean())
    return {
        "n": int(diff.size),
        "bias": bias,
        "bias_ci_low": ci["mean_ci_low"],
        "bias_ci_high": ci["mean_ci_high"],
        "sd": sd,
        "loa_low": bias - LOA_Z * sd,
        "loa_high": bias + LOA_Z * sd,
    }


def group_summary(cores: list[Core], threshold: float, seed: int) -> dict:
    """Cores, the core-call threshold and the bootstrap seed -> everything the report shows for one
    group of cores (one model version, or all). A core with no known pixel has nothing to score:
    it is left out of every figure and counted in ``n_cores_no_known_pixel`` (load_core already
    skips such cores; this keeps the figures right for any caller)."""
    unknown = [c for c in cores if c.known_px == 0]
    cores = [c for c in cores if c.known_px > 0]
    counts = core_counts(cores, threshold)
    point = _core_scores(cores, threshold)
    ci = patient_bootstrap(cores, threshold, seed)
    pixel = summarize([c.counts for c in cores])
    return {
        "n_cores_no_known_pixel": len(unknown),
        "n_cores": len(cores),
        "n_patients": len({c.patient_id for c in cores}),
        "core_counts": {"tp": counts.tp, "fp": counts.fp, "fn": counts.fn, "tn": counts.tn},
        "core_scores": {k: {"value": point[k], **ci[k]} for k in CORE_SCORES},
        "pixel": {
            k: pixel[k]
            for k in (
                "dice_mean",
                "dice_pooled",
                "dice_n_undefined",
                "recall_mean",
                "recall_pooled",
                "recall_n_undefined",
                "specificity_mean",
                "specificity_pooled",
                "specificity_n_undefined",
            )
        },
        "fraction_agreement": bland_altman(cores, seed),
        "core_threshold": threshold,
        "empty_mask_policy": EMPTY_POLICY,
        "reduction": REDUCTION,
    }
