"""``--record-sequence FILE.seq.nrrd``: the session as 3D Slicer / PLUS sequences, frame-exact and lossless.

Input (an :class:`edge_runtime.frames.Observer`, per rendered frame): the de-identified frame, its
prediction. Output: the three sequences of :mod:`edge_runtime.sinks.sequence_layout` (ROI image,
labelmap, probability) with per-frame timestamps, OpenIGTLink transforms and the spacing.

``on_frame`` copies the ROI and hands it to the recorder's writer thread
(:class:`edge_runtime.sinks.threaded.ThreadedWriter`, as the mp4 recorders) through a bounded queue:
a replay waits for room (every frame recorded), a live session drops the frame instead (counted,
written to the header as ``sonomap dropped frames``), so the video never waits on the disk. A write
error (a full disk) stops this recorder with one error line, the ``recording_failed`` count and a
banner on screen; the video goes on. Below ``sinks.min_free_gb`` it pauses (frames so far kept)
and, live, resumes into a new file; a replay's recorder stays paused and has failed at close. The
headers are checkpointed every :data:`CHECKPOINT_S` (more rarely as a session grows) and at close, so
a crash keeps the frames up to the last checkpoint. A new ROI size starts a new file (a volume
sequence has one geometry). A frame whose OpenIGTLink geometry was refused is recorded with its
geometry marked unknown (``IjkToWorldStatus`` INVALID, counted), never a made-up one; a file that
begins with such frames has no geometry in its header, and the first known geometry starts a new
file. Memory: a few frames in the queue plus ~10 bytes a frame of index values.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from edge_runtime import yuv
from edge_runtime.errors import SonomapError
from edge_runtime.frames import DEFAULT_DEVICE, Frame, Observer, Prediction
from edge_runtime.igtl.geometry import GEOMETRY_REFUSED_KEY
from edge_runtime.live_stats import EVENTS
from edge_runtime.preprocess import to_gray
from edge_runtime.roi import Roi
from edge_runtime.sinks import recordings
from edge_runtime.sinks import sequence_layout as layout
from edge_runtime.sinks.sequence_files import SequenceFiles
from edge_runtime.sinks.threaded import ThreadedWriter

log = logging.getLogger("sonomap.sequence")
CHECKPOINT_S = 2.0
TAIL_BYTES_PER_S = 1_000_000  # long sessions checkpoint more rarely: the index values grow 10 bytes a frame
BANNER = "SEQUENCE RECORDING FAILED: see the log"


def ijk_to_world(frame: Frame, roi: Roi) -> tuple[np.ndarray | None, str]:
    """The ROI's IJK-to-world matrix and coordinate system: the OpenIGTLink image's own, moved to the
    ROI's corner, or an axis-aligned one with the mm scale (1 mm when unknown). None for an
    OpenIGTLink image whose geometry was refused (NaN, singular): its pose is unknown, and neither
    the ROI's scale nor 1 mm may stand in for it (recorded as ``IjkToWorldStatus`` INVALID)."""
    meta = frame.meta or {}
    if meta.get(GEOMETRY_REFUSED_KEY):
        return None, str(meta.get("igtl_coordinate_system", "ras")).lower()
    if "ijk_to_world" in meta:
        matrix = np.array(meta["ijk_to_world"], np.float64)
        matrix[:3, 3] = matrix[:3, :3] @ np.array([roi.x, roi.y, 0.0]) + matrix[:3, 3]
        return matrix, str(meta.get("igtl_coordinate_system", "ras")).lower()
    mm = float(roi.mm_per_pixel or meta.get("mm_per_pixel") or 1.0)
    return np.diag([mm, mm, 1.0, 1.0]), "ras"


