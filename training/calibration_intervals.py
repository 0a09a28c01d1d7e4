"""95 % intervals for the decision-band calibration figures (pixel ECE and Brier) of one split.

Input: each image's band-pixel bin sums (:meth:`training.calibration.CalibrationAccumulator.image_bin_sums`)
and each image's case id. Output: ``{"ece_pixel": [low, high], "brier_pixel": [low, high]}`` and
the reasons where no interval can be given, merged into summary.json's ``ci95`` by ``evaluate``.

Why: a calibration target (band ECE <= 0.05, say) is judged on a test split of a dozen images, and
one image's lesion can hold a fifth of the band's pixels. Like the Dice intervals
(:mod:`training.intervals`), this is a percentile bootstrap over whole cases, each resample scored
from its own summed counts (count first, score second), so the pixels of one lesion are resampled
together. It says how far the figure would move with other patients, not how well a curve fitted
on validation transfers (that is ``python -m training.crossfit``).
"""

from __future__ import annotations

import numpy as np

from training.calibration import ece_brier
from training.stats import BOOTSTRAP_RESAMPLES, CI_LEVEL, MIN_CONTRIBUTING_CASES

FIGURES = ("ece_pixel", "brier_pixel")


def calibration_intervals(
    image_sums: np.ndarray, cases: list[str], seed: int = 0, n_resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """(images, 4, bins) bin sums and case ids -> ({figure: [low, high]}, {figure: reason}) for
    :data:`FIGURES`. A case contributes when any of its images has a band pixel; with fewer than
    :data:`~training.stats.MIN_CONTRIBUTING_CASES` contributing cases the interval is NaN and the
    reason says why. A resample with no band pixel has no figure and is left out."""
    if len(image_sums) != len(cases):
        raise ValueError(f"{len(image_sums)} images but {len(cases)} case ids")
    uniq = sorted(set(cases))
    per_case = (
        np.stack([sum(image_sums[i] for i, c in enumerate(cases) if c == case) for case in uniq])
        if uniq
        else np.zeros((0, *image_sums.shape[1:]))
    )
    contributing = int((per_case[:, 0].sum(axis=1) > 0).sum()) if uniq else 0
    nan = [float("nan"), float("nan")]
    if contributing < MIN_CONTRIBUTING_CASES:
        reason = (
            f"{contributing} case(s) have decision-band pixels; a case bootstrap needs at least "
            f"{MIN_CONTRIBUTING_CASES} to vary"
        )
        return {name: list(nan) for name in FIGURES}, {name: reason for name in FIGURES}
    rng = np.random.default_rng(seed)
    draws = np.full((n_resamples, len(FIGURES)), np.nan)
    for r in range(n_resamples):
        picked = rng.integers(0, len(uniq), size=len(uniq))
        # a case drawn twice counts twice: its summed sums, weighted by how often it was drawn
        weights = np.bincount(picked, minlength=len(uniq)).astype(np.float64)
        draws[r] = ece_brier(np.tensordot(weights, per_case, axes=1))
    tail = 100 * (1 - CI_LEVEL) / 2
    out = {}
    for j, name in enumerate(FIGURES):
        defined = draws[:, j][~np.isnan(draws[:, j])]
        out[name] = [float(np.percentile(defined, tail)), float(np.percentile(defined, 100 - tail))]
    return out, {}
