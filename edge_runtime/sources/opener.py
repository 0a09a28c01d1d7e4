"""Source stage: frames from files, folders, DICOM cine, capture devices, streams.

``open_source(spec, **options)`` dispatches on the spec:

- a video file (PyAV, threaded decode) or an ``rtsp://``/``rtmp://``/``http(s)://`` URL (live);
- an image folder (sorted, png/jpg/bmp/tif) or a single image;
- a ``.dcm`` file (DICOM cine via pydicom: :mod:`edge_runtime.sources.dicom_cine`);
- ``synthetic`` (a real BUSI image with simulated probe motion, paced at ``fps``);
- ``/dev/videoN`` or an integer (V4L2/UVC capture card through OpenCV CAP_V4L2: size, fps, fourcc);
- ``igtl://HOST:PORT?device=NAME`` (OpenIGTLink client, in :mod:`edge_runtime.igtl`);
- a ``.seq.nrrd`` 3D Slicer sequence, e.g. a ``--record-sequence`` session (:mod:`edge_runtime.sources.sequence`),
  or a PLUS ``.igs.mha``/``.seq.mha`` sequence (:mod:`edge_runtime.sources.plus_metaimage`).
Every source yields :class:`edge_runtime.frames.Frame` with a BGR uint8 image; a video decoding to
yuv420p yields :class:`edge_runtime.yuv.YuvFrame` (the decoder's planes; BGR made only when asked).
Video files, streams and capture cards live in :mod:`edge_runtime.sources.capture`.
A source's ``name`` (its log lines, ``meta["source"]``) is its kind, never a file name (which may
carry the patient's name); its one-line errors name the file, for whoever gave the path.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

from edge_runtime import privacy, source_kinds
from edge_runtime.config_schema import RuntimeConfig
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.frames import Frame, Source
from edge_runtime.igtl.source import open_igtl_source
from edge_runtime.image_files import ImageTooLarge, UnreadableImage, read_image
from edge_runtime.sources import synthetic
from edge_runtime.sources.capture import V4L2Source, VideoFileSource, capture_device_name, to_bgr
from edge_runtime.sources.corrupt import CorruptCounter
from edge_runtime.sources.dicom_cine import DicomCineSource
from edge_runtime.sources.frame_size import MAX_FRAME_PIXELS, MAX_FRAME_SIDE, check_frame_size, too_large
from edge_runtime.sources.plus_metaimage import PlusMetaImageSource
from edge_runtime.sources.reconnect import ResilientSource
from edge_runtime.sources.sequence import SequenceSource
from edge_runtime.units import DEFAULT_FPS

log = logging.getLogger("sonomap.sources")
STREAM_SCHEMES = ("rtsp://", "rtmp://", "http://", "https://", "udp://", "tcp://")


class ImageFolderSource(Source):
    """Sorted images of a folder (or one image file) as frames."""

    def __init__(self, path: str | Path, loop: bool = False):
        path = self.path = Path(path)
        self.name = source_kinds.path_kind(path)  # image folder/file; the errors name the path
        self.loop = loop
        if path.is_dir():
            self.files = sorted(p for p in path.iterdir() if p.suffix.lower() in source_kinds.IMAGE_SUFFIXES)
        else:
            self.files = [path]
        if not self.files:
            raise InputError(f"{path}: no images ({', '.join(source_kinds.IMAGE_SUFFIXES)}) in folder")

    def __iter__(self) -> Iterator[Frame]:

        index = 0
        corrupt = CorruptCounter(str(self.path), self.name)
        while True:
            for number, f in enumerate(self.files, 1):
                try:
                    image = read_image(f, max_pixels=MAX_FRAME_PIXELS)
                except ImageTooLarge as exc:  # refused from its header, before it takes the memory
                    check_frame_size(exc.width, exc.height, str(f), index)
                    raise
                except UnreadableImage as exc:
                    if len(self.files) == 1:
                        raise InputError(f"{f}: not a readable image ({exc.reason}; frame {index})") from exc
                    # by its place in the sorted folder: the image's name stays out of the log
                    corrupt.skip(f"image {number} of {len(self.files)}", "not a readable image", f.name)
                    continue
                corrupt.ok()
                check_frame_size(image.shape[1], image.shape[0], str(f), index)  # a TIFF's, or too wide
                yield Frame(index, to_bgr(image, str(f)), time.monotonic(), None, {"source": self.name})
                index += 1
            if index == 0:
                raise InputError(f"{self.path}: none of its {len(self.files)} images is readable")
            if not self.loop:
                return


class SyntheticSource(Source):
    """A real BUSI image under simulated probe motion on a 1080p scanner screen.
    ``live=True`` paces frames at ``fps`` (a stand-in for a capture card)."""

    def __init__(
        self,
        image: str | Path | None = None,
        fps: float = DEFAULT_FPS,
        frames: int | None = None,
        live: bool = True,
        width: int | None = None,
        height: int | None = None,
        seed: int = 0,
    ):
        size = {"screen_w": int(width or synthetic.SCREEN_W), "screen_h": int(height or synthetic.SCREEN_H)}
        if too_large(size["screen_w"], size["screen_h"]):  # as a file's frame would be: refused, not drawn
            raise ConfigError(
                f"source.width/height (--width/--height) {size['screen_w']}x{size['screen_h']}: larger than "
                f"the maximum of {MAX_FRAME_PIXELS / 1e6:.1f} Mpx or {MAX_FRAME_SIDE} px on a side"
            )
        self.sim = synthetic.ScreenSimulator(
            Path(image) if image else synthetic.default_image(), seed=seed, **size
        )
        self.fps = float(fps)
        self.frames = frames
        self.live = live
        self.name = source_kinds.SYNTHETIC
        self._closed = False

    def __iter__(self) -> Iterator[Frame]:
        period = 1.0 / self.fps
        start = time.monotonic()
        index = 0
        while not self._closed and (self.frames is None or index < self.frames):
            if self.live:
                delay = start + index * period - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            meta = {"source": self.name, "mm_per_pixel": self.sim.mm_per_pixel}
            yield Frame(index, self.sim.frame(index), time.monotonic(), index * period, meta)
            index += 1

    def close(self) -> None:
        self._closed = True


def open_source(spec, **options) -> Source:
    """Open ``spec`` (see module docstring). ``options``: loop, fps, width, height, fourcc, image, frames."""
    loop = bool(options.get("loop", False))
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        return V4L2Source(
            int(spec), options.get("width"), options.get("height"), options.get("fps"), options.get("fourcc")
        )
    spec = str(spec)
    privacy.register_url(spec)  # rtsp://user:password@...: never in a log line, error or screen
    if spec == source_kinds.SYNTHETIC:
        return SyntheticSource(
            options.get("image"),
            options.get("fps") or DEFAULT_FPS,
            options.get("frames"),
            live=options.get("live", True),
            width=options.get("width"),
            height=options.get("height"),
        )
    if spec.startswith("igtl://"):
        return open_igtl_source(spec)  # pyigtl, an optional extra, is imported when the link opens
    if re.match(r"^/dev/video\d+$", spec):
        return V4L2Source(
            spec, options.get("width"), options.get("height"), options.get("fps"), options.get("fourcc")
        )
    if spec.startswith(STREAM_SCHEMES):
        return VideoFileSource(spec, live=True)
    path = Path(spec)
    if not path.exists():
        raise InputError(f"{spec}: file not found")
    kind = source_kinds.path_kind(path)
    if kind in (source_kinds.IMAGE_FOLDER, source_kinds.IMAGE_FILE):
        return ImageFolderSource(path, loop=loop)
    if kind == source_kinds.DICOM_CINE:
        return DicomCineSource(path, loop=loop)
    if kind == source_kinds.SLICER_SEQUENCE:
        return SequenceSource(path, loop=loop)
    if kind == source_kinds.PLUS_SEQUENCE:
        return PlusMetaImageSource(path, loop=loop)
    return VideoFileSource(spec, loop=loop)


def is_device_or_stream(spec) -> bool:
    """A V4L2 device (``/dev/videoN`` or its number) or a network stream: things that unplug."""
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        return True
    return isinstance(spec, str) and (spec.startswith("/dev/video") or "://" in spec)


def reconnecting_source(config: RuntimeConfig, fail_first_open: bool = False) -> ResilientSource | None:
    """A ResilientSource for the config's capture device/stream, or None for files and
    the synthetic source (they end instead of unplugging)."""
    src = config.source
    spec = src.input
    if not is_device_or_stream(spec):
        return None
    options = {k: getattr(src, k) for k in ("fps", "width", "height", "fourcc")}
    size = (int(src.height), int(src.width)) if src.height and src.width else None
    privacy.register_url(str(spec))
    return ResilientSource(
        lambda: open_source(spec, **options),
        privacy.redact_url(str(spec)) if "://" in str(spec) else capture_device_name(spec),
        size=size,
        fail_first_open=fail_first_open,
    )
