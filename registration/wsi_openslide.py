"""OpenSlide slide reader: Aperio SVS, Hamamatsu NDPI/VMS, 3DHISTECH MRXS, DICOM WSI, Leica, Philips, generic TIFF.

Input: a slide file (for MRXS the .mrxs beside its data folder; for DICOM any .dcm of the
series, its siblings in the same folder are found by OpenSlide). Output: an ``OpenSlideSlide``
with the same interface as ``TiffSlide``: level shapes, downsamples, the file's mpp and
``read_region(level, x, y, w, h)`` in level pixels, RGB uint8.

OpenSlide comes from PyPI (``openslide-bin`` carries the C library, ``openslide-python`` the
binding). Transparent pixels (outside the scanned area) are composited onto white: glass.

A DICOM WSI series is one file per pyramid level; OpenSlide builds the pyramid from whichever files
are in the folder. When the full-resolution file is missing, the largest level left (a downsampled
one) would pass for level 0 and every level-0 coordinate would be off by its downsample, so such a
series is refused: its base level's ImageType (PS3.3 C.8.12.4.1.1) says RESAMPLED, not NONE.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_runtime.errors import InputError
from registration.wsi_mpp import openslide_mpp
from registration.wsi_tiff import CannotOpen

BAND_PIXELS = 16_000_000  # one read_region call covers this many level pixels at most
MIN_BAND_ROWS = 256
OPAQUE = 255
DICOM_VENDOR = "dicom"
# the base level's ImageType value 4 (as OpenSlide exposes it): NONE at full resolution, RESAMPLED for a
# pyramid level made by downsampling
DICOM_RESOLUTION_PROPERTY = "dicom.ImageType[3]"
DICOM_DOWNSAMPLED = "RESAMPLED"


def openslide_module():
    """The openslide module, or CannotOpen saying how to install it (optional dependency)."""
    try:
        import openslide  # deferred: optional dependency with a C library
    except (ImportError, OSError) as exc:  # OSError: the binding is there but not the C library
        raise CannotOpen(f"not installed ({exc}; pip install openslide-bin openslide-python)") from exc
    return openslide


def detect_vendor(path: Path) -> str | None:
    """OpenSlide's format name for ``path`` ("aperio", "dicom", "generic-tiff"...), None if unknown/absent."""
    try:
        return openslide_module().OpenSlide.detect_format(str(path))
    except CannotOpen:
        return None
    except Exception:  # detect_format raises OpenSlideError on some unreadable headers: "unknown"
        return None


def refuse_dicom_without_base(props, vendor: str, size: tuple[int, int], path: Path) -> None:
    """InputError naming ``path`` when a DICOM series' level 0 (``size``: width, height) is a resampled
    pyramid level: the full-resolution instance is missing (module docstring)."""
    if vendor != DICOM_VENDOR:
        return
    value = (props.get(DICOM_RESOLUTION_PROPERTY) or "").strip().upper()
    if value == DICOM_DOWNSAMPLED:
        raise InputError(
            f"{path}: the DICOM WSI series lacks its full-resolution instance: its largest level "
            f"({size[0]}x{size[1]} px) has ImageType {DICOM_DOWNSAMPLED} (a downsampled pyramid level), so "
            "its scale and coordinates would be wrong; put the series' base file (ImageType ...\\NONE) "
            "beside it"
        )


class OpenSlideSlide:
    """An open OpenSlide slide (see the module docstring)."""

    reader = "openslide"

    def __init__(self, path: Path):
        openslide = openslide_module()
        self.log_records: list = []  # OpenSlide reports through its exceptions, not Python logging
        self._open = lambda: openslide.OpenSlide(str(path))
        try:
            self._slide = self._open()
        except Exception as exc:  # OpenSlideUnsupportedFormatError, OpenSlideError
            raise CannotOpen(f"{type(exc).__name__}: {exc}") from exc
        props = self._slide.properties
        self.vendor = props.get(openslide.PROPERTY_NAME_VENDOR) or "unknown"
        try:
            refuse_dicom_without_base(props, self.vendor, self._slide.level_dimensions[0], path)
        except InputError:
            self._slide.close()
            raise
        self.mpp_found, self.mpp_source = openslide_mpp(props)
        self.level_shapes = [(h, w) for w, h in self._slide.level_dimensions]
        # the scale along x, as tifffile gives it (OpenSlide averages x and y, which differ on odd level
        # sizes); positions are converted with OpenSlide's own downsample, so row bands meet exactly
        self.downsamples = [self.level_shapes[0][1] / w for _, w in self.level_shapes]
        self._position_downsamples = [float(d) for d in self._slide.level_downsamples]

    def tile_shape(self, level: int) -> tuple[int, int]:
        """Rows per read: a level up to BAND_PIXELS is read in one call. Split reads of a level whose
        downsample is not an integer meet with a sub-pixel offset (OpenSlide interpolates), so the
        registration's usual coarse level is never split."""
        w = self.level_shapes[level][1]
        return max(MIN_BAND_ROWS, BAND_PIXELS // max(w, 1)), w

    def read_region(self, level: int, x: int, y: int, w: int, h: int) -> np.ndarray:
        """RGB uint8 [h, w, 3] of level pixels [y, y+h) x [x, x+w)."""
        ds = self._position_downsamples[level]
        try:
            rgba = np.asarray(
                self._slide.read_region((int(round(x * ds)), int(round(y * ds))), level, (w, h))
            )
        except Exception:
            # after an error OpenSlide refuses every later call on the handle with that same error,
            # which would blame the next level read for this one's damage: start a fresh handle
            self._slide.close()
            self._slide = self._open()
            raise
        rgb = rgba[..., :3]
        alpha = rgba[..., 3:4]
        if (alpha == OPAQUE).all():
            return np.ascontiguousarray(rgb)
        # openslide-python un-premultiplies: blend onto white where the scanner saw nothing
        a = alpha.astype(np.uint16)
        return ((rgb.astype(np.uint16) * a + OPAQUE * (OPAQUE - a)) // OPAQUE).astype(np.uint8)

    def close(self) -> None:
        self._slide.close()
