"""Calibration curve: isotonic regression of "is cancer" on the logit margin, fitted on validation.

Why: temperature scaling has one parameter and keeps p = 0.5 at logit parity. On the default
model the decision-band pixels it gives less than 0.2 are cancer about a fifth of the time (lesion
parts the network misses) while mid-range pixels are cancer less often than predicted; no single
scale fixes both, so the band ECE stays near 0.09. An isotonic regression finds the
non-decreasing map from margin to observed cancer frequency that fits best.
The graph folds a piecewise-linear function (:mod:`edge_runtime.calibration_curve`) with
:data:`CURVE_KNOTS` knots at equal-count quantiles of the margin, so the fit is that isotonic
regression within those functions: the non-decreasing knot values whose served probability has
the least squared error against the pixels' truth (the Brier score), a bounded least-squares
problem of :data:`CURVE_KNOTS` unknowns (scipy's ``lsq_linear``). Served means as the graph
serves it: the curve applied at the model's size, then the probability resized to the image
(:func:`served_prob`). Both steps are linear in the knot values, so each knot's basis function
is resized as the probability is and the problem keeps its :data:`CURVE_KNOTS` unknowns; fitting
the curve to a margin resized first would fit a probability no backend shows (they differ
wherever neighbouring network pixels fall in different segments of the curve). Reading the unconstrained
isotonic fit at the knots instead would give each segment the value of one extreme point: at the
lowest margins a block of pixels with no cancer pinned the first knot at 0 while the segment's
pixels were cancer 29 % of the time.

The mask keeps its meaning: the curve is made strictly increasing (a :data:`STRICT_RAMP` share of
a straight ramp is blended in), so at the model's size "probability >= curve(0)" is exactly "the
cancer logit wins"; the threshold becomes curve(0), recorded in the manifest beside the curve.
Only the bilinear resize of the probability to the image's size can move a boundary pixel (the
curve and the logistic interpolate differently between two pixels either side of the threshold).

Inputs: per-image logits of a split (:class:`training.temperature.LogitMap`) and the manifest.
Outputs: the curve ``{margin: [...], prob: [...]}``, the new threshold and before/after figures.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np
from scipy.optimize import lsq_linear

from edge_runtime.calibration_curve import apply_curve, cancer_probability
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.typed_config import finite, shown
from training.calibration import BAND_PX, CalibrationAccumulator, decision_band
from training.data import CANCER

# Where the plain softmax puts logit parity (two classes): the threshold that gives the mask a curve
# keeps, and the one a manifest with a curve but no record of the threshold it replaced goes back to.
LOGIT_PARITY_THRESHOLD = 0.5
CURVE_KNOTS = 16  # enough for the shape seen on BUSI; each knot costs two element-wise ops per pixel
STRICT_RAMP = 1e-3  # share of a 0..1 ramp blended in so the curve strictly increases
# added to the normal equations' diagonal: keeps them positive definite when a segment holds too
# few pixels to pin both of its knots
GRAM_RIDGE = 1e-9
PROB_EPS = 1e-7


class CurveFitError(InputError, ValueError):
    """The split's decision-band pixels cannot carry a curve (too few, all equal, or on one side of
    logit parity). The caller names the split and the way out (:func:`training.temperature.calibrate_checkpoint`)."""


def _resize(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return cv2.resize(a.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def served_prob(logits: np.ndarray, manifest, shape: tuple[int, int]) -> np.ndarray:
    """The probability a folded graph of ``manifest`` serves, at the image size."""
    return _resize(cancer_probability(logits, manifest), shape)


def uncalibrated_threshold(manifest, origin) -> float:
    """The threshold of the model before any calibration curve: ``manifest.threshold`` without a
    curve, else the one the first curve replaced, carried forward by every refit in
    ``extra.calibration.threshold_before`` (:data:`LOGIT_PARITY_THRESHOLD` when no record says).
    A curve's own threshold is curve(0), a value of that curve only: recording it as the one
    "before" a refit would hand a temperature fit afterwards a cut-off of a curve it removes.
    ``origin``: the manifest file, named in the ConfigError for a record that is no threshold."""
    if not manifest.calibration_curve:
        return float(manifest.threshold)
    record = manifest.extra.get("calibration") or {}
    before = record.get("threshold_before", LOGIT_PARITY_THRESHOLD) if isinstance(record, dict) else None
    # the record is free-form YAML (extra): a value that is no threshold must not become the mask's
    if not finite(before) or not 0.0 < before < 1.0:
        raise ConfigError(
            f"{origin}: 'extra.calibration.threshold_before' must be a number in (0, 1), got {shown(before)} "
            "(the threshold the calibration curve replaced)"
        )
    return float(before)


class BandImage(NamedTuple):
    """One image's decision band: ``margin``, the temperature-scaled logit margin at the model's
    size; ``band``, the band pixels (image size); ``truth``, 1.0 where a band pixel is cancer."""

    margin: np.ndarray
    band: np.ndarray
    truth: np.ndarray


def band_images(maps, manifest, band_px: int = BAND_PX) -> list[BandImage]:
    """Decision band of every map. The band comes from the mask the model serves now (which the
    curve keeps)."""
    cancer, other = manifest.cancer_index, 1 - manifest.cancer_index
    out = []
    for m in maps:
        pred = served_prob(m.logits, manifest, m.label.shape) >= manifest.threshold
        band = decision_band(m.label, pred, band_px)
        z = (m.logits[cancer] - m.logits[other]) / np.float32(manifest.temperature)
        out.append(BandImage(z.astype(np.float32), band, (m.label[band] == CANCER).astype(np.float64)))
    return out


def band_margins(images: list[BandImage]) -> tuple[np.ndarray, np.ndarray]:
    """Every band pixel's margin resized to the image, and its truth: where the knots are placed."""
    margins = [_resize(im.margin, im.band.shape)[im.band] for im in images]
    truths = [im.truth for im in images]
    return np.concatenate(margins).astype(np.float64), np.concatenate(truths)


