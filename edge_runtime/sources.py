"""Source stage: frames from files, folders, DICOM cine, capture devices, streams.

``open_source(spec, **options)`` dispatches on the spec:

- a video file (PyAV, threaded decode) or an ``rtsp://``/``rtmp://``/``http(s)://`` URL (live);
- an image folder (sorted, png/jpg/bmp/tif) or a single image;
- a ``.dcm`` file (DICOM cine via pydicom; the mm scale comes from its ultrasound regions);
- ``synthetic`` (a real BUSI image with simulated probe motion, paced at ``fps``);
- ``/dev/videoN`` or an integer (V4L2/UVC capture card through OpenCV CAP_V4L2: size, fps, fourcc);
- ``igtl://HOST:PORT?device=NAME`` (OpenIGTLink client, in :mod:`edge_runtime.igtl`).
Every source yields :class:`edge_runtime.frames.Frame` with a BGR uint8 image; a video decoding to
yuv420p yields :class:`edge_runtime.yuv.YuvFrame` (the decoder's planes; BGR made only when asked).
"""
from __future__ import annotations

import importlib
import re
import time
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from edge_runtime.errors import InputError, SonomapError
from edge_runtime.frames import Frame, Source
from edge_runtime.cpus import decode_threads
from edge_runtime.yuv import YuvFrame, from_av

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
STREAM_SCHEMES = ("rtsp://", "rtmp://", "http://", "https://", "udp://", "tcp://")
DICOM_UNITS_CM = 3          # DICOM PhysicalUnits code for centimetres
MM_PER_CM = 10.0
FOURCC_LEN = 4
DEFAULT_FPS = 30.0


def _to_bgr(image: np.ndarray, origin: str) -> np.ndarray:
    if image.dtype != np.uint8:
        raise InputError(f"{origin}: unsupported pixel format {image.dtype} (need 8-bit gray or colour)")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    raise InputError(f"{origin}: unsupported pixel layout {image.shape}")


