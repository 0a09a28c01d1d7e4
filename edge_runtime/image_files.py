"""Reading an image file without handing OpenCV its path: the one image reader of every stage.

``cv2.imread`` crashes the process on a path that is not valid UTF-8 (a folder named in another
encoding, as on a USB stick from another system), and OpenCV's native logger names a file it cannot
open straight to stderr, past the log filters, where a file name may be the patient's. So the bytes
are read in Python and decoded with ``cv2.imdecode``, which never sees the path.

Input: a path and OpenCV imread flags. Output: the decoded array, the pixels ``cv2.imread(path,
flags)`` gives. A file that cannot be read or decoded raises :class:`UnreadableImage`, an InputError
whose message names the file and why; a caller that must name the case or key instead, or keep the
file's name out of a log, catches it and words its own error from :attr:`UnreadableImage.reason`.

With ``max_pixels``, an image whose header declares more pixels is refused before it is decoded
(:class:`ImageTooLarge`): a 1 MB PNG may declare 30000x30000, 2.7 GB once decoded. The header is read
for PNG, JPEG and BMP; other formats (TIFF) are left to OpenCV's own limit of 2^30 pixels.
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.errors import InputError

EMPTY = "an empty file"
NOT_DECODABLE = "not an image format OpenCV decodes"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_IHDR = struct.Struct(">8xI4sII")  # signature, IHDR length and type, then width and height
JPEG_SOI = b"\xff\xd8"
# JPEG start-of-frame markers (baseline, extended, progressive, lossless; not DHT 0xC4, JPG 0xC8, DAC 0xCC)
JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
JPEG_SOF_SIZE = struct.Struct(">HBHH")  # segment length, precision, height, width
BMP_SIGNATURE = b"BM"
BMP_SIZE = struct.Struct("<14xIii")  # file header, then the info header's size, width, height
BMP_CORE_SIZE = struct.Struct("<14xIHH")  # an OS/2 BITMAPCOREHEADER's 16-bit width and height
BMP_CORE_HEADER = 12


class UnreadableImage(InputError):
    """An image file that is missing, unreadable, empty or not an image. ``reason`` says which,
    without the path (for messages that must not name the file)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: unreadable image ({reason})")
        self.path, self.reason = path, reason


class ImageTooLarge(InputError):
    """An image whose header declares more pixels than the caller's ``max_pixels``; ``width`` and
    ``height`` say how large, for a caller that words its own error."""

    def __init__(self, path: Path, width: int, height: int, max_pixels: int):
        super().__init__(f"{path}: image of {width}x{height} px, more than the maximum {max_pixels} px")
        self.path, self.width, self.height = path, width, height


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    at = len(JPEG_SOI)
    while at + 2 + JPEG_SOF_SIZE.size <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker == 0xFF:  # a fill byte before the marker
            at += 1
            continue
        length, _, height, width = JPEG_SOF_SIZE.unpack_from(data, at + 2)
        if marker in JPEG_SOF:
            return width, height
        at += 2 + length  # a segment before the frame header (APPn, DQT, DHT, COM): skipped
    return None


def declared_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` as a PNG, JPEG or BMP header declares it, without decoding; None for
    another format or a header too short to tell (the decoder then judges the file)."""
    if data.startswith(PNG_SIGNATURE) and len(data) >= PNG_IHDR.size:
        _, kind, width, height = PNG_IHDR.unpack_from(data)
        return (width, height) if kind == b"IHDR" else None
    if data.startswith(JPEG_SOI):
        return _jpeg_size(data)
    if data.startswith(BMP_SIGNATURE) and len(data) >= BMP_SIZE.size:
        header, width, height = BMP_SIZE.unpack_from(data)
        if header == BMP_CORE_HEADER:
            header, width, height = BMP_CORE_SIZE.unpack_from(data)
        return abs(width), abs(height)  # a negative height: rows stored top-down
    return None


def read_image(
    path: str | Path, flags: int = cv2.IMREAD_UNCHANGED, max_pixels: int | None = None
) -> np.ndarray:
    """The image at ``path`` as ``cv2.imread(path, flags)`` reads it; UnreadableImage otherwise.
    ``max_pixels``: ImageTooLarge, before decoding, for an image whose header declares more."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:  # gone, a dangling link, a folder, no permission
        raise UnreadableImage(path, f"cannot read the file: {exc.strerror or exc}") from exc
    if not data:  # imdecode asserts on an empty buffer
        raise UnreadableImage(path, EMPTY)
    size = declared_size(data) if max_pixels is not None else None
    if size is not None and size[0] * size[1] > max_pixels:
        raise ImageTooLarge(path, size[0], size[1], max_pixels)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None:
        raise UnreadableImage(path, NOT_DECODABLE)
    return image
