"""The one preprocessing function shared by training and the runtime.

Input: an 8-bit grayscale ultrasound image (H, W) (or a BGR frame, converted first).
Output: float32 (1, h, w) at the manifest's input size, scaled to [0, 1] then
normalised with the manifest's mean/std. Training calls it on every (augmented)
image; the runtime backends call it on every frame's ROI, so both see identical input.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge_runtime.errors import InputError

UINT8_MAX = 255.0


def to_gray(frame: np.ndarray) -> np.ndarray:
    """BGR/BGRA/gray uint8 -> gray uint8 (H, W). Ultrasound B-mode carries no colour."""
    if frame.dtype != np.uint8:
        raise InputError(f"frame dtype is {frame.dtype}, expected uint8")
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3 and frame.shape[2] == 1:
        return frame[:, :, 0]
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    raise InputError(f"frame shape {frame.shape} is not a gray or BGR image")


def preprocess(gray: np.ndarray, height: int, width: int, mean: float, std: float) -> np.ndarray:
    """gray uint8 (H, W) -> normalised float32 (1, height, width)."""
    gray = to_gray(gray)
    if gray.shape != (height, width):
        gray = cv2.resize(gray, (width, height), interpolation=cv2.INTER_LINEAR)
    x = gray.astype(np.float32) * np.float32(1.0 / UINT8_MAX)
    x = (x - np.float32(mean)) / np.float32(std)
    return x[None, :, :]


def preprocess_for(gray: np.ndarray, manifest) -> np.ndarray:
    """Same as :func:`preprocess`, with size and normalisation taken from a manifest."""
    return preprocess(gray, manifest.input_height, manifest.input_width, manifest.mean, manifest.std)
