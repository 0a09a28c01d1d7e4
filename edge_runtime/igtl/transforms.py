"""The TRANSFORMs an OpenIGTLink link has received: bounded, and attached to an image only while current.

A peer names its transform devices freely, so the table holds at most ``max_devices`` names: a
new name beyond that is refused (the link counts it), unless a stale entry can give way. Each
matrix keeps the time it arrived (our monotonic clock: the sender's clock may not be in step with
ours), and an image gets only the matrices received within ``max_age_s`` before it: PLUS stops
sending a tool's transform when the tracker loses it, and a last matrix from before that must
not travel on as the pose of later images. An OpenIGTLink v2/v3 ``TransformStatus`` metadata
value other than ``OK`` says the same explicitly: the device's matrix is dropped at once, and so
does a matrix holding NaN or infinity or a singular one (refused and counted: geometry.py).

Inputs: decoded TRANSFORM messages. Outputs: device name -> 4x4 float64 matrix. Files: none.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from edge_runtime.igtl.geometry import UnusableGeometry, check_geometry, report_refused
from edge_runtime.igtl.net import Counters, warn_counted

# PLUS sends a handful of transforms (ProbeToTracker, StylusToTracker, ImageToReference, ...);
# far more distinct names is a misconfigured or hostile peer, and every name is re-sent with
# each prediction (sink.py), so the table stays small.
MAX_TRANSFORM_DEVICES = 32
# Tracking runs at 10-60 Hz: a matrix not refreshed for this long belongs to a tool the tracker
# has lost (PLUS's default SendValidTransformsOnly stops sending it), not to the current image.
TRANSFORM_MAX_AGE_S = 1.0
STATUS_KEY = "TransformStatus"  # OpenIGTLink v2/v3 metadata, as PLUS sends it
STATUS_OK = "OK"
KEPT, REFUSED, INVALID = "kept", "refused", "invalid"
TRANSFORM_DROPPED = "the device's matrix is dropped until a usable one comes"


def status_ok(metadata: dict | None) -> bool:
    """False when the message's metadata says the transform is not valid (missing: valid)."""
    value = (metadata or {}).get(STATUS_KEY)
    return value is None or str(value).strip().upper() == STATUS_OK


class TransformTable:
    """Thread-safe newest matrix and receive time of each TRANSFORM device."""

    def __init__(self, max_devices: int = MAX_TRANSFORM_DEVICES, max_age_s: float = TRANSFORM_MAX_AGE_S):
        self.max_devices, self.max_age_s = max_devices, max_age_s
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[np.ndarray, float]] = {}  # name -> (matrix, received monotonic)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def update(self, name: str, matrix, valid: bool, now: float) -> str:
        """Record ``name``'s matrix received at ``now``: KEPT; REFUSED when the table is full of
        current devices; INVALID (the device's old matrix dropped) when the sender says it is not valid."""
        with self._lock:
            if not valid:
                self._entries.pop(name, None)
                return INVALID
            if name not in self._entries and len(self._entries) >= self.max_devices:
                self._drop_stale(now)
                if len(self._entries) >= self.max_devices:
                    return REFUSED
            self._entries[name] = (np.array(matrix, np.float64), now)
            return KEPT

    def _drop_stale(self, now: float) -> None:
        """Forget devices not refreshed within max_age_s (never attached again anyway). Caller holds the lock."""
        for name in [n for n, (_, at) in self._entries.items() if now - at > self.max_age_s]:
            del self._entries[name]

    def current(self, now: float) -> dict[str, np.ndarray]:
        """The matrices received within max_age_s before ``now``: what an image received now carries."""
        with self._lock:
            return {n: m for n, (m, at) in self._entries.items() if now - at <= self.max_age_s}

    def receive(self, msg: Any, counters: Counters, now: float) -> None:
        """Record a decoded TRANSFORM message received at ``now`` and count it: ``transforms``;
        ``transforms_invalid`` (its status says not valid: tracking lost, routine in PLUS, so no
        warning); ``skipped_transform_devices`` (a new name refused, with a throttled warning);
        ``transform_geometry_refused`` (NaN, infinity or singular: the device's matrix is dropped, with a
        throttled error line, geometry.py)."""
        try:
            matrix = check_geometry(msg.matrix)
        except UnusableGeometry as exc:
            # The sender no longer says where the tool is: its last matrix must not stand in for it.
            self.update(msg.device_name, None, False, now)
            report_refused(counters, "TRANSFORM", msg.device_name, str(exc), TRANSFORM_DROPPED)
            return
        outcome = self.update(msg.device_name, matrix, status_ok(getattr(msg, "metadata", None)), now)
        if outcome == REFUSED:
            warn_counted(
                counters,
                "transform_devices",
                f"TRANSFORM {msg.device_name!r}: already {self.max_devices} current transform devices; "
                "a new name is refused",
            )
        elif outcome == INVALID:
            counters.inc("transforms_invalid")
        else:
            counters.inc("transforms")
