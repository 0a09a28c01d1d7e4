"""The manifest's mask filter: which parts of a thresholded cancer mask count as a finding.

Input: a cancer mask (bool or uint8, non-zero = cancer) at any size, the frame's peak calibrated
cancer probability, and the manifest's ``mask_filter`` (fitted on validation data by
``sonomap calibrate --mask-filter``, :mod:`training.mask_filter_fit`). Output: the mask with the
parts the filter drops set to 0 (a new array; the input is not changed). Three rules, each off by
default, applied in this order:

- ``min_peak``: a frame whose highest probability is below it gets no mask at all. Scattered
  evidence just over the threshold is what most false cancer pixels on benign images look like;
- ``min_area_fraction``: connected parts (8-connected) smaller than this fraction of the image are
  dropped (specks at a speckle or shadow edge);
- ``largest_only``: of what remains, only the largest part is kept (a biopsy targets one lesion).

Evaluation (``training/evaluate.py``) and the runtime (``pipeline/stages.py``) call this one
function, as they share :func:`edge_runtime.preprocess.preprocess_for`, so the figures published
for a model are those of the masks the cart shows. Connected parts cannot be expressed in the
exported graph, so the filter is not folded into it; it runs on the CPU after the backend.
"""

# no `from __future__ import annotations`: msgspec reads these annotations as objects
import cv2
import numpy as np

from edge_runtime.typed_config import Section, described, number

CONNECTIVITY = 8  # diagonal neighbours belong to one part, as a reader sees a blob


class MaskFilter(Section):
    min_peak: number("a number in [0, 1]", ge=0, le=1) = 0.0
    min_area_fraction: number("a number in [0, 1)", ge=0, lt=1) = 0.0
    largest_only: described(bool, "true or false") = False

    @property
    def active(self) -> bool:
        return self.min_peak > 0 or self.min_area_fraction > 0 or self.largest_only

    def describe(self) -> str:
        parts = [f"peak >= {self.min_peak:g}"] if self.min_peak > 0 else []
        if self.min_area_fraction > 0:
            parts.append(f"parts >= {self.min_area_fraction:g} of the image")
        if self.largest_only:
            parts.append("largest part only")
        return ", ".join(parts) or "none"


def filter_mask(mask: np.ndarray, peak: float, rule: MaskFilter | None) -> np.ndarray:
    """Mask (non-zero = cancer) -> the same mask without the parts ``rule`` drops (same dtype)."""
    if rule is None or not rule.active or not mask.any():
        return mask
    if peak < rule.min_peak:
        return np.zeros_like(mask)
    if rule.min_area_fraction <= 0 and not rule.largest_only:
        return mask
    binary = (mask != 0).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=CONNECTIVITY)
    areas = stats[1:, cv2.CC_STAT_AREA]  # row 0 is the background
    keep = areas >= rule.min_area_fraction * mask.size
    if rule.largest_only and keep.any():
        largest = int(np.argmax(np.where(keep, areas, -1)))
        keep = np.zeros_like(keep)
        keep[largest] = True
    if keep.all():
        return mask
    lookup = np.concatenate([[False], keep])  # label -> kept?
    return np.where(lookup[labels], mask, np.zeros_like(mask))
