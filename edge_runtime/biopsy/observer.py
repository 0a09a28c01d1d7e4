"""The pipeline observer behind ``--cases DIR``: fire detection, manual marks, case writing, toast.

Input per rendered frame (:meth:`CaptureObserver.on_frame`): the frame, its prediction (whose
``roi`` says where the ultrasound is) and the pipeline's stats. Per frame it copies the ROI into a
short ring (the pre-fire frame is one or two frames back when the fire is confirmed), feeds the
fire detector (:mod:`.fire`, under a millisecond a frame). The ring holds views of
the frames, not copies: every source hands out a new array per frame (PyAV ``to_ndarray``,
``VideoCapture.read``) and the overlay draws on a copy, so nothing overwrites them; and it takes
manual marks (:mod:`.marks`). Every 5th frame it also updates the expected yield (:mod:`.yield_band`).
A capture goes to the :class:`~.case_writer.CaseWriter` thread; the display only gets the toast
("BIOPSY n CAPTURED", via :meth:`banners`) and ``/metrics`` the count (``biopsy_captures``).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge_runtime.biopsy.case_writer import Capture, CaseWriter, FrameRecord
from edge_runtime.biopsy.fire import FireDetector
from edge_runtime.biopsy.marks import MARKS, MarkRequests
from edge_runtime.biopsy.study_id import STUDY_ID, StudyIdSlot
from edge_runtime.biopsy.yield_band import SUBPIXEL, SUBPIXEL_BITS, YieldBand, YieldTracker
from edge_runtime.frames import Frame, Observer, Prediction
from edge_runtime.live_stats import EVENTS
from edge_runtime.units import MS_PER_S

log = logging.getLogger("sonomap.biopsy")
RING_FRAMES = 8  # > the detector's look-back (2 frames) + confirmation + settling
TOAST_FRAMES = 60  # about 2 s at 30 fps
TOAST = "BIOPSY {n} CAPTURED"
CAPTURE_EVENT = "biopsy_captures"
YIELD_TEXT = "EXPECTED YIELD {pct:.0f}% cancer (outlined band)"
BAND_BGR = (255, 255, 0)  # cyan: apart from the overlay's red and the banners' colours
BAND_PX = 2
YIELD_EVERY = 5  # the HUD yield refreshes 6 times a second at 30 fps
FIRED_TIP_MM = 3.0  # a needle whose tip lies this close to the last fired tip is that needle
IGTL_META_KEYS = ("transforms", "ijk_to_world", "igtl_timestamp", "igtl_coordinate_system")


def _igtl(meta: dict) -> dict:
    """OpenIGTLink geometry and transforms of a frame, as plain lists (YAML-safe)."""
    out = {}
    for key in IGTL_META_KEYS:
        if meta.get(key) is None:
            continue
        value = meta[key]
        if isinstance(value, dict):
            out[key] = {str(k): np.asarray(v, float).round(6).tolist() for k, v in value.items()}
        elif isinstance(value, str):
            out[key] = value
        else:
            out[key] = np.asarray(value, float).round(6).tolist()
    return out


class CaptureObserver(Observer):
    def __init__(
        self,
        directory: str | Path,
        model: dict[str, str],
        source: str | None,
        gauge: int = 14,
        marks: MarkRequests = MARKS,
        cancer_class: int = 1,
        study_id: str | None = None,
        study: StudyIdSlot = STUDY_ID,
        study_id_pattern: str | None = None,
    ):
        self.writer = CaseWriter(directory)
        self.model, self.source, self.gauge, self.cancer_class = model, source or "", gauge, cancer_class
        self.marks = marks
        self.marks.enabled = True
        self.study = study  # the session's study ID: set here from --study-id, or later from the viewer
        self.study.enabled = True
        self.study.pattern = (
            study_id_pattern  # the site's format (privacy.study_id_pattern): the viewer's IDs too
        )
        if study_id is not None:
            self.study.value = study_id
        self.ring: deque[FrameRecord] = deque(maxlen=RING_FRAMES)
        self.detector: FireDetector | None = None
        self.roi = None
        self.captures = 0
        self._toast_until = -1
        self._warned_scale = False
        self.cpu_s, self.frames = 0.0, 0
        self.band: YieldBand | None = None  # expected yield of the needle in place (newest frame)
        self._fired_tip: tuple[float, float] | None = None
        self._bands: deque[tuple[int, YieldBand | None]] = deque(maxlen=RING_FRAMES)

    @property
    def directory(self) -> Path:
        return self.writer.directory

    def on_frame(
        self, frame: Frame, prediction: Prediction | None, rendered: np.ndarray, stats: dict[str, Any]
    ) -> None:
        if frame.index < 0 or frame.meta.get("no_signal"):
            return
        t0 = time.thread_time()
        try:
            self._observe(frame, prediction)
        finally:
            self.cpu_s += time.thread_time() - t0
            self.frames += 1

    @property
    def cpu_ms_per_frame(self) -> float:
        """CPU this observer spent per observed frame (copy, detection, marks), on the render path."""
        return self.cpu_s * MS_PER_S / max(self.frames, 1)

    def _observe(self, frame: Frame, prediction: Prediction | None) -> None:
        roi = prediction.roi if prediction is not None and prediction.roi is not None else self.roi
        if roi is None:
            return  # no prediction yet: the ROI is unknown; marks wait for the first one
        if roi != self.roi:
            self._new_roi(roi)
        crop = roi.crop(frame.image)
        age_s = max(time.monotonic() - frame.timestamp, 0.0)
        self.ring.append(
            FrameRecord(
                frame.index,
                frame.pts,
                datetime.fromtimestamp(time.time() - age_s, timezone.utc),
                crop,
                prediction,
                _igtl(frame.meta),
            )
        )
        event = self.detector.step(frame.index, crop) if self.detector is not None else None
        if event is not None:
            self._capture("fire", event)
        elif self.detector is None:
            self.band = None
        elif self.frames % YIELD_EVERY == 0:
            band = self.tracker.update(
                self.detector.last_tophat, None if prediction is None else prediction.mask
            )
            self.band = None if band is None or self._is_fired(band) else band
            self._bands.append((frame.index, self.band))
        for via in self.marks.take():
            self._capture(via, None)

    def _new_roi(self, roi) -> None:
        self.roi = roi
        self.ring.clear()
        self.detector = None
        if roi.mm_per_pixel:
            self.detector = FireDetector(roi.mm_per_pixel, roi.w, roi.h)
            self.tracker = YieldTracker(self.detector.scale, roi.mm_per_pixel, self.cancer_class, self.gauge)
        elif not self._warned_scale:
            self._warned_scale = True
            log.error(
                "--cases: the ROI has no mm per pixel (set roi.mm_per_pixel in the config): fires are "
                "not detected, manual marks still capture"
            )

    def _is_fired(self, band: YieldBand) -> bool:
        """The needle found is the one just fired (it lies in the tract): no yield to predict."""
        if self._fired_tip is None:
            return False
        gap_px = float(np.hypot(band.tip[0] - self._fired_tip[0], band.tip[1] - self._fired_tip[1]))
        return gap_px * self.roi.mm_per_pixel < FIRED_TIP_MM

    def _record(self, index: int) -> FrameRecord:
        for rec in self.ring:
            if rec.index == index:
                return rec
        return self.ring[0]  # dropped in live mode: the oldest frame held is the closest before

    def _capture(self, trigger: str, event) -> None:
        self.captures += 1
        post = self.ring[-1] if event is None else self._record(event.post_index)
        pre = post if event is None else self._record(event.pre_index)
        band = next(((i, b) for i, b in reversed(self._bands) if i <= pre.index), (None, None))
        cap = Capture(
            self.captures,
            trigger,
            pre,
            post,
            event,
            self.roi.as_list(),
            self.roi.mm_per_pixel,
            self.gauge,
            self.model,
            self.source,
            self.cancer_class,
            band,
            self.study.value,
        )
        self.writer.submit(cap)
        EVENTS.inc(CAPTURE_EVENT)
        self._toast_until = post.index + TOAST_FRAMES
        if event is not None:
            self._fired_tip = event.tip

    def banners(self, frame: Frame) -> list[tuple[str, str]]:
        """The toast for ``frame``: shown for TOAST_FRAMES frames after a capture."""
        out = []
        if self.captures and 0 <= frame.index <= self._toast_until:
            out.append(("info", TOAST.format(n=self.captures)))
        band = self.band
        if band is not None:
            out.append(("info", YIELD_TEXT.format(pct=100 * band.fraction)))
        return out

    def draw(self, frame: Frame, image: np.ndarray, roi) -> None:
        """Outline the band the fire will sample (drawn on the rendered BGR frame)."""
        band = self.band
        if band is None or roi is None or image.ndim != 3:
            return
        pts = np.round((band.polygon + [roi.x, roi.y]) * SUBPIXEL).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(image, [pts], True, BAND_BGR, BAND_PX, cv2.LINE_AA, shift=SUBPIXEL_BITS)

    def close(self) -> None:
        self.marks.enabled = False
        self.study.enabled, self.study.value = False, None  # the session is over
        self.writer.close()
