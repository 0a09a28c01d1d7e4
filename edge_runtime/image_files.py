"""Reading an image file without handing OpenCV its path: the one image reader of every stage.

``cv2.imread`` crashes the process on a path that is not valid UTF-8 (a folder named in another
encoding, as on a USB stick from another system), and OpenCV's native logger names a file it cannot
open straight to stderr, past the log filters, where a file name may be the patient's. So the bytes
are read in Python and decoded with ``cv2.imdecode``, which never sees the path.

Input: a path and OpenCV imread flags. Output: the decoded array, the pixels ``cv2.imread(path,
flags)`` gives. A file that cannot be read or decoded raises :class:`UnreadableImage`, an InputError
whose message names the file and why; a caller that must name the case or key instead, or keep the
file's name out of a log, catches it and words its own error from :attr:`UnreadableImage.reason`.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge_runtime.errors import InputError

EMPTY = "an empty file"
NOT_DECODABLE = "not an image format OpenCV decodes"


class UnreadableImage(InputError):
    """An image file that is missing, unreadable, empty or not an image. ``reason`` says which,
    without the path (for messages that must not name the file)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: unreadable image ({reason})")
        self.path, self.reason = path, reason


def read_image(path: str | Path, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    """The image at ``path`` as ``cv2.imread(path, flags)`` reads it; UnreadableImage otherwise."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:  # gone, a dangling link, a folder, no permission
        raise UnreadableImage(path, f"cannot read the file: {exc.strerror or exc}") from exc
    if not data:  # imdecode asserts on an empty buffer
        raise UnreadableImage(path, EMPTY)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None:
        raise UnreadableImage(path, NOT_DECODABLE)
    return image
