"""``sonomap evaluate --compare`` output: compare.csv (one row per metric) and report.md.

Input: the two models' summaries and the paired table of :func:`training.stats.compare_models`.
Output files in the compare folder: ``compare.csv`` and ``report.md`` (per-model reports sit in
A/ and B/).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from training.metrics import EMPTY_POLICY
from training.stats import (
    BOOTSTRAP_RESAMPLES,
    EXACT_MAX_N,
    HIT_DICE,
    MIN_CONTRIBUTING_CASES,
    PERMUTATION_MAX_N,
)

DIGEST_SHOWN = 12  # hex digits of the checkpoint's SHA-256 in report.md: tells two files apart

COMPARE_COLUMNS = (
    "n",
    "n_cases",
    "n_excluded",
    "mean_a",
    "mean_b",
    "mean_diff",
    "mean_ci_low",
    "mean_ci_high",
    "median_diff",
    "median_ci_low",
    "median_ci_high",
    "wilcoxon_stat",
    "wilcoxon_p",
    "wilcoxon_p_holm",
    "wilcoxon_method",
    "ttest_t",
    "ttest_p",
    # the Dice row's image-level exact McNemar on hit = Dice >= HIT_DICE (empty on the other rows)
    "mcnemar_hit_only_a",
    "mcnemar_hit_only_b",
    "mcnemar_hit_p",
)


def checkpoint_label(summary: dict) -> str:
    """A checkpoint as report.md names it: its file name and digest, as evaluate's summary.json
    records them, never its path (a folder above it may be named after the patient)."""
    return f"{summary['checkpoint']} (sha256 {summary['checkpoint_sha256'][:DIGEST_SHOWN]})"


def _interval(row: dict, figure: str) -> str:
    """``[low, high]`` of ``figure``'s bootstrap CI, or why there is none: with fewer than
    MIN_CONTRIBUTING_CASES cases no resample differs from another (it read ``[+nan, +nan]``)."""
    low, high = row.get(f"{figure}_ci_low", math.nan), row.get(f"{figure}_ci_high", math.nan)
    if math.isfinite(low) and math.isfinite(high):
        return f"[{low:+.4f}, {high:+.4f}]"
    return f"[none: {row['n_cases']} case(s), a bootstrap needs >= {MIN_CONTRIBUTING_CASES}]"


def _p(value: float) -> str:
    """A p-value, or "none" where the test has none (a t-test over one case has no variance)."""
    return f"{value:.4g}" if math.isfinite(value) else "none"


def write_compare_report(
    out: Path,
    label_a: str,
    label_b: str,
    sum_a: dict,
    sum_b: dict,
    table: dict,
    n_images: int,
    n_cases: int,
    split: str,
) -> str:
    """compare.csv (one row per metric, with the split compared on) and report.md; returns the table.
    ``label_a``/``label_b`` name the models in report.md (:func:`checkpoint_label`)."""
    with open(out / "compare.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["metric", "split", *COMPARE_COLUMNS])
        for m, row in table.items():
            writer.writerow([m, split, *(row.get(c, "") for c in COMPARE_COLUMNS)])
    head = (
        "| metric | images | cases | mean A | mean B | mean B−A [95% CI] | median B−A [95% CI] | "
        "Wilcoxon p (Holm) | t-test p |"
    )
    md = [head, "|---|---|---|---|---|---|---|---|---|"]
    for m, r in table.items():
        md.append(
            f"| {m} | {r['n']} | {r['n_cases']} | {r['mean_a']:.4f} | {r['mean_b']:.4f} | "
            f"{r['mean_diff']:+.4f} {_interval(r, 'mean')} | "
            f"{r['median_diff']:+.4f} {_interval(r, 'median')} | {r['wilcoxon_p']:.4g} "
            f"({r['wilcoxon_p_holm']:.4g}) | {_p(r['ttest_p'])} |"
        )
    d = table.get("dice", {})
    text = "\n".join(md)
    methods = sorted(
        {r["wilcoxon_method"] for r in table.values() if r.get("wilcoxon_method", "none") != "none"}
    )
    lines = [
        f"# Paired comparison: A = `{label_a}` vs B = `{label_b}`",
        "",
        f"{n_images} images of split {split} from {n_cases} cases. Means, medians and their 95% CIs are "
        "of the per-image differences B − A; the CIs are percentile bootstrap over cases (patients), "
        f"{BOOTSTRAP_RESAMPLES} resamples. The tests run on per-case mean differences (each case's "
        "images averaged first, as images of one case are not independent): Wilcoxon signed-rank "
        "(zero_method='wilcox': zero differences dropped) is primary, paired t-test secondary. "
        "Wilcoxon p-values: exact for up to "
        f"{EXACT_MAX_N} cases without tied or zero differences; with ties or zeros, all sign flips for up "
        f"to {PERMUTATION_MAX_N} cases; otherwise the normal approximation (used here: "
        f"{', '.join(methods) or 'none'}). Holm corrects the Wilcoxon p over the metrics. "
        f"Empty-mask policy: {EMPTY_POLICY}.",
        "",
        text,
        "",
        f"Pooled Dice: A {sum_a['dice_pooled']:.4f}, B {sum_b['dice_pooled']:.4f}; pooled pixel accuracy: "
        f"A {sum_a['pixel_accuracy_pooled']:.4f}, B {sum_b['pixel_accuracy_pooled']:.4f} (descriptive).",
        "",
    ]
    if "mcnemar_hit_p" in d:
        lines.append(
            f"Exact McNemar on hit = Dice ≥ {HIT_DICE}, over images (image-level: it treats a case's "
            f"images as independent): only A hit {d['mcnemar_hit_only_a']}, "
            f"only B hit {d['mcnemar_hit_only_b']}, p = {d['mcnemar_hit_p']:.4g}."
        )
    lines += ["", "Per-model reports: [A/report.md](A/report.md), [B/report.md](B/report.md)."]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return text
