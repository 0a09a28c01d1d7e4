"""The mask filter's place in a manifest: ``mask_filter`` and its fit record ``extra.mask_filter_fit``
(written by :mod:`training.mask_filter_fit`), and their removal by a calibration that changes the
probabilities (:mod:`training.temperature`). Apart from both so that neither imports the other.
"""

from __future__ import annotations

from edge_runtime.manifest import Manifest

FIT_RECORD = "mask_filter_fit"  # the manifest's extra key for the fit's figures and split


def without_mask_filter(manifest: Manifest) -> tuple[Manifest, str]:
    """``manifest`` without its mask filter and fit record, and what was removed: the filter's
    description ("none" for a record of a fit that chose none), or "" when it had neither. For a
    calibration that changes the probabilities: the filter's ``min_peak`` and the mask it was
    chosen on, and the figures its record holds, were those of the probabilities it replaces."""
    extra = {key: value for key, value in manifest.extra.items() if key != FIT_RECORD}
    if manifest.mask_filter is None and len(extra) == len(manifest.extra):
        return manifest, ""
    removed = manifest.mask_filter.describe() if manifest.mask_filter is not None else "none"
    return manifest.derive(mask_filter=None, extra=extra), removed
