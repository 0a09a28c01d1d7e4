"""The fragmented mp4 file around a recorder's frames (:class:`edge_runtime.sinks.mp4.Mp4Sink`): creating
it with its H.264 stream, closing it and reading its end back, and putting a staged file in place.

The file is a *fragmented* mp4 (``frag_keyframe+empty_moov``, a keyframe at least every second), so a
crash loses at most about one second. libx264 runs one thread per four cores
(:func:`edge_runtime.cpus.encode_threads`): on a small CPU its thread pool would only fight inference
for the same cores, on a large one a single thread caps the frame rate.

A staged file (a result re-made on demand, written over an earlier one of the same name) is written
under a hidden name beside its path (``.NAME.<pid>.<random>.partial``, :mod:`edge_runtime.sinks.staging`)
and renamed over the path once it is complete, so a run that fails half-way (disk full, a file size
limit) leaves the earlier file as it was. A failed run with no earlier file there keeps what it wrote
under the path, as a live recording does. The hidden file of a run killed outright is deleted by the
next run that writes the same path.

FFmpeg does not report every failed write: when the disk fills up (or a file size limit is hit) while
it closes the file, writing the last fragment and the index, ``close()`` returns as if all went well
and the file is cut short. So after closing, :func:`unfinished` reads the file's last bytes back: a
complete fragmented mp4 ends in its fragment index (``mfra``, closed by an ``mfro`` box giving its
size), the last thing FFmpeg writes; a file without it is a failed recording.
"""

from __future__ import annotations

import logging
import os
import stat
import struct
from fractions import Fraction
from pathlib import Path

from edge_runtime.cpus import encode_threads
from edge_runtime.errors import InputError
from edge_runtime.sinks.staging import named_for_output, partial_path, remove_leftovers

log = logging.getLogger("sonomap.sinks")

# A fragment per keyframe; empty_moov makes the file readable without a trailing index.
FRAGMENTED_MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"
KEYFRAME_SECONDS = 1.0
MFRO = struct.Struct(">I4sII")  # the mfro box that ends an mp4: size 16, type, version+flags, mfra size
BOX_HEADER = struct.Struct(">I4s")
TIMED_CLOCK = Fraction(1, 90000)  # a live recording's time base: MPEG's 90 kHz clock
RATE_DENOMINATOR = 1001  # the largest rate denominator: NTSC's 30000/1001 stays exact


def unfinished(path: str | Path) -> str | None:
    """None when the fragmented mp4 at ``path`` ends in its complete index (an ``mfra`` box closed by
    ``mfro``: FFmpeg writes it last) or is no regular file (a pipe, a device: nothing to read back);
    otherwise one line saying what is missing."""
    try:
        with open(path, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                return None
            size = info.st_size
            if size >= MFRO.size:
                f.seek(size - MFRO.size)
                box, kind, _flags, mfra = MFRO.unpack(f.read(MFRO.size))
                if box == MFRO.size and kind == b"mfro" and BOX_HEADER.size + MFRO.size <= mfra <= size:
                    f.seek(size - mfra)
                    if BOX_HEADER.unpack(f.read(BOX_HEADER.size)) == (mfra, b"mfra"):
                        return None
    except OSError as exc:
        return f"cannot be read back after writing ({exc})"
    return (
        f"writing the end of the file failed: it stops after {size} bytes without the closing index "
        "FFmpeg writes last (disk full, or a file size limit)"
    )


def create(path: Path, staged: bool):
    """A fragmented mp4 container opened for writing, and the file FFmpeg writes: ``path`` itself, or
    with ``staged`` a new hidden name beside it (the leftovers of a run killed outright deleted first).
    FFmpeg creates the file, with the umask's permissions. Raises :class:`InputError` naming ``path``
    when the file cannot be created (a staged stand-in is deleted then)."""
    import av  # deferred: PyAV loads FFmpeg (about 0.1 s), and `sonomap --help` imports the writers

    if staged:
        remove_leftovers(path)  # of a run killed outright: nothing else would ever delete them
    writing = partial_path(path) if staged else path
    try:
        container = av.open(
            str(writing),
            mode="w",
            format="mp4",
            options={"movflags": FRAGMENTED_MOVFLAGS, "flush_packets": "1"},
        )
    except (OSError, av.FFmpegError) as exc:
        if staged:
            writing.unlink(missing_ok=True)
        reason = named_for_output(exc, writing, path)
        raise InputError(f"{path}: cannot create video file ({reason})") from exc
    return container, writing


def add_h264(container, width: int, height: int, fps: float, preset: str, crf: int, timed: bool):
    """The container's yuv420p libx264 stream, ``width`` x ``height`` at ``fps``, a keyframe every
    :data:`KEYFRAME_SECONDS`; ``timed``: on the 90 kHz clock (pts from capture times) instead of 1/fps."""
    rate = Fraction(fps).limit_denominator(RATE_DENOMINATOR)
    stream = container.add_stream("libx264", rate=rate)
    if timed:  # pts in 1/90000 s from the capture times (the muxer keeps the same clock)
        stream.codec_context.time_base = stream.time_base = TIMED_CLOCK
    stream.width, stream.height = width, height
    stream.pix_fmt = "yuv420p"
    gop = max(1, int(round(float(rate) * KEYFRAME_SECONDS)))
    stream.codec_context.gop_size = gop
    stream.options = {
        "preset": preset,
        "crf": str(crf),
        "tune": "zerolatency",
        "keyint_min": str(gop),
        "g": str(gop),
        "threads": str(encode_threads()),
    }
    return stream


def close(container, stream, writing: Path) -> str | None:
    """Flushes the encoder into the container and closes it; then reads the file FFmpeg wrote
    (``writing``) back: None when it ends in its closing index, else one line (:func:`unfinished`)."""
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    return unfinished(writing)  # FFmpeg may drop the last writes without an error


def settle(writing: Path, path: Path, failed: bool, name: str) -> None:
    """A staged file ``writing``, closed: renamed over ``path`` when complete, or when it ``failed`` and
    nothing was there before (what it holds is kept, as an unstaged recording keeps it); otherwise
    deleted, and the earlier file at ``path`` stays as it was. ``name``: the sink's, for the log."""
    if failed and path.exists():
        writing.unlink(missing_ok=True)
        log.warning("sink %s: the earlier %s is kept; this run's unfinished file is deleted", name, path)
        return
    try:
        os.replace(writing, path)
    except OSError:
        writing.unlink(missing_ok=True)
        raise
