"""``--igtl-out HOST:PORT`` / ``--igtl-serve [HOST:]PORT``: the prediction back over OpenIGTLink.

Input (per rendered frame, from the pipeline's render stage): the frame and its
prediction. Output, per new prediction, in this order:
- the input's TRANSFORM messages under derived names (``ProbeToTracker`` ->
  ``Pred_ProbeToTracker``, ``ImageToReference`` -> ``PredToReference``);
- the labelmap: IMAGE uint8, class ids (0 tissue, 1 cancer), device ``Prediction_<x>``
  for input ``Image_<x>`` (``Prediction`` for a frame without a device: ``frames.DEFAULT_DEVICE``);
- the probability map: IMAGE uint8, round(255 * p), device ``ProbMap_<x>`` (the
  20-byte device field has no room for ``Probability_Reference``). uint8 rather than
  float32: a quarter of the bytes, and Slicer's default window/level shows it as is.
Both images have the input's size, (k, j, i) layout, IJK-to-world matrix, coordinate
system and timestamp, so Slicer overlays them in place and a receiver can measure
latency against the input's timestamp. A mask that covers a sub-ROI is pasted into a
zero labelmap of the full image. A prediction whose image has no usable geometry (refused by the
source: NaN, infinity, singular) is not sent, and counted (``predictions_without_geometry``): a
viewer cannot place it, and a made-up pose would put it in the wrong place. TRANSFORMs with an
unusable matrix are left out. Files: none.

``on_frame`` never blocks the render stage: it copies the prediction into a one-slot
mailbox (latest wins) that a sender thread drains.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections import deque
from typing import Any

import numpy as np

from edge_runtime.errors import ConfigError
from edge_runtime.frames import DEFAULT_DEVICE, Frame, Observer, Prediction
from edge_runtime.igtl.geometry import (
    GEOMETRY_REFUSED_KEY,
    UnusableGeometry,
    check_geometry,
    is_usable,
    shown_device,
)
from edge_runtime.igtl.image_message import build_image, derive_device_name
from edge_runtime.igtl.net import WARN_EVERY, warn_throttled
from edge_runtime.igtl.transforms import MAX_TRANSFORM_DEVICES
from edge_runtime.igtl.wire import require_pyigtl
from edge_runtime.stats import summarise
from edge_runtime.units import MS_PER_S

log = logging.getLogger("sonomap.igtl")

LABELMAP_TAG, PROBABILITY_TAG, TRANSFORM_TAG = "Prediction", "ProbMap", "Pred"
UINT8_MAX = 255.0
LATENCY_WINDOW = 10_000  # latency samples kept for p50/p99
# Counted on the link when a prediction is not sent because its image has no usable geometry.
NOT_PLACED_COUNTER = "predictions_without_geometry"
JOIN_TIMEOUT_S = (
    3.0  # at close: queued messages go out within link.SEND_TIMEOUT_S (2 s) or the viewer is dropped
)


def paste(full_shape: tuple[int, int], roi, plane: np.ndarray) -> np.ndarray:
    """An ROI-sized plane -> a zero image of ``full_shape`` with the plane at the ROI."""
    if plane.shape == tuple(full_shape):
        return plane
    if roi is None:
        raise ValueError(f"prediction of size {plane.shape} for a {full_shape} frame but no ROI given")
    x, y, w, h = (roi.x, roi.y, roi.w, roi.h) if hasattr(roi, "x") else (int(v) for v in roi)
    if plane.shape != (h, w):
        raise ValueError(f"prediction of size {plane.shape} does not match ROI {w}x{h}")
    out = np.zeros(full_shape, plane.dtype)
    out[y : y + h, x : x + w] = plane
    return out


def geometry(frame: Frame) -> dict:
    """Layout, matrix, coordinate system, device and timestamp of the input frame; frames
    from non-IGTL sources get an axis-aligned matrix with their mm scale (1 mm if unknown). An IGTL
    frame whose geometry was refused gets ``matrix`` None and ``fault`` saying why (never sent)."""
    meta = frame.meta or {}
    height, width = frame.image.shape[:2]
    if meta.get(GEOMETRY_REFUSED_KEY):  # an IGTL image whose own geometry was refused: no pose to send
        return {
            "layout": tuple(meta.get("igtl_layout") or (1, height, width)),
            "matrix": None,
            "fault": str(meta[GEOMETRY_REFUSED_KEY]),
            "system": meta.get("igtl_coordinate_system", "ras"),
            "device": meta.get("device") or DEFAULT_DEVICE,
            "timestamp": float(meta.get("igtl_timestamp") or time.time()),
            "transforms": meta.get("transforms") or {},
        }
    if "ijk_to_world" in meta and "igtl_layout" in meta:
        return {
            "layout": tuple(meta["igtl_layout"]),
            "matrix": np.asarray(meta["ijk_to_world"]),
            "system": meta.get("igtl_coordinate_system", "ras"),
            "device": meta.get("device") or DEFAULT_DEVICE,
            "timestamp": float(meta["igtl_timestamp"]),
            "transforms": meta.get("transforms") or {},
        }
    mm = float(meta.get("mm_per_pixel") or 1.0)
    return {
        "layout": (1, height, width),
        "matrix": np.diag([mm, mm, 1.0, 1.0]),
        "system": "ras",
        "device": meta.get("device") or DEFAULT_DEVICE,
        "timestamp": time.time() - (time.monotonic() - frame.timestamp),
        "transforms": meta.get("transforms") or {},
    }


class IgtlObserver(Observer):
    """Sends each new prediction through ``link`` (an IgtlClientLink or IgtlServerLink)."""

    def __init__(self, link, release=None, send_probability: bool = True):
        self.pyigtl = require_pyigtl()
        self.link = link
        self.send_probability = send_probability
        self._release = release or link.close
        self._cond = threading.Condition()
        self._job: tuple | None = None
        self._last_prediction: Prediction | None = None
        self._pending = 0
        self._closed = False
        self.sent = 0
        self.failed = 0
        self.stamp_to_sent_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.capture_to_sent_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._thread = threading.Thread(target=self._run, name="igtl-sink", daemon=True)
        self._thread.start()

    def on_frame(
        self, frame: Frame, prediction: Prediction | None, rendered: np.ndarray, stats: dict[str, Any]
    ) -> None:
        # No prediction (fail-safe passthrough) or the same one re-rendered: nothing new to send.
        if prediction is None or prediction is self._last_prediction or self._closed:
            return
        self._last_prediction = prediction
        # In live 'latest' mode the prediction drawn over this frame was computed on an
        # earlier one: send it with *that* frame's geometry and timestamp when known.
        source = getattr(prediction, "frame", None) or frame
        roi = getattr(prediction, "roi", None) or (source.meta or {}).get("roi") or (stats or {}).get("roi")
        job = (
            geometry(source),
            source.image.shape[:2],
            roi,
            source.timestamp,
            np.array(prediction.mask, np.uint8),
            np.array(prediction.prob, np.float32),
        )
        with self._cond:
            if self._job is None:
                self._pending += 1
            self._job = job  # latest wins: an unsent older prediction is replaced
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._job is not None or self._closed)
                if self._job is None:
                    return
                job, self._job = self._job, None
            try:
                self._send(*job)
            except UnusableGeometry as exc:  # before ValueError, its base: counted on its own
                if job[0]["matrix"] is None:  # refused by the source, which logged why: count only
                    self.link.counters.inc(NOT_PLACED_COUNTER)
                else:  # a matrix from elsewhere (a recorded sequence) that nothing has reported yet
                    warn_throttled(
                        self.link.counters,
                        NOT_PLACED_COUNTER,
                        f"OpenIGTLink: prediction for '{shown_device(job[0]['device'])}' not sent: {exc}",
                    )
            except (ValueError, OSError, struct.error) as exc:  # bad ROI/size, socket, >65535 px
                self.failed += 1
                if self.failed == 1 or self.failed % WARN_EVERY == 0:
                    log.warning("OpenIGTLink: prediction not sent (%s); %d so far", exc, self.failed)
            with self._cond:
                self._pending -= 1
                self._cond.notify_all()

    def build_messages(self, geo: dict, shape, roi, mask: np.ndarray, prob: np.ndarray) -> list:
        """The TRANSFORM and IMAGE messages of one prediction; UnusableGeometry when the image's
        matrix is refused or unusable (geometry.check_geometry): nothing of it may reach a viewer."""
        shape = tuple(shape)
        if geo["matrix"] is None:
            raise UnusableGeometry(geo.get("fault") or "the image has no geometry")
        matrix = check_geometry(geo["matrix"])
        # Frames from igtl:// carry a bounded set of usable matrices already; the cap and the check
        # here also cover frames whose transforms came from elsewhere (a recorded sequence), so no
        # prediction grows without limit and no NaN pose is relayed.
        transforms = [(n, m) for n, m in sorted(geo["transforms"].items()) if is_usable(m)]
        transforms = transforms[:MAX_TRANSFORM_DEVICES]
        messages = [
            self.pyigtl.TransformMessage(
                np.asarray(m, np.float32),
                timestamp=geo["timestamp"],
                device_name=derive_device_name(name, TRANSFORM_TAG),
            )
            for name, m in transforms
        ]
        labelmap = paste(shape, roi, mask)
        messages.append(
            build_image(
                self.pyigtl,
                labelmap,
                geo["layout"],
                matrix,
                geo["system"],
                derive_device_name(geo["device"], LABELMAP_TAG),
                geo["timestamp"],
            )
        )
        if self.send_probability:
            prob8 = np.rint(np.clip(np.nan_to_num(prob), 0.0, 1.0) * UINT8_MAX).astype(np.uint8)
            messages.append(
                build_image(
                    self.pyigtl,
                    paste(shape, roi, prob8),
                    geo["layout"],
                    matrix,
                    geo["system"],
                    derive_device_name(geo["device"], PROBABILITY_TAG),
                    geo["timestamp"],
                )
            )
        return messages

    def _send(self, geo, shape, roi, captured, mask, prob) -> None:
        if self.link.send(self.build_messages(geo, shape, roi, mask, prob)):
            self.sent += 1
            self.stamp_to_sent_ms.append((time.time() - geo["timestamp"]) * MS_PER_S)
            self.capture_to_sent_ms.append((time.monotonic() - captured) * MS_PER_S)
        else:
            self.failed += 1

    def flush(self, timeout: float) -> bool:
        """Wait until every handed-over prediction was sent (or dropped); True if so."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    def latency(self) -> dict[str, dict[str, float]]:
        """Latency summaries (n, mean, p50/p95/p99, max in ms; stats.summarise) of input timestamp -> sent
        and capture (receive) -> sent."""
        out = {}
        for name, values in (
            ("stamp_to_sent_ms", self.stamp_to_sent_ms),
            ("capture_to_sent_ms", self.capture_to_sent_ms),
        ):
            if values:
                out[name] = summarise(values)
        return out

    def close(self) -> None:
        if self._closed:
            return
        self.flush(JOIN_TIMEOUT_S)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(JOIN_TIMEOUT_S)
        self._release()


def parse_host_port(text: str, option: str, default_host: str | None = None) -> tuple[str, int]:
    """``HOST:PORT`` (or ``PORT`` when a default host is given) -> (host, port)."""
    host, sep, port = str(text).rpartition(":")
    if not sep:
        host = default_host
    try:
        number = int(port)
    except ValueError as exc:
        raise ConfigError(f"{option} {text!r}: expected HOST:PORT") from exc
    if not host or not 0 <= number <= 65535:
        raise ConfigError(f"{option} {text!r}: expected HOST:PORT with a port in 0-65535")
    return host, number
