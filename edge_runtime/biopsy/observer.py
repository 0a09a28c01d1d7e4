"""The pipeline observer behind ``--cases DIR``: fire detection, manual marks, case writing, toast.

Input per rendered frame (:meth:`CaptureObserver.on_frame`): the frame, the prediction shown with it
(None while the AI is not ON) and the pipeline's stats (``ai``: the AI state drawn on the frame).
Where the ultrasound is, the ROI, comes from the frame itself: the pipeline tags every frame with
the ROI it was blanked and drawn for (``frame.meta["roi"]``, read by :mod:`.frame_input`; a fixed
``--roi`` or the detected one), so capture does not wait for the AI. A frame without that tag falls
back on the prediction's ROI; a prediction made for another ROI counts as none (it is not drawn).
A capture is always made of the frames it names: a mark is taken on the frame it arrives with,
never on a later one; a capture while the AI shows no prediction records ``prediction: null`` and
the AI state, and invents none. When no ROI is known (a screen without an image: the ROI is
undecided), on sonomap's NO SIGNAL screen, and for a mark still queued when the session ends, the
mark is refused, with a warning toast saying why, and no case is written.

Per frame it copies the ROI into a short ring (the pre-fire frame is one or two frames back when
the fire is confirmed) and feeds the fire detector (:mod:`.fire`, under a millisecond a frame). The
ring holds views of the frames, not copies: every source hands out a new array per frame (PyAV
``to_ndarray``, ``VideoCapture.read``) and the overlay draws on a copy, so nothing overwrites them;
and it takes manual marks (:mod:`.marks`). Every 5th frame it also updates the expected yield
(:mod:`.yield_band`), an AI finding: shown only on frames drawn with the AI ON, and dropped on a
frame the AI did not answer on or a NO SIGNAL screen. Each capture and refusal goes into the
session's :class:`~.capture_book.CaptureBook` (numbered, queued on the case writer's thread, counted);
the display gets the toasts (:meth:`banners`, :mod:`.notices`): CAPTURED, NOT SAVED, NOT SAVED YET.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge_runtime import recorded_time
from edge_runtime.aistate import ON
from edge_runtime.biopsy.capture_book import CaptureBook
from edge_runtime.biopsy.case_writer import FrameRecord
from edge_runtime.biopsy.fire import FireDetector
from edge_runtime.biopsy.frame_input import frame_igtl, frame_roi
from edge_runtime.biopsy.marks import MARKS, MarkRequests
from edge_runtime.biopsy.study_id import STUDY_ID, StudyIdSlot
from edge_runtime.biopsy.toasts import INFO
from edge_runtime.biopsy.yield_band import SUBPIXEL, SUBPIXEL_BITS, YieldBand, YieldTracker
from edge_runtime.frames import Frame, Observer, Prediction
from edge_runtime.roi import Roi
from edge_runtime.units import MS_PER_S

log = logging.getLogger("sonomap.biopsy")
RING_FRAMES = 8  # > the detector's look-back (2 frames) + confirmation + settling
YIELD_TEXT = "EXPECTED YIELD {pct:.0f}% cancer (outlined band)"
BAND_BGR = (255, 255, 0)  # cyan: apart from the overlay's red and the banners' colours
BAND_PX = 2
YIELD_EVERY = 5  # the HUD yield refreshes 6 times a second at 30 fps
FIRED_TIP_MM = 3.0  # a needle whose tip lies this close to the last fired tip is that needle
NO_SIGNAL = "no signal from the source"  # why a mark made on the NO SIGNAL screen is refused
ENDED = "the session ended before the next frame"  # why a mark still queued at close is refused


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
        self.book = CaptureBook(
            directory, model, source or "", gauge, cancer_class, study, study_id, study_id_pattern
        )
        self.gauge, self.cancer_class = gauge, cancer_class
        self.marks = marks
        self.marks.enabled = True
        self.ring: deque[FrameRecord] = deque(maxlen=RING_FRAMES)
        self.detector: FireDetector | None = None
        self.roi: Roi | None = None
        self._last_index = 0  # the last real frame observed: a refusal on NO SIGNAL is shown from it
        self.notices = self.book.notices  # the toasts (.notices), polled on every frame
        self._warned_scale = False
        self.cpu_s, self.frames = 0.0, 0
        self.band: YieldBand | None = None  # expected yield of the needle in place (newest frame)
        self._fired_tip: tuple[float, float] | None = None
        self._bands: deque[tuple[int, YieldBand | None]] = deque(maxlen=RING_FRAMES)

    @property
    def directory(self) -> Path:
        return self.book.writer.directory

    def on_frame(
        self, frame: Frame, prediction: Prediction | None, rendered: np.ndarray, stats: dict[str, Any]
    ) -> None:
        if frame.meta.get("no_signal"):
            self._lose_roi()  # the next image may be another patient's: nothing seen so far carries over
            where = f"on the NO SIGNAL screen after frame {self._last_index}"
            # taken now: the next real frame may be the next patient's
            self.book.refuse(self.marks.take(), NO_SIGNAL, where, self._last_index)
            return
        if frame.index < 0:
            return
        self._last_index = frame.index
        t0 = time.thread_time()
        try:
            self._observe(frame, prediction, (stats.get("ai") or {}).get("state"))
            self.notices.poll(frame.index)
        finally:
            self.cpu_s += time.thread_time() - t0
            self.frames += 1

    @property
    def cpu_ms_per_frame(self) -> float:
        """CPU this observer spent per observed frame (copy, detection, marks), on the render path."""
        return self.cpu_s * MS_PER_S / max(self.frames, 1)

    def _observe(self, frame: Frame, prediction: Prediction | None, ai: str | None) -> None:
        roi, why = frame_roi(frame, prediction)
        if roi is None:
            self._lose_roi()
            # never captured on a later frame
            self.book.refuse(self.marks.take(), why, f"on frame {frame.index}", self._last_index)
            return
        if roi != self.roi:
            self._new_roi(roi)
        if prediction is not None and prediction.mask.shape[:2] != (roi.h, roi.w):
            prediction = None  # made for another ROI: not drawn on this frame (the render's rule)
        crop = roi.crop(frame.image)
        age_s = max(time.monotonic() - frame.timestamp, 0.0)  # since capture: the clock's time then
        utc, clock = recorded_time.frame_time(frame.meta, frame.pts, age_s)  # a file's own time if it has one
        record = FrameRecord(frame.index, frame.pts, utc, crop, prediction, frame_igtl(frame.meta), ai, clock)
        self.ring.append(record)
        event = self.detector.step(frame.index, crop) if self.detector is not None else None
        if self.detector is None:
            self.band = None
        elif event is None and self.frames % YIELD_EVERY == 0:
            band = self.tracker.update(
                self.detector.last_tophat, None if prediction is None else prediction.mask
            )
            self.band = None if band is None or self._is_fired(band) else band
            self._bands.append((frame.index, self.band))
        if ai != ON or prediction is None:
            self.band = None  # an AI finding: never carried past a frame the AI did not answer on
        # the marks taken on this frame (a double POST, a key bounce) and a fire confirmed on it are one
        # biopsy: one capture, never several identical cases
        vias = self.marks.take()
        if event is not None:
            self._capture("fire", event, len(vias), frame.index)
        elif vias:
            self._capture(vias[0], None, len(vias) - 1, frame.index)

    def _lose_roi(self) -> None:
        """No image on this frame: what the ring, the detector and the yield history held belongs to
        another screen (a capture after it must not take the last needle's band)."""
        self.roi, self.detector, self.band = None, None, None
        self.ring.clear()
        self._bands.clear()
        self._fired_tip = None

    def _new_roi(self, roi: Roi) -> None:
        self.roi = roi
        self.ring.clear()
        self._bands.clear()
        self._fired_tip = None
        self.detector = None
        if roi.mm_per_pixel:
            self.detector = FireDetector(roi.mm_per_pixel, roi.w, roi.h)
            self.tracker = YieldTracker(self.detector.scale, roi.mm_per_pixel, self.cancer_class, self.gauge)
        elif not self._warned_scale:
            self._warned_scale = True
            log.error(
                "--cases: the ROI has no mm per pixel (give --mm-per-pixel or set roi.mm_per_pixel): fires are "
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

    def _capture(self, trigger: str, event, merged: int, index: int) -> None:
        """Capture the biopsy ``trigger`` made on frame ``index`` (``event``: the fire, None for a mark,
        taken on the newest frame); ``merged``: the other marks taken on the same frame, made part of it.
        Any error it meets goes on screen and in the log (:meth:`CaptureBook.failed`): the frame path
        would count it as a sink error and carry on, and the biopsy would be lost unsaid."""
        try:
            post = self.ring[-1] if event is None else self._record(event.post_index)
            pre = post if event is None else self._record(event.pre_index)
            band = next(((i, b) for i, b in reversed(self._bands) if i <= pre.index), (None, None))
            self.book.capture(trigger, event, merged, pre, post, band, self.roi)
            if event is not None:
                self._fired_tip = event.tip
        except Exception as exc:  # a capture is reported whatever stopped it
            self.book.failed(trigger, index, exc)

    def banners(self, frame: Frame, ai: str) -> list[tuple[str, str]]:
        """The toasts for ``frame`` (:mod:`.notices`) and, with the AI ``ON``, the expected yield. A
        failure the writer reported since the last frame shows here already: a frame drawn now must not
        say CAPTURED for a case known lost."""
        # NO SIGNAL (index -1): the toasts of the last real frame stay up, a refusal made there too
        index = frame.index if frame.index >= 0 else self._last_index
        self.notices.poll(index)
        out = self.notices.active(index)
        band = self.band
        if band is not None and ai == ON:
            out.append((INFO, YIELD_TEXT.format(pct=100 * band.fraction)))
        return out

    def draw(self, frame: Frame, image: np.ndarray, roi, ai: str) -> None:
        """Outline the band the fire will sample (drawn on the rendered BGR frame, AI ``ON`` only)."""
        band = self.band
        if band is None or ai != ON or roi is None or image.ndim != 3:
            return
        pts = np.round((band.polygon + [roi.x, roi.y]) * SUBPIXEL).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(image, [pts], True, BAND_BGR, BAND_PX, cv2.LINE_AA, shift=SUBPIXEL_BITS)

    def close(self) -> None:
        self.marks.enabled = False
        # accepted, but no frame came: counted, never lost unsaid
        self.book.refuse(self.marks.take(), ENDED, f"after frame {self._last_index}", self._last_index)
        pending = self.detector.pending_fire if self.detector is not None else None
        if pending is not None:  # its confirming frame never came: said, never dropped unsaid
            log.warning("a possible fire at frame %d was not confirmed before the session ended", pending)
        self.book.close()