class SequenceRecorder(ThreadedWriter, Observer):
    """Records every rendered frame's ROI, labelmap and probability (see module docstring)."""

    def __init__(self, path: str | Path, live: bool, min_free_gb: float = 0.0):
        layout.require_pynrrd("--record-sequence")
        self.template = path
        self.live = live
        self.path = layout.session_main(path, keep_existing=live)
        self.files: list[Path] = []
        Path(self.path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # patient images: private
        self._session: SequenceFiles | None = None
        self._checkpoint_at = 0.0
        self._first_pts: tuple[float, float] | None = None  # (pts, wall) of the first frame with a pts
        self._cache: tuple[Prediction | None, np.ndarray, np.ndarray, str] | None = None
        self.geometry_unknown = 0  # frames recorded whose OpenIGTLink geometry was refused
        # live: drop a frame rather than wait for the disk; replay: a pause for disk space is final,
        # a failed recording at close
        space = recordings.SpaceGuard(Path(self.path).parent, min_free_gb)
        super().__init__("sequence", block=not live, resume=live, space=space)

    # --- the render thread -------------------------------------------------------
    def on_frame(self, frame: Frame, prediction: Prediction | None, rendered, stats) -> None:
        if self._closed or self.error is not None or frame.index < 0 or frame.meta.get("no_signal"):
            return
        roi = frame.meta.get("roi")
        if isinstance(roi, Roi) and roi.undecided:  # no image on the screen: a blank frame, nothing to keep
            return
        try:
            self.submit(self._item(frame, prediction))
        except SonomapError:  # the writer failed since the check above: its banner says so, the video goes on
            return

    def _item(self, frame: Frame, prediction: Prediction | None) -> dict:
        meta = frame.meta or {}
        roi = meta.get("roi") if isinstance(meta.get("roi"), Roi) else None
        roi = roi or (prediction.roi if prediction is not None and isinstance(prediction.roi, Roi) else None)
        if roi is None:  # privacy.deidentify off and no prediction yet: the whole frame
            height, width = yuv.frame_shape(frame)
            roi = Roi(0, 0, width, height, meta.get("mm_per_pixel"))
        # The model's input exactly (FrameStages.cut), copied: the frame may be drawn on later.
        gray = (
            yuv.gray_roi(frame.i420, roi)
            if isinstance(frame, yuv.YuvFrame)
            else to_gray(roi.crop(frame.image))
        )
        matrix, system = ijk_to_world(frame, roi)
        return {
            "gray": np.array(gray, np.uint8),
            "prediction": prediction,
            "timestamp": self._timestamp(frame),
            "index": frame.index,
            "matrix": matrix,
            "system": system,
            "device": str(meta.get("device") or DEFAULT_DEVICE),
            "roi": roi.as_list(),
            "transforms": {str(k): np.array(v) for k, v in (meta.get("transforms") or {}).items()},
            "dropped": self.dropped,
        }

    def _timestamp(self, frame: Frame) -> float:
        """The sender's timestamp (OpenIGTLink), else the clip's time from the first frame's wall
        time, else the wall time of capture."""
        meta = frame.meta or {}
        if meta.get("igtl_timestamp") is not None:
            return float(meta["igtl_timestamp"])
        wall = time.time() - (time.monotonic() - frame.timestamp)
        if frame.pts is None:
            return wall
        if self._first_pts is None:
            self._first_pts = (float(frame.pts), wall)
        return self._first_pts[1] + float(frame.pts) - self._first_pts[0]

    def banners(self, frame: Frame, ai: str) -> list[tuple[str, str]]:
        return [("warning", BANNER)] if self.error is not None else []

    # --- the writer thread -------------------------------------------------------
    def _failed(self, exc: Exception) -> None:
        """A write raised (disk full, file too large, anything else): this recorder stops, never the
        video; the headers are written now, not at shutdown, since they name the frames kept."""
        self._fail(exc)
        self._finish()

    def _fail(self, exc: Exception) -> None:
        self.error = exc
        EVENTS.inc("recording_failed")
        log.error(
            "sink sequence failed and stops recording (%d frames kept in %s): %s",
            self.frames,
            self.path,
            exc,
        )

    def _write_now(self, item: dict) -> None:
        if (self.paused and not self.resume) or not self.space.ok():
            if not self.paused:
                self.paused = True
                recordings.log_pause("sequence", self.space, f"{self.path} kept", self.resume)
                self._end_session()
            self.paused_frames += 1
            return
        if (
            self._session is None
            or self._session.shape != item["gray"].shape
            or (self._session.matrix is None and item["matrix"] is not None)
        ):  # a file begun without a geometry gets none in its header: the first known one starts a new file
            self._start_session(item)
        label, prob8, prediction_of = self._planes(item)
        self._session.append(item, label, prob8, prediction_of)
        self.frames += 1
        self.geometry_unknown += item["matrix"] is None
        now = time.monotonic()
        if now >= self._checkpoint_at:
            self._session.checkpoint(self.dropped)
            wait = max(CHECKPOINT_S, len(self._session.index_values) / TAIL_BYTES_PER_S)
            self._checkpoint_at = time.monotonic() + wait

    def _start_session(self, item: dict) -> None:
        if self._session is not None or self.paused:  # a new ROI size, or space is back: a new file
            self._end_session()
            self.paused = False
            self.path = layout.session_main(self.template, keep_existing=True)
            log.warning("sink sequence: recording continues in %s", self.path)
        self._session = SequenceFiles(Path(self.path), item)
        self.files.append(Path(self.path))

    def _planes(self, item: dict) -> tuple[np.ndarray, np.ndarray, str]:
        """Labelmap, probability (uint8) and the index of the frame the prediction was computed on."""
        prediction = item["prediction"]
        if self._cache is not None and self._cache[0] is prediction and prediction is not None:
            return self._cache[1:]
        shape = item["gray"].shape
        if prediction is None or prediction.mask.shape != shape:
            zeros = np.zeros(shape, np.uint8)
            return zeros, zeros, layout.NO_PREDICTION
        label = np.asarray(prediction.mask, np.uint8)
        prob = np.clip(np.nan_to_num(np.asarray(prediction.prob, np.float32)), 0.0, 1.0)
        prob8 = np.rint(prob * layout.UINT8_MAX).astype(np.uint8)
        source = prediction.frame.index if prediction.frame is not None else item["index"]
        self._cache = (prediction, label, prob8, str(source))
        return label, prob8, str(source)

    def _end_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close(self.dropped)

    def _finish(self) -> None:
        if self._session is None:
            return
        try:
            self._end_session()
        except Exception as exc:  # the headers could not be finalised: say so, never raise here
            if self.error is None:
                self._fail(exc)
            else:  # after a failed write: the headers, which name the frames kept, are not whole either
                log.error(
                    "sink sequence: the headers of %s could not be finalised either: %s", self.path, exc
                )
        if self.files:
            log.info("sink sequence: %d frames in %s (%d dropped)", self.frames, self.files[-1], self.dropped)
        if self.geometry_unknown:
            log.warning(
                "sink sequence: %d frame(s) recorded with their geometry unknown (refused by the "
                "OpenIGTLink source): marked IjkToWorldStatus INVALID",
                self.geometry_unknown,
            )
