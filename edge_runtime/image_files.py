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
for PNG, JPEG, BMP, TIFF and WebP (:mod:`edge_runtime.image_headers`); another format is left to
OpenCV's own limit of 2^30 pixels, which it refuses as unreadable.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge_runtime.errors import InputError
from edge_runtime.image_headers import declared_size

EMPTY = "an empty file"
NOT_DECODABLE = "not an image format OpenCV decodes"
# OpenCV's decoders refuse an image over CV_IO_MAX_IMAGE_PIXELS (2^30) by raising, not returning None
OPENCV_REFUSED = "OpenCV refused to decode it (larger than its limit of 2^30 pixels, or damaged)"


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
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as exc:  # a header beyond OpenCV's size limit, in a format not read above
        raise UnreadableImage(path, OPENCV_REFUSED) from exc
    if image is None:
        raise UnreadableImage(path, NOT_DECODABLE)
    return image
