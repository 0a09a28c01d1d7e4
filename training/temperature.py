"""Temperature scaling: one scalar T, logits / T before the softmax, fitted on validation data.

Why one scalar: it keeps the ranking of every pixel, so at the model's size p >= 0.5 exactly where
the cancer logit wins, at any T, while the probabilities on screen become calibrated (Guo et al.,
ICML 2017). The mask at threshold 0.5 is the same except at its boundary: the probability is
resized bilinearly to the image's size after the softmax, and interpolating calibrated rather than
uncalibrated probabilities can put a boundary pixel on the other side of 0.5. T is fitted by minimising the negative
log-likelihood over the decision-band pixels (:func:`training.calibration.decision_band`, band
taken from the uncalibrated mask) of the validation split, with the probability computed exactly
as the exported graph computes it: softmax at the model's size, cancer channel resized
(bilinear) to the image's size.

Inputs: an eval-mode model, its manifest, dataset samples. Outputs: per-image logits
(:class:`LogitMap`), the fitted T, and calibrated probability maps. A model with a NaN/inf logit
is refused with one line naming the checkpoint and the image (:func:`refuse_non_finite`, the
check ``sonomap evaluate`` makes), before anything is fitted or written; so is a split without any
cancer pixel (:mod:`training.label_check`: nothing to calibrate against). ``calibrate_checkpoint``
names the data it fitted on by the dataset folder's base name and digest
(:func:`training.provenance.fitted_on`), never by path: the manifest goes to the cart.

What ``calibrate_checkpoint`` reads: each image and label of the split is read and decoded once
(:func:`training.label_check.read_checked`: the label check counts the same arrays the fit uses, and
refuses the split before the model runs); the fit and the before/after ECE then run on the maps in
memory, which hold the split as calibration always has. Each file of the whole dataset is read once
more, as bytes, for the digest the manifest records (:func:`training.provenance.fitted_on`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from scipy.optimize import minimize_scalar

from edge_runtime.errors import InputError
from edge_runtime.manifest import manifest_path, save_manifest
from edge_runtime.preprocess import preprocess_for
from training.calibration import BAND_PX, CalibrationAccumulator, decision_band
from training.checkpoint import load_model
from training.data import CANCER, read_cases, read_pair, select_split
from training.distributed import pick_device
from training.isotonic import CurveFitError, calibrate_curve, uncalibrated_threshold
from training.label_check import read_checked
from training.mask_filter_record import without_mask_filter
from training.provenance import fitted_on

T_MIN, T_MAX = 0.05, 20.0  # search range; a fit at either end means the data cannot pin T down
PROB_EPS = 1e-7  # keeps log() finite
FIT_TOLERANCE = 1e-4  # on log T
# A fit this close to a bound (on log T; a few times the search's own tolerance, which is how far
# from the bound it stops when the NLL still falls there) ended at the bound, not at a minimum
AT_BOUND_LOG = 10 * FIT_TOLERANCE


@dataclass
class LogitMap:
    id: str
    logits: np.ndarray  # float32 (C, h, w) at the model's input size
    label: np.ndarray  # uint8 (H, W)
    gray: np.ndarray  # uint8 (H, W)


class TemperatureAtBound(InputError, ValueError):
    """The NLL still falls at an end of the search range: the data cannot pin T down, and the
    bound is no fitted value. The caller names the checkpoint and the split
    (:func:`calibrate_checkpoint`); the manifest is not written."""


class NonFiniteOutput(InputError, ValueError):
    """A model gave a NaN or infinite output: weights that diverged. One line for the command
    (an :class:`InputError`), a ValueError for a library caller."""


def refuse_non_finite(source, sample, outputs, what: str, refused: str) -> None:
    """Raise :class:`NonFiniteOutput` naming ``source`` (the checkpoint) and the sample's image when
    any of ``outputs`` (arrays; None skipped) holds a NaN or inf: such a model has no score and no
    calibration (a NaN compares false with every threshold and lands in no bin), so the command
    stops before it writes anything. ``what``: the output checked; ``refused``: what is not done."""
    for out in outputs:
        if out is not None and not np.isfinite(out).all():
            raise NonFiniteOutput(
                f"{source}: gives a non-finite (NaN/inf) {what} on image {sample.image} "
                f"(id {sample.id}); the model is broken (e.g. its training diverged) and is not {refused}"
            )


@torch.no_grad()
def logit_maps(
    model, manifest, samples, device: torch.device | None = None, source="the model", pairs=None
) -> list[LogitMap]:
    """Each sample's logits at the model's input size; a NaN/inf logit stops with one line naming
    ``source`` (the checkpoint) and the image (:func:`refuse_non_finite`). ``pairs``: the samples'
    (gray, label), already read (:func:`training.label_check.read_checked`); else each is read here."""
    out = []
    pairs = pairs if pairs is not None else map(read_pair, samples)  # read one at a time
    for s, (gray, label) in zip(samples, pairs, strict=True):
        x = torch.from_numpy(preprocess_for(gray, manifest))[None]
        logits = model(x.to(device) if device is not None else x).float()[0].cpu().numpy()
        refuse_non_finite(source, s, (logits,), "output (logits)", "calibrated")
        out.append(LogitMap(s.id, logits, label, gray))
    return out


def calibrated_prob(
    logits: np.ndarray, temperature: float, cancer_index: int, shape: tuple[int, int]
) -> np.ndarray:
    """Softmax(logits / T), cancer channel, bilinear to shape (H, W): as the folded graph does."""
    z = logits / np.float32(temperature)
    z = z - z.max(axis=0, keepdims=True)
    e = np.exp(z)
    prob = (e[cancer_index] / e.sum(axis=0)).astype(np.float32)
    return cv2.resize(prob, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def _band_targets(maps: list[LogitMap], cancer_index: int, threshold: float, band_px: int):
    bands = []
    for m in maps:
        pred = calibrated_prob(m.logits, 1.0, cancer_index, m.label.shape) >= threshold
        band = decision_band(m.label, pred, band_px)
        bands.append((band, (m.label[band] == CANCER).astype(np.float64)))
    return bands


def band_nll(maps: list[LogitMap], temperature: float, cancer_index: int, bands) -> float:
    total, n = 0.0, 0
    for m, (band, truth) in zip(maps, bands, strict=False):
        if not band.any():
            continue
        p = calibrated_prob(m.logits, temperature, cancer_index, m.label.shape)[band].astype(np.float64)
        p = np.clip(p, PROB_EPS, 1 - PROB_EPS)
        total -= float(np.sum(truth * np.log(p) + (1 - truth) * np.log(1 - p)))
        n += truth.size
    return total / max(n, 1)


def fit_temperature(
    maps: list[LogitMap], cancer_index: int, threshold: float = 0.5, band_px: int = BAND_PX
) -> dict:
    """Fit T on the maps' decision bands; returns {temperature, nll_before, nll_after, pixels}.
    Raises :class:`NonFiniteOutput` (a ValueError) on a NaN/inf logit: its NLL is NaN at every T,
    and the bounded search would return an arbitrary T as if fitted; :class:`TemperatureAtBound`
    when the search ends at :data:`T_MIN` or :data:`T_MAX` (a bound, not a fit)."""
    for m in maps:
        if not np.isfinite(m.logits).all():
            raise NonFiniteOutput(f"image {m.id}: non-finite (NaN/inf) logits; no temperature can be fitted")
    bands = _band_targets(maps, cancer_index, threshold, band_px)
    pixels = int(sum(t.size for _, t in bands))
    if pixels == 0:
        # an input problem (a split without cancer, a model that predicts none), said in one line
        raise InputError(
            "no decision-band pixels to fit a temperature on: the split has no cancer pixel and the model "
            "predicts none; calibrate on a split with cancer"
        )
    res = minimize_scalar(
        lambda lt: band_nll(maps, math.exp(lt), cancer_index, bands),
        bounds=(math.log(T_MIN), math.log(T_MAX)),
        method="bounded",
        options={"xatol": FIT_TOLERANCE},
    )
    t = float(math.exp(res.x))
    bounds = (
        (T_MIN, "lower", "its cancer and tissue logits barely differ"),
        (T_MAX, "upper", "its logits barely agree with the labels there"),
    )
    for bound, side, why in bounds:
        if abs(res.x - math.log(bound)) <= AT_BOUND_LOG:
            raise TemperatureAtBound(
                f"the fit stopped at the {side} search bound T = {bound:g} (range {T_MIN:g}..{T_MAX:g}): "
                f"the decision-band NLL still falls beyond it, so this data cannot pin T down ({why})"
            )
    return {
        "temperature": t,
        "nll_before": band_nll(maps, 1.0, cancer_index, bands),
        "nll_after": float(res.fun),
        "pixels": pixels,
        "band_px": band_px,
    }


def _ece_pair(maps: list[LogitMap], temperature: float, cancer_index: int, threshold: float) -> dict:
    before, after = CalibrationAccumulator(threshold), CalibrationAccumulator(threshold)
    for m in maps:
        raw = calibrated_prob(m.logits, 1.0, cancer_index, m.label.shape)
        before.add(raw, m.label, raw >= threshold)
        # each over its own mask's band: the same pixels at 0.5, not at another threshold kept as a probability
        calibrated = calibrated_prob(m.logits, temperature, cancer_index, m.label.shape)
        after.add(calibrated, m.label, calibrated >= threshold)
    return {"before": before.summary(), "after": after.summary()}


def calibrate_checkpoint(
    checkpoint, data, split: str = "val", device: str = "cpu", method: str = "temperature"
) -> dict:
    """Fit T (or, ``method="curve"``, a calibration curve: :mod:`training.isotonic`) on a split,
    write it into the checkpoint's manifest (CK.yaml); returns the record.

    The threshold keeps its meaning: with T > 0 the mask at 0.5 is the mask at logit parity at the
    model's size, so the same pixels before and after except where the bilinear resize to the
    image's size moves a boundary pixel; any other threshold (``eval.threshold`` at training) is kept
    as a probability, so its mask moves with T, and the command says so. A curve moves the threshold
    to its value at logit parity: again the same mask up to such boundary pixels. A temperature fit
    starts from the threshold of the model before any curve
    (:func:`training.isotonic.uncalibrated_threshold`); one that ends at a search bound is refused
    (:class:`TemperatureAtBound`, naming the checkpoint, the data and the split) and nothing is written.
    Either fit removes the manifest's mask filter (:func:`_save_calibrated`): it was chosen on the
    probabilities the fit replaces.
    """
    model, manifest = load_model(checkpoint)
    dev = pick_device(device)
    cases = read_cases(data)
    samples = select_split(cases, split, data)
    # each image and label read once, the labels checked on that read: without a cancer pixel there is
    # nothing to calibrate against, refused before the model runs (the maps hold these pairs anyway)
    pairs = read_checked(samples, data, split, f"so no calibration {method} can be fitted")
    data_record = fitted_on(data, split, cases)  # folder name + digest: the manifest goes to the cart
    maps = logit_maps(model.to(dev), manifest, samples, dev, checkpoint, pairs)
    del pairs  # the maps hold the same arrays
    origin = manifest_path(checkpoint)
    if method == "curve":
        try:
            updated, record = calibrate_curve(maps, manifest, origin=origin)
        except CurveFitError as exc:  # before the manifest is written: it stays as it was
            images = f"{len(maps)} image{'' if len(maps) == 1 else 's'}"
            raise InputError(
                f"--data {data} split {split} ({images}): no calibration curve can be fitted: {exc}; "
                "use --method temperature, or a larger split"
            ) from exc
        record.update(data_record)
        return _save_calibrated(updated, record, checkpoint)
    # back to the threshold of the model before any curve (the mask at T = 1, up to boundary
    # pixels), however many times a curve was refitted
    threshold = uncalibrated_threshold(manifest, origin)
    try:
        fit = fit_temperature(maps, manifest.cancer_index, threshold)
    except TemperatureAtBound as exc:  # before the manifest is written: it stays as it was
        raise TemperatureAtBound(
            f"--checkpoint {checkpoint}: no temperature fitted on --data {data} split {split}: {exc}; "
            f"{origin.name} is left unchanged (check the model, e.g. retrain it, or calibrate on other data)"
        ) from exc
    eces = _ece_pair(maps, fit["temperature"], manifest.cancer_index, threshold)
    record = {
        **fit,
        **data_record,
        "threshold": threshold,
        "ece_pixel_before": eces["before"]["pixel"]["ece"],
        "ece_pixel_after": eces["after"]["pixel"]["ece"],
        "ece_image_max_before": eces["before"]["image_max"]["ece"],
        "ece_image_max_after": eces["after"]["image_max"]["ece"],
    }
    updated = manifest.derive(temperature=fit["temperature"], calibration_curve=None, threshold=threshold)
    return _save_calibrated(updated, record, checkpoint)


def _save_calibrated(manifest, record: dict, checkpoint) -> dict:
    """Save ``manifest`` beside ``checkpoint`` with ``record`` as its calibration and without a mask
    filter: the filter and its fit record were of the probabilities this calibration replaces
    (:func:`training.mask_filter_record.without_mask_filter`). Returns the record, plus what was
    removed under ``mask_filter_removed`` ("" when nothing), which the manifest does not keep."""
    kept, removed = without_mask_filter(manifest)
    save_manifest(kept.derive(extra={**kept.extra, "calibration": record}), checkpoint)
    return {**record, "mask_filter_removed": removed}
