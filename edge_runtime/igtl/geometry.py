"""Whether an OpenIGTLink geometry can be used: an IMAGE's IJK-to-world matrix or a TRANSFORM's matrix.

A sender (PLUS with a bad calibration, a tracker glitch, a buggy script) can put NaN or infinity in
the matrix, spacing or origin of a message, or a matrix whose axes have collapsed (a zero spacing,
two axes along one line). Such a geometry places nothing anywhere: it must neither travel on as a
frame's pose nor be relayed to viewers. :func:`check_geometry` says whether a matrix is usable;
:func:`report_refused` counts a refusal (``image_geometry_refused`` or ``transform_geometry_refused``
on the link, and
``sonomap_errors_total{kind="igtl_geometry_refused"}`` on /metrics) and logs one throttled error
line naming the message type and the sanitised device name, never anything else from the message.

Inputs: 4x4 matrices as decoded by pyigtl. Outputs: the matrix (float64) or :class:`UnusableGeometry`;
counts and log lines. Files: none.
"""

from __future__ import annotations

import logging

import numpy as np

from edge_runtime.igtl.net import Counters, warn_throttled
from edge_runtime.live_stats import EVENTS

MATRIX_SHAPE = (4, 4)
SPATIAL_AXES = 3
# The volume spanned by the matrix's three axes, each scaled to unit length, is 1 for perpendicular
# axes and 0 for axes in one plane. Trackers and scanners send perpendicular axes to float32
# precision (a deviation of about 1e-7); below this the matrix cannot be inverted meaningfully.
SINGULAR_TOLERANCE = 1e-6
# Counted per message type (``image_geometry_refused``, ``transform_geometry_refused``), so the
# throttled error line of one type never hides the other's first.
REFUSED_COUNTER = "{}_geometry_refused"
# Frame meta key of an IMAGE whose geometry was refused (source.py), holding why; the sink sends no
# prediction for such a frame, since nothing says where it lies.
GEOMETRY_REFUSED_KEY = "igtl_geometry_refused"
REFUSED_EVENT = "igtl_geometry_refused"  # sonomap_errors_total{kind=...} on /metrics
# Device names are chosen by the sender: shown cut to the protocol's 20-byte field, in plain
# printable ASCII, so a name can neither forge log lines (newlines, escapes) nor grow them.
DEVICE_NAME_SHOWN_CHARS = 20
PRINTABLE_FIRST, PRINTABLE_LAST = 0x20, 0x7E
HIDDEN_CHAR = "?"


class UnusableGeometry(ValueError):
    """A matrix that places nothing: its message says why ("holds NaN or infinity", ...)."""


def check_geometry(matrix) -> np.ndarray:
    """``matrix`` as a 4x4 float64 array when usable; :class:`UnusableGeometry` when it is not 4x4,
    holds NaN or infinity anywhere (direction, spacing or origin), or is singular."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != MATRIX_SHAPE:
        raise UnusableGeometry(f"the matrix is of shape {m.shape}, not 4x4")
    if not np.isfinite(m).all():
        raise UnusableGeometry("the matrix holds NaN or infinity")
    axes = m[:SPATIAL_AXES, :SPATIAL_AXES]
    lengths = np.linalg.norm(axes, axis=0)
    if not (np.isfinite(lengths).all() and (lengths > 0).all()):
        raise UnusableGeometry("the matrix is singular (an axis of zero length)")
    if abs(np.linalg.det(axes / lengths)) < SINGULAR_TOLERANCE:
        raise UnusableGeometry("the matrix is singular (its axes lie in one plane)")
    return m


def is_usable(matrix) -> bool:
    """True when :func:`check_geometry` accepts ``matrix``."""
    try:
        check_geometry(matrix)
    except UnusableGeometry:
        return False
    return True


def shown_device(name) -> str:
    """A sender's device name as safe to log: printable ASCII (others as '?'), at most 20 characters."""
    text = str(name)[:DEVICE_NAME_SHOWN_CHARS]
    return "".join(ch if PRINTABLE_FIRST <= ord(ch) <= PRINTABLE_LAST else HIDDEN_CHAR for ch in text)


def report_refused(counters: Counters, message_type: str, device, why: str, outcome: str) -> int:
    """Count a refused geometry and log it as an error (the 1st and every net.WARN_EVERY-th, one line):
    ``message_type`` and the device name (sanitised), why (``why``), and what became of the
    message (``outcome``). Returns the count so far."""
    EVENTS.inc(REFUSED_EVENT)
    return warn_throttled(
        counters,
        REFUSED_COUNTER.format(message_type.lower()),
        f"OpenIGTLink: {message_type} '{shown_device(device)}': geometry refused, {why}; {outcome}",
        level=logging.ERROR,
    )
