"""Report folder writers: report.md (its text: :mod:`training.report_text`) and PNG plots (matplotlib,
Agg backend).

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
from training.metrics import METRICS, confusion_matrix, is_unlabelled, pooled
from training.report_text import report_markdown

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


# the pictures report.md shows, in its order, where the folder holds them
REPORT_PICTURES = (
    "confusion_counts.png",
    "confusion_normalised.png",
    "boxplot.png",
    "training_curves.png",
    "gallery.png",
    "reliability.png",
    "reliability_uncalibrated.png",
)


def write_report(out: Path, summary: dict, results, gallery: GalleryPicks, curves: list | None) -> None:
    """report.md and the plots into OUT; CURVES: the run's log (:func:`read_training_curves`) or None."""
    _confusion_plots(out, results)
    _boxplot(out, results)
    _gallery(out, gallery.chosen())
    if curves is not None:
        _training_curves(out, curves)
    pictures = [png for png in REPORT_PICTURES if (out / png).is_file()]
    (out / "report.md").write_text(report_markdown(summary, curves is not None, pictures))
