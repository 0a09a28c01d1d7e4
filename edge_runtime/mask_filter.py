"""The manifest's mask filter: which parts of a thresholded cancer mask count as a finding.

Input: a cancer mask (bool or uint8, non-zero = cancer) at any size, the frame's peak calibrated
cancer probability, and the manifest's ``mask_filter`` (fitted on validation data by
``sonomap calibrate --method mask-filter``, :mod:`training.mask_filter_fit`). Output: the mask with the
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

# no `from __future__ import annotations`: the annotations are the checked types, read as objects
import cv2
import numpy as np

from edge_runtime.typed_config import Section, described, number

CONNECTIVITY = 8  # diagonal neighbours belong to one part, as a reader sees a blob
# Parts are found on a grid at most this many cells on its long side: the shipped network's output
# side, so no detail the network resolves is lost, and a 1200x840 ROI costs about a millisecond
# instead of the ~10 ms of labelling every ROI pixel.
ANALYSIS_SIDE = 256


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
    """Mask (non-zero = cancer) -> the same mask without the parts ``rule`` drops (same dtype).

    A mask larger than :data:`ANALYSIS_SIDE` is analysed on blocks of k x k pixels (k the smallest
    integer that fits it): a block is foreground when any pixel in it is, parts are the 8-connected
    groups of blocks (so two parts less than a block apart count as one), and a part's area is its
    blocks' share of the grid. Every pixel keeps or loses its own part's verdict exactly."""
    if rule is None or not rule.active:
        return mask
    binary = mask.view(np.uint8) if mask.dtype == bool else mask  # OpenCV: non-zero is foreground
    if not cv2.countNonZero(binary):
        return mask
    if peak < rule.min_peak:
        return np.zeros_like(mask)
    if rule.min_area_fraction <= 0 and not rule.largest_only:
        return mask
    block = -(-max(mask.shape[:2]) // ANALYSIS_SIDE)
    grid = _block_any(binary, block)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(grid, connectivity=CONNECTIVITY)
    areas = stats[1:, cv2.CC_STAT_AREA]  # row 0 is the background
    keep = areas >= rule.min_area_fraction * grid.size
    if rule.largest_only and keep.any():
        largest = int(np.argmax(np.where(keep, areas, -1)))
        keep = np.zeros_like(keep)
        keep[largest] = True
    if keep.all():
        return mask
    verdict = np.zeros(count, np.uint8)  # label -> 1 if its part stays (label 0: background)
    verdict[1:] = keep
    kept = verdict[labels]
    if block > 1:  # nearest at an exact integer scale: pixel (y, x) reads cell (y // k, x // k)
        height, width = mask.shape[:2]
        grid_h, grid_w = kept.shape
        kept = cv2.resize(kept, (grid_w * block, grid_h * block), interpolation=cv2.INTER_NEAREST)
        kept = np.ascontiguousarray(kept[:height, :width])
    if mask.dtype == bool:
        return mask & kept.view(bool)
    return cv2.multiply(np.ascontiguousarray(mask), kept) if mask.dtype == np.uint8 else mask * kept


def _block_any(binary: np.ndarray, block: int) -> np.ndarray:
    """uint8 (H, W) -> (ceil(H/k), ceil(W/k)): 1 where any pixel of the k x k block is non-zero."""
    if block == 1:
        return binary
    # dilating with a k x k kernel anchored at its top-left corner puts each block's maximum at the
    # block's first pixel; keeping every k-th row and column keeps exactly those
    spread = cv2.dilate(binary, np.ones((block, block), np.uint8), anchor=(0, 0))
    return np.ascontiguousarray(spread[::block, ::block])