class VideoFileSource(Source):
    """A video file or network stream decoded by PyAV (threads: :func:`edge_runtime.cpus.decode_threads`)."""

    def __init__(self, spec: str, live: bool = False, loop: bool = False):
        self.spec = spec
        self.name = spec
        self.live = live
        self.loop = loop and not live
        if not live and not Path(spec).is_file():
            raise InputError(f"{spec}: file not found")
        self._container = None

    def _open(self):
        import av

        options = {"rtsp_transport": "tcp"} if self.spec.startswith("rtsp://") else {}
        try:
            container = av.open(self.spec, options=options, timeout=10.0 if self.live else None)
            stream = container.streams.video[0]
        except (av.FFmpegError, IndexError, OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{self.spec}: unreadable video ({getattr(exc, 'strerror', None) or exc})") from exc
        codec = stream.codec_context
        if codec is None:  # e.g. a corrupt header that names no codec
            container.close()
            raise InputError(f"{self.spec}: unreadable video (no decodable video stream)")
        # Live streams: slice threads only, since frame threading holds back (threads - 1) frames.
        codec.thread_type = "SLICE" if self.live else "AUTO"
        codec.thread_count = decode_threads()
        return container, stream

    def __iter__(self) -> Iterator[Frame]:
        import av

        from edge_runtime.resilient import CorruptCounter  # service helper: skip + count corrupt packets

        index = 0
        corrupt = CorruptCounter(self.spec)
        while True:
            self._container, stream = self._open()
            try:
                for packet in self._container.demux(stream):
                    try:
                        decoded = packet.decode()
                    except av.InvalidDataError as exc:
                        corrupt.skip(f"packet after frame {index}", str(exc))
                        continue
                    for vf in decoded:
                        corrupt.ok()
                        pts = float(vf.pts * stream.time_base) if vf.pts is not None and stream.time_base else None
                        meta = {"source": self.name}
                        i420 = from_av(vf)  # yuv420p (nearly every H.264 clip): keep the planes, BGR on demand
                        if i420 is not None:
                            yield YuvFrame(index, i420, time.monotonic(), pts, meta)
                        else:
                            yield Frame(index, vf.to_ndarray(format="bgr24"), time.monotonic(), pts, meta)
                        index += 1
            except av.FFmpegError as exc:
                raise InputError(f"{self.spec}: unreadable video at frame {index} ({exc})") from exc
            finally:
                self.close()
            if index == 0:
                raise InputError(f"{self.spec}: unreadable video (no frames decoded)")
            if not self.loop:
                return

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


class ImageFolderSource(Source):
    """Sorted images of a folder (or one image file) as frames."""

    def __init__(self, path: str | Path, loop: bool = False):
        path = Path(path)
        self.name = str(path)
        self.loop = loop
        if path.is_dir():
            self.files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            self.files = [path]
        if not self.files:
            raise InputError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in folder")

    def __iter__(self) -> Iterator[Frame]:
        from edge_runtime.resilient import CorruptCounter  # service helper: skip + count corrupt files

        index = 0
        corrupt = CorruptCounter(self.name)
        while True:
            for f in self.files:
                image = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
                if image is None:
                    if len(self.files) == 1:
                        raise InputError(f"{f}: not a readable image (frame {index})")
                    corrupt.skip(f"image {f.name}", "not a readable image")
                    continue
                corrupt.ok()
                yield Frame(index, _to_bgr(image, str(f)), time.monotonic(), None, {"source": str(f)})
                index += 1
            if index == 0:
                raise InputError(f"{self.name}: none of its {len(self.files)} images is readable")
            if not self.loop:
                return


class DicomCineSource(Source):
    """A DICOM file (single or multi-frame cine). Only pixels and the mm scale are kept:
    no patient identifiers travel into frame metadata."""

    def __init__(self, path: str | Path, loop: bool = False):
        self.path = Path(path)
        self.name = self.path.name
        self.loop = loop
        if not self.path.is_file():
            raise InputError(f"{self.path}: file not found")
        try:
            import pydicom
        except ImportError as exc:
            raise SonomapError(f"{self.path}: reading DICOM needs pydicom (pip install 'sonomap[dicom]')") from exc
        try:
            ds = pydicom.dcmread(str(self.path))
            pixels = ds.pixel_array
        except Exception as exc:  # pydicom raises many types for broken files
            raise InputError(f"{self.path}: unreadable DICOM ({type(exc).__name__}: {exc})") from exc
        frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
        if frames == 1:
            pixels = pixels[None]
        self.rgb = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")) not in ("MONOCHROME1", "MONOCHROME2")
        self.pixels = pixels
        self.fps = float(getattr(ds, "CineRate", 0) or getattr(ds, "RecommendedDisplayFrameRate", 0) or DEFAULT_FPS)
        self.mm_per_pixel = self._mm_per_pixel(ds)

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
            for i, image in enumerate(self.pixels):
                if image.dtype != np.uint8:
                    raise InputError(f"{self.path}: unsupported pixel format {image.dtype} in frame {i}")
                bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if self.rgb and image.ndim == 3 else _to_bgr(image, f"{self.path} frame {i}")
                meta = {"source": self.name, "mm_per_pixel": self.mm_per_pixel}
                yield Frame(index, np.ascontiguousarray(bgr), time.monotonic(), i / self.fps, meta)
                index += 1
            if not self.loop:
                return


class SyntheticSource(Source):
    """A real BUSI image under simulated probe motion on a 1080p scanner screen.
    ``live=True`` paces frames at ``fps`` (a stand-in for a capture card)."""

    def __init__(self, image: str | Path | None = None, fps: float = DEFAULT_FPS, frames: int | None = None,
                 live: bool = True, width: int | None = None, height: int | None = None, seed: int = 0):
        from edge_runtime import synthetic

        size = {"screen_w": int(width or synthetic.SCREEN_W), "screen_h": int(height or synthetic.SCREEN_H)}
        self.sim = synthetic.ScreenSimulator(Path(image) if image else synthetic.default_image(), seed=seed, **size)
        self.fps = float(fps)
        self.frames = frames
        self.live = live
        self.name = "synthetic"
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


class V4L2Source(Source):
    """A V4L2/UVC capture card or grabber via OpenCV CAP_V4L2."""

    live = True

    def __init__(self, device: str | int, width: int | None = None, height: int | None = None,
                 fps: float | None = None, fourcc: str | None = None):
        self.device = device
        self.name = str(device)
        if isinstance(device, str) and not Path(device).exists():
            raise InputError(f"{device}: capture device not found")
        self.cap = cv2.VideoCapture(device if isinstance(device, int) else str(device), cv2.CAP_V4L2)
        if not self.cap.isOpened():
            raise InputError(f"{device}: cannot open capture device (missing, busy or not a V4L2 device)")
        if fourcc:
            if len(fourcc) != FOURCC_LEN:
                raise InputError(f"{device}: fourcc must be 4 characters, got {fourcc!r}")
            self.cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*fourcc))
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, width), (cv2.CAP_PROP_FRAME_HEIGHT, height),
                            (cv2.CAP_PROP_FPS, fps)):
            if value:
                self.cap.set(prop, value)
        if fourcc:
            got = int(self.cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(FOURCC_LEN, "little").decode("ascii", "replace")
            if got != fourcc:
                self.close()
                raise InputError(f"{device}: unsupported pixel format {fourcc!r} (device gives {got!r})")

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while self.cap is not None:
            ok, image = self.cap.read()
            if not ok or image is None:
                raise InputError(f"{self.device}: capture stopped at frame {index} (device unplugged or busy)")
            yield Frame(index, _to_bgr(image, f"{self.device} frame {index}"), time.monotonic(), None,
                        {"source": self.name})
            index += 1

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


def open_source(spec, **options) -> Source:
    """Open ``spec`` (see module docstring). ``options``: loop, fps, width, height, fourcc, image, frames."""
    loop = bool(options.get("loop", False))
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        return V4L2Source(int(spec), options.get("width"), options.get("height"), options.get("fps"),
                          options.get("fourcc"))
    spec = str(spec)
    if spec == "synthetic":
        return SyntheticSource(options.get("image"), options.get("fps") or DEFAULT_FPS, options.get("frames"),
                               live=options.get("live", True), width=options.get("width"),
                               height=options.get("height"))
    if spec.startswith("igtl://"):
        try:
            igtl = importlib.import_module("edge_runtime.igtl")
        except ImportError as exc:
            raise SonomapError(f"{spec}: OpenIGTLink support is not available ({exc})") from exc
        return igtl.open_igtl_source(spec)
    if re.match(r"^/dev/video\d+$", spec):
        return V4L2Source(spec, options.get("width"), options.get("height"), options.get("fps"),
                          options.get("fourcc"))
    if spec.startswith(STREAM_SCHEMES):
        return VideoFileSource(spec, live=True)
    path = Path(spec)
    if not path.exists():
        raise InputError(f"{spec}: file not found")
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageFolderSource(path, loop=loop)
    if path.suffix.lower() in (".dcm", ".dicom"):
        return DicomCineSource(path, loop=loop)
    return VideoFileSource(spec, loop=loop)
