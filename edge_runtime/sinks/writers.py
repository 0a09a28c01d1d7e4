"""Sinks stage: where rendered (or raw) frames go.

- :class:`Mp4Sink`: H.264 through PyAV into a *fragmented* mp4 (``frag_keyframe+empty_moov``,
  a keyframe at least every second), so a crash loses at most about one second; encoding
  runs on its own thread from yuv420p (BGR->I420 by OpenCV is much cheaper than libswscale), or
  straight from the decoder's planes (``write_i420``: no colour conversion at all). libx264 runs
  one thread per four cores (:func:`edge_runtime.cpus.encode_threads`): on a small CPU its thread pool would only
  fight inference for the same cores, on a large one a single thread caps the frame rate. Below
  ``sinks.min_free_gb`` it finalises its file and pauses; it resumes into a new file when space returns
  (:class:`edge_runtime.sinks.recordings.SpaceGuard`); :func:`edge_runtime.sinks.recordings.recorder_state` says which.
- :class:`WindowSink`: an OpenCV window, optionally fullscreen; refuses to start without a
  display instead of letting the GUI toolkit abort the process.
- :class:`MaskDumpSink`: ``--save-masks DIR`` writes ``DIR/<index>_mask.png`` (0/255) and the ROI
  frame ``DIR/<index>_frame.png``.
:func:`open_sinks` builds them from the config's ``sinks`` section. A sink's ``write`` never blocks
the display path for long; its errors are counted by the pipeline, not raised into it.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.biopsy.marks import MARKS, WINDOW_KEY
from edge_runtime.config_schema import SinksConfig
from edge_runtime.cpus import encode_threads
from edge_runtime.errors import InputError, SonomapError
from edge_runtime.live_stats import EVENTS
from edge_runtime.sinks import recordings
from edge_runtime.units import DEFAULT_FPS

log = logging.getLogger("sonomap.sinks")

# A fragment per keyframe; empty_moov makes the file readable without a trailing index.
FRAGMENTED_MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"
KEYFRAME_SECONDS = 1.0
QUEUE_FRAMES = 8
MASK_FOREGROUND = 255
ESC_KEY = 27
CLOSE_TIMEOUT_S = 12.0  # a recorder finalises within this at shutdown (the units give TimeoutStopSec=20)
AI_TOGGLE_KEY = ord("a")  # the operator switches the AI off (passthrough, "AI OFF" badge) and on


class _ThreadedWriter:
    """Runs ``_write_now`` on a worker thread; ``block`` chooses backpressure vs dropping."""

    def __init__(self, name: str, block: bool = True):
        self.name = name
        self.block = block
        self.dropped = 0
        self.error: Exception | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_FRAMES)
        self._thread = threading.Thread(target=self._run, name=f"sink-{name}", daemon=True)
        self._thread.start()
        self._closed = False

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                break
            if self.error is not None:
                continue
            try:
                self._write_now(*item)
            except Exception as exc:  # disk full, encoder failure: stop this sink, keep displaying
                self.error = exc
                EVENTS.inc("recording_failed")
                log.error("sink %s failed and stops recording: %s", self.name, exc)
        try:
            self._finish()
        except Exception as exc:
            self.error = self.error or exc
            log.error("sink %s could not finalise: %s", self.name, exc)

    def submit(self, *item) -> None:
        if self._closed:
            return
        if self.error is not None:
            raise SonomapError(f"sink {self.name} stopped: {self.error}")
        if self.block:
            self._queue.put(item)
            return
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=CLOSE_TIMEOUT_S)
        if self._thread.is_alive():
            log.error("sink %s did not finish within %.0f s; leaving it", self.name, CLOSE_TIMEOUT_S)

    def _write_now(self, *item) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        """Flush and close files."""


class Mp4Sink(_ThreadedWriter):
    """H.264 mp4 writer (PyAV/libx264). ``write(bgr)``; size fixed by the first frame."""

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
    ):
        self.path = Path(path)
        self.template = template or self.path  # where a resumed recording goes (a new name from it)
        self.fps = fps
        self.preset = preset
        self.crf = crf
        self.frames = 0
        self.files: list[Path] = []
        self.paused = False
        self.paused_frames = 0
        self.retention_days = retention_days
        self.outputs = (
            outputs  # the session's files by kind (the summary's ``outputs``): resumed files join it
        )
        self._file_frames = 0
        self._container = None
        self._stream = None
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # recordings: private (privacy.py)
        self.space = recordings.SpaceGuard(self.path.parent, min_free_gb)
        self._retention_at = float("-inf")
        super().__init__(name, block)

    def write(self, bgr: np.ndarray) -> None:
        self.submit(bgr, False)

    def write_i420(self, i420: np.ndarray) -> None:
        """An I420 frame ``(H*3/2, W)`` (see :mod:`edge_runtime.yuv`), encoded as it is."""
        self.submit(i420, True)

    def _open(self, width: int, height: int) -> None:
        import av

        rate = Fraction(self.fps).limit_denominator(1001)
        try:
            self._container = av.open(
                str(self.path),
                mode="w",
                format="mp4",
                options={"movflags": FRAGMENTED_MOVFLAGS, "flush_packets": "1"},
            )
        except (OSError, av.FFmpegError) as exc:
            raise InputError(f"{self.path}: cannot create video file ({exc})") from exc
        self._container.metadata["comment"] = recordings.OWN_MARK  # retention deletes only files carrying it
        self.files.append(self.path)
        if self.outputs is not None and len(self.files) > 1:
            self.outputs[f"{self.name}, resumed {len(self.files) - 1}"] = str(self.path)
        self._file_frames = 0
        stream = self._container.add_stream("libx264", rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        gop = max(1, int(round(float(rate) * KEYFRAME_SECONDS)))
        stream.codec_context.gop_size = gop
        stream.options = {
            "preset": self.preset,
            "crf": str(self.crf),
            "tune": "zerolatency",
            "keyint_min": str(gop),
            "g": str(gop),
            "threads": str(encode_threads()),
        }
        self._stream = stream

    def _room_on_disk(self) -> bool:
        """Pause (file finalised) below ``min_free_gb``; resume into a new file once space is back."""
        now = time.monotonic()
        if self.retention_days and now - self._retention_at >= recordings.RETENTION_INTERVAL_S:
            self._retention_at = now
            recordings.apply_retention(self.template, self.retention_days)
        if self.space.ok():
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
            )
            self._finish()
        self.paused_frames += 1
        return False

    def _write_now(self, image: np.ndarray, is_i420: bool) -> None:
        import av

        if not self._room_on_disk():
            return
        if is_i420:
            height, width = image.shape[0] * 2 // 3, image.shape[1]
            if self._container is None:
                self._open(width, height)
            if (width, height) == (self._stream.width, self._stream.height):
                self._encode(av.VideoFrame.from_ndarray(image, format="yuv420p"))
                return
            image = cv2.cvtColor(image, cv2.COLOR_YUV2BGR_I420)  # size changed mid-stream: rare, scale in BGR
        bgr = image
        height, width = bgr.shape[:2]
        even_w, even_h = width - width % 2, height - height % 2  # yuv420p needs even sizes
        if self._container is None:
            self._open(even_w, even_h)
        if (even_w, even_h) != (self._stream.width, self._stream.height):
            bgr = cv2.resize(bgr, (self._stream.width, self._stream.height))
        elif (even_w, even_h) != (width, height):
            bgr = bgr[:even_h, :even_w]
        i420 = cv2.cvtColor(np.ascontiguousarray(bgr), cv2.COLOR_BGR2YUV_I420)
        self._encode(av.VideoFrame.from_ndarray(i420, format="yuv420p"))

    def _encode(self, frame) -> None:
        frame.pts = self._file_frames  # in 1/fps units: PyAV derives the codec time base from the rate
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self._file_frames += 1
        self.frames += 1

    def _finish(self) -> None:
        if self._container is None:
            return
        container, stream, self._container, self._stream = self._container, self._stream, None, None
        for packet in stream.encode(None):
            container.mux(packet)
        container.close()


class MaskDumpSink(_ThreadedWriter):
    """``--save-masks DIR``: per frame, the mask (0/255 PNG) and the gray ROI it came from."""

    def __init__(self, directory: str | Path, block: bool = True, min_free_gb: float = 0.0):
        self.directory = Path(directory)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # patient images: private
        self.space = recordings.SpaceGuard(self.directory, min_free_gb)
        self.paused, self.paused_frames = False, 0
        super().__init__("masks", block)

    def write(self, index: int, roi_image: np.ndarray, mask: np.ndarray | None) -> None:
        self.submit(index, roi_image, mask)

    def _write_now(self, index: int, roi_image: np.ndarray, mask: np.ndarray | None) -> None:
        if not self.space.ok():  # a PNG per frame fills a disk faster than video: the same guard
            if not self.paused:
                recordings.log_pause(self.name, self.space, "the mask dump so far kept")
            self.paused, self.paused_frames = True, self.paused_frames + 1
            return
        self.paused = False
        cv2.imwrite(str(self.directory / f"{index:06d}_frame.png"), roi_image)
        if mask is not None:
            out = np.where(mask > 0, MASK_FOREGROUND, 0).astype(np.uint8)
            if not cv2.imwrite(str(self.directory / f"{index:06d}_mask.png"), out):
                raise InputError(f"{self.directory}: cannot write mask PNG")


def open_sinks(s: SinksConfig, fps: float, live: bool) -> tuple[dict, WindowSink | None, dict[str, str]]:
    """The config's ``sinks`` section -> (file sinks by name, window or None, the paths they write).
    Live sinks drop frames rather than stall the display, and a live session never records over an
    earlier recording (:mod:`edge_runtime.sinks.recordings`: a service restarted after a crash)."""
    outputs = {
        k: str(recordings.session_path(getattr(s, k), keep_existing=live))
        for k in ("video", "raw", "masks")
        if getattr(s, k)
    }
    sinks: dict = {}
    for kind in ("video", "raw"):
        if kind in outputs:
            sinks[kind] = Mp4Sink(
                outputs[kind],
                fps,
                s.preset,
                block=not live,
                name=kind,
                min_free_gb=s.min_free_gb,
                template=getattr(s, kind),
                retention_days=s.retention_days,
                outputs=outputs,
            )
    if "masks" in outputs:
        sinks["masks"] = MaskDumpSink(outputs["masks"], block=not live, min_free_gb=s.min_free_gb)
    window = WindowSink(fullscreen=bool(s.fullscreen)) if s.window else None
    return sinks, window, outputs


def display_available() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class WindowSink:
    """An OpenCV window (optionally fullscreen). ``quit_requested`` turns true on q/Esc; the
    ``a`` key asks to switch the AI off/on (:meth:`take_ai_toggle`); ``b`` marks a biopsy."""

    def __init__(self, title: str = "sonomap (research use only)", fullscreen: bool = False):
        if not display_available():
            raise SonomapError(
                "no display (DISPLAY/WAYLAND_DISPLAY unset): run with --headless "
                "or start it in a graphical session"
            )
        self.title = title
        self.quit_requested = False
        self._ai_toggles = 0
        self.shown = 0
        cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        if fullscreen:
            cv2.setWindowProperty(title, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)

    def write(self, bgr: np.ndarray) -> None:
        cv2.imshow(self.title, bgr)
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), ESC_KEY):
            self.quit_requested = True
        elif key == AI_TOGGLE_KEY:
            self._ai_toggles += 1
        elif key == ord(WINDOW_KEY):
            MARKS.request("key")
        self.shown += 1

    def take_ai_toggle(self) -> bool:
        """True once per press of the AI on/off key since the last call."""
        pressed, self._ai_toggles = self._ai_toggles > 0, 0
        return pressed

    def close(self) -> None:
        cv2.destroyWindow(self.title)
        cv2.waitKey(1)
