"""B-mode augmentations, then the runtime's own preprocessing.

Input: gray uint8 (H, W) at native size, label uint8 (H, W). Output: network input
float32 (1, h, w) made by :func:`edge_runtime.preprocess.preprocess` and label uint8 (h, w).

Geometry (flip, small rotation/scale/shift) and the resize to the network size are
one affine warp, so each image is interpolated once. Intensity changes mimic what
differs between scanners and presets: gain, contrast, gamma, speckle-like
multiplicative noise and blur. Never colour: B-mode has none.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from edge_runtime.preprocess import preprocess
from training.config_schema import AugmentConfig
from training.data import IGNORE_INDEX

UINT8_MAX = 255.0
IMAGE_FILL = 0  # outside the scan: black, like the sector border of a B-mode image


def affine_matrix(
    src_hw: tuple[int, int],
    dst_hw: tuple[int, int],
    rng: np.random.Generator | None,
    aug: AugmentConfig | None,
) -> np.ndarray:
    """2x3 matrix mapping source pixels to the (h, w) network frame, with random geometry."""
    sh, sw = src_hw
    dh, dw = dst_hw
    # base: plain resize (what the runtime's preprocess does)
    base = np.array([[dw / sw, 0, 0], [0, dh / sh, 0], [0, 0, 1]], dtype=np.float64)
    if rng is None or aug is None:
        return base[:2]
    cx, cy = dw / 2.0, dh / 2.0
    angle = math.radians(rng.uniform(-aug.rotate_deg, aug.rotate_deg))
    scale = rng.uniform(*aug.scale)
    flip = -1.0 if rng.random() < aug.hflip else 1.0
    vflip = -1.0 if rng.random() < aug.vflip else 1.0
    tx, ty = rng.uniform(-aug.translate, aug.translate, size=2) * (dw, dh)
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    rot = np.array([[cos * flip, -sin * vflip, 0], [sin * flip, cos * vflip, 0], [0, 0, 1]])
    to_c = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]])
    back = np.array([[1, 0, cx + tx], [0, 1, cy + ty], [0, 0, 1]])
    return (back @ rot @ to_c @ base)[:2]


def intensity(gray: np.ndarray, rng: np.random.Generator, aug: AugmentConfig) -> np.ndarray:
    """Gain/contrast/gamma/speckle/blur on a uint8 image -> uint8 image."""
    x = gray.astype(np.float32) / UINT8_MAX
    x = x * rng.uniform(*aug.gain)
    m = float(x.mean())
    x = (x - m) * rng.uniform(*aug.contrast) + m
    x = np.clip(x, 0.0, 1.0) ** rng.uniform(*aug.gamma)
    if rng.random() < aug.speckle_p and aug.speckle_sigma > 0:
        # speckle is multiplicative; smooth the field a little so grains span a few pixels
        noise = rng.normal(1.0, aug.speckle_sigma, size=x.shape).astype(np.float32)
        x = x * cv2.GaussianBlur(noise, (0, 0), 0.7)
    if rng.random() < aug.blur_p:
        sigma = rng.uniform(*aug.blur_sigma)
        if sigma > 0.1:
            x = cv2.GaussianBlur(x, (0, 0), sigma)
    return np.clip(x * UINT8_MAX + 0.5, 0, UINT8_MAX).astype(np.uint8)


def augment_gray(
    gray: np.ndarray, size: tuple[int, int], rng: np.random.Generator, aug: AugmentConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Random geometry and intensity: gray uint8 native size -> (uint8 (h, w), the 2x3 warp used),
    so a label can follow the image with the same warp."""
    h, w = size
    mat = affine_matrix(gray.shape, size, rng, aug)
    img = cv2.warpAffine(gray, mat, (w, h), flags=cv2.INTER_LINEAR, borderValue=IMAGE_FILL)
    return intensity(img, rng, aug), mat


def make_example(
    gray: np.ndarray,
    label: np.ndarray,
    size: tuple[int, int],
    mean: float,
    std: float,
    rng: np.random.Generator | None = None,
    aug: AugmentConfig | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(gray, label) native size -> (input float32 (1,h,w), label uint8 (h,w)).

    ``rng=None`` or ``aug=None``: no augmentation, i.e. exactly the runtime's input.
    """
    h, w = size
    use_aug = rng is not None and aug is not None and aug.enabled
    if not use_aug:
        img = gray
        lab = cv2.resize(label, (w, h), interpolation=cv2.INTER_NEAREST)
    else:
        img, mat = augment_gray(gray, size, rng, aug)
        lab = cv2.warpAffine(label, mat, (w, h), flags=cv2.INTER_NEAREST, borderValue=IGNORE_INDEX)
    return preprocess(img, h, w, mean, std), lab
