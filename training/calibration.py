"""Calibration of the cancer probability: where decisions are made, per pixel and per image.

Per pixel, only labelled pixels (label 255 ignored) within :data:`BAND_PX` pixels of the cancer
truth or of the predicted mask count (the "decision band"): the far background is easy, and
including it makes any model look calibrated. Per image, the question is "does this image
contain cancer" (truth: any cancer pixel), scored by the maximum or the mean probability over
its labelled pixels.

Metrics: expected calibration error (ECE: equal-width bins of the predicted cancer
probability, :data:`PIXEL_BINS` for pixels and :data:`IMAGE_BINS` for images; the weighted mean
over bins of |observed cancer fraction - mean predicted probability|, weights = share of
samples in the bin), Brier score (mean squared error of the probability against 0/1), and a
reliability diagram (PNG). Inputs: per-image probability maps at the image size and labels;
outputs: plain dicts (JSON-ready) and the PNG.
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.atomic import atomic_write_bytes
from edge_runtime.errors import InputError
from training.data import CANCER, IGNORE_INDEX
from training.figure_file import save_figure

BAND_PX = 25  # decision band: pixels this close (Euclidean) to the truth or the predicted mask
PIXEL_BINS = 15
BAND_SUMS_FILE = "band_sums.npz"  # in a report: each image's decision-band bin sums
IMAGE_BINS = 10  # few images: wider bins


def decision_band(label: np.ndarray, pred: np.ndarray, band_px: int = BAND_PX) -> np.ndarray:
    """bool (H, W): labelled pixels within band_px of cancer truth or of the predicted mask."""
    seed = (label == CANCER) | pred.astype(bool)
    if not seed.any():
        return np.zeros(label.shape, bool)
    # distanceTransform measures the distance to the nearest zero: zeros where the seed is.
    dist = cv2.distanceTransform((~seed).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return (dist <= band_px) & (label != IGNORE_INDEX)


def reliability(prob: np.ndarray, truth: np.ndarray, bins: int) -> dict:
    """Equal-width bins over [0, 1] -> per-bin counts, mean probability (``confidence``), observed
    share and mean squared error, ECE and Brier (NaN per bin where a bin is empty)."""
    prob = np.asarray(prob, np.float64).ravel()
    truth = np.asarray(truth, np.float64).ravel()
    n = prob.size
    if n == 0:
        return {
            "n": 0,
            "bins": bins,
            "ece": float("nan"),
            "brier": float("nan"),
            "count": [0] * bins,
            "confidence": [float("nan")] * bins,
            "observed": [float("nan")] * bins,
            "squared_error": [float("nan")] * bins,
        }
    return reliability_of_sums(bin_sums(prob, truth, bins))


BIN_SUMS = ("count", "prob_sum", "truth_sum", "squared_error_sum")


def bin_sums(prob: np.ndarray, truth: np.ndarray, bins: int) -> np.ndarray:
    """Count first: (len(:data:`BIN_SUMS`), bins) sums per equal-width probability bin, the bins of
    :func:`reliability`. Sums of several images add up to their pooled sums, from which
    :func:`ece_brier` scores the ECE and Brier that :func:`reliability` gives on the pooled pixels."""
    prob = np.asarray(prob, np.float64).ravel()
    truth = np.asarray(truth, np.float64).ravel()
    idx = np.minimum((prob * bins).astype(np.int64), bins - 1)
    return np.stack(
        [
            np.bincount(idx, minlength=bins).astype(np.float64),
            np.bincount(idx, weights=prob, minlength=bins),
            np.bincount(idx, weights=truth, minlength=bins),
            np.bincount(idx, weights=(prob - truth) ** 2, minlength=bins),
        ]
    )


def ece_brier(sums: np.ndarray) -> tuple[float, float]:
    """Summed :func:`bin_sums` -> (ECE, Brier), NaN for no pixel. Per bin the gap times its weight,
    n_b / n * |truth_b / n_b - prob_b / n_b|, is |truth_sum_b - prob_sum_b| / n."""
    count, prob_sum, truth_sum, sq = sums
    n = count.sum()
    if n == 0:
        return float("nan"), float("nan")
    return float(np.abs(truth_sum - prob_sum).sum() / n), float(sq.sum() / n)


def sums_of(r: dict) -> np.ndarray:
    """A :func:`reliability` result -> its (len(:data:`BIN_SUMS`), bins) sums, so results of
    several splits (the folds of a cross-validation) add up to the result of their pooled samples."""
    count = np.asarray(r["count"], np.float64)
    filled = count > 0

    def summed(key: str) -> np.ndarray:  # a bin's mean times its count; an empty bin's NaN mean is 0
        return np.where(filled, count * np.nan_to_num(np.asarray(r[key], np.float64)), 0.0)

    return np.stack([count, summed("confidence"), summed("observed"), summed("squared_error")])


def reliability_of_sums(sums: np.ndarray) -> dict:
    """Summed :func:`bin_sums` -> the :func:`reliability` result of the pixels behind them."""
    count, prob_sum, truth_sum, squared = sums
    bins = count.size
    if count.sum() == 0:
        return reliability(np.zeros(0), np.zeros(0), bins)
    ece, brier = ece_brier(sums)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf, obs, mse = prob_sum / count, truth_sum / count, squared / count
    return {
        "n": int(count.sum()),
        "bins": bins,
        "ece": ece,
        "brier": brier,
        "count": count.astype(int).tolist(),
        "confidence": conf.tolist(),
        "observed": obs.tolist(),
        "squared_error": mse.tolist(),
    }


def write_band_sums(path: Path, ids: list[str], calibrated: np.ndarray, uncalibrated: np.ndarray | None):
    """Each image's band-pixel bin sums (:meth:`CalibrationAccumulator.image_bin_sums`), as served
    and, where the model has logits, uncalibrated: what a case bootstrap over several reports
    (cross-validation's folds) resamples. Plain arrays (no pickled objects)."""
    arrays = {"ids": np.array(ids, dtype=str), "calibrated": calibrated}
    if uncalibrated is not None:
        arrays["uncalibrated"] = uncalibrated
    buf = BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


NPY_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def check_npz_sizes(path: Path) -> None:
    """InputError naming ``path`` when an array in the .npz declares more data than its member holds:
    numpy allocates the declared size before reading, so a damaged header would ask for gigabytes."""
    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            with archive.open(member) as stream:
                read_header = NPY_HEADER_READERS.get(np.lib.format.read_magic(stream))
                if read_header is None:  # np.savez writes 1.0 (2.0 past 64 KiB of header)
                    raise InputError(f"{path}: array {member.filename} is in an unknown .npy version")
                shape, _, dtype = read_header(stream)
                held = member.file_size - stream.tell()
            if dtype.itemsize * math.prod(shape) > held:
                raise InputError(
                    f"{path}: array {member.filename} declares {shape} of {dtype} but holds {held} bytes"
                )


def read_band_sums(path: Path) -> dict[str, np.ndarray]:
    """:func:`write_band_sums`' file -> its arrays; a missing or foreign file is an error naming it."""
    try:
        check_npz_sizes(path)
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # cut short or not a zip at all
        raise InputError(f"{path}: not readable as per-image calibration sums ({exc})") from exc
    if "ids" not in arrays or "calibrated" not in arrays:
        raise InputError(f"{path}: no per-image calibration sums (needs ids and calibrated)")
    return arrays


@dataclass
class CalibrationAccumulator:
    """Collects band pixels and per-image scores over a split, image by image."""

    threshold: float = 0.5
    band_px: int = BAND_PX
    _prob: list = field(default_factory=list)
    _truth: list = field(default_factory=list)
    _img_max: list = field(default_factory=list)
    _img_mean: list = field(default_factory=list)
    _img_truth: list = field(default_factory=list)
    _bins: list = field(default_factory=list)

    def add(self, prob: np.ndarray, label: np.ndarray, pred: np.ndarray | None = None) -> None:
        """prob float (H, W) at the label's size; pred defaults to prob >= threshold."""
        pred = prob >= self.threshold if pred is None else pred
        band = decision_band(label, pred, self.band_px)
        self._prob.append(prob[band].astype(np.float32))
        self._truth.append((label[band] == CANCER).astype(np.uint8))
        self._bins.append(bin_sums(self._prob[-1], self._truth[-1], PIXEL_BINS))
        known = label != IGNORE_INDEX
        if known.any():
            self._img_max.append(float(prob[known].max()))
            self._img_mean.append(float(prob[known].mean()))
            self._img_truth.append(float((label[known] == CANCER).any()))

    def summary_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The band pixels collected so far: (probability, truth 0/1), for pooling several."""
        prob = np.concatenate(self._prob) if self._prob else np.zeros(0)
        truth = np.concatenate(self._truth) if self._truth else np.zeros(0)
        return prob, truth

    def image_bin_sums(self) -> np.ndarray:
        """(images, 4, PIXEL_BINS): each added image's band pixels as :func:`bin_sums`, in the order
        added; the counts a case bootstrap of the pixel ECE and Brier resamples."""
        return np.stack(self._bins) if self._bins else np.zeros((0, len(BIN_SUMS), PIXEL_BINS))

    def summary(self) -> dict:
        prob, truth = self.summary_arrays()
        return {
            "band_px": self.band_px,
            "pixel": reliability(prob, truth, PIXEL_BINS),
            "image_max": reliability(np.array(self._img_max), np.array(self._img_truth), IMAGE_BINS),
            "image_mean": reliability(np.array(self._img_mean), np.array(self._img_truth), IMAGE_BINS),
        }


def reliability_bars(r: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A :func:`reliability` result -> (bin centre, observed fraction, count) of the bins that hold
    a sample. An empty bin has no observed fraction: it gets no bar, never a bar at 0, which would
    read as "none of these were cancer"."""
    edges = np.linspace(0, 1, r["bins"] + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    count = np.array(r["count"])
    filled = count > 0
    return centres[filled], np.array(r["observed"], float)[filled], count[filled]


def write_reliability_png(path: str | Path, summary: dict, title: str = "") -> None:
    """Reliability diagrams: decision-band pixels, and images by max and by mean probability."""
    # deferred: matplotlib loads in about half a second and only this plot needs it
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    panels = (
        ("pixel", f"pixels within {summary['band_px']} px of truth or prediction"),
        ("image_max", "image contains cancer: max probability"),
        ("image_mean", "image contains cancer: mean probability"),
    )
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for ax, (key, name) in zip(axes, panels, strict=False):
        r = summary[key]
        centres, obs, count = reliability_bars(r)
        ax.bar(
            centres, obs, width=1 / r["bins"], edgecolor="black", alpha=0.7, label="observed cancer fraction"
        )
        for x, y, n in zip(centres, obs, count, strict=True):
            # how many samples each bar stands on: a bar at 0 over 4 images is not one over 40,000 pixels
            ax.annotate(
                f"{n}" if n < 1000 else f"{n / 1000:.0f}k",
                (x, y),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                fontsize=5,
            )
        ax.plot([0, 1], [0, 1], "k--", label="perfect calibration")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("predicted cancer probability")
        ax.set_ylabel("observed fraction with cancer")
        ax.set_title(
            f"{name}\nECE {r['ece']:.3f} ({r['bins']} bins), Brier {r['brier']:.3f}, n={r['n']}", fontsize=8
        )
        ax.legend(fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, 110)
