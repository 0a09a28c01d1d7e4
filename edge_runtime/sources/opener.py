"""Source stage: frames from files, folders, DICOM cine, capture devices, streams.

``open_source(spec, **options)`` dispatches on the spec:

- a video file (PyAV, threaded decode) or an ``rtsp://``/``rtmp://``/``http(s)://`` URL (live);
- an image folder (sorted, png/jpg/bmp/tif) or a single image;
- a ``.dcm`` file (DICOM cine via pydicom, its colours read by :mod:`edge_runtime.dicom_pixels`; the mm
  scale comes from its ultrasound regions, the frame rate from CineRate, RecommendedDisplayFrameRate or
  FrameTime);
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
import math
import re
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from edge_runtime import privacy, source_kinds
from edge_runtime.config_schema import RuntimeConfig
from edge_runtime.dicom_pixels import dicom_pixels, frame_count, read_dicom
from edge_runtime.errors import InputError, SonomapError
from edge_runtime.frames import Frame, Source
from edge_runtime.igtl.source import open_igtl_source
from edge_runtime.image_files import ImageTooLarge, UnreadableImage, read_image
from edge_runtime.sources import synthetic
from edge_runtime.sources.capture import V4L2Source, VideoFileSource, capture_device_name, to_bgr
from edge_runtime.sources.corrupt import CorruptCounter
from edge_runtime.sources.frame_rate import believable_fps
from edge_runtime.sources.frame_size import MAX_FRAME_PIXELS, check_frame_size
from edge_runtime.sources.plus_metaimage import PlusMetaImageSource
from edge_runtime.sources.reconnect import ResilientSource
from edge_runtime.sources.sequence import SequenceSource
from edge_runtime.units import DEFAULT_FPS, MM_PER_CM, MS_PER_S

log = logging.getLogger("sonomap.sources")
STREAM_SCHEMES = ("rtsp://", "rtmp://", "http://", "https://", "udp://", "tcp://")
DICOM_UNITS_CM = 3  # DICOM PhysicalUnits code for centimetres
# The attributes a DICOM cine gives its frame rate by, in the order they are looked at, and whether
# each is the time between frames in milliseconds (FrameTime (0018,1063), ultrasound's usual one)
# rather than frames per second.
CINE_RATES = (("CineRate", False), ("RecommendedDisplayFrameRate", False), ("FrameTime", True))


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


def cine_fps(ds, path: Path) -> float:
    """A DICOM cine's frame rate: the first of :data:`CINE_RATES` it gives, else DEFAULT_FPS. An
    attribute that is empty or 0 is not given (writers leave 0 for unknown); a negative, infinite or
    non-numeric one is an error naming the file and the attribute, since frame times follow from it;
    one outside the range of ``source.fps`` is not believed (:mod:`edge_runtime.sources.frame_rate`)."""
    for keyword, in_ms in CINE_RATES:
        try:
            raw = getattr(ds, keyword, None)
            value = None if raw is None or raw == "" else float(raw)
        except (TypeError, ValueError) as exc:  # pydicom converts a DS or IS value when it is read
            raise InputError(f"{path}: {keyword} is not a number ({exc})") from exc
        if value is None or value == 0:
            continue
        fps = MS_PER_S / value if in_ms else value
        if not (math.isfinite(fps) and fps > 0):  # an infinite FrameTime makes 0 fps
            unit = "milliseconds per frame" if in_ms else "frames per second"
            raise InputError(f"{path}: {keyword} must be a positive number of {unit}, got {raw}")
        # 0.001 or 100000 fps: not believed, played at DEFAULT_FPS with one warning
        return believable_fps(fps, source_kinds.DICOM_CINE, keyword, f"{DEFAULT_FPS:g} fps") or DEFAULT_FPS
    return DEFAULT_FPS


class DicomCineSource(Source):
    """A DICOM file (single or multi-frame cine). Only pixels and the mm scale are kept:
    no patient identifiers travel into frame metadata."""

    def __init__(self, path: str | Path, loop: bool = False):
        self.path = Path(path)
        self.name = source_kinds.DICOM_CINE  # not the file name: it often carries the patient's name
        self.loop = loop
        if not self.path.is_file():
            raise InputError(f"{self.path}: file not found")
        try:
            import pydicom  # noqa: F401  (deferred: the optional extra, checked here; read_dicom uses it)
        except ImportError as exc:
            raise SonomapError(
                f"{self.path}: reading DICOM needs pydicom (pip install 'sonomap[dicom]')"
            ) from exc
        ds = read_dicom(self.path, str(self.path))  # its identifiers redacted from here on
        try:  # the header's size, before the frames are decoded: a huge one would exhaust memory first
            rows, columns = int(getattr(ds, "Rows", 0) or 0), int(getattr(ds, "Columns", 0) or 0)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{self.path}: Rows or Columns is not a number ({exc})") from exc
        check_frame_size(columns, rows, str(self.path), 0)
        # 8-bit gray or RGB: YBR converted, a palette applied, MONOCHROME1 inverted; else an error.
        # Decoded a frame at a time as played: a compressed cine of a thousand frames is gigabytes
        # decoded. The first frame is decoded now, so an unreadable file fails before anything starts.
        self._ds, self.frames = ds, frame_count(ds)
        first = dicom_pixels(ds, str(self.path), 0)
        self.fps = cine_fps(ds, self.path)
        self.mm_per_pixel = self._mm_per_pixel(ds)
        # the kind, not the path: a file name may carry the patient's name even when the header does not
        height, width = first.shape[:2]
        log.info("%s: %d frame(s) of %dx%d at %.1f fps", self.name, self.frames, width, height, self.fps)

    @staticmethod
    def _mm_per_pixel(ds) -> float | None:
        for region in getattr(ds, "SequenceOfUltrasoundRegions", []) or []:
            if getattr(region, "PhysicalUnitsXDirection", None) == DICOM_UNITS_CM:
                return float(region.PhysicalDeltaX) * MM_PER_CM
        spacing = getattr(ds, "PixelSpacing", None)
        return float(spacing[1]) if spacing else None

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while True:
            for i in range(self.frames):
                image = dicom_pixels(self._ds, f"{self.path} frame {i}", i)
                bgr = (
                    cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else to_bgr(image, f"frame {i}")
                )
                meta = {"source": self.name, "mm_per_pixel": self.mm_per_pixel}
                yield Frame(index, np.ascontiguousarray(bgr), time.monotonic(), i / self.fps, meta)
                index += 1
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
