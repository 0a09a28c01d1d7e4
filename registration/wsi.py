"""Whole slide image opening: the reader that opens the file and the scale of its level 0.

Input: a slide file (pyramidal TIFF, OME-TIFF, Aperio SVS, Hamamatsu NDPI, 3DHISTECH MRXS,
DICOM WSI, or a plain PNG/JPEG thumbnail), ``pathology.mpp`` (optional) and, for
:func:`read_slide`, the microns per pixel the registration works at. Output: an open
``wsi_slide.Slide`` (:func:`open_slide`) or the ``wsi_slide.SlideLevel`` read from it
(:func:`read_slide`); how a level is chosen and read is wsi_slide.py's job.

Reader choice (``reader="auto"``): a thumbnail goes to OpenCV; a file OpenSlide recognises as a
scanner format (aperio, hamamatsu, mirax, dicom, leica, philips, ventana...) goes to OpenSlide
first; generic and OME TIFFs go to tifffile first (it reads OME SubIFD pyramids and JPEG 2000
tiles that OpenSlide's generic-TIFF driver does not). When the first reader cannot open the file,
the next one is tried; when none can, the error lists every reader's reason. A file that opens
only because a reader took it for something simpler (a damaged SVS read as a plain TIFF) and then
lacks a scale says so with the other readers' reasons.
"""

from __future__ import annotations

from pathlib import Path

from edge_runtime.errors import InputError
from registration.wsi_mpp import check_square, resolve_mpp
from registration.wsi_openslide import OpenSlideSlide, detect_vendor
from registration.wsi_raster import RasterSlide
from registration.wsi_slide import Slide, SlideLevel, replay
from registration.wsi_tiff import CannotOpen, TiffSlide

__all__ = ["READERS", "Slide", "SlideLevel", "open_slide", "read_slide"]

READERS = ("auto", "tifffile", "openslide")
RASTER_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
TIFF_FIRST = {None, "generic-tiff"}  # OpenSlide format names where tifffile is tried first

OPENERS = {"tifffile": TiffSlide, "openslide": OpenSlideSlide, "opencv": RasterSlide}


def _candidates(path: Path, reader: str) -> list[str]:
    if reader != "auto":
        return [reader]
    if path.suffix.lower() in RASTER_SUFFIXES:
        return ["opencv"]
    return ["tifffile", "openslide"] if detect_vendor(path) in TIFF_FIRST else ["openslide", "tifffile"]


def open_slide(path: str | Path, mpp: float | None = None, reader: str = "auto") -> Slide:
    """Open ``path`` with the first reader that can (see the module docstring); resolve its mpp."""
    path = Path(path)
    where = str(path)
    if reader not in READERS:
        raise InputError(f"{where}: unknown slide reader {reader!r} (choose from {list(READERS)})")
    if not path.exists():
        raise InputError(f"{where}: WSI file not found")
    tried: list[str] = []
    unscaled = None  # (the missing-mpp error, the reader, its log records): the first reader without a scale
    for name in _candidates(path, reader):
        try:
            src = OPENERS[name](path)
        except CannotOpen as exc:
            tried.append(f"{name}: {' '.join(str(exc).split())}")
            continue
        if name == "opencv" and mpp is None:
            src.close()
            raise InputError(f"{where}: missing mpp: a thumbnail needs pathology.mpp (microns per pixel)")
        try:
            mpp0, source = resolve_mpp(src.mpp_found, src.mpp_source, mpp, where)
            check_square(src.mpp_found, src.mpp_y_found, src.mpp_source, where)
        except InputError as exc:
            src.close()
            # the file's own scale is wrong (not pathology.mpp's, or not square): no other reader helps
            if src.mpp_found is not None:
                replay(src.log_records)
                raise
            # no scale: the next reader may find one (a damaged SVS read by tifffile as a plain TIFF
            # loses Aperio's scale, which OpenSlide reads), or say why it refuses the file
            if unscaled is None:
                unscaled = (exc, name, src.log_records)
            else:
                tried.append(f"{name}: opens it, without a scale either ({src.mpp_source})")
            continue
        return Slide(src, mpp0, source, where, tried)
    if unscaled is not None:
        exc, name, records = unscaled
        replay(records)
        raise InputError(f"{exc} (read by {name}; {'; '.join(tried)})" if tried else str(exc)) from exc
    kind = "thumbnail" if path.suffix.lower() in RASTER_SUFFIXES else "WSI"
    raise InputError(f"{where}: unreadable {kind}: no slide reader opens it ({'; '.join(tried)})")


def read_slide(
    path: str | Path, mpp: float | None = None, target_mpp: float = 8.0, reader: str = "auto"
) -> SlideLevel:
    """Read the level of ``path`` that best serves ``target_mpp`` (µm/px), with the reader that opens it."""
    with open_slide(path, mpp, reader) as slide:
        return slide.read(target_mpp)
