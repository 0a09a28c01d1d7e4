"""DICOM cine source: the frames of a DICOM file (single frame or multi-frame cine) via pydicom.

Input: a ``.dcm`` path. Output: BGR :class:`edge_runtime.frames.Frame` s, decoded one at a time as
played (:mod:`edge_runtime.dicom_pixels` reads their colours), with the mm scale from the header's
ultrasound regions (or PixelSpacing) and the frame rate from CineRate, RecommendedDisplayFrameRate or
FrameTime. Only pixels and the mm scale travel into frame metadata, never a patient identifier; the
header's identifiers are registered for redaction when the file is read. Files: the input only.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from edge_runtime import recorded_time, source_kinds
from edge_runtime.dicom_pixels import dicom_pixels, frame_count, read_dicom
from edge_runtime.errors import InputError, SonomapError
from edge_runtime.frames import Frame, Source
from edge_runtime.sources.capture import to_bgr
from edge_runtime.sources.frame_rate import believable_fps
from edge_runtime.sources.frame_size import check_frame_size
from edge_runtime.units import DEFAULT_FPS, MM_PER_CM, MS_PER_S

log = logging.getLogger("sonomap.sources")
DICOM_UNITS_CM = 3  # DICOM PhysicalUnits code for centimetres
# The attributes a DICOM cine gives its frame rate by, in the order they are looked at, and whether
# each is the time between frames in milliseconds (FrameTime (0018,1063), ultrasound's usual one)
# rather than frames per second.
CINE_RATES = (("CineRate", False), ("RecommendedDisplayFrameRate", False), ("FrameTime", True))


def cine_fps(ds, path: Path) -> float:
    """A DICOM cine's frame rate: the first of :data:`CINE_RATES` it gives, else DEFAULT_FPS. An
    attribute that is empty or 0 is not given (writers leave 0 for unknown); a negative, infinite or
    non-numeric one is an error naming the file and the attribute, since frame times follow from it;
    one outside the range of ``source.fps`` is not believed (:mod:`edge_runtime.sources.frame_rate`)."""
    for keyword, in_ms in CINE_RATES:
        try:
            raw = getattr(ds, keyword, None)
            value = None if raw is None or raw == "" else float(raw)
        except (TypeError, ValueError) as exc:  # pydicom converts a DS or IS value when it is read
            raise InputError(f"{path}: {keyword} is not a number ({exc})") from exc
        if value is None or value == 0:
            continue
        fps = MS_PER_S / value if in_ms else value
        if not (math.isfinite(fps) and fps > 0):  # an infinite FrameTime makes 0 fps
            unit = "milliseconds per frame" if in_ms else "frames per second"
            raise InputError(f"{path}: {keyword} must be a positive number of {unit}, got {raw}")
        # 0.001 or 100000 fps: not believed, played at DEFAULT_FPS with one warning
        return believable_fps(fps, source_kinds.DICOM_CINE, keyword, f"{DEFAULT_FPS:g} fps") or DEFAULT_FPS
    return DEFAULT_FPS


class DicomCineSource(Source):
    """A DICOM file (single or multi-frame cine). Only pixels and the mm scale are kept:
    no patient identifiers travel into frame metadata."""

    def __init__(self, path: str | Path, loop: bool = False):
        self.path = Path(path)
        self.name = source_kinds.DICOM_CINE  # not the file name: it often carries the patient's name
        self.loop = loop
        if not self.path.is_file():
            raise InputError(f"{self.path}: file not found")
        try:
            import pydicom  # noqa: F401  (deferred: the optional extra, checked here; read_dicom uses it)
        except ImportError as exc:
            raise SonomapError(
                f"{self.path}: reading DICOM needs pydicom (pip install 'sonomap[dicom]')"
            ) from exc
        ds = read_dicom(self.path, str(self.path))  # its identifiers redacted from here on
        try:  # the header's size, before the frames are decoded: a huge one would exhaust memory first
            rows, columns = int(getattr(ds, "Rows", 0) or 0), int(getattr(ds, "Columns", 0) or 0)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{self.path}: Rows or Columns is not a number ({exc})") from exc
        check_frame_size(columns, rows, str(self.path), 0)
        # 8-bit gray or RGB: YBR converted, a palette applied, MONOCHROME1 inverted; else an error.
        # Decoded a frame at a time as played: a compressed cine of a thousand frames is gigabytes
        # decoded. The first frame is decoded now, so an unreadable file fails before anything starts.
        self._ds, self.frames = ds, frame_count(ds)
        first = dicom_pixels(ds, str(self.path), 0)
        self.fps = cine_fps(ds, self.path)
        self.mm_per_pixel = self._mm_per_pixel(ds)
        self.recorded = recorded_time.dicom_start(ds)  # frame metadata: when its first frame was acquired
        # the kind, not the path: a file name may carry the patient's name even when the header does not
        height, width = first.shape[:2]
        log.info("%s: %d frame(s) of %dx%d at %.1f fps", self.name, self.frames, width, height, self.fps)

    def _mm_per_pixel(self, ds) -> float | None:
        """The header's mm per pixel: the first ultrasound region in cm, else PixelSpacing. A value that
        is no finite positive number (NaN, infinite, 0, negative) is no scale: warned and None, as
        missing, so biopsy capture says it has none rather than measuring fires with it."""
        key, value = "PixelSpacing", None
        for region in getattr(ds, "SequenceOfUltrasoundRegions", []) or []:
            if getattr(region, "PhysicalUnitsXDirection", None) == DICOM_UNITS_CM:
                key, value = "SequenceOfUltrasoundRegions PhysicalDeltaX", region.PhysicalDeltaX
                break
        else:
            spacing = getattr(ds, "PixelSpacing", None)
            value = spacing[1] if spacing else None
        if value is None:
            return None
        try:
            scale = float(value) * (MM_PER_CM if key != "PixelSpacing" else 1.0)
        except (TypeError, ValueError):
            scale = math.nan
        if not (math.isfinite(scale) and scale > 0):
            log.warning(
                "%s: %s is %s, not a positive number: the image has no mm scale", self.name, key, value
            )
            return None
        return scale

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while True:
            for i in range(self.frames):
                image = dicom_pixels(self._ds, f"{self.path} frame {i}", i)
                bgr = (
                    cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else to_bgr(image, f"frame {i}")
                )
                meta = {"source": self.name, "mm_per_pixel": self.mm_per_pixel, **self.recorded}
                yield Frame(index, np.ascontiguousarray(bgr), time.monotonic(), i / self.fps, meta)
                index += 1
            if not self.loop:
                return
