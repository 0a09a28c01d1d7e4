"""H.264 recordings through PyAV, each a fragmented mp4 created, closed and read back by
:mod:`edge_runtime.sinks.mp4_file` (a crash loses at most about one second). Encoding runs on the sink's
own thread (:class:`edge_runtime.sinks.threaded.ThreadedWriter`) from yuv420p (BGR->I420 by OpenCV is
much cheaper than libswscale), or straight from the decoder's planes (``write_i420``: no colour
conversion). A replay stamps frame ``n`` at ``n / fps``: every frame is written. A live recording
(``timed``) stamps each frame at its capture time, counted from the file's first frame, on a 1/90000 s
clock: the display shows fewer frames than were captured when the AI or the encoder is slow, and frames
stamped at a fixed rate would play the session faster than it happened. Its keyframes are forced by
time too, so a crash still loses at most about one second however few frames a second it writes.
Below ``sinks.min_free_gb`` it finalises its file and pauses; it resumes into a new file
when space returns (:class:`edge_runtime.sinks.recordings.SpaceGuard`), or, with ``resume`` False
(replay), stays paused and fails at close.

With ``resume`` False (replay's outputs, make-clip: results re-made on demand, written over an earlier
one of the same name) the file is staged: written under a hidden name and renamed over the path once it
is complete, so a run that fails half-way leaves the earlier file as it was. A file FFmpeg closed
without its closing index (disk full or a file size limit while closing: FFmpeg reports no error) is a
failed recording (``error``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2
import numpy as np

from edge_runtime import recorded_time
from edge_runtime.errors import InputError
from edge_runtime.sinks import mp4_file, recordings
from edge_runtime.sinks.mp4_file import KEYFRAME_SECONDS, TIMED_CLOCK
from edge_runtime.sinks.staging import named_for_output
from edge_runtime.sinks.threaded import ThreadedWriter
from edge_runtime.units import DEFAULT_FPS

log = logging.getLogger("sonomap.sinks")


class Mp4Sink(ThreadedWriter):
    """H.264 mp4 writer (PyAV/libx264). ``write(bgr)``; size fixed by the first frame. ``recording``:
    a live session's (tagged :data:`recordings.OWN_MARK`, retention applied); else a result, neither."""

    def __init__(
        self,
        path: str | Path,
        fps: float = DEFAULT_FPS,
        preset: str = "ultrafast",
        crf: int = 23,
        block: bool = True,
        name: str = "mp4",
        min_free_gb: float = 0.0,
        template: str | Path | None = None,
        retention_days: float | None = None,
        outputs: dict | None = None,
        resume: bool = True,
        timed: bool = False,
        recording: bool = False,
    ):
        self.path = Path(path)
        self.timed = timed  # live: each frame at its capture time (``write``'s ``timestamp``)
        self.template = template or self.path  # where a resumed recording goes (a new name from it)
        self.fps, self.preset, self.crf = fps, preset, crf
        self.files: list[Path] = []
        self.recording, self.retention_days = recording, (retention_days if recording else None)
        # the session's files by kind (the summary's ``outputs``): resumed files join it
        self.outputs = outputs
        self._file_frames = 0
        self._first_at: float | None = None  # timed: the capture time of the file's first frame
        self._last_pts, self._key_pts = -1, None  # timed: the last frame's pts, the last keyframe's
        self._container = self._stream = None
        self._writing: Path | None = None  # the file FFmpeg writes: path, or its hidden stand-in when staged
        self.staged = not resume  # a replay's output replaces an earlier one only once it is complete
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # recordings: private (privacy.py)
        self._retention_at = float("-inf")
        # resume False (replay): a pause is final, a failed recording at close
        space = recordings.SpaceGuard(self.path.parent, min_free_gb)
        super().__init__(name, block, resume=resume, space=space)

    def write(self, bgr: np.ndarray, timestamp: float | None = None) -> None:
        """``timestamp``: the frame's capture time (``time.monotonic()``), used when ``timed``."""
        self.submit(bgr, False, timestamp)

    def write_i420(self, i420: np.ndarray, timestamp: float | None = None) -> None:
        """An I420 frame ``(H*3/2, W)`` (see :mod:`edge_runtime.yuv`), encoded as it is."""
        self.submit(i420, True, timestamp)

    def _open(self, width: int, height: int) -> None:
        self._container, self._writing = mp4_file.create(self.path, self.staged)
        if self.recording:  # retention deletes only files carrying it
            self._container.metadata["comment"] = recordings.OWN_MARK
        self.files.append(self.path)
        if self.outputs is not None and len(self.files) > 1:
            self.outputs[f"{self.name}, resumed {len(self.files) - 1}"] = str(self.path)
        self._file_frames, self._first_at, self._last_pts, self._key_pts = 0, None, -1, None
        self._stream = mp4_file.add_h264(
            self._container, width, height, self.fps, self.preset, self.crf, self.timed
        )

    def _room_on_disk(self) -> bool:
        """Pause (file finalised) below ``min_free_gb``; resume into a new file once space is back."""
        now = time.monotonic()
        if self.retention_days and now - self._retention_at >= recordings.RETENTION_INTERVAL_S:
            self._retention_at = now
            recordings.apply_retention(self.template, self.retention_days)
        if (self.resume or not self.paused) and self.space.ok():
            if self.paused:
                self.paused = False
                self.path = recordings.session_path(self.template, keep_existing=True)
                log.warning(
                    "sink %s: %.1f GiB free again; recording resumes to %s",
                    self.name,
                    self.space.free_gb,
                    self.path,
                )
            return True
        if not self.paused:
            self.paused = True
            recordings.log_pause(
                self.name,
                self.space,
                f"{self.path} kept" if self._container is not None else "nothing recorded yet",
                self.resume,
            )
            self._finish()
        self.paused_frames += 1
        return False

    def failure(self, exc: Exception) -> Exception:
        return named_for_output(exc, self._writing, self.path)

    def _write_now(self, image: np.ndarray, is_i420: bool, timestamp: float | None = None) -> None:
        import av  # deferred: PyAV loads FFmpeg (about 0.1 s), and `sonomap --help` imports this module

        if not self._room_on_disk():
            return
        if is_i420:
            height, width = image.shape[0] * 2 // 3, image.shape[1]
            if self._container is None:
                self._open(width, height)
            if (width, height) == (self._stream.width, self._stream.height):
                self._encode(av.VideoFrame.from_ndarray(image, format="yuv420p"), timestamp)
                return
            image = cv2.cvtColor(image, cv2.COLOR_YUV2BGR_I420)  # size changed mid-stream: rare, scale in BGR
        bgr = image
        height, width = bgr.shape[:2]
        # yuv420p needs even sizes: an odd frame gets one black row/column more, so no edge of
        # the ultrasound image is cut off the recording
        even_w, even_h = width + width % 2, height + height % 2
        if self._container is None:
            self._open(even_w, even_h)
        if (even_w, even_h) != (self._stream.width, self._stream.height):
            bgr = cv2.resize(bgr, (self._stream.width, self._stream.height))
        elif (even_w, even_h) != (width, height):
            bgr = cv2.copyMakeBorder(bgr, 0, even_h - height, 0, even_w - width, cv2.BORDER_CONSTANT, value=0)
        i420 = cv2.cvtColor(np.ascontiguousarray(bgr), cv2.COLOR_BGR2YUV_I420)
        self._encode(av.VideoFrame.from_ndarray(i420, format="yuv420p"), timestamp)

    def _encode(self, frame, timestamp: float | None = None) -> None:
        if self.timed and timestamp is not None:
            self._stamp(frame, timestamp)
        else:
            frame.pts = self._file_frames  # in 1/fps units: PyAV derives the codec time base from the rate
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self._file_frames += 1
        self.frames += 1

    def _stamp(self, frame, timestamp: float) -> None:
        """A live frame's pts: its capture time since the file's first frame, on the 90 kHz clock, one
        tick after the last at least (the muxer refuses a pts that does not increase); a keyframe once
        a second of it has passed since the last one."""
        import av  # deferred: see _write_now

        if self._first_at is None:
            self._first_at = timestamp
            if self.recording:  # the header, written with the first packet, carries when pts 0 was
                self._container.metadata["creation_time"] = recorded_time.creation_time(timestamp)
        ticks = round((timestamp - self._first_at) / TIMED_CLOCK)
        frame.pts = self._last_pts = max(self._last_pts + 1, ticks)
        frame.time_base = TIMED_CLOCK
        if self._key_pts is None or (frame.pts - self._key_pts) * TIMED_CLOCK >= KEYFRAME_SECONDS:
            frame.pict_type = av.video.frame.PictureType.I
            self._key_pts = frame.pts

    def _finish(self) -> None:
        if self._container is None:
            return
        container, stream, self._container, self._stream = self._container, self._stream, None, None
        try:
            problem = mp4_file.close(container, stream, self._writing)
        except BaseException:
            self._settle(failed=True)
            raise
        # a replay's pause is final: its file misses the frames after it (ThreadedWriter fails it)
        failed = bool(problem) or self.error is not None or (self.paused and not self.resume)
        self._settle(failed)
        if problem and self.error is None:  # a write that failed before has been reported already
            raise InputError(f"{self.files[-1]}: {problem}")

    def _settle(self, failed: bool) -> None:
        """A staged file, closed: put in place or deleted (:func:`mp4_file.settle`); once."""
        if not self.staged or self._writing is None:
            return
        writing, self._writing = self._writing, None
        mp4_file.settle(writing, self.path, failed, self.name)
