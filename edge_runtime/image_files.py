"""Reading an image file without handing OpenCV its path.

``cv2.imread`` crashes the process on a path that is not valid UTF-8 (a folder named in another
encoding, as on a USB stick from another system), and OpenCV's native logger names a file it cannot
open straight to stderr, past the log filters, where a file name may be the patient's. So the bytes
are read in Python and decoded with ``cv2.imdecode``, which never sees the path.

Input: a path and OpenCV imread flags. Output: the decoded array, or None when the file cannot be
read or decoded; each caller names the file and the case.yaml key in its own error.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def decode_image_file(path: str | Path, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray | None:
    """The image at ``path`` as ``cv2.imread(path, flags)`` reads it; None when unreadable."""
    try:
        data = Path(path).read_bytes()
    except OSError:  # gone, a dangling link, a folder, no permission: unreadable like a corrupt image
        return None
    if not data:  # imdecode asserts on an empty buffer
        return None
    return cv2.imdecode(np.frombuffer(data, np.uint8), flags)