def _hat_weights(margin: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each margin's knot below and its weight on the knot above (1 - weight on the one below),
    clamped at the ends as the served curve is (``np.interp``)."""
    below = np.clip(np.searchsorted(at, margin, side="right") - 1, 0, at.size - 2)
    return below, np.clip((margin - at[below]) / (at[below + 1] - at[below]), 0.0, 1.0)


def _served_basis(image: BandImage, at: np.ndarray) -> np.ndarray:
    """(band pixels, knots): what each knot's value adds to each band pixel's served probability:
    the knot's hat function on the model-size margin, resized to the image as the probability is."""
    flat = image.margin.ravel().astype(np.float64)
    below, w = _hat_weights(flat, at)
    planes = np.zeros((at.size, flat.size), np.float32)
    pixel = np.arange(flat.size)
    planes[below, pixel] = 1.0 - w
    planes[below + 1, pixel] = w
    shape = image.margin.shape
    return np.stack([_resize(p.reshape(shape), image.band.shape)[image.band] for p in planes], axis=1)


def _served_normal_equations(images: list[BandImage], at: np.ndarray):
    """Normal equations (A'A, A't) of the served basis over every band pixel, summed image by
    image (never a pixels-by-knots matrix of the whole split)."""
    gram, rhs = np.zeros((at.size, at.size)), np.zeros(at.size)
    for image in images:
        basis = _served_basis(image, at).astype(np.float64)
        gram += basis.T @ basis
        rhs += basis.T @ image.truth
    return gram, rhs


def _knots(margin: np.ndarray, knots: int) -> np.ndarray:
    if margin.size == 0:
        raise CurveFitError("no decision-band pixels to fit a calibration curve on")
    at = np.unique(np.quantile(margin, np.linspace(0.0, 1.0, knots)))
    if at.size < 2:
        raise CurveFitError("the margins are all equal: a curve cannot be fitted")
    return at


def _monotone_values(gram: np.ndarray, rhs: np.ndarray, at: np.ndarray) -> dict:
    """The non-decreasing knot values that solve the normal equations in least squares ->
    strictly increasing curve {margin, prob}."""
    # knot values v = cumsum(steps), steps[1:] >= 0 keeps them non-decreasing; least squares on
    # the Cholesky factor of the normal equations is least squares on the pixels themselves
    cumsum = np.tril(np.ones((at.size, at.size)))
    factor = np.linalg.cholesky(cumsum.T @ gram @ cumsum + GRAM_RIDGE * np.eye(at.size)).T
    target = np.linalg.solve(factor.T, cumsum.T @ rhs)
    lower = np.r_[-np.inf, np.zeros(at.size - 1)]
    steps = lsq_linear(factor, target, bounds=(lower, np.full(at.size, np.inf))).x
    values = np.clip(cumsum @ steps, 0.0, 1.0)  # clipping keeps the order
    values = (1.0 - STRICT_RAMP) * values + STRICT_RAMP * np.linspace(0.0, 1.0, at.size)
    return {"margin": [float(v) for v in at], "prob": [float(v) for v in values]}


def fit_served_curve(images: list[BandImage], knots: int = CURVE_KNOTS) -> dict:
    """Least-squares monotone piecewise-linear fit of the band pixels' truth by the probability as
    served (the curve at the model's size, then resized to each image; module docstring) ->
    strictly increasing curve {margin, prob} with ``knots`` knots at equal-count quantiles of the
    margin."""
    at = _knots(band_margins(images)[0], knots)
    return _monotone_values(*_served_normal_equations(images, at), at)


def _nll(prob: np.ndarray, truth: np.ndarray) -> float:
    p = np.clip(prob.astype(np.float64), PROB_EPS, 1 - PROB_EPS)
    return float(-np.mean(truth * np.log(p) + (1 - truth) * np.log(1 - p)))


def calibrate_curve(maps, manifest, band_px: int = BAND_PX, origin="the manifest") -> tuple[object, dict]:
    """Fit the curve on ``maps`` -> (manifest with curve and threshold, record for the manifest).
    A refit keeps ``threshold_before`` at the threshold of the model before any curve
    (:func:`uncalibrated_threshold`; ``origin``, the manifest file, names a bad record)."""
    first_threshold = uncalibrated_threshold(manifest, origin)
    images = band_images(maps, manifest, band_px)
    curve = fit_served_curve(images)
    if not curve["margin"][0] < 0.0 < curve["margin"][-1]:
        raise CurveFitError(
            "the decision-band margins do not lie on both sides of logit parity (0), so a curve "
            "could not keep the mask"
        )
    threshold = float(apply_curve(np.zeros(1), curve)[0])
    updated = manifest.derive(calibration_curve=curve, threshold=threshold)
    before, after = CalibrationAccumulator(manifest.threshold), CalibrationAccumulator(threshold)
    band_before, band_after = [], []  # the served probability on the band pixels the curve was fitted on
    for m, image in zip(maps, images, strict=True):
        old = served_prob(m.logits, manifest, m.label.shape)
        new = served_prob(m.logits, updated, m.label.shape)
        pred = old >= manifest.threshold
        before.add(old, m.label, pred)
        after.add(new, m.label, pred)
        band_before.append(old[image.band])
        band_after.append(new[image.band])
    b, a = before.summary(), after.summary()
    truth = np.concatenate([image.truth for image in images])
    record = {
        "method": "curve",
        "knots": len(curve["margin"]),
        "pixels": int(truth.size),
        "band_px": band_px,
        "threshold_before": first_threshold,
        "threshold": threshold,
        "nll_before": _nll(np.concatenate(band_before), truth),
        "nll_after": _nll(np.concatenate(band_after), truth),
        "ece_pixel_before": b["pixel"]["ece"],
        "ece_pixel_after": a["pixel"]["ece"],
        "ece_image_max_before": b["image_max"]["ece"],
        "ece_image_max_after": a["image_max"]["ece"],
    }
    return updated, record
