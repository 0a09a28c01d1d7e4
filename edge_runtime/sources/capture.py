"""Sources that own a native handle: video files and network streams (PyAV/FFmpeg) and V4L2/UVC
capture cards (OpenCV CAP_V4L2). Both free their handle only on the thread that reads it
(:class:`ReaderReleases`), so ``Pipeline.stop()`` from another thread cannot crash a read in flight.
A source's ``name`` (its log lines, its frames' ``meta["source"]``) is its kind: ``video file``,
``capture device /dev/videoN``, or a stream URL without ``user:password@``; a file name may carry the
patient's name. Its one-line errors name the file, for whoever gave the path.
:func:`edge_runtime.sources.opener.open_source` picks them by the spec. Their handles are opened and
probed (picture stream, size, rate, pixel format) by :mod:`edge_runtime.sources.capture_open`; this
module reads the frames and frees the handles.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np

from edge_runtime import recorded_time, source_kinds
from edge_runtime.errors import InputError
from edge_runtime.frames import Frame, Source
from edge_runtime.privacy import redact
from edge_runtime.sources import display_matrix
from edge_runtime.sources.capture_open import open_v4l2, open_video, stream_fps
from edge_runtime.sources.corrupt import CorruptCounter, check_whole
from edge_runtime.sources.frame_size import check_frame_size
from edge_runtime.yuv import YuvFrame, from_av


def capture_device_name(device: str | int) -> str:
    """A capture device as logs name it: ``capture device /dev/videoN`` (a device path names no patient)."""
    text = str(device)
    return f"capture device /dev/video{text}" if text.isdigit() else f"capture device {text}"


def to_bgr(image: np.ndarray, origin: str) -> np.ndarray:
    """A decoded image (gray, BGR or BGRA uint8) as BGR; other formats are an error naming ``origin``."""
    if image.dtype != np.uint8:
        raise InputError(f"{origin}: unsupported pixel format {image.dtype} (need 8-bit gray or colour)")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    raise InputError(f"{origin}: unsupported pixel layout {image.shape}")


def _as_frame(vf: av.VideoFrame, index: int, time_base, meta: dict, turn) -> Frame:
    """A decoded frame as the pipeline takes it, its pts in seconds of ``time_base``: yuv420p (nearly
    every H.264 clip) keeps its planes, BGR made on demand; another format, or a stream whose display
    matrix turns or mirrors its frames (``turn``, :mod:`edge_runtime.sources.display_matrix`), is made BGR now."""
    pts = float(vf.pts * time_base) if vf.pts is not None and time_base else None
    if turn != display_matrix.IDENTITY:  # turned in BGR: rare, not worth turning the planes
        image = display_matrix.apply(vf.to_ndarray(format="bgr24"), turn)
        return Frame(index, image, time.monotonic(), pts, meta)
    i420 = from_av(vf)
    if i420 is not None:
        return YuvFrame(index, i420, time.monotonic(), pts, meta)
    return Frame(index, vf.to_ndarray(format="bgr24"), time.monotonic(), pts, meta)


class ReaderReleases(Source):
    """A source whose native handle (FFmpeg demuxer, V4L2 capture) must not be freed while another
    thread is inside a read on it: freeing an RTSP demuxer under its reader crashed the process.
    ``close()`` from another thread (``Pipeline.stop``, a signal handler) only asks; the reading
    thread releases the handle as soon as its current read returns, a frame interval on a live
    stream. ``close()`` from the reading thread, or when nobody reads, releases at once.

    For subclasses (these hooks are theirs, not their callers'): ``__iter__`` calls :meth:`_reading`
    first and :meth:`_done_reading` in its ``finally``, and stops reading once ``_closing`` is set
    (checked before and after each blocking read); :meth:`_release` frees the handle, only ever on the
    reading thread or when nobody reads, and may run more than once (a second call finds nothing to free)."""

    _reader: threading.Thread | None = None
    _closing = False

    def _reading(self) -> None:
        """Call at the start of ``__iter__``: this thread owns the handle from now on."""
        self._reader = threading.current_thread()

    def _done_reading(self) -> None:
        """Call in ``__iter__``'s ``finally``: the read is over, the handle is released."""
        self._reader = None
        self._release()

    def close(self) -> None:
        self._closing = True
        if self._reader is not None and self._reader is not threading.current_thread():
            return
        self._release()

    def _release(self) -> None:
        """Free the native handle (see the class docstring); a subclass implements it."""
        raise NotImplementedError


class VideoFileSource(ReaderReleases):
    """A video file or network stream decoded by PyAV (threads: :func:`edge_runtime.cpus.decode_threads`);
    ``fps``: its stream's average rate (:func:`stream_fps`)."""

    def __init__(self, spec: str, live: bool = False, loop: bool = False):
        self.spec = spec
        self.origin = redact(spec)  # the errors' name: a stream URL's user:password never reaches one
        self.name = self.origin if live else source_kinds.VIDEO_FILE  # logs, frame metadata: URL or kind
        self._meta: dict = {"source": self.name}  # every frame's; a file's recording time added below
        self.live = live
        self.loop = loop and not live
        if not live and not Path(spec).is_file():
            raise InputError(f"{self.origin}: file not found")
        self._container = None
        # Frames per second (None: unknown, the pipeline's default applies). A file's is read now:
        # replay paces frames and opens its outputs before the first frame comes. A stream's is read
        # when it opens, which may take STREAM_OPEN_TIMEOUT_S, before its first frame.
        self.fps: float | None = None
        self._rate_read = False  # read at the first open: a looping file warns of a bad rate once
        if not live:
            container = self._open()[0]
            self._meta.update(recorded_time.container_start(container.metadata))
            container.close()

    def _open(self):
        container, stream = open_video(self.spec, self.origin, self.live)
        if not self._rate_read:
            self.fps, self._rate_read = stream_fps(stream, self.name), True
        return container, stream

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        corrupt = CorruptCounter(self.origin, self.name)
        self._reading()
        try:
            while not self._closing:
                self._container, stream = self._open()
                # turn: read from the first frame, once per open: PyAV's frame.side_data ties its frame in a reference
                # cycle only a full collection frees (read on every frame: decoded pictures held, +18 % RSS in a soak)
                turn, collect, first, packets = None, False, index, 0
                declared = stream.frames if "mp4" in self._container.format.name else 0  # mov: exact count
                try:
                    for packet in self._container.demux(stream):
                        if self._closing:
                            return
                        packets += packet.size > 0  # the last, empty one only flushes the decoder
                        try:
                            decoded = packet.decode()
                        except av.InvalidDataError as exc:
                            # strerror: FFmpeg's message without the file name it may append
                            corrupt.skip(f"packet after frame {index}", exc.strerror or str(exc))
                            continue
                        if collect:  # the frame read for its matrix, let go of here, is freed
                            vf, collect = None, False
                            gc.collect()
                        for vf in decoded:
                            corrupt.ok()
                            check_frame_size(vf.width, vf.height, self.origin, index)  # a size change
                            if turn is None:
                                turn, collect = display_matrix.orientation(vf), True
                            yield _as_frame(vf, index, stream.time_base, dict(self._meta), turn)
                            index += 1
                except av.FFmpegError as exc:
                    raise InputError(
                        redact(f"{self.origin}: unreadable video at frame {index} ({exc})")
                    ) from exc
                finally:
                    self._release()
                check_whole(self.origin, index - first, declared, packets)
                if index == 0:
                    raise InputError(f"{self.origin}: unreadable video (no frames decoded)")
                if not self.loop:
                    return
        finally:
            self._done_reading()

    def _release(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


class V4L2Source(ReaderReleases):
    """A V4L2/UVC capture card or grabber via OpenCV CAP_V4L2."""

    live = True

    def __init__(
        self,
        device: str | int,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        fourcc: str | None = None,
    ):
        self.device = device
        self.name = capture_device_name(device)
        if isinstance(device, str) and not Path(device).exists():
            raise InputError(f"{device}: capture device not found")
        self.cap = open_v4l2(device, width, height, fps, fourcc)

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        self._reading()
        try:
            while self.cap is not None and not self._closing:
                ok, image = self.cap.read()
                if self._closing:
                    return
                if not ok or image is None:
                    raise InputError(
                        f"{self.device}: capture stopped at frame {index} (device unplugged or busy)"
                    )
                yield Frame(
                    index,
                    to_bgr(image, f"{self.device} frame {index}"),
                    time.monotonic(),
                    None,
                    {"source": self.name},
                )
                index += 1
        finally:
            self._done_reading()

    def _release(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None
