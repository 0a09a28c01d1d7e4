"""The image-restoration pretext task of self-supervised pretraining (Models Genesis).

Input: a clean gray image as float32 in [0, 1] (already augmented and at the network's size) and a
seeded RNG. Output: a distorted copy of it; the network learns to restore the clean image from it.

Why these four distortions: Zhou et al., "Models Genesis" (Medical Image Analysis 2021) pretrain
the whole encoder-decoder of a U-Net on unlabelled medical images by restoring images from a
non-linear intensity remap (learns tissue intensity), local pixel shuffling (texture and edges),
and in-/out-painting (context and shape). The probabilities are the paper's defaults. No library
ships these distortions for 2-D numpy images, so they are written here (about 60 lines).
"""

from __future__ import annotations

import numpy as np

NONLINEAR_P = 0.9  # Models Genesis defaults: chance of each distortion
LOCAL_SHUFFLE_P = 0.5
PAINT_P = 0.9
OUTPAINT_SHARE = 0.8  # of the painted images, this share are out-painted (the rest in-painted)
CURVE_SAMPLES = 1000  # points along the Bezier curve the intensity map interpolates
SHUFFLE_SIDE = (2, 8)  # a shuffled window's side in pixels: speckle-scale texture, not anatomy
SHUFFLE_SHARE = 0.5  # of the windows, this share is shuffled
INPAINT_BOXES = 5  # at most this many noise boxes
INPAINT_SIDE = (1 / 6, 1 / 3)  # an in-painted box's side, as a share of the image's side
OUTPAINT_BOXES = 5  # at most this many boxes of the image kept inside the noise
OUTPAINT_SIDE = (3 / 7, 4 / 7)


def _bezier_map(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A smooth monotone intensity remap through (0, 0), two random control points and (1, 1);
    half the time inverted (dark becomes bright), as in the paper."""
    p1, p2 = rng.random(2), rng.random(2)
    t = np.linspace(0.0, 1.0, CURVE_SAMPLES)[:, None]
    pts = 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3  # control points 0 and 1 vanish
    xs, ys = pts[:, 0], pts[:, 1]
    order = np.argsort(xs)
    xs, ys = xs[order], ys[order]
    if rng.random() < 0.5:
        ys = 1.0 - ys
    return np.interp(x, xs, ys).astype(np.float32)


def _local_shuffle(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pixels shuffled within small square windows (a grid at a random offset; a random half of
    its windows): fine texture is scrambled, structure larger than a window stays."""
    out = x.copy()
    side = int(rng.integers(SHUFFLE_SIDE[0], SHUFFLE_SIDE[1] + 1))
    oy, ox = (int(v) for v in rng.integers(0, side, size=2))
    ny, nx = (x.shape[0] - oy) // side, (x.shape[1] - ox) // side
    if ny == 0 or nx == 0:
        return out
    region = x[oy : oy + ny * side, ox : ox + nx * side]
    windows = region.reshape(ny, side, nx, side).transpose(0, 2, 1, 3).reshape(ny, nx, side * side)
    order = np.argsort(rng.random(windows.shape), axis=-1)  # one random permutation per window
    shuffled = np.take_along_axis(windows, order, axis=-1)
    chosen = rng.random((ny, nx, 1)) < SHUFFLE_SHARE
    mixed = np.where(chosen, shuffled, windows)
    out[oy : oy + ny * side, ox : ox + nx * side] = (
        mixed.reshape(ny, nx, side, side).transpose(0, 2, 1, 3).reshape(ny * side, nx * side)
    )
    return out


def _box(rng: np.random.Generator, h: int, w: int, side: tuple[float, float]) -> tuple[slice, slice]:
    bh = int(h * rng.uniform(*side))
    bw = int(w * rng.uniform(*side))
    y0, x0 = rng.integers(0, h - bh + 1), rng.integers(0, w - bw + 1)
    return slice(y0, y0 + bh), slice(x0, x0 + bw)


def _inpaint(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = x.copy()
    h, w = x.shape
    for _ in range(rng.integers(1, INPAINT_BOXES + 1)):
        ys, xs = _box(rng, h, w, INPAINT_SIDE)
        out[ys, xs] = rng.random((ys.stop - ys.start, xs.stop - xs.start))
    return out


def _outpaint(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = rng.random(x.shape).astype(np.float32)
    h, w = x.shape
    for _ in range(rng.integers(1, OUTPAINT_BOXES + 1)):
        ys, xs = _box(rng, h, w, OUTPAINT_SIDE)
        out[ys, xs] = x[ys, xs]
    return out


def distort(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Clean float32 (H, W) in [0, 1] -> distorted float32 (H, W) in [0, 1], the network's input."""
    if clean.ndim != 2:
        raise ValueError(f"distort expects a 2-D gray image, got shape {clean.shape}")
    x = clean.astype(np.float32)
    if rng.random() < LOCAL_SHUFFLE_P:
        x = _local_shuffle(x, rng)
    if rng.random() < NONLINEAR_P:
        x = _bezier_map(x, rng)
    if rng.random() < PAINT_P:
        x = _outpaint(x, rng) if rng.random() < OUTPAINT_SHARE else _inpaint(x, rng)
    return np.clip(x, 0.0, 1.0).astype(np.float32)
