"""Tissue vs glass, ink and debris on one slide level, by colour.

Input: RGB of one level and its µm per pixel. Output: ``TissueMasks`` — the tissue mask used
for the fragments, the rejected mask (ink, dust, bubble outlines and other unstained marks
that are not glass) and the glass colour.

Why optical density ratios: both H&E stains absorb green light most (that is why stained
tissue looks pink to purple), so in optical density OD = log10(glass / pixel) a stained
pixel has OD_green >= OD_red and OD_green clearly above OD_blue. Pen inks and debris break
that rule: green ink absorbs red most (OD_red/OD_green ~3), blue ink red and green
(OD_red/OD_green ~1.5), black ink, dust and bubble outlines are grey (all three ODs equal),
red ink absorbs green and blue alike (OD_blue/OD_green ~0.9). The rule needs no colour of
ink to be listed and works without a region of interest.

Fat: adipose lobules are glass crossed by thin membranes. At 8 µm/px a membrane tints the
pixels it crosses faintly; a window where many pixels carry such a faint H&E tint, next to
stained tissue, is fat and counts as tissue (it keeps a fragment whole).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import binary_fill_holes
from scipy.stats import median_abs_deviation

OD_MIN = 0.06  # ~13 % green absorption: clearly stained (glass noise is ~0.005)
RED_GREEN_MAX = 1.25  # haematoxylin is ~0.9-1.0; blue ink ~1.5, green ink ~3
BLUE_GREEN_MAX = 0.80  # H&E 0.1-0.6; grey marks ~1.0, red ink ~0.9
FAINT_SIGMAS = 6.0  # a faint tint: this many glass-noise sigmas above glass
FAINT_OD_FLOOR = 0.015
FAT_WINDOW_UM = 200.0  # about three fat cells
FAT_DENSITY = 0.12  # share of faintly tinted pixels in that window that makes it fat
CLEAN_RADIUS_UM = 24.0
INK_BRIDGE_UM = 200.0  # tissue under a coloured pen stroke up to this half-width is kept as tissue
GREY_SPREAD = 0.25  # (max - min) / max of the three ODs below this: a grey mark (dust, bubble)
GLASS_BRIGHT_SHARE = 0.3
SATURATED = 254
MIN_SCANNED_SHARE = 0.05


@dataclass
class TissueMasks:
    tissue: np.ndarray  # bool: stained tissue and fat, hole-filled
    rejected: np.ndarray  # bool: ink, dust, bubbles and other unstained marks
    fat: np.ndarray  # bool: fat added to the tissue
    glass: np.ndarray  # float[3] glass colour


def _disk(r_px: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r_px + 1, 2 * r_px + 1))


def glass_colour(rgb: np.ndarray) -> np.ndarray:
    """Median of the brightest pixels, leaving out pure white (blanked areas outside a roi, unscanned
    areas that scanners fill with white): glass is never fully saturated."""
    lum = rgb.astype(np.float32).mean(axis=2)
    scanned = rgb.min(axis=2) < SATURATED
    if np.count_nonzero(scanned) >= MIN_SCANNED_SHARE * scanned.size:
        lum = np.where(scanned, lum, -1.0)
        bright = scanned & (lum >= np.quantile(lum[scanned], 1.0 - GLASS_BRIGHT_SHARE))
    else:
        bright = lum >= np.quantile(lum, 1.0 - GLASS_BRIGHT_SHARE)
    return np.median(rgb[bright].reshape(-1, 3), axis=0).astype(np.float32)


def optical_density(rgb: np.ndarray, glass: np.ndarray) -> np.ndarray:
    smooth = cv2.GaussianBlur(rgb, (3, 3), 0).astype(np.float32)
    return np.log10((glass + 1.0) / (smooth + 1.0))


def tissue_masks(rgb: np.ndarray, mpp: float) -> TissueMasks:
    glass = glass_colour(rgb)
    od = optical_density(rgb, glass)
    r, g, b = od[..., 0], od[..., 1], od[..., 2]
    he_colour = _he_colour(r, g, b)
    stained = (g > OD_MIN) & he_colour
    marked = (np.maximum(np.maximum(r, g), b) > OD_MIN) & ~stained
    rc = max(1, int(round(CLEAN_RADIUS_UM / mpp)))
    k = _disk(rc)
    tissue = cv2.morphologyEx(
        cv2.morphologyEx(stained.astype(np.uint8), cv2.MORPH_CLOSE, k), cv2.MORPH_OPEN, k
    )
    rejected = cv2.morphologyEx(marked.astype(np.uint8), cv2.MORPH_OPEN, _disk(1)) > 0
    # faint H&E tint: fat membranes (glass noise measured on the glass itself)
    glass_px = g[(g < OD_MIN) & ~marked & (rgb.min(axis=2) < SATURATED)]
    sigma = float(median_abs_deviation(glass_px, scale="normal")) if glass_px.size else 0.0  # robust sigma
    faint = (g > max(FAINT_OD_FLOOR, FAINT_SIGMAS * sigma)) & he_colour & ~stained & ~rejected
    win = max(3, int(round(FAT_WINDOW_UM / mpp)) | 1)
    density = cv2.blur(faint.astype(np.float32), (win, win))
    fat = (density > FAT_DENSITY) & ~rejected & (tissue == 0)
    fat = cv2.morphologyEx(fat.astype(np.uint8), cv2.MORPH_CLOSE, k) > 0
    fat = _touching(fat, tissue > 0, rc)
    # close again once fat is in: a thin mark (a bubble outline) along a lobule's edge must not cut it off
    tissue = cv2.morphologyEx(((tissue > 0) | fat).astype(np.uint8), cv2.MORPH_CLOSE, k) > 0
    # tissue under a coloured pen stroke: bridge across the stroke, only over its pixels (never over
    # grey dust or bubble outlines, which lie between pieces as often as on them)
    grey = _grey(r, g, b)
    rb = max(1, int(round(INK_BRIDGE_UM / mpp)))
    closed = cv2.morphologyEx(tissue.astype(np.uint8), cv2.MORPH_CLOSE, _disk(rb)) > 0
    tissue |= closed & rejected & ~grey
    tissue = binary_fill_holes(tissue)
    return TissueMasks(tissue, rejected & ~tissue, fat, glass)


# Below this share of the level absorbing light at all, the level is glass (a blank or wrong level).
MIN_MARKED_SHARE = 0.005


def no_tissue_reason(rgb: np.ndarray) -> str:
    """Why the tissue rule found nothing on ``rgb``, for the error that says so: blank glass, grey
    (a greyscale or unstained slide: the rule needs H&E's colour) or colour that is not H&E's (ink,
    or another stain such as IHC's brown). Empty when stained pixels were there but formed no piece."""
    od = optical_density(rgb, glass_colour(rgb))
    r, g, b = od[..., 0], od[..., 1], od[..., 2]
    odmax = np.maximum(np.maximum(r, g), b)
    marked = odmax > OD_MIN
    share = float(np.count_nonzero(marked)) / marked.size
    if share < MIN_MARKED_SHARE:
        return "the level is blank: almost nothing on it absorbs light"
    stained = (g > OD_MIN) & _he_colour(r, g, b)
    if np.count_nonzero(stained) >= np.count_nonzero(marked) / 2:
        return ""
    if np.count_nonzero(_grey(r, g, b) & marked) >= np.count_nonzero(marked) / 2:
        return (
            f"what is on it ({100 * share:.0f} % of the level) is grey: a greyscale or unstained slide, "
            "and tissue is found by H&E's pink-to-purple colour"
        )
    return (
        f"what is on it ({100 * share:.0f} % of the level) is coloured, but not as H&E stains: ink, or "
        "another stain (IHC's brown); tissue is found by H&E's pink-to-purple colour"
    )


def _he_colour(r: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Optical densities in H&E's ratios: green absorbed most (module docstring)."""
    return (r < RED_GREEN_MAX * g) & (b < BLUE_GREEN_MAX * g)


def _grey(r: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Optical densities nearly equal: a grey mark (dust, bubble outline, black ink, a grey slide)."""
    odmax = np.maximum(np.maximum(r, g), b)
    return (odmax - np.minimum(np.minimum(r, g), b)) < GREY_SPREAD * np.maximum(odmax, 1e-6)


def _near(mask: np.ndarray, r_px: int) -> np.ndarray:
    return cv2.dilate(mask.astype(np.uint8), _disk(r_px)) > 0


def _touching(cand: np.ndarray, tissue: np.ndarray, r_px: int) -> np.ndarray:
    """Components of cand that touch tissue (fat is part of a core, never a lone island)."""
    n, lab = cv2.connectedComponents(cand.astype(np.uint8), connectivity=8)
    if n <= 1:
        return cand
    hit = np.unique(lab[_near(tissue, r_px) & cand])
    return np.isin(lab, hit[hit > 0])
