"""tifffile slide reader: TIFF, OME-TIFF, Aperio SVS, Hamamatsu NDPI, tile by tile.

Input: a TIFF-family file. Output: a ``TiffSlide`` with the pyramid's level shapes and
``read_region(level, x, y, w, h)`` returning RGB uint8 in that level's pixels. Only the tiles
(or strips) that touch the region are read from disk and decoded (threads: the codecs
release the GIL), so a 40000 px level 0 is never decoded to read a corner of it. The slide is the
file's largest image series, its levels largest first (``slide_levels``): never a macro or label image
stored before it.

Compressions come from imagecodecs (JPEG, JPEG 2000, LZW, deflate, ZSTD, WebP...). Opening
checks that every level's compression can be decoded here, so a file whose tiles this reader
cannot decode is left to the next reader rather than failing half-way. Whatever tifffile raises
while opening the file or reading its structure (a truncated or damaged file) becomes ``CannotOpen``
with its reason, and so does a level of width or height 0, and a tile far larger than its level
(TileWidth/TileLength beyond the level's size rounded up to ``TILE_ROUNDING``): a tile is decoded
whole, so a 783 KB file with a 64x64 image and 16384x16384 tiles would inflate 805 MB per tile.

tifffile logs what it finds wrong in a damaged file (a corrupt tag list, a series it gives up on) to
its own logger. Those records are collected while this reader opens and reads (``log_records``,
:mod:`registration.library_log`) instead of reaching stderr past the one-line error; wsi_slide.py
turns them into report warnings, or logs them again when the slide cannot be read.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from edge_runtime.privacy import library_path
from registration.library_log import collected_log, log_reason
from registration.wsi_mpp import ome_conflict, tiff_mpp

DECODE_THREADS = 2
RGB_CHANNELS = 3  # the fourth sample, when there is one, is alpha
OPAQUE = 255  # 8-bit full scale: opaque alpha, and white
MEGA = 1_000_000
JPEG_COMPRESSIONS = {6, 7, 33007, 34892}  # tifffile passes JPEG tables/headers for these
# A tile may overhang its level (a 100x40 pyramid level in 512x512 tiles), but not by more than this
# rounding: a level's tiles fit in its size rounded up to a multiple of it. Generous: tiles are commonly
# a few hundred px (TIFF wants multiples of 16), so only a damaged or crafted tag exceeds it.
TILE_ROUNDING = 4096


class CannotOpen(Exception):
    """This reader cannot open the file (the next reader may)."""


def to_rgb(arr: np.ndarray) -> np.ndarray:
    """Gray/RGB/RGBA of any integer depth -> contiguous RGB uint8. Depth is scaled by the sample
    type's range, the same for every tile: scaled by its own maximum, a tile of uniform tissue would
    turn white (glass) and the tiles would meet at seams. Alpha blends onto white, as the OpenSlide
    reader does, so an unscanned area reads as glass, not as black ink."""
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] < 3:
        raise ValueError(f"unsupported slide pixel layout {arr.shape}")
    arr = _to_uint8(arr)
    rgb = arr[..., :3]
    if arr.shape[2] > RGB_CHANNELS and (arr[..., RGB_CHANNELS] != OPAQUE).any():
        alpha = arr[..., RGB_CHANNELS : RGB_CHANNELS + 1].astype(np.uint16)
        rgb = ((rgb.astype(np.uint16) * alpha + OPAQUE * (OPAQUE - alpha)) // OPAQUE).astype(np.uint8)
    return np.ascontiguousarray(rgb)


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"unsupported slide sample type {arr.dtype} (integer samples only)")
    scale = OPAQUE / float(np.iinfo(arr.dtype).max)
    return np.clip(np.rint(arr.astype(np.float32) * scale), 0, OPAQUE).astype(np.uint8)


def _vendor(tif) -> str:
    for flag, name in (
        ("is_svs", "aperio"),
        ("is_ndpi", "hamamatsu"),
        ("is_ome", "ome-tiff"),
        ("is_scn", "leica"),
        ("is_philips", "philips"),
        ("is_bif", "ventana"),
    ):
        if getattr(tif, flag, False):
            return name
    return "tiff"


class TiffSlide:
    """An open TIFF pyramid (see the module docstring). Close it, or use it as a context manager."""

    reader = "tifffile"

    def __init__(self, path: Path):
        import tifffile  # deferred: optional dependency of the registration extra

        self.log_records: list[logging.LogRecord] = []  # tifffile's own log records (module docstring)
        self.notes: list[str] = []  # what the reader itself found about the file: a scale contradiction
        with collected_log(self.log_records):
            try:
                self._tif = tifffile.TiffFile(library_path(path))  # its log lines then lose the name
            except Exception as exc:  # TiffFileError, ValueError, struct.error... on non-TIFFs
                raise self._refusal(exc) from exc
            try:
                self._open(tifffile.TIFF.DECOMPRESSORS)
            except CannotOpen:
                self._tif.close()
                raise
            except Exception as exc:
                # the series, tags and pages of a damaged file are parsed lazily here, and tifffile
                # then raises anything (TiffFileError, TypeError, KeyError, struct.error...): the
                # library boundary, where the reason becomes this reader's one-line refusal
                self._tif.close()
                raise self._refusal(exc) from exc
        self._fd = os.open(str(path), os.O_RDONLY)

    def _refusal(self, exc: Exception) -> CannotOpen:
        """CannotOpen with the exception and what tifffile logged about it, on one line."""
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        logged = log_reason(self.log_records)
        return CannotOpen(f"{reason} ({logged})" if logged else reason)

    def _open(self, decompressors) -> None:
        tif = self._tif
        if not tif.series:
            raise CannotOpen("no image series in the file")
        self.vendor = _vendor(tif)
        self._pages = []
        for level in slide_levels(tif.series):
            page = level.keyframe
            if page.planarconfig != 1 and page.samplesperpixel > 1:
                raise CannotOpen("planar (separate-sample) slides are not supported by this reader")
            if not np.issubdtype(
                page.dtype, np.integer
            ):  # float, 1-bit: refused here, so the next reader is tried
                raise CannotOpen(f"unsupported sample type {page.dtype} (this reader reads integer samples)")
            if page.ndim not in (2, 3) or (page.ndim == 3 and page.shape[2] not in (1, 3, 4)):
                raise CannotOpen(f"unsupported level layout {page.shape} ({page.axes})")
            if page.compression not in decompressors:
                name = getattr(page.compression, "name", page.compression)
                hint = " (install imagecodecs)" if isinstance(name, str) else ""
                raise CannotOpen(f"cannot decode TIFF compression {name}{hint}")
            self._pages.append(page)
        self.mpp_found, self.mpp_y_found, self.mpp_source = tiff_mpp(tif, self._pages[0])
        conflict = ome_conflict(self.mpp_found, self.mpp_source, self._pages[0])
        self.notes += [conflict] if conflict else []
        self.level_shapes = [(int(p.shape[0]), int(p.shape[1])) for p in self._pages]  # none 0 (slide_levels)
        # read (and checked) here, so a damaged tile-size tag refuses the file rather than a later read
        self._tiles = [self._tile_shape(i) for i in range(len(self._pages))]
        w0 = self.level_shapes[0][1]
        self.downsamples = [w0 / s[1] for s in self.level_shapes]

    def _tile_shape(self, level: int) -> tuple[int, int]:
        """(rows, columns) of one tile or strip of ``level``; CannotOpen when a tile size tag is damaged:
        0, or far beyond the level (module docstring)."""
        page, (lh, lw) = self._pages[level], self.level_shapes[level]
        th, tw = (page.chunks[0], page.chunks[1]) if page.is_tiled else (page.chunks[0], page.shape[1])
        if th <= 0 or tw <= 0:
            raise CannotOpen(f"tiles of {tw}x{th} px (a damaged tile size tag)")
        refuse_oversized_tile(level, (th, tw), (lh, lw))  # strips never are: tifffile caps their rows
        return int(th), int(tw)

    def tile_shape(self, level: int) -> tuple[int, int]:
        return self._tiles[level]

    def read_region(self, level: int, x: int, y: int, w: int, h: int) -> np.ndarray:
        """RGB uint8 [h, w, 3] of level pixels [y, y+h) x [x, x+w); outside the level is white.
        What tifffile logs meanwhile is added to ``log_records``."""
        with collected_log(self.log_records):
            return self._read_region(level, x, y, w, h)

    def _read_region(self, level: int, x: int, y: int, w: int, h: int) -> np.ndarray:
        page = self._pages[level]
        lh, lw = self.level_shapes[level]
        th, tw = self.tile_shape(level)
        nx = -(-lw // tw)
        out = np.full((h, w, 3), 255, np.uint8)
        ys = range(max(y, 0) // th, -(-min(y + h, lh) // th))
        xs = range(max(x, 0) // tw, -(-min(x + w, lw) // tw))
        # strips span the full width (tw == lw), so for them xs is one column and the index is the row
        jobs = [(iy * nx + ix if page.is_tiled else iy, iy * th, ix * tw) for iy in ys for ix in xs]
        kwargs = {}
        if page.compression in JPEG_COMPRESSIONS:
            kwargs = {"jpegtables": page.jpegtables, "jpegheader": page.jpegheader}

        decode_segment = page.decode  # a cached property: build it here, not racing in the threads

        def decode(job):
            index, ty, tx = job
            offset, count = page.dataoffsets[index], page.databytecounts[index]
            data = os.pread(self._fd, count, offset) if count else None
            # a capture of this worker thread's own: records are routed by the thread that logs them
            with collected_log(self.log_records):
                seg = decode_segment(data, index, **kwargs)[0]
            return ty, tx, seg

        with ThreadPoolExecutor(DECODE_THREADS) as pool:
            for ty, tx, seg in pool.map(decode, jobs):
                if seg is None:
                    continue  # a sparse tile: never written, glass
                tile = to_rgb(np.asarray(seg).reshape(seg.shape[-3], seg.shape[-2], seg.shape[-1]))
                _paste(out, tile, ty - y, tx - x)
        return out

    def close(self) -> None:
        os.close(self._fd)
        self._tif.close()


def _area(level) -> int:
    """Pixels of one level (TiffPageSeries): ImageLength x ImageWidth of its first page."""
    return int(level.keyframe.imagelength) * int(level.keyframe.imagewidth)


def slide_levels(series: list) -> list:
    """The levels of the file's slide, largest first. The slide is the series whose largest level has the
    most pixels (the first of equals), not series 0: a file may open with a macro or label image (the glass
    slide and its paper label, often with the patient's name) as a series of its own, and read as the slide
    it would be drawn into qa.png and scale every annotation by its width. Its levels are sorted by size
    (stable), since a writer may list them smallest first, which would make a reduced copy level 0.
    CannotOpen for a level 0 px wide or high in any series (a damaged size tag): it has no pixels to read
    and no scale to derive, and with no area it would hand the slide to a thumbnail or label image."""
    for k, one in enumerate(series):
        for i, level in enumerate(one.levels):
            h, w = int(level.keyframe.imagelength), int(level.keyframe.imagewidth)
            if h <= 0 or w <= 0:
                where = f"series {k} level {i}" if k else f"level {i}"
                raise CannotOpen(f"{where} is {w}x{h} px (a damaged size tag)")
    # max keeps the first of equals
    slide = max(series, key=lambda s: max(_area(level) for level in s.levels))
    return sorted(slide.levels, key=_area, reverse=True)


def refuse_oversized_tile(level: int, tile: tuple[int, int], size: tuple[int, int]) -> None:
    """CannotOpen when ``tile`` (rows, columns) is far larger than its level of ``size`` (height, width):
    beyond the level's size rounded up to a multiple of TILE_ROUNDING (module docstring)."""
    (th, tw), (lh, lw) = tile, size
    if th > -(-lh // TILE_ROUNDING) * TILE_ROUNDING or tw > -(-lw // TILE_ROUNDING) * TILE_ROUNDING:
        raise CannotOpen(
            f"level {level} ({lw}x{lh} px) has tiles of {tw}x{th} px, far larger than the level "
            f"(a damaged tile size tag; decoding one would take {tw * th // MEGA} Mpx)"
        )


def _paste(out: np.ndarray, tile: np.ndarray, oy: int, ox: int) -> None:
    """Copy the part of ``tile`` placed at (oy, ox) that falls inside ``out``."""
    h, w = out.shape[:2]
    y0, x0 = max(oy, 0), max(ox, 0)
    y1, x1 = min(oy + tile.shape[0], h), min(ox + tile.shape[1], w)
    if y1 > y0 and x1 > x0:
        out[y0:y1, x0:x1] = tile[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
