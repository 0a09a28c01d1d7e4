"""Opening the native handles the capture sources read (:mod:`edge_runtime.sources.capture`), and what
is learnt from them before the first frame.

- :func:`open_video`: a video file or network stream opened by PyAV (RTSP over TCP, a stream given
  :data:`STREAM_OPEN_TIMEOUT_S` to answer), its picture stream chosen (:func:`video_stream`), the size
  its header declares checked against the frame-size limit before a frame is decoded, and its decoder
  threads set (:func:`edge_runtime.cpus.decode_threads`); :func:`stream_fps` reads its frame rate.
- :func:`open_v4l2`: a V4L2/UVC capture card opened by OpenCV (CAP_V4L2), asked for a size, rate and
  pixel format; a pixel format the device does not give is refused.

Errors are one-line :class:`InputError` naming the file (a stream URL without ``user:password@``) or
the device; a handle opened before the error is closed.
"""

from __future__ import annotations

import av
import cv2

from edge_runtime.cpus import decode_threads
from edge_runtime.errors import InputError
from edge_runtime.privacy import redact
from edge_runtime.sources.frame_rate import believable_fps
from edge_runtime.sources.frame_size import check_frame_size
from edge_runtime.units import DEFAULT_FPS

FOURCC_LEN = 4
# A network stream (RTSP, UDP, HTTP) that has not answered in this long is down: the reconnecting
# source shows NO SIGNAL and retries, instead of the open blocking forever.
STREAM_OPEN_TIMEOUT_S = 10.0


def stream_fps(stream: av.video.stream.VideoStream, label: str) -> float | None:
    """A video stream's average frame rate; None when its container gives none (or 0: unknown) or one
    no scanner delivers (:func:`edge_runtime.sources.frame_rate.believable_fps`, a warning naming
    ``label``, the input's kind): the pipeline's ``source.fps``, else DEFAULT_FPS, then applies."""
    fallback = f"the configured source.fps (else {DEFAULT_FPS:g} fps)"
    return believable_fps(stream.average_rate, label, "its average rate", fallback)


def video_stream(container: av.container.InputContainer, origin: str) -> av.video.stream.VideoStream:
    """The container's picture stream: of its video streams that are not a cover picture (an MP4's
    ``attached_pic``, one still image), the one with the most pixels, the first of equals. A file with
    a thumbnail or a small second view beside the scanner screen would otherwise be replayed as that,
    since FFmpeg lists streams in file order. InputError naming ``origin`` (the file) when there is none."""
    moving = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not moving:  # a sound recording, subtitles, data or a cover picture only
        raise InputError(f"{origin}: no video stream in it (audio or data only)")
    return max(moving, key=_pixels)


def _pixels(stream: av.video.stream.VideoStream) -> int:
    """The pixels of one frame of ``stream`` as its header says; 0 when it says nothing (a damaged
    file's stream may have no codec context at all: it is then chosen only when it is the only one)."""
    context = stream.codec_context
    return (context.width or 0) * (context.height or 0) if context is not None else 0


def open_video(spec: str, origin: str, live: bool):
    """``spec`` (a file path or stream URL) opened by PyAV: (container, picture stream), the stream's
    decoder set up. ``origin``: the name its errors give; ``live``: a stream (open timeout, slice
    threads). InputError when it cannot be opened, has no decodable picture stream or declares frames
    beyond the frame-size limit."""
    options = {"rtsp_transport": "tcp"} if spec.startswith("rtsp://") else {}
    try:
        container = av.open(spec, options=options, timeout=STREAM_OPEN_TIMEOUT_S if live else None)
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise InputError(
            redact(f"{origin}: unreadable video ({getattr(exc, 'strerror', None) or exc})")
        ) from exc
    try:
        stream = video_stream(container, origin)
        codec = stream.codec_context
        if codec is None:  # e.g. a corrupt header that names no codec
            raise InputError(f"{origin}: unreadable video (no decodable video stream)")
        # the header's size, before a frame is decoded: a huge one would exhaust memory first
        check_frame_size(codec.width, codec.height, origin, 0)
    except InputError:
        container.close()
        raise
    # Live streams: slice threads only, since frame threading holds back (threads - 1) frames.
    codec.thread_type = "SLICE" if live else "AUTO"
    codec.thread_count = decode_threads()
    return container, stream


def open_v4l2(
    device: str | int, width: int | None, height: int | None, fps: float | None, fourcc: str | None
) -> cv2.VideoCapture:
    """The capture device ``device`` (a path or an index) opened through OpenCV CAP_V4L2 and asked for
    ``width``, ``height``, ``fps`` and the pixel format ``fourcc`` (each when given). InputError when
    it cannot be opened or does not give ``fourcc``."""
    cap = cv2.VideoCapture(device if isinstance(device, int) else str(device), cv2.CAP_V4L2)
    if not cap.isOpened():
        raise InputError(f"{device}: cannot open capture device (missing, busy or not a V4L2 device)")
    if fourcc:
        if len(fourcc) != FOURCC_LEN:
            raise InputError(f"{device}: fourcc must be 4 characters, got {fourcc!r}")
        cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*fourcc))
    for prop, value in (
        (cv2.CAP_PROP_FRAME_WIDTH, width),
        (cv2.CAP_PROP_FRAME_HEIGHT, height),
        (cv2.CAP_PROP_FPS, fps),
    ):
        if value:
            cap.set(prop, value)
    if fourcc:
        got = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(FOURCC_LEN, "little").decode("ascii", "replace")
        if got != fourcc:
            cap.release()
            raise InputError(f"{device}: unsupported pixel format {fourcc!r} (device gives {got!r})")
    return cap
