"""An opened slide: its levels read at the scale the registration works at, never level 0 whole.

Input: a reader's open file (wsi_tiff.TiffSlide, wsi_openslide.OpenSlideSlide or wsi_raster.RasterSlide)
with its level-0 mpp already resolved (wsi.py's ``open_slide`` chooses the reader and the scale).
Output: ``SlideLevel``: RGB pixels at (or just finer than) the target mpp, their mpp and downsample
from level 0, and which reader, format and level were used.

Level choice (wsi_levels.py: only levels of level 0's shape, never a macro image listed as one):
the coarsest level whose mpp is still <= the target; when even that is 2x or more
finer than the target, it is read in row bands and shrunk band by band (area averaging), so
memory stays bounded and level 0 of a pyramid is never decoded whole. What is still more than
10 % finer than the target is then resized to it, so the registration works at the same scale
whatever the scanner's pyramid steps (its time grows with the pixels it gets). ``Slide.read_box`` reads
just a level-0 box at a finer scale (regions where detail matters). A level that cannot be decoded
(corrupt tiles) fails with the file, level and reader in one line.

A reader library's own log lines about the file (tifffile on a damaged file), and what a reader
itself could not verify (a DICOM series that does not say which level is full resolution), become
``SlideLevel.warnings`` (report.json), with the file names in them taken out (they may carry
the patient's name); when the slide cannot be read they go to the log at INFO (:func:`replay`), so that
by default the one-line error is all that reaches stderr.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from edge_runtime.errors import InputError
from edge_runtime.privacy import without_file_names
from registration.wsi_levels import level_for, not_a_level, pyramid_levels
from registration.wsi_raster import BIG_LEVEL_PIXELS, TOO_BIG_ADVICE
from registration.wsi_tiff import to_rgb

CHUNK_PIXELS = 16_000_000  # level pixels decoded per band while streaming
NOTE_FACTOR = 4  # streaming a level this much finer than needed is worth a warning
RESIDUAL_SHRINK = 1.1  # after the integer shrink, a level still >10 % finer is resized to the target
REPLAY_LEVEL = logging.INFO  # a library's log lines about a slide that could not be read (replay)


@dataclass
class SlideLevel:
    rgb: np.ndarray  # uint8 [h, w, 3]
    mpp: float  # microns per pixel of rgb
    downsample: float  # level-0 pixels per rgb pixel
    level: int  # pyramid level read (before any shrinking)
    level0_shape: tuple[int, int]
    source: str
    note: str | None = None  # e.g. "no pyramid level near: streamed", reported as a warning
    reader: str = "opencv"  # tifffile | openslide | opencv
    vendor: str = "raster"  # format as the reader names it (aperio, ome-tiff, dicom, tiff...)
    mpp_source: str = ""
    level_shape: tuple[int, int] = (0, 0)  # the level read, before shrinking
    shrink: float = 1.0  # level pixels per rgb pixel (area averaging after reading)
    origin: tuple[float, float] = (0.0, 0.0)  # level-0 (x, y) of rgb's top-left pixel
    tried: list = field(default_factory=list)  # readers that could not open the file, with why
    warnings: list = field(default_factory=list)  # what the reader library logged about the file

    def describe(self) -> dict:
        """The report.json view: which reader, format and level, at what scale."""
        return {
            "reader": self.reader,
            "format": self.vendor,
            "level": self.level,
            "level_shape": list(self.level_shape),
            "shrink": round(self.shrink, 4),
            "level_mpp": round(self.mpp, 4),
            "downsample": round(self.downsample, 4),
            "level0_shape": list(self.level0_shape),
            "mpp_source": self.mpp_source,
            # a library's message may quote the file (tifffile: <TiffFile 'NAME.ome.tif'>): not in a report
            "readers_not_used": [without_file_names(reason) for reason in self.tried],
        }


def one_line(exc: Exception) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def library_warnings(records: list[logging.LogRecord], reader: str, where: str) -> list[str]:
    """One warning per distinct message a reader library logged, naming ``where`` (the slide) but no
    file the library quoted (a file name may be the patient's)."""
    messages = (without_file_names(" ".join(r.getMessage().split())) for r in records)
    return [f"{where}: {reader} reported: {m}" for m in dict.fromkeys(messages)]


def replay(records: list[logging.LogRecord]) -> None:
    """Hand collected records (the slide could not be read) to their loggers at INFO, whatever their own
    level: by default only the one-line error reaches stderr, not the library's lines beside it, which
    may quote the file's name (a patient's); ``sonomap -v`` (INFO) shows them, through the log's filters.
    ``records`` is emptied."""
    for record in records:
        logger = logging.getLogger(record.name)  # its own logger: the log's filters for libraries apply
        if logger.isEnabledFor(REPLAY_LEVEL):  # handle() itself checks no level
            record.levelno, record.levelname = REPLAY_LEVEL, logging.getLevelName(REPLAY_LEVEL)
            logger.handle(record)
    records.clear()


class Slide:
    """An open slide with its level-0 mpp resolved. Use as a context manager."""

    def __init__(self, src, mpp0: float, mpp_source: str, where: str, tried: list[str]):
        self.src, self.mpp0, self.mpp_source, self.where, self.tried = src, mpp0, mpp_source, where, tried
        # levels that are no reduced copy of level 0 (a macro image OpenSlide lists as one) are never read
        self.levels, dropped = pyramid_levels(src.level_shapes)
        self.level_notes = [not_a_level(where, k, src.level_shapes[k], src.level_shapes[0]) for k in dropped]

    def __enter__(self) -> Slide:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.src.close()

    def _fail(self, exc: InputError) -> InputError:
        """``exc``, after the reader library's collected log lines went to the log (no report follows)."""
        replay(self.src.log_records)
        return exc

    def level_for(self, target_mpp: float) -> tuple[int, int]:
        """(level, shrink): the coarsest pyramid level with mpp <= target, then the integer shrink toward it."""
        return level_for(self.levels, self.src.downsamples, self.mpp0, target_mpp)

    def read(self, target_mpp: float) -> SlideLevel:
        """The whole slide at (or just finer than) ``target_mpp``."""
        k, _ = self.level_for(target_mpp)
        h, w = self.src.level_shapes[k]
        return self._read(k, (0, 0, w, h), target_mpp)

    def read_box(self, box0: tuple[float, float, float, float], target_mpp: float) -> SlideLevel:
        """Only the level-0 box (x0, y0, x1, y1), from the level that suits ``target_mpp``; one past the
        slide's edge is refused for every reader (tifffile pads it white, OpenSlide blames the file)."""
        (h0, w0), (x0, y0, x1, y1) = self.src.level_shapes[0], box0
        if x1 <= x0 or y1 <= y0:
            raise self._fail(InputError(f"{self.where}: empty slide box {list(box0)}"))
        if x0 < 0 or y0 < 0 or x1 > w0 or y1 > h0:
            why = f"slide box {list(box0)} reaches past the slide ({w0}x{h0} px at level 0)"
            raise self._fail(InputError(f"{self.where}: {why}"))
        k, _ = self.level_for(target_mpp)
        ds, (lh, lw) = self.src.downsamples[k], self.src.level_shapes[k]
        # a coarser level's size is level 0's rounded down: keep a box at level 0's edge inside it
        c0, r0 = min(math.floor(x0 / ds), lw - 1), min(math.floor(y0 / ds), lh - 1)
        c1, r1 = min(math.ceil(x1 / ds), lw), min(math.ceil(y1 / ds), lh)
        return self._read(k, (c0, r0, c1 - c0, r1 - r0), target_mpp)

    def _read(self, k: int, box: tuple[int, int, int, int], target_mpp: float) -> SlideLevel:
        _, factor = self.level_for(target_mpp)
        x, y, w, h = box
        out_h, out_w = -(-h // factor), -(-w // factor)
        th, tw = self.src.tile_shape(k)
        # what one read holds, against the thumbnail path's budget: the output; a band's row of tiles (or a
        # strip) across the box; one tile, decoded whole whatever part the box needs (a tile size tag can
        # claim more than the level: the readers refuse a tile far beyond its level, this bounds one as big
        # as a huge level)
        limits = (
            (out_h * out_w, f"no pyramid level near {target_mpp} µm/px (level {k} is {w}x{h} px)"),
            (th * w, f"level {k} is stored in strips of {th}x{w} px, too big to decode"),
            (th * tw, f"level {k} is stored in tiles (or strips) of {tw}x{th} px, too big to decode"),
        )
        for pixels, why in limits:
            if pixels > BIG_LEVEL_PIXELS:
                raise self._fail(InputError(f"{self.where}: {why}; {TOO_BIG_ADVICE}"))
        try:
            rgb = self._stream(k, box, factor, out_h, out_w)
        except InputError:
            replay(self.src.log_records)
            raise
        except Exception as exc:  # codec errors (Jpeg8Error, OpenSlideError...), truncated files
            lh, lw = self.src.level_shapes[k]
            raise self._fail(
                InputError(
                    f"{self.where}: level {k} ({lw}x{lh} px) cannot be read by {self.src.reader}: "
                    f"corrupt or truncated tile data ({one_line(exc)})"
                )
            ) from exc
        ds = self.src.downsamples[k]
        residual = target_mpp / (self.mpp0 * ds * factor)
        if residual > RESIDUAL_SHRINK:  # e.g. Aperio's 4x steps leave a level up to 4x finer than needed
            size = (max(int(round(out_w / residual)), 1), max(int(round(out_h / residual)), 1))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        shrink = w / rgb.shape[1]
        note = None
        if factor >= NOTE_FACTOR:
            note = (
                f"{self.where}: no pyramid level near {target_mpp} µm/px; level {k} was streamed tile by tile "
                f"and shrunk {factor}x (slow for big slides: save a pyramidal TIFF)"
            )
        return SlideLevel(
            rgb,
            self.mpp0 * ds * shrink,
            ds * shrink,
            k,
            self.src.level_shapes[0],
            self.where,
            note,
            self.src.reader,
            self.src.vendor,
            self.mpp_source,
            tuple(self.src.level_shapes[k]),
            shrink,
            (x * ds, y * ds),
            list(self.tried),
            library_warnings(self.src.log_records, self.src.reader, self.where)
            # the reader's own findings (OpenSlideSlide: a DICOM base level it cannot verify), and the levels
            # left out of the pyramid
            + list(self.src.notes)
            + self.level_notes,
        )

    def _stream(self, k: int, box, factor: int, out_h: int, out_w: int) -> np.ndarray:
        """Read ``box`` of level k in row bands, area-shrinking each band by ``factor``."""
        x, y, w, h = box
        th = self.src.tile_shape(k)[0]
        band = math.lcm(th, factor)
        rows = max(band * max(CHUNK_PIXELS // max(w * band, 1), 1), factor)
        if th >= h:  # one strip holds the box: decode it once, not once per band
            rows = h
        elif rows * w > 2 * CHUNK_PIXELS:  # tall strips or odd factors: bound the band by the factor only
            rows = factor * max(CHUNK_PIXELS // max(w * factor, 1), 1)
        out = np.empty((out_h, out_w, 3), np.uint8)
        for r in range(0, h, rows):
            rr = min(rows, h - r)
            part = to_rgb(self.src.read_region(k, x, y + r, w, rr))
            oy = r // factor
            oh = -(-rr // factor)
            if factor > 1:
                part = cv2.resize(part, (out_w, oh), interpolation=cv2.INTER_AREA)
            out[oy : oy + oh] = part
        return out
