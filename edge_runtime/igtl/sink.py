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

Predictions are sent only while the AI state drawn on the frame (``stats["ai"]``) is ON, as only
then is a mask drawn; the state itself goes out as a STRING, and a labelmap is cleared when the AI
leaves ON (:mod:`edge_runtime.igtl.ai_state`).

``on_frame`` never blocks the render stage: it copies the prediction (and the state to say) into
one-slot mailboxes (latest wins) that a sender thread drains.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections import deque
from typing import Any

import numpy as np

from edge_runtime.aistate import ON
from edge_runtime.frames import Frame, Observer, Prediction
from edge_runtime.igtl.ai_state import StateNotes
from edge_runtime.igtl.frame_geometry import geometry, paste
from edge_runtime.igtl.geometry import (
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


class IgtlObserver(Observer):
    """Sends each new prediction through ``link`` (an IgtlClientLink or IgtlServerLink)."""

    def __init__(self, link, release=None, send_probability: bool = True):
        self.pyigtl = require_pyigtl()
        self.link = link
        self.send_probability = send_probability
        self._release = release or link.close
        self._cond = threading.Condition()
        self._job: tuple | None = None
        self._said: tuple | None = None  # (device, text) of the AI state to send next
        self.states = StateNotes()
        self._last_prediction: Prediction | None = None
        self._pending = 0
        self._closed = False
        self.sent = 0
        self.failed = 0
        self.cleared = 0  # empty labelmaps sent as the AI left ON
        self.states_sent = 0
        self.stamp_to_sent_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.capture_to_sent_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._thread = threading.Thread(target=self._run, name="igtl-sink", daemon=True)
        self._thread.start()

    def on_frame(
        self, frame: Frame, prediction: Prediction | None, rendered: np.ndarray, stats: dict[str, Any]
    ) -> None:
        if self._closed:
            return
        # The state drawn on this frame; a caller outside the pipeline that gives none: ON.
        ai = (stats or {}).get("ai") or {}
        text, device, left_on = self.states.note(ai, (frame.meta or {}).get("device"), time.monotonic())
        said = None if text is None else (device, text)
        job = None
        if left_on:  # no mask outlives the AI that made it
            shape = frame.image.shape[:2]
            empty = np.zeros(shape, np.uint8)
            job = (geometry(frame), shape, None, frame.timestamp, empty, empty, True)
        # Not ON (no mask drawn), no prediction, or the same one re-rendered: nothing new to send.
        elif ai.get("state", ON) == ON and prediction is not None and prediction is not self._last_prediction:
            job = self._prediction_job(frame, prediction, stats)
        if said is not None or job is not None:  # else nothing to wake the sender for
            self._post(said, job)

    def _prediction_job(self, frame: Frame, prediction: Prediction, stats: dict[str, Any]) -> tuple:
        """What the sender needs to send ``prediction``, drawn over ``frame``."""
        self._last_prediction = prediction
        # In live 'latest' mode the prediction drawn over this frame was computed on an
        # earlier one: send it with *that* frame's geometry and timestamp when known.
        source = getattr(prediction, "frame", None) or frame
        roi = getattr(prediction, "roi", None) or (source.meta or {}).get("roi") or (stats or {}).get("roi")
        return (
            geometry(source),
            source.image.shape[:2],
            roi,
            source.timestamp,
            np.array(prediction.mask, np.uint8),
            np.array(prediction.prob, np.float32),
            False,
        )

    def _post(self, said: tuple | None, job: tuple | None) -> None:
        """Hand one frame's state to say and job to send to the sender thread, in one step: the sender
        must never take a frame's state without its labelmap, or they would leave as two payloads and
        a slow viewer's outbox could drop the state alone. Each mailbox holds one item: latest wins,
        an unsent older one is replaced."""
        with self._cond:
            for slot, item in (("_said", said), ("_job", job)):
                if item is None:
                    continue
                if getattr(self, slot) is None:
                    self._pending += 1
                setattr(self, slot, item)
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._job is not None or self._said is not None or self._closed)
                if self._job is None and self._said is None:
                    return
                taken = (self._job is not None) + (self._said is not None)
                (job, self._job), (said, self._said) = (self._job, None), (self._said, None)
            # the state and what it says of the mask in one payload: a slow viewer's outbox drops whole
            # payloads, never a state without its cleared labelmap
            said_now = [] if said is None else [self._said_message(*said)]
            try:
                self._send(said_now, job)
            except UnusableGeometry as exc:  # before ValueError, its base: counted on its own
                self._say_alone(said_now)
                if job[0]["matrix"] is None:  # refused by the source, which logged why: count only
                    self.link.counters.inc(NOT_PLACED_COUNTER)
                else:  # a matrix from elsewhere (a recorded sequence) that nothing has reported yet
                    warn_throttled(
                        self.link.counters,
                        NOT_PLACED_COUNTER,
                        f"OpenIGTLink: prediction for '{shown_device(job[0]['device'])}' not sent: {exc}",
                    )
            except (ValueError, OSError, struct.error) as exc:  # bad ROI/size, socket, >65535 px
                self._say_alone(said_now)
                self._not_sent(exc)
            except Exception as exc:  # anything else (a library's or our own fault): this thread lives
                self._not_sent(exc)  # on, or the viewer would keep the last labelmap and AI state
            with self._cond:
                self._pending -= taken
                self._cond.notify_all()

    def _not_sent(self, exc: Exception) -> None:
        self.failed += 1
        if self.failed == 1 or self.failed % WARN_EVERY == 0:
            log.warning(
                "OpenIGTLink: prediction not sent (%s: %s); %d so far", type(exc).__name__, exc, self.failed
            )

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

    def _said_message(self, device: str, text: str):
        """The AI state as a STRING message (:mod:`edge_runtime.igtl.ai_state`)."""
        return self.pyigtl.StringMessage(text, timestamp=time.time(), device_name=device)

    def _say_alone(self, said: list) -> None:
        """Send the state when the prediction or cleared labelmap it came with could not be built."""
        if said and self.link.send(said):
            self.states_sent += 1

    def _send(self, said: list, job: tuple | None) -> None:
        """``said`` (the state's STRING, or none) and ``job``'s messages (or none) in one send."""
        messages = said + ([] if job is None else self.build_messages(*job[:3], *job[4:6]))
        sent = self.link.send(messages)
        self.states_sent += bool(sent and said)
        if job is None:
            return
        geo, captured, cleared = job[0], job[3], job[6]
        if sent and cleared:
            self.cleared += 1
        elif sent:
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
