"""The words of an evaluation: report.md's text and its figures as the console prints them.

Input: an evaluation's summary (the dict :func:`training.evaluate.evaluate` writes as summary.json).
Output: text only: a figure (:func:`figure_text`, ``undefined`` for NaN), a 95 % interval
(:func:`interval_text`), the interval and calibration tables, and the whole of report.md
(:func:`report_markdown`). Reads and writes no file; the plots are :mod:`training.report`'s.
"""

from __future__ import annotations

import math

from training.metrics import EMPTY_POLICY, METRICS


def figure_text(v, digits: int = 4) -> str:
    """A figure as report.md and the console show it: ``undefined`` for NaN (a precision with no
    predicted pixel, a mean over no image with cancer, an ECE over no labelled band), never ``nan``."""
    if isinstance(v, float):
        return "undefined" if math.isnan(v) else f"{v:.{digits}f}"
    return str(v)


def _calibration_lines(summary: dict) -> list[str]:
    if "ece_pixel" not in summary:
        return []
    lines = [
        "",
        f"Calibration (temperature {summary['temperature']:.4f}"
        + (", then a calibration curve" if summary.get("calibration_curve") else "")
        + f"): pixels = labelled pixels within "
        f"{summary['calibration_band_px']} px of the cancer truth or the predicted mask; images = "
        "'contains cancer' scored by the max or mean probability. ECE: equal-width bins (15 for pixels, "
        "10 for images), weighted by the share of samples per bin.",
        "",
        "| | ECE pixels | Brier pixels | ECE image (max) | Brier image (max) | ECE image (mean) | "
        "Brier image (mean) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, prefix in (("as served", ""), ("uncalibrated (T = 1)", "uncalibrated_")):
        if f"{prefix}ece_pixel" in summary:
            lines.append(
                f"| {name} | "
                + " | ".join(
                    figure_text(summary[f"{prefix}{k}_{part}"])
                    for part in ("pixel", "image_max", "image_mean")
                    for k in ("ece", "brier")
                )
                + " |"
            )
    return lines


def interval_text(summary: dict, name: str, digits: int = 4, sep: str = " – ") -> str:
    """The 95 % interval of figure ``name`` in words: "low – high", or "none (reason)" when it is
    NaN; followed by the resamples left out of it, when any (``ci95_undefined_resamples``)."""
    low, high = summary["ci95"][name]
    reason = summary.get("ci95_undefined_reason", {}).get(name)
    if math.isnan(low) or math.isnan(high):
        text = f"none ({reason or 'undefined'})"
    else:
        text = f"{low:.{digits}f}{sep}{high:.{digits}f}"
    left_out = summary.get("ci95_undefined_resamples", {}).get(name, 0)
    if left_out:
        total = summary.get("ci95_resamples")
        text += f"; {left_out}" + (f" of {total}" if total else "") + " resamples left out (undefined)"
    return text


def _interval_lines(summary: dict) -> list[str]:
    if "ci95" not in summary:
        return []
    lines = ["", f"{summary['ci95_method']} ({summary['ci95_cases']} cases).", ""]
    lines += ["| figure | value | 95 % interval |", "|---|---|---|"]
    for name in summary["ci95"]:
        lines.append(f"| {name} | {figure_text(summary[name])} | {interval_text(summary, name)} |")
    return lines


def report_markdown(summary: dict, with_curves: bool, pictures: list[str]) -> str:
    """report.md for SUMMARY: its metric, interval and calibration tables, the files the report folder
    holds (``training_curves.png`` only WITH_CURVES) and the PICTURES (PNG file names) shown inline."""
    lines = [
        f"# Evaluation of `{summary['checkpoint']}`",
        "",
        f"Split `{summary['split']}` of `{summary['data']}`: {summary['n_images']} images, "
        f"{summary['n_positive']} with cancer pixels. Architecture `{summary['arch']}`, threshold "
        f"{summary['threshold']}. Counts are over labelled pixels (255 ignored) at each image's size.",
        "",
        f"Empty-mask policy: {EMPTY_POLICY}.",
        "",
        "| metric | mean (all images) | mean (images with cancer) | pooled pixels | undefined images |",
        "|---|---|---|---|---|",
    ]
    for m in METRICS:
        lines.append(
            f"| {m} | {figure_text(summary[f'{m}_mean'])} | {figure_text(summary[f'{m}_pos_mean'])} | "
            f"{figure_text(summary[f'{m}_pooled'])} | {summary[f'{m}_n_undefined']} |"
        )
    lines += [
        "",
        f"Images without cancer that get any false cancer pixel: {summary.get('n_negative_with_fp', '?')} "
        f"of {summary.get('n_negative', '?')}.",
    ]
    if summary.get("n_unlabelled"):
        lines += [
            "",
            f"Left out: {summary['n_unlabelled']} image(s) with no labelled pixel (every label pixel is "
            "ignored): no score, and not counted as images with or without cancer.",
        ]
    lines += _interval_lines(summary)
    lines += _calibration_lines(summary)
    lines += [
        "",
        "Files: `metrics.csv` (per image), `pred/<id>.png`, `confusion_counts.png`, "
        "`confusion_normalised.png`, `boxplot.png`, `gallery.png`, `calibration.json`, `reliability.png`"
        + (", `training_curves.png`" if with_curves else "")
        + ".",
        "",
    ]
    lines += [f"![{png}]({png})" for png in pictures]
    return "\n".join(lines) + "\n"
