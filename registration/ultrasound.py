"""Ultrasound image of the needle tract: pixels plus calibration.

Inputs: a PNG/JPEG with ``mm_per_pixel`` from case.yaml, or a DICOM file (single frame or
cine, frame chosen by index) calibrated by SequenceOfUltrasoundRegions. Output: an
``UltrasoundImage`` (8-bit gray pixels, mm per pixel along x and y, the calibrated region).

DICOM calibration (PS3.3 C.8.5.5): PhysicalDeltaX/Y in PhysicalUnitsX/YDirection, where unit
code 3 means cm (the only spatial unit), so mm/px = delta * 10. Several regions can coexist
(B-mode + Doppler panes); we use the 2D tissue region that contains the needle.

DICOM pixels (YBR, palette, MONOCHROME1...) become gray in :mod:`edge_runtime.dicom_pixels`, the
reader the runtime's DICOM cine replay uses too.

A scanner burns the patient's name, ID and birth date into the screen around the image, and the
frame read here becomes us.png, qa.png and the dataset's copy. So every pixel outside the DICOM's
calibrated regions is set to black (:func:`keep_regions`). A DICOM with no such region is read whole
only when it rules burned-in text out (BurnedInAnnotation NO); YES, or the attribute missing (many
scanners and anonymisers leave it out), is refused. A PNG/JPEG is taken as given: the runtime's
captures are crops of the image area already.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.dicom_pixels import dicom_gray, frame_count, read_dicom
from edge_runtime.errors import InputError
from edge_runtime.image_files import UnreadableImage, read_image
from edge_runtime.units import MM_PER_CM

UNIT_CM = 3
SPATIAL_FORMAT_2D = 1
REGION_BOX = ("RegionLocationMinX0", "RegionLocationMinY0", "RegionLocationMaxX1", "RegionLocationMaxY1")
NO_BURNED_IN = "NO"  # BurnedInAnnotation: the pixels carry no identifying text
SCALE_TOLERANCE = 0.02  # a case.yaml scale that differs more from the DICOM one is a mistake


@dataclass
class Region:
    """A calibrated DICOM region: pixel bounds (inclusive) and mm per pixel."""

    x0: int
    y0: int
    x1: int
    y1: int
    mm_x: float
    mm_y: float

    def contains(self, pt) -> bool:
        return self.x0 <= pt[0] <= self.x1 and self.y0 <= pt[1] <= self.y1

    @property
    def area(self) -> int:
        return (self.x1 - self.x0 + 1) * (self.y1 - self.y0 + 1)


@dataclass
class UltrasoundImage:
    gray: np.ndarray  # uint8 [H, W]
    mm_per_px: tuple[float, float]  # (x, y)
    source: str
    regions: list[Region]  # calibrated regions (DICOM), empty for PNG/JPEG
    region: Region | None = None  # the region the calibration came from

    @property
    def shape(self) -> tuple[int, int]:
        return self.gray.shape[:2]


def is_dicom(path: Path) -> bool:
    if path.suffix.lower() in (".dcm", ".dicom"):
        return True
    with open(path, "rb") as fh:
        head = fh.read(132)
    return len(head) == 132 and head[128:132] == b"DICM"


def _read_raster(path: Path) -> np.ndarray:
    """8-bit gray pixels of a PNG/JPEG; InputError naming ``path`` when it is no readable image.

    Decoded from the file's bytes, never by handing OpenCV the path: cv2.imread crashes the process
    on a path that is not valid UTF-8 (a folder named in another encoding)."""
    try:
        img = read_image(path)
    except UnreadableImage as exc:
        raise InputError(
            f"{path}: cannot read the ultrasound image ({exc.reason}; a PNG/JPEG/DICOM file?)"
        ) from exc
    return to_gray_u8(img, str(path))


def to_gray_u8(img: np.ndarray, where: str) -> np.ndarray:
    """Any 2D/3-channel/4-channel, 8 or 16-bit image -> 8-bit gray."""
    if img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY)
    elif img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    elif img.ndim != 2:
        raise InputError(f"{where}: unsupported image shape {img.shape}")
    if img.dtype != np.uint8:
        top = float(img.max()) or 1.0
        img = np.clip(img.astype(np.float32) * (255.0 / top), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img)


def _region_value(item, name: str, index: int, where: str, kind: type):
    """``item.name`` as ``kind``; InputError naming the file, the region and the attribute when it
    is missing, empty or not a finite number (a scanner or an anonymiser may drop it)."""
    value = getattr(item, name, None)
    if value is None or value == "":
        raise InputError(f"{where}: SequenceOfUltrasoundRegions[{index}] lacks {name}")
    try:
        number = kind(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InputError(
            f"{where}: SequenceOfUltrasoundRegions[{index}] {name} is not a number ({value!r})"
        ) from exc
    if not math.isfinite(number):
        raise InputError(f"{where}: SequenceOfUltrasoundRegions[{index}] {name} is not finite ({value!r})")
    return number


def dicom_regions(ds, where: str) -> list[Region]:
    """All 2D regions calibrated in cm on both axes (others cannot give a spatial scale)."""
    out = []
    for i, item in enumerate(getattr(ds, "SequenceOfUltrasoundRegions", []) or []):
        fmt = getattr(item, "RegionSpatialFormat", SPATIAL_FORMAT_2D)
        ux, uy = (
            getattr(item, "PhysicalUnitsXDirection", None),
            getattr(item, "PhysicalUnitsYDirection", None),
        )
        if fmt != SPATIAL_FORMAT_2D or ux != UNIT_CM or uy != UNIT_CM:
            continue
        dx, dy = (_region_value(item, name, i, where, float) for name in ("PhysicalDeltaX", "PhysicalDeltaY"))
        if not (dx > 0 and dy > 0):
            raise InputError(f"{where}: SequenceOfUltrasoundRegions[{i}] has PhysicalDeltaX/Y <= 0")
        box = [_region_value(item, name, i, where, int) for name in REGION_BOX]
        out.append(Region(*box, abs(dx) * MM_PER_CM, abs(dy) * MM_PER_CM))
    return out


def _dicom_frame(ds, frame: int, where: str, frame_key: str) -> np.ndarray:
    n_frames = frame_count(ds)
    if n_frames > 1 and frame >= n_frames:
        raise InputError(f"{where}: {frame_key}={frame} out of range (cine has {n_frames} frames)")
    if n_frames == 1 and frame != 0:
        raise InputError(f"{where}: {frame_key}={frame} but the DICOM has a single frame")
    return dicom_gray(ds, where, frame)  # the colours as the runtime replays them


def _pick_region(regions: list[Region], needle_points, where: str) -> Region:
    if needle_points:
        inside = [r for r in regions if all(r.contains(p) for p in needle_points)]
        if not inside:
            raise InputError(
                f"{where}: no calibrated ultrasound region contains the needle/tract points "
                f"{[tuple(round(v, 1) for v in p) for p in needle_points]}"
            )
        return min(inside, key=lambda r: r.area)  # the innermost pane that holds the needle
    return max(regions, key=lambda r: r.area)


def load_ultrasound(
    path: Path,
    mm_per_pixel: tuple[float, float] | None = None,
    frame: int = 0,
    needle_points: list | None = None,
    frame_key: str = "ultrasound.frame",
) -> UltrasoundImage:
    """Read the ultrasound image and its calibration.

    For DICOM, ``needle_points`` (tip/shaft or tract ends, pixels) choose the region;
    ``mm_per_pixel`` from case.yaml, if also given, must agree with the DICOM within 2 %.
    ``frame_key`` is the case.yaml key that gave ``frame``, named when the frame does not exist.
    """
    path = Path(path)
    where = str(path)
    if not is_dicom(path):
        gray = _read_raster(path)
        if mm_per_pixel is None:
            raise InputError(f"{where}: a PNG/JPEG needs ultrasound.mm_per_pixel in case.yaml")
        if frame != 0:
            raise InputError(f"{where}: {frame_key}={frame} but a PNG/JPEG has one frame")
        return UltrasoundImage(gray, mm_per_pixel, where, [])
    ds = read_dicom(path, where)  # its patient identifiers are [REDACTED] in every later log line and error
    gray = _dicom_frame(ds, frame, where, frame_key)
    regions = dicom_regions(ds, where)
    if not regions:
        _refuse_possible_burned_in_text(ds, where)
        if mm_per_pixel is None:
            raise InputError(
                f"{where}: no SequenceOfUltrasoundRegions calibrated in cm; "
                "give ultrasound.mm_per_pixel in case.yaml"
            )
        return UltrasoundImage(gray, mm_per_pixel, where, [])
    region = _pick_region(regions, needle_points, where)
    scale = (region.mm_x, region.mm_y)
    if mm_per_pixel is not None:
        for axis, given, found in zip("xy", mm_per_pixel, scale, strict=False):
            if abs(given - found) > SCALE_TOLERANCE * found:
                raise InputError(
                    f"{where}: inconsistent scales: ultrasound.mm_per_pixel {axis}={given} but "
                    f"the DICOM region says {found:.5f} mm/px"
                )
    return UltrasoundImage(keep_regions(gray, regions), scale, where, regions, region)


def _refuse_possible_burned_in_text(ds, where: str) -> None:
    """InputError unless a DICOM without a region to keep says it carries no burned-in text: fail
    closed, since the whole frame, patient header included, would otherwise be written."""
    said = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    if said == NO_BURNED_IN:
        return
    raise InputError(
        f"{where}: BurnedInAnnotation is {said or 'absent'} and no SequenceOfUltrasoundRegions calibrated "
        "in cm says where the image is, so text burned into the screen (the patient line) cannot be "
        "blanked; give a PNG of the image area with ultrasound.mm_per_pixel, or a DICOM whose screen "
        "carries no text and says so with BurnedInAnnotation NO"
    )


def keep_regions(gray: np.ndarray, regions: list[Region]) -> np.ndarray:
    """A copy of ``gray`` with every pixel outside all ``regions`` black (module docstring)."""
    keep = np.zeros(gray.shape[:2], bool)
    for r in regions:
        keep[max(r.y0, 0) : r.y1 + 1, max(r.x0, 0) : r.x1 + 1] = True
    out = gray.copy()
    out[~keep] = 0
    return out
