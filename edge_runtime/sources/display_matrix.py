"""A video frame shown as players show it: its display matrix (an MP4's ``tkhd``, an H.264 display
orientation message; FFmpeg's ``AV_FRAME_DATA_DISPLAYMATRIX``) turned and mirrored into the pixels.

A portrait recording is otherwise replayed lying on its side, and a mirrored one (a front camera, an
encoder that writes a horizontal flip: a matrix with a negative determinant) replayed mirrored or
upside down, since the rotation angle alone (PyAV's ``VideoFrame.rotation``) reads a plain mirror as a
half turn.

FFmpeg's matrix maps a stored pixel ``(x, y)`` (y downwards) to the displayed ``(a*x + c*y, b*x + d*y)``
for ``[a b u; c d v; tx ty w]`` (a, b, c, d in 16.16 fixed point); ``av_display_matrix_flip`` negates a
column to mirror after the turn. The eight right-angle orientations become a transpose and row/column
flips, the same as the ``transpose``/``hflip``/``vflip`` filters FFmpeg's command line inserts. A matrix
at another angle (within ``RIGHT_ANGLE_TOLERANCE_DEG``), or a degenerate one (FFmpeg's rotation of it is
NaN), leaves the frame as stored, as players do for a degenerate one; an ultrasound frame is never
turned by a part of a right angle.

The matrix is read from the first frame after a file or stream is opened and applied to every frame
after it: an MP4's is per track, and reading a frame's side data through PyAV ties that frame in a
reference cycle (its picture freed only when Python's cycle collector runs), too costly per frame. A
matrix that changes mid-stream (an H.264 display-orientation message per frame) is not followed.

Input: a decoded PyAV frame. Output: :func:`orientation` (:data:`IDENTITY`: shown as stored) and :func:`apply`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import av
import cv2
import numpy as np
from av.sidedata.sidedata import Type

MATRIX_VALUES = 9
# FFmpeg's command line turns a frame by a right angle when the matrix is within 1 degree of one.
RIGHT_ANGLE_TOLERANCE_DEG = 1.0
_SKEW_LIMIT = math.tan(math.radians(RIGHT_ANGLE_TOLERANCE_DEG))
# cv2.flip's codes
_FLIP_CODES = {(True, False): 1, (False, True): 0, (True, True): -1}


class Orientation(NamedTuple):
    """How a stored frame becomes the shown one: transposed first, then mirrored."""

    transpose: bool
    flip_columns: bool  # left and right swapped
    flip_rows: bool  # top and bottom swapped


IDENTITY = Orientation(False, False, False)


def from_matrix(matrix: np.ndarray) -> Orientation:
    """The orientation of FFmpeg display ``matrix`` (nine int32 values); IDENTITY for a degenerate
    matrix or one not at a right angle."""
    a, b, c, d = (float(matrix[i]) for i in (0, 1, 3, 4))
    if math.hypot(a, c) == 0 or math.hypot(b, d) == 0:  # av_display_rotation_get: NaN
        return IDENTITY
    if abs(b) <= _SKEW_LIMIT * abs(a) and abs(c) <= _SKEW_LIMIT * abs(d):  # x stays x
        return Orientation(False, a < 0, d < 0)
    if abs(a) <= _SKEW_LIMIT * abs(b) and abs(d) <= _SKEW_LIMIT * abs(c):  # x shown along y
        return Orientation(True, c < 0, b < 0)
    return IDENTITY


def orientation(vf: av.VideoFrame) -> Orientation:
    """The frame's orientation; IDENTITY (shown as stored) when it has no usable matrix."""
    data = vf.side_data.get(Type.DISPLAYMATRIX)
    raw = b"" if data is None else bytes(data)
    if len(raw) < MATRIX_VALUES * 4:  # none, or a damaged side data block: nothing to go by
        return IDENTITY
    return from_matrix(np.frombuffer(raw[: MATRIX_VALUES * 4], dtype=np.int32))


def apply(image: np.ndarray, turn: Orientation) -> np.ndarray:
    """``image`` (H, W[, C]) as shown under ``turn``, contiguous."""
    if turn.transpose:
        image = cv2.transpose(image)
    code = _FLIP_CODES.get((turn.flip_columns, turn.flip_rows))
    if code is not None:
        image = cv2.flip(image, code)
    return np.ascontiguousarray(image)
