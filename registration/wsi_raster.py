"""A plain PNG/JPEG/BMP thumbnail as a one-level slide (no scale in the file: pathology.mpp gives it).

A thumbnail is decoded whole, so its size is read from the file's header first (Pillow opens
lazily: nothing is decoded) and an image above ``BIG_LEVEL_PIXELS`` is refused before decoding. A
mostly white 30000x30000 PNG is under 1 MB on disk but 2.7 GB once decoded in colour.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.errors import InputError
from edge_runtime.image_files import UnreadableImage, read_image
from edge_runtime.privacy import library_path
from registration.wsi_tiff import CannotOpen

BIG_LEVEL_PIXELS = 64_000_000  # refuse to hold an output this large (the slide needs a pyramid)
MEGA = 1_000_000
NOT_AN_IMAGE = "not a readable PNG/JPEG/BMP image"
TOO_BIG_ADVICE = "save the slide as a tiled pyramidal TIFF (e.g. with QuPath or vips)"


def refuse_huge_raster(path: Path) -> None:
    """InputError naming ``path`` and its size when its header says it holds more than
    BIG_LEVEL_PIXELS pixels. Without Pillow (the registration extra brings it, as imagehash's
    dependency) the check happens after decoding, in :class:`RasterSlide`."""
    try:
        from PIL import Image, UnidentifiedImageError  # deferred: Pillow is optional (see the docstring)
    except ImportError:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limit below is ours
        try:
            with Image.open(library_path(path)) as image:
                w, h = image.size
        except Image.DecompressionBombError as exc:  # Pillow's own limit is above ours
            raise InputError(f"{path}: too big to decode as one image ({exc}); {TOO_BIG_ADVICE}") from exc
        except (UnidentifiedImageError, OSError, ValueError):
            return  # not a file Pillow knows: OpenCV's reading below says what is wrong
    _refuse_size(path, w, h)


def _refuse_size(path: Path, w: int, h: int) -> None:
    if w * h > BIG_LEVEL_PIXELS:
        raise InputError(
            f"{path}: a {w}x{h} px image ({w * h / MEGA:.0f} Mpx) is too big to decode whole "
            f"(limit {BIG_LEVEL_PIXELS // MEGA} Mpx); {TOO_BIG_ADVICE}"
        )


def _decode_colour(path: Path) -> np.ndarray:
    """The image as ``cv2.imread(path, IMREAD_COLOR)`` gives it (BGR, EXIF orientation applied, which a
    thumbnail needs), decoded from the file's bytes; CannotOpen when it cannot be read or decoded."""
    try:
        return read_image(path, cv2.IMREAD_COLOR)
    except UnreadableImage as exc:
        raise CannotOpen(f"{NOT_AN_IMAGE} ({exc.reason})") from exc


class RasterSlide:
    """A PNG/JPEG/BMP thumbnail: one level, no scale in the file."""

    reader, vendor = "opencv", "raster"
    mpp_found, mpp_y_found, mpp_source = None, None, "none in the file"

    def __init__(self, path: Path):
        self.log_records: list = []  # a library's log lines about the file (wsi_tiff.py): none here
        self.notes: list[str] = []  # what the reader itself found about the file: nothing here
        refuse_huge_raster(path)
        img = _decode_colour(path)
        _refuse_size(path, img.shape[1], img.shape[0])
        self._rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        self.level_shapes = [self._rgb.shape[:2]]
        self.downsamples = [1.0]

    def tile_shape(self, level: int) -> tuple[int, int]:
        return self.level_shapes[0]

    def read_region(self, level: int, x: int, y: int, w: int, h: int) -> np.ndarray:
        out = np.full((h, w, 3), 255, np.uint8)
        src = self._rgb[max(y, 0) : y + h, max(x, 0) : x + w]
        out[max(-y, 0) : max(-y, 0) + src.shape[0], max(-x, 0) : max(-x, 0) + src.shape[1]] = src
        return out

    def close(self) -> None:
        self._rgb = None
