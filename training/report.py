"""Report folder writers: report.md and PNG plots (matplotlib, Agg backend).

Plots: ``confusion_counts.png`` and ``confusion_normalised.png`` (pooled pixels, rows =
truth), ``boxplot.png`` (per-image metrics), ``training_curves.png`` (from the run's
metrics.csv when it sits beside the checkpoint), ``gallery.png`` (test images: truth
contour green, prediction red). The compare report is :mod:`training.compare_report`.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt

from edge_runtime.csv_text import read_csv_text
from edge_runtime.errors import InputError
from edge_runtime.typed_config import shown
from training.figure_file import save_figure
from training.metrics import EMPTY_POLICY, METRICS, confusion_matrix, is_unlabelled, pooled

GALLERY_MAX = 8
GALLERY_POSITIVE = 6  # images with cancer first, then some without
DPI = 110
TRUTH_BGR = (0, 220, 0)
PRED_BGR = (40, 40, 255)
CLASS_NAMES = ("tissue", "cancer")
# what the training curves plot of the run's metrics.csv: every row has the first two, the
# validation columns are empty in epochs without validation (train.val_every)
CURVE_REQUIRED = ("epoch", "train_loss")
CURVE_VALIDATION = ("val_dice_pos_mean", "val_dice_pooled")


def _confusion_plots(out: Path, results) -> None:
    cm = confusion_matrix(pooled([r.counts for r in results]))
    norm = cm / cm.sum(axis=1, keepdims=True).clip(min=1)
    for name, mat, fmt in (
        ("confusion_counts.png", cm, "{:d}"),
        ("confusion_normalised.png", norm, "{:.3f}"),
    ):
        fig, ax = plt.subplots(figsize=(4, 3.6))
        ax.imshow(mat, cmap="Blues")
        for (i, j), v in ((ij, mat[ij]) for ij in [(0, 0), (0, 1), (1, 0), (1, 1)]):
            ax.text(
                j,
                i,
                fmt.format(int(v) if fmt == "{:d}" else float(v)),
                ha="center",
                va="center",
                color="white" if v > mat.max() / 2 else "black",
            )
        ax.set_xticks([0, 1], CLASS_NAMES)
        ax.set_yticks([0, 1], CLASS_NAMES)
        ax.set_xlabel("prediction")
        ax.set_ylabel("truth")
        ax.set_title("pixels, pooled" + (" (row-normalised)" if mat is norm else ""))
        fig.tight_layout()
        save_figure(fig, out / name, DPI)


def _boxplot(out: Path, results) -> None:
    data = [[r.scores[m] for r in results if not math.isnan(r.scores[m])] for m in METRICS]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.boxplot(data, tick_labels=list(METRICS))
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("per-image metrics (NaN = undefined, left out)")
    fig.tight_layout()
    save_figure(fig, out / "boxplot.png", DPI)


def read_training_curves(run_csv: Path) -> list[dict[str, float]]:
    """The run's metrics.csv as numbers, one dict per row (``epoch``, ``train_loss`` and the validation
    columns it has a value for). InputError naming the file and line of a value that is not a number
    (a note typed into the log in a spreadsheet), of a byte that is not UTF-8, or of broken CSV."""
    text = read_csv_text(run_csv, ",".join(CURVE_REQUIRED + CURVE_VALIDATION))
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = []
    try:
        for row in reader:
            rows.append(_curve_row(row, f"{run_csv}:{reader.line_num}"))
    except csv.Error as exc:
        raise InputError(f"{run_csv}:{reader.line_num}: not a valid CSV ({exc})") from None
    return rows


def _curve_row(row: dict, where: str) -> dict[str, float]:
    values = {}
    for key in CURVE_REQUIRED + CURVE_VALIDATION:
        text = row.get(key)
        if key in CURVE_VALIDATION and text in (None, ""):
            continue
        try:
            values[key] = int(text) if key == "epoch" else float(text)
        except (TypeError, ValueError):
            raise InputError(
                f"{where}: {key} is not a number, got {shown(text)}; this training log beside the "
                "checkpoint is plotted as training_curves.png: remove the line, or move the file away "
                "to evaluate without the curves"
            ) from None
    return values


def _training_curves(out: Path, rows: list[dict[str, float]]) -> None:
    epochs = [r["epoch"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax1.plot(epochs, [r["train_loss"] for r in rows])
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("train loss")
    for key in CURVE_VALIDATION:
        pts = [(r["epoch"], r[key]) for r in rows if key in r]
        if pts:
            ax2.plot(*zip(*pts, strict=False), label=key)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("validation Dice")
    ax2.legend()
    fig.tight_layout()
    save_figure(fig, out / "training_curves.png", DPI)


class GalleryPicks:
    """The images gallery.png shows, picked while they are scored so only those are kept in memory: the
    first GALLERY_POSITIVE with cancer, then the first without cancer (and with a labelled pixel),
    GALLERY_MAX in all, each as (id, gray, label, prediction)."""

    def __init__(self):
        self.positives: list[tuple] = []
        self.negatives: list[tuple] = []

    def offer(self, counts, sid: str, gray, label, pred) -> None:
        """One scored image with its confusion COUNTS; kept only if the gallery may show it."""
        if counts.positives > 0:
            if len(self.positives) < GALLERY_POSITIVE:
                self.positives.append((sid, gray, label, pred))
        elif not is_unlabelled(counts) and len(self.negatives) < GALLERY_MAX:
            self.negatives.append((sid, gray, label, pred))

    def chosen(self) -> list[tuple]:
        return (self.positives + self.negatives)[:GALLERY_MAX]


def _gallery(out: Path, chosen: list[tuple]) -> None:
    if not chosen:
        return
    cols = min(4, len(chosen))
    rows = math.ceil(len(chosen) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (sid, gray, label, pred) in zip(axes.ravel(), chosen, strict=False):
        rgb = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
        overlay = rgb.copy()
        overlay[pred] = PRED_BGR
        rgb = cv2.addWeighted(overlay, 0.35, rgb, 0.65, 0)
        truth = ((label == 1) * 255).astype("uint8")
        contours, _ = cv2.findContours(truth, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(rgb, contours, -1, TRUTH_BGR, 2)
        ax.imshow(rgb[:, :, ::-1])
        ax.set_title(sid, fontsize=8)
    fig.suptitle("green: cancer truth, red: prediction")
    fig.tight_layout()
    save_figure(fig, out / "gallery.png", DPI)


def figure_text(v, digits: int = 4) -> str:
    """A figure as report.md and the console show it: ``undefined`` for NaN (a precision with no
    predicted pixel, a mean over no image with cancer, an ECE over no labelled band), never ``nan``."""
    if isinstance(v, float):
        return "undefined" if math.isnan(v) else f"{v:.{digits}f}"
    return str(v)


def _fmt(v) -> str:
    return figure_text(v)


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
        lines.append(f"| {name} | {_fmt(summary[name])} | {interval_text(summary, name)} |")
    return lines


def write_report(out: Path, summary: dict, results, gallery: GalleryPicks, curves: list | None) -> None:
    """report.md and the plots into OUT; CURVES: the run's log (:func:`read_training_curves`) or None."""
    _confusion_plots(out, results)
    _boxplot(out, results)
    _gallery(out, gallery.chosen())
    if curves is not None:
        _training_curves(out, curves)
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
            f"| {m} | {_fmt(summary[f'{m}_mean'])} | {_fmt(summary[f'{m}_pos_mean'])} | "
            f"{_fmt(summary[f'{m}_pooled'])} | {summary[f'{m}_n_undefined']} |"
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
        + (", `training_curves.png`" if curves is not None else "")
        + ".",
        "",
    ]
    for png in (
        "confusion_counts.png",
        "confusion_normalised.png",
        "boxplot.png",
        "training_curves.png",
        "gallery.png",
        "reliability.png",
        "reliability_uncalibrated.png",
    ):
        if (out / png).is_file():
            lines.append(f"![{png}]({png})")
    (out / "report.md").write_text("\n".join(lines) + "\n")
