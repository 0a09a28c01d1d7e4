"""Writing tiled slide pyramids the way scanners and converters lay them out (benchmarks, tests).

Input: the level-0 shape, mpp, a compression and a function giving each level's tiles.
Output: a tiled TIFF in one of three layouts, all with the same pixels:
- ``aperio``: an Aperio SVS layout: level 0 with an ``Aperio Image Library`` ImageDescription
  (``MPP = ...``), a stripped thumbnail as the second IFD, then the reduced levels as tiled
  IFDs. OpenSlide's aperio driver and tifffile's SVS parser both open it.
- ``generic``: reduced levels as consecutive tiled IFDs (NewSubfileType 1), scale in the
  resolution tags (OpenSlide's generic-tiff layout).
- ``ome``: OME-TIFF with the reduced levels as SubIFDs (what QuPath/bfconvert write).
Compressions: ``jpeg``, ``jpeg2000``, ``lzw``, ``zlib`` (imagecodecs encodes them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

LAYOUTS = ("aperio", "generic", "ome")
TILE = 256
THUMB_MAX_SIDE = 1024
CODECS = {"jpeg": ("jpeg", 85), "jpeg2000": ("jpeg2000", 80), "lzw": ("lzw", None), "zlib": ("zlib", 6)}

TileSource = Callable[
    [int, tuple[int, int]], Iterator[np.ndarray]
]  # (level, (h, w)) -> TILE x TILE RGB tiles


def level_shapes(shape0: tuple[int, int], downsamples) -> list[tuple[int, int]]:
    return [(max(shape0[0] // d, 1), max(shape0[1] // d, 1)) for d in downsamples]


def tiles_from_array(img: np.ndarray) -> Iterator[np.ndarray]:
    """Row-major TILE x TILE tiles of an RGB image, padded with white."""
    h, w = img.shape[:2]
    for y in range(0, h, TILE):
        for x in range(0, w, TILE):
            tile = np.full((TILE, TILE, 3), 255, np.uint8)
            part = img[y : y + TILE, x : x + TILE]
            tile[: part.shape[0], : part.shape[1]] = part
            yield tile


def pyramid_from_array(img: np.ndarray, downsamples) -> TileSource:
    """A TileSource for a small in-memory level 0 (tests): each level is an area-averaged copy."""
    shapes = level_shapes(img.shape[:2], downsamples)

    def source(k: int, shape: tuple[int, int]) -> Iterator[np.ndarray]:
        level = img if k == 0 else cv2.resize(img, (shapes[k][1], shapes[k][0]), interpolation=cv2.INTER_AREA)
        return tiles_from_array(level)

    return source


def write_slide(
    path: Path,
    shape0: tuple[int, int],
    mpp: float,
    tiles: TileSource,
    downsamples=(1, 4, 16),
    compression: str = "jpeg",
    layout: str = "aperio",
) -> list[tuple[int, int]]:
    """Write the pyramid; return the level shapes (h, w)."""
    import tifffile  # deferred: optional dependency of the registration extra

    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r}: choose from {LAYOUTS}")
    codec, level = CODECS[compression]
    shapes = level_shapes(shape0, downsamples)
    opts = dict(tile=(TILE, TILE), photometric="rgb", compression=codec, dtype=np.uint8)
    if level is not None:
        opts["compressionargs"] = {"level": level}
    res = 1e4 / mpp
    h0, w0 = shape0
    with tifffile.TiffWriter(
        str(path), bigtiff=layout != "aperio" or h0 * w0 > 2**30, ome=layout == "ome"
    ) as tw:
        for k, (h, w) in enumerate(shapes):
            scale = w / w0
            kw = dict(resolution=(res * scale, res * scale), resolutionunit="CENTIMETER")
            if layout == "aperio" and k == 0:
                kw["description"] = (
                    f"Aperio Image Library v12.0.5\r\n{w0}x{h0} [0,0 {w0}x{h0}] ({TILE}x{TILE}) "
                    f"{compression.upper()}/RGB Q={level or 100}|AppMag = 20|MPP = {mpp:.6f}"
                )
            elif layout == "ome" and k == 0:
                kw["subifds"] = len(shapes) - 1
                kw["metadata"] = {
                    "axes": "YXS",
                    "PhysicalSizeX": mpp,
                    "PhysicalSizeXUnit": "µm",
                    "PhysicalSizeY": mpp,
                    "PhysicalSizeYUnit": "µm",
                }
            elif layout != "aperio":
                kw["subfiletype"] = 1
            if layout != "ome":
                kw["metadata"] = None  # no tifffile "shaped" description: the scanner's is the only one
            tw.write(tiles(k, (h, w)), shape=(h, w, 3), **opts, **kw)
            if layout == "aperio" and k == 0:
                _write_thumbnail(tw, tiles, shapes)
    return shapes


def _write_thumbnail(tw, tiles: TileSource, shapes: list[tuple[int, int]]) -> None:
    """Aperio's second IFD: a small stripped picture of the whole slide (an associated image)."""
    k = len(shapes) - 1
    h, w = shapes[k]
    ny, nx = -(-h // TILE), -(-w // TILE)
    rows = []
    it = tiles(k, (h, w))
    for _ in range(ny):
        rows.append(np.concatenate([next(it) for _ in range(nx)], axis=1))
    img = np.concatenate(rows, axis=0)[:h, :w]
    f = min(1.0, THUMB_MAX_SIDE / max(h, w))
    thumb = cv2.resize(img, (max(int(w * f), 1), max(int(h * f), 1)), interpolation=cv2.INTER_AREA)
    tw.write(
        thumb,
        photometric="rgb",
        compression="jpeg",
        description=f"Aperio Image Library v12.0.5\r\n"
        f"{shapes[0][1]}x{shapes[0][0]} -> {thumb.shape[1]}x{thumb.shape[0]} - ",
        metadata=None,
    )
