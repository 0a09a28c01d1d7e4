"""Simulated post-fire needle echo drawn into a real ultrasound image.

Input: 8-bit gray image, needle entry point (on the image border) and tip (pixels), needle
outer diameter in pixels, a random generator. Output: the image with
- the shaft: a bright band of the needle's diameter with a flat end at the tip (so the
  truth tip is where the echo ends), speckled along its length;
- a reverberation tail: fainter copies repeated deeper along the beam (vertical) axis;
- an acoustic shadow below the shaft.
"""

from __future__ import annotations

import cv2
import numpy as np

SHAFT_LEVEL = (205.0, 245.0)
REVERB_DECAY = (0.45, 0.65)
REVERB_COPIES = 4
REVERB_SPACING_OD = (1.1, 1.6)  # in needle diameters
SHADOW_GAIN = (0.45, 0.7)
SPECKLE = 0.12
BLUR_SIGMA = 0.8


def _band(shape, p0, p1, width_px: float) -> np.ndarray:
    """Float mask of a flat-ended band of ``width_px`` from p0 to p1 (anti-aliased)."""
    d = np.array(p1, float) - np.array(p0, float)
    d /= np.linalg.norm(d)
    n = np.array([-d[1], d[0]]) * width_px / 2
    quad = np.array([p0 + n, p1 + n, p1 - n, p0 - n])
    f = 16.0
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round((quad) * f).astype(np.int32).reshape(-1, 1, 2)], 255, cv2.LINE_AA, shift=4)
    return mask.astype(np.float32) / 255.0


def draw_needle(gray: np.ndarray, entry, tip, od_px: float, rng: np.random.Generator) -> np.ndarray:
    """Return a copy of ``gray`` with the needle echo, reverberation tail and shadow drawn in."""
    img = gray.astype(np.float32)
    h, w = gray.shape
    entry, tip = np.asarray(entry, float), np.asarray(tip, float)
    shaft = _band((h, w), entry, tip, max(od_px, 1.5))
    # shadow: everything deeper than the shaft inside its x-span, feathered
    cols = shaft.max(axis=0)
    first = np.where(cols > 0.5, np.argmax(shaft > 0.5, axis=0), h)
    rows = np.arange(h)[:, None]
    shadow = (rows > first[None, :] + od_px).astype(np.float32)
    shadow = cv2.GaussianBlur(shadow, (0, 0), max(od_px, 1.0))
    img *= 1.0 - (1.0 - rng.uniform(*SHADOW_GAIN)) * shadow
    level = rng.uniform(*SHAFT_LEVEL)
    speckle = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 1.5)
    speckle = 1.0 + SPECKLE * speckle / (speckle.std() + 1e-6)
    layer = shaft * level * speckle
    decay = rng.uniform(*REVERB_DECAY)
    spacing = rng.uniform(*REVERB_SPACING_OD) * max(od_px, 2.0)
    for k in range(1, REVERB_COPIES + 1):
        m = np.float32([[1, 0, 0], [0, 1, k * spacing]])
        copy = cv2.warpAffine(shaft, m, (w, h)) * (decay**k)
        layer = np.maximum(layer, copy * level * 0.9 * speckle)
    layer = cv2.GaussianBlur(layer, (0, 0), BLUR_SIGMA)
    return np.clip(np.maximum(img, layer), 0, 255).astype(np.uint8)
