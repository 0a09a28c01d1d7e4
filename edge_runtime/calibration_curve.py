"""The calibrated cancer probability from a network's logits, as the manifest defines it.

Input: logits ``[C, h, w]`` (float) and the model manifest. Output: the cancer probability
``[h, w]`` float32 at the logits' size. Two calibrations, both fitted on validation data
(``sonomap calibrate``) and folded into exported graphs (``export/folded.py``); this module is the
same computation for consumers of raw logits (the unfolded runtime paths, evaluation, fitting):

- ``temperature`` T: softmax(logits / T) (Guo et al., ICML 2017);
- ``calibration_curve`` (two-class models): the temperature-scaled margin
  m = (cancer logit - other logit) / T goes through a non-decreasing piecewise-linear curve given
  by knots ``margin`` -> ``prob`` (an isotonic regression fitted on validation pixels), constant
  beyond the end knots. It replaces the logistic sigmoid(m), which is what softmax gives for two
  classes, when one scale cannot match the observed cancer frequencies.
"""

from __future__ import annotations

import numpy as np

from edge_runtime.errors import ConfigError
from edge_runtime.typed_config import finite, shown

MIN_KNOTS = 2


def check_curve(curve: dict, num_classes: int, origin: str, threshold: float | None = None) -> None:
    """Raise ConfigError naming ``origin`` and the key unless ``curve`` is a usable calibration curve
    and ``threshold`` (when given) a cut-off it can give: some probability below it, some at it."""
    if not isinstance(curve, dict) or set(curve) != {"margin", "prob"}:
        raise ConfigError(f"{origin}: 'calibration_curve' must be a mapping with keys margin and prob")
    margin, prob = curve["margin"], curve["prob"]
    if not isinstance(margin, list) or not isinstance(prob, list) or len(margin) != len(prob):
        raise ConfigError(f"{origin}: 'calibration_curve' margin and prob must be lists of one length")
    if len(margin) < MIN_KNOTS:
        raise ConfigError(f"{origin}: 'calibration_curve' needs at least {MIN_KNOTS} knots")
    for key, knots in (("margin", margin), ("prob", prob)):
        for i, v in enumerate(knots):  # '0.5', true, [..]: YAML takes them, numpy would crash or coerce
            if not finite(v):
                raise ConfigError(
                    f"{origin}: 'calibration_curve.{key}[{i}]' must be a finite number, got {shown(v)}"
                )
    m, p = np.asarray(margin, np.float64), np.asarray(prob, np.float64)
    if not (np.all(np.isfinite(m)) and np.all(np.diff(m) > 0)):
        raise ConfigError(f"{origin}: 'calibration_curve.margin' must be finite and strictly increasing")
    if not (np.all((p >= 0) & (p <= 1)) and np.all(np.diff(p) >= 0)):
        raise ConfigError(f"{origin}: 'calibration_curve.prob' must lie in [0, 1] and never decrease")
    if num_classes != 2:
        raise ConfigError(
            f"{origin}: 'calibration_curve' needs a two-class model, 'classes' has {num_classes}"
        )
    if threshold is not None and not p.min() < threshold <= p.max():  # else: every pixel, or none, cancer
        raise ConfigError(
            f"{origin}: 'threshold' {threshold} is not a cut-off of the calibration curve: its "
            f"probabilities span [{p.min():g}, {p.max():g}], so the mask would be all or nothing"
        )


def apply_curve(margin: np.ndarray, curve: dict) -> np.ndarray:
    """Temperature-scaled logit margin -> probability through the curve (float32)."""
    knots = np.asarray(curve["margin"], np.float64)
    values = np.asarray(curve["prob"], np.float64)
    return np.interp(margin, knots, values).astype(np.float32)


def cancer_probability(logits: np.ndarray, manifest) -> np.ndarray:
    """logits float [C, h, w] -> calibrated cancer probability float32 [h, w]."""
    z = np.asarray(logits, np.float32) / np.float32(manifest.temperature)
    cancer = manifest.cancer_index
    if manifest.calibration_curve:
        other = 1 - cancer
        return apply_curve(z[cancer] - z[other], manifest.calibration_curve)
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return (e[cancer] / e.sum(axis=0)).astype(np.float32)
