"""Whole slide image reading: one pyramid level, never level 0 whole.

Input: a pyramidal TIFF/SVS/NDPI/OME-TIFF (tifffile; OpenSlide when installed and tifffile
cannot read the file) or a plain PNG/JPEG thumbnail, plus an optional ``pathology.mpp``.
Output: ``SlideLevel``: RGB pixels of the coarsest level that is still at least as fine as
the requested microns per pixel, that level's mpp and its downsample from level 0.

mpp comes from, in order: SVS ImageDescription ``MPP = ...``, OME PhysicalSizeX (µm),
TIFF resolution tags in cm (or inch when plausible), else ``pathology.mpp``. A file value
that disagrees with ``pathology.mpp`` is an inconsistent scale and fails loudly.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.errors import InputError

RASTER_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
UM_PER_CM, UM_PER_INCH = 1e4, 25400.0
MAX_PLAUSIBLE_MPP = 50.0      # an inch-based "72 dpi" default would give 352 µm/px: not a slide scale
MPP_TOLERANCE = 0.02
LEVEL_TOLERANCE = 1.01        # odd level-0 sizes make a "2x" level 2.0004x
BIG_LEVEL_PIXELS = 64_000_000  # refuse to decode a level this large whole (use a pyramid)
SVS_MPP = re.compile(r"\bMPP\s*=\s*([0-9.]+)")
OME_MPP = re.compile(r'PhysicalSizeX="([0-9.eE+-]+)"(?:\s+PhysicalSizeXUnit="([^"]+)")?')


@dataclass
class SlideLevel:
    rgb: np.ndarray            # uint8 [h, w, 3]
    mpp: float                 # microns per pixel of this level
    downsample: float          # level-0 pixels per level pixel
    level: int
    level0_shape: tuple[int, int]
    source: str
    note: str | None = None    # e.g. "no pyramid: streamed", reported as a warning


def _tiff_mpp(tif, where: str) -> float | None:
    page = tif.pages[0]
    desc = page.description or ""
    m = SVS_MPP.search(desc)
    if m and float(m.group(1)) > 0:
        return float(m.group(1))
    ome = tif.ome_metadata or ""
    m = OME_MPP.search(ome)
    if m:
        unit = m.group(2) or "µm"
        val = float(m.group(1))
        factor = {"µm": 1.0, "um": 1.0, "nm": 1e-3, "mm": 1e3}.get(unit)
        if factor and val > 0:
            return val * factor
    tags = page.tags
    if "XResolution" in tags and "ResolutionUnit" in tags:
        num, den = tags["XResolution"].value
        unit = int(tags["ResolutionUnit"].value)
        if num > 0 and den > 0:
            per_unit = num / den
            if unit == 3:
                return UM_PER_CM / per_unit
            if unit == 2 and UM_PER_INCH / per_unit <= MAX_PLAUSIBLE_MPP:
                return UM_PER_INCH / per_unit
    return None


def _resolve_mpp(found: float | None, given: float | None, where: str) -> float:
    if found is None and given is None:
        raise InputError(f"{where}: missing mpp (no MPP/resolution metadata in the file); "
                         "give pathology.mpp (microns per level-0 pixel) in case.yaml")
    if found is not None and given is not None and abs(found - given) > MPP_TOLERANCE * found:
        raise InputError(f"{where}: inconsistent scales: pathology.mpp={given} but the file says {found:.4f} µm/px")
    return float(found if found is not None else given)


def _to_rgb(arr: np.ndarray, where: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[2] not in (3, 4):
        arr = np.moveaxis(arr, 0, -1)  # planar (samples first) -> interleaved
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] < 3:
        raise InputError(f"{where}: unsupported slide pixel layout {arr.shape}")
    arr = arr[..., :3]
    if arr.dtype != np.uint8:
        arr = np.clip(arr.astype(np.float32) * (255.0 / max(float(arr.max()), 1.0)), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def _pick(downsamples: list[float], mpp0: float, target_mpp: float) -> int:
    """Coarsest level whose mpp is <= target (level 0 if none is)."""
    ok = [i for i, ds in enumerate(downsamples) if mpp0 * ds <= target_mpp * LEVEL_TOLERANCE]
    return max(ok, key=lambda i: downsamples[i]) if ok else 0


def _read_tiff(path: Path, mpp: float | None, target_mpp: float) -> SlideLevel:
    import tifffile
    where = str(path)
    with tifffile.TiffFile(str(path)) as tif:
        series = tif.series[0]
        levels = series.levels
        shapes = [lv.shape for lv in levels]
        axes = series.axes
        yi, xi = axes.index("Y"), axes.index("X")
        h0, w0 = shapes[0][yi], shapes[0][xi]
        downs = [w0 / s[xi] for s in shapes]
        mpp0 = _resolve_mpp(_tiff_mpp(tif, where), mpp, where)
        k = _pick(downs, mpp0, target_mpp)
        factor = int(target_mpp * LEVEL_TOLERANCE / (mpp0 * downs[k]))
        if factor >= 2 and len(levels[k].pages) == 1 and levels[k].pages[0].is_tiled:
            # no suitable pyramid level: stream the tiles, shrinking each, never holding the level whole
            arr = _stream_downsampled(levels[k].pages[0], factor, (shapes[k][yi], shapes[k][xi]))
            note = (f"{where}: no pyramid level near {target_mpp} µm/px; level {k} was streamed tile by tile "
                    f"and shrunk {factor}x (slow for big slides: save a pyramidal TIFF)")
            return SlideLevel(arr, mpp0 * downs[k] * factor, downs[k] * factor, k, (h0, w0), where, note)
        level_px = shapes[k][yi] * shapes[k][xi]
        if level_px > BIG_LEVEL_PIXELS:
            raise InputError(f"{where}: no pyramid level near {target_mpp} µm/px (the closest has {level_px} px); "
                             "save the slide as a tiled pyramidal TIFF (e.g. with QuPath or vips)")
        arr = levels[k].asarray()
    return SlideLevel(_to_rgb(arr, where), mpp0 * downs[k], downs[k], k, (h0, w0), where)


def _stream_downsampled(page, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """Decode a tiled page tile by tile, area-averaging each tile by ``factor`` into the output."""
    h, w = shape
    out = np.full((-(-h // factor), -(-w // factor), 3), 255, np.uint8)
    for data, index, _ in page.segments():
        if data is None:
            continue
        tile = _to_rgb(np.asarray(data)[0], str(page.parent.filehandle.path))
        y, x = index[2], index[3]
        th, tw = min(tile.shape[0], h - y), min(tile.shape[1], w - x)
        if th <= 0 or tw <= 0:
            continue
        oy, ox = y // factor, x // factor
        oh, ow = min(-(-th // factor), out.shape[0] - oy), min(-(-tw // factor), out.shape[1] - ox)
        small = cv2.resize(tile[:th, :tw], (ow, oh), interpolation=cv2.INTER_AREA)
        out[oy:oy + oh, ox:ox + ow] = small
    return out


def _read_openslide(path: Path, mpp: float | None, target_mpp: float) -> SlideLevel:
    """OpenSlide path (formats tifffile cannot read). Written to the openslide-python API; not
    exercised here because OpenSlide is not installed in this environment."""
    import openslide
    where = str(path)
    slide = openslide.OpenSlide(str(path))
    try:
        found = slide.properties.get(openslide.PROPERTY_NAME_MPP_X)
        mpp0 = _resolve_mpp(float(found) if found else None, mpp, where)
        downs = [float(d) for d in slide.level_downsamples]
        k = _pick(downs, mpp0, target_mpp)
        size = slide.level_dimensions[k]
        if size[0] * size[1] > BIG_LEVEL_PIXELS:
            raise InputError(f"{where}: no pyramid level near {target_mpp} µm/px")
        rgba = np.asarray(slide.read_region((0, 0), k, size))
        w0, h0 = slide.dimensions
    finally:
        slide.close()
    return SlideLevel(_to_rgb(rgba, where), mpp0 * downs[k], downs[k], k, (h0, w0), where)


def read_slide(path: str | Path, mpp: float | None = None, target_mpp: float = 8.0) -> SlideLevel:
    """Read the level of ``path`` that best serves ``target_mpp`` (µm/px)."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise InputError(f"{where}: WSI file not found")
    if path.suffix.lower() in RASTER_SUFFIXES:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise InputError(f"{where}: unreadable WSI thumbnail")
        if mpp is None:
            raise InputError(f"{where}: missing mpp: a thumbnail needs pathology.mpp (microns per pixel)")
        rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        return SlideLevel(rgb, mpp, 1.0, 0, rgb.shape[:2], where)
    try:
        return _read_tiff(path, mpp, target_mpp)
    except InputError:
        raise
    except Exception as tiff_exc:  # tifffile raises TiffFileError, ValueError, KeyError... on odd files
        try:
            import openslide  # noqa: F401  (optional: only used when installed)
        except ImportError:
            raise InputError(f"{where}: unreadable WSI ({type(tiff_exc).__name__}: {tiff_exc})") from tiff_exc
        try:
            return _read_openslide(path, mpp, target_mpp)
        except InputError:
            raise
        except Exception as exc:  # openslide.OpenSlideError and friends
            raise InputError(f"{where}: unreadable WSI ({exc})") from exc
