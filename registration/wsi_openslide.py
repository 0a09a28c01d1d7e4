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
series is refused: its base level's ImageType value 4 (PS3.3 C.8.12.4.1.1) says RESAMPLED, not NONE.
When ImageType has no value 4 (a non-conforming writer), the same value of the WSI frame type
functional group (FrameType, shared by the frames) decides; when neither says, nothing in the files
left can prove a missing base (every remaining instance is smaller than the absent one), so the
slide is read with a warning (``notes``) naming the file.

A tile far larger than its level (OpenSlide's ``tile-width``/``tile-height`` beyond the level's size
rounded up, wsi_tiff.TILE_ROUNDING) is a damaged tag: the file is refused (``CannotOpen``) before a
tile is decoded.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from edge_runtime.errors import InputError
from edge_runtime.privacy import library_path, register_dicom
from registration.wsi_mpp import openslide_mpp
from registration.wsi_tiff import CannotOpen, refuse_oversized_tile

BAND_PIXELS = 16_000_000  # one read_region call covers this many level pixels at most
MIN_BAND_ROWS = 256
OPAQUE = 255
DICOM_VENDOR = "dicom"
# dicom.Keyword, dicom.Keyword[i] (a multi-value) or dicom.Sequence[i].Keyword (one level of items)
DICOM_PROPERTY = re.compile(r"dicom\.(\w+)(?:\[(\d+)\])?(?:\.(\w+))?")
# the base level's ImageType value 4 (as OpenSlide exposes it): NONE at full resolution, RESAMPLED for a
# pyramid level made by downsampling; then the same value in the frame type functional group, for a writer
# that leaves ImageType at 3 values
DICOM_RESOLUTION_PROPERTIES = (
    ("ImageType", "dicom.ImageType[3]"),
    (
        "FrameType",
        "dicom.SharedFunctionalGroupsSequence[0].WholeSlideMicroscopyImageFrameTypeSequence[0].FrameType[3]",
    ),
)
DICOM_FULL_RESOLUTION = "NONE"
DICOM_DOWNSAMPLED = "RESAMPLED"
TILE_PROPERTIES = ("openslide.level[{}].tile-height", "openslide.level[{}].tile-width")


def openslide_module():
    """The openslide module, or CannotOpen saying how to install it (optional dependency)."""
    try:
        import openslide  # deferred: optional dependency with a C library
    except (ImportError, OSError) as exc:  # OSError: the binding is there but not the C library
        raise CannotOpen(f"not installed ({exc}; pip install openslide-bin openslide-python)") from exc
    return openslide


def dicom_header(props) -> dict:
    """OpenSlide's ``dicom.*`` properties as the keyword mapping :func:`register_dicom` reads:
    ``dicom.PatientName`` -> ``PatientName``, ``dicom.PatientID[1]`` -> a list,
    ``dicom.OtherPatientIDsSequence[0].PatientID`` -> a list of item mappings."""
    header: dict = {}
    for key, value in props.items():
        match = DICOM_PROPERTY.fullmatch(key)
        if match is None:
            continue
        keyword, index, item_keyword = match.groups()
        if item_keyword is not None:
            items = header.setdefault(keyword, [])
            while len(items) <= int(index):
                items.append({})
            items[int(index)][item_keyword] = value
        elif index is not None:
            header.setdefault(keyword, []).append(value)
        else:
            header[keyword] = value
    return header


def detect_vendor(path: Path) -> str | None:
    """OpenSlide's format name for ``path`` ("aperio", "dicom", "generic-tiff"...), None if unknown/absent."""
    try:
        return openslide_module().OpenSlide.detect_format(str(path))
    except CannotOpen:
        return None
    except Exception:  # detect_format raises OpenSlideError on some unreadable headers: "unknown"
        return None


def check_dicom_base(props, vendor: str, size: tuple[int, int], path: Path) -> list[str]:
    """InputError naming ``path`` when a DICOM series' level 0 (``size``: width, height) is a resampled
    pyramid level: the full-resolution instance is missing. The warnings to report when the series
    cannot tell (module docstring); none for a verified base or a file that is no DICOM."""
    if vendor != DICOM_VENDOR:
        return []
    for attribute, prop in DICOM_RESOLUTION_PROPERTIES:
        value = (props.get(prop) or "").strip().upper()
        if value == DICOM_FULL_RESOLUTION:
            return []
        if value == DICOM_DOWNSAMPLED:
            raise InputError(
                f"{path}: the DICOM WSI series lacks its full-resolution instance: its largest level "
                f"({size[0]}x{size[1]} px) has {attribute} {DICOM_DOWNSAMPLED} (a downsampled pyramid level), "
                f"so its scale and coordinates would be wrong; put the series' base file ({attribute} "
                f"...\\{DICOM_FULL_RESOLUTION}) beside it"
            )
    return [
        f"{path}: the DICOM WSI series' ImageType and FrameType lack value 4 ({DICOM_FULL_RESOLUTION} or "
        f"{DICOM_DOWNSAMPLED}), so its largest level ({size[0]}x{size[1]} px) cannot be verified as the "
        "full-resolution one; if the series' base file is missing, the annotation lands off by its downsample"
    ]


def refuse_oversized_tiles(props, level_shapes: list[tuple[int, int]]) -> None:
    """CannotOpen when a level's tile, as OpenSlide reports it, is far larger than the level."""
    for k, size in enumerate(level_shapes):
        tile = [props.get(name.format(k)) or "" for name in TILE_PROPERTIES]
        if all(v.isdigit() for v in tile):  # a format without tiles reports none
            refuse_oversized_tile(k, (int(tile[0]), int(tile[1])), size)


class OpenSlideSlide:
    """An open OpenSlide slide (see the module docstring)."""

    reader = "openslide"

    def __init__(self, path: Path):
        openslide = openslide_module()
        self.log_records: list = []  # OpenSlide reports through its exceptions, not Python logging
        self._open = lambda: openslide.OpenSlide(library_path(path))
        try:
            self._slide = self._open()
        except Exception as exc:  # OpenSlideUnsupportedFormatError, OpenSlideError
            raise CannotOpen(f"{type(exc).__name__}: {exc}") from exc
        props = self._slide.properties
        self.vendor = props.get(openslide.PROPERTY_NAME_VENDOR) or "unknown"
        if self.vendor == DICOM_VENDOR:  # before any error can quote a patient-named path or value
            register_dicom(dicom_header(props))
        self.level_shapes = [(h, w) for w, h in self._slide.level_dimensions]
        try:
            refuse_oversized_tiles(props, self.level_shapes)
            # what the reader found about the file, for report.json (wsi.Slide adds them to its warnings)
            self.notes = check_dicom_base(props, self.vendor, self._slide.level_dimensions[0], path)
        except (CannotOpen, InputError):
            self._slide.close()
            raise
        self.mpp_found, self.mpp_y_found, self.mpp_source = openslide_mpp(props)
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
