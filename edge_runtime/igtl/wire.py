"""OpenIGTLink on the wire: framing, decoding IMAGE/TRANSFORM, encoding our IMAGEs.

pyigtl (optional extra ``igtl``) does the byte layout of each message; this module
does the socket framing itself (see link.py for why we do not use pyigtl's threads)
and turns an IMAGE message into a BGR frame plus its geometry, and back.

Inputs: a connected socket, pyigtl messages. Outputs: :class:`IgtlImage`, packed bytes.
Files: none.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from edge_runtime.errors import SonomapError
from edge_runtime.igtl.geometry import UnusableGeometry, check_geometry

HEADER_SIZE = 58  # OpenIGTLink v1/v2/v3 fixed header
CRC_FORMAT = ">Q"  # the header ends with the CRC64 of the body, big-endian
HEADER_CRC_OFFSET = HEADER_SIZE - struct.calcsize(CRC_FORMAT)
DEVICE_NAME_BYTES = 20  # the header's device-name field; longer names are cut
# The largest body accepted (igtl:// ``max_body_mb``): a 4K RGB frame is ~25 MB; a header
# announcing more is corrupt or hostile, and the connection is dropped to resynchronise.
MAX_BODY_BYTES = 64 * 1024 * 1024
READ_POLL_S = 0.2  # how often a blocked reader checks its stop flag
RECV_CHUNK = 1 << 20
SPATIAL_AXES = 3  # IGTL images are (k, j, i[, components]) arrays
# The widest or tallest image segmented. A scanner screen is at most 4K (3840x2160); a larger
# image under the body limit (a 6000x6000 frame is 34 MiB) costs seconds per frame in conversion,
# ROI and inference, stalling the pipeline, so it is skipped (``skipped_too_large``).
MAX_IMAGE_SIDE = 4096
GRAY_COMPONENTS, RGB_COMPONENTS = 1, 3
# pyigtl raises these for malformed bodies (unknown scalar code, subvolume, short body, bad counts).
DECODE_ERRORS = (LookupError, ValueError, ArithmeticError, NotImplementedError, struct.error, TypeError)
# Header CRC64 check (igtl:// ``crc``). pyigtl's CRC64 (crcmod's C extension) costs about 3.4 ms
# per MiB on a 2-core test machine: 3.5 ms for a 1200x840 gray frame, 10 ms in RGB. ``auto``
# therefore checks only bodies up to CRC_AUTO_MAX_BYTES (under 0.5 ms: every TRANSFORM and STATUS,
# images up to 384x288 gray); ``on`` checks every body, ``off`` none. TCP already checksums
# every segment, so the CRC guards against a sender's bugs rather than the network.
CRC_AUTO, CRC_ON, CRC_OFF = "auto", "on", "off"
CRC_MODES = (CRC_AUTO, CRC_ON, CRC_OFF)
CRC_AUTO_MAX_BYTES = 128 * 1024
# IGTL world is RAS or LPS; LPS -> RAS flips the first two world axes.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def require_pyigtl():
    """Import pyigtl lazily: it is an optional extra, needed only for igtl:// and --igtl-*."""
    try:
        import pyigtl  # deferred: an optional extra (see the docstring)
    except ImportError as exc:
        raise SonomapError(
            "OpenIGTLink support needs the optional package pyigtl: "
            "pip install 'sonomap[igtl]' (or pip install pyigtl)"
        ) from exc
    return pyigtl


class SkipMessage(Exception):
    """A message we cannot use; ``reason`` is the counter it increments."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


@dataclass
class IgtlImage:
    """A 2-D IMAGE message as a frame. ``layout`` is the (k, j, i) array shape it came in
    (one axis is 1), so an output image in the same layout maps pixels with the same matrix."""

    bgr: np.ndarray  # (H, W, 3) uint8
    layout: tuple[int, int, int]
    # 4x4, as sent (origin at voxel 0); None when refused (NaN, infinity, singular: geometry.py),
    # and then ``geometry_fault`` says why. The image itself is kept either way.
    ijk_to_world: np.ndarray | None
    coordinate_system: str  # "ras" or "lps", as sent
    device: str
    timestamp: float  # the message's own timestamp (sender clock, s since 1970)
    received_monotonic: float = 0.0
    received_wall: float = 0.0
    transforms: dict = field(default_factory=dict)
    geometry_fault: str = ""

    def _matrix(self) -> np.ndarray:
        if self.ijk_to_world is None:
            raise UnusableGeometry(self.geometry_fault or "no geometry")
        return self.ijk_to_world

    @property
    def spacing(self) -> tuple[float, float, float]:
        """(i, j, k) voxel size in mm: the norms of the matrix's direction columns
        (UnusableGeometry when the geometry was refused)."""
        return tuple(float(np.linalg.norm(self._matrix()[:3, a])) for a in range(SPATIAL_AXES))

    @property
    def pixel_spacing(self) -> tuple[float, float]:
        """(row, column) spacing in mm of the 2-D image."""
        spacing_kji = self.spacing[::-1]
        rows, cols = plane_axes(self.layout)
        return spacing_kji[rows], spacing_kji[cols]

    @property
    def ijk_to_ras(self) -> np.ndarray:
        m = np.asarray(self._matrix(), dtype=np.float64)
        return m if self.coordinate_system == "ras" else LPS_TO_RAS @ m


def plane_axes(layout: tuple[int, int, int]) -> tuple[int, int]:
    """Which (k, j, i) axes are the 2-D image's rows and columns (the dropped one is 1)."""
    k, j, _ = layout
    if k == 1:
        return 1, 2
    if j == 1:
        return 0, 2
    return 0, 1


def plane_shape(layout: tuple[int, int, int]) -> tuple[int, int]:
    """(k, j, i) with at most two axes > 1 -> (rows, cols) of the 2-D image."""
    rows, cols = plane_axes(layout)
    return layout[rows], layout[cols]


def image_from_message(msg, transforms: dict | None = None) -> IgtlImage:
    """pyigtl ImageMessage -> IgtlImage; raises SkipMessage for what we cannot segment
    (including an empty image, which decodes in pyigtl but has no pixel to convert, and one
    over MAX_IMAGE_SIDE pixels a side). An unusable matrix (geometry.check_geometry) leaves the
    image without geometry (``ijk_to_world`` None, ``geometry_fault`` saying why)."""
    data = np.asarray(msg.image)
    if data.dtype != np.uint8:
        raise SkipMessage(
            "scalar_type",
            f"IMAGE {msg.device_name!r}: scalar type {data.dtype} is not supported (uint8 gray or RGB only)",
        )
    if data.ndim != SPATIAL_AXES and data.ndim != SPATIAL_AXES + 1:
        raise SkipMessage("malformed", f"IMAGE {msg.device_name!r}: array of shape {data.shape}")
    layout = tuple(int(n) for n in data.shape[:SPATIAL_AXES])
    components = data.shape[SPATIAL_AXES] if data.ndim > SPATIAL_AXES else GRAY_COMPONENTS
    if sum(n > 1 for n in layout) > 2:
        raise SkipMessage(
            "volume",
            f"IMAGE {msg.device_name!r}: 3-D volume of size "
            f"{layout[::-1]} (i, j, k); only 2-D images are segmented",
        )
    if components not in (GRAY_COMPONENTS, RGB_COMPONENTS):
        raise SkipMessage(
            "components",
            f"IMAGE {msg.device_name!r}: {components} components per pixel (1 gray or 3 RGB supported)",
        )
    if min(layout) < 1:
        raise SkipMessage(
            "malformed", f"IMAGE {msg.device_name!r}: empty image of size {layout[::-1]} (i, j, k)"
        )
    if max(layout) > MAX_IMAGE_SIDE:
        raise SkipMessage(
            "too_large",
            f"IMAGE {msg.device_name!r}: size {layout[::-1]} (i, j, k) is over {MAX_IMAGE_SIDE} pixels a side",
        )
    # A geometry with NaN, infinity or collapsed axes costs the geometry, never the image: the
    # ultrasound must keep showing and being segmented; only placing it in space is impossible.
    try:
        matrix, fault = check_geometry(msg.ijk_to_world_matrix), ""
    except UnusableGeometry as exc:
        matrix, fault = None, str(exc)
    return IgtlImage(
        bgr=to_bgr(data, msg.device_name, plane_shape(layout), components),
        layout=layout,
        ijk_to_world=matrix,
        coordinate_system=msg.world_coordinate_system,
        device=msg.device_name,
        timestamp=float(msg.timestamp),
        transforms=dict(transforms or {}),
        geometry_fault=fault,
    )


def to_bgr(data: np.ndarray, device: str, shape: tuple[int, int], components: int) -> np.ndarray:
    """A (k, j, i[, c]) uint8 array of a validated non-empty 2-D image -> (rows, cols, 3) BGR.
    A cv2 refusal is still a skipped message, never a dropped connection."""
    rows, cols = shape
    try:
        if components == GRAY_COMPONENTS:
            return cv2.cvtColor(data.reshape(rows, cols), cv2.COLOR_GRAY2BGR)
        return cv2.cvtColor(data.reshape(rows, cols, RGB_COMPONENTS), cv2.COLOR_RGB2BGR)
    except (cv2.error, ValueError) as exc:
        raise SkipMessage("malformed", f"IMAGE {device!r}: cannot convert ({exc})") from exc


def build_image(
    pyigtl, plane: np.ndarray, layout, matrix, coordinate_system: str, device: str, timestamp: float
):
    """A 2-D uint8 plane -> ImageMessage in the input's layout, matrix and timestamp."""
    volume = np.ascontiguousarray(plane).reshape(layout)
    return pyigtl.ImageMessage(
        volume,
        ijk_to_world_matrix=matrix,
        world_coordinate_system=coordinate_system,
        timestamp=timestamp,
        device_name=device,
    )


def clip_device_name(name: str) -> str:
    """Device names travel in a 20-byte field; cut here so we know what the peer sees."""
    return name.encode("utf8")[:DEVICE_NAME_BYTES].decode("utf8", "ignore")


def derive_device_name(name: str, tag: str) -> str:
    """``Image_Reference`` + ``Prediction`` -> ``Prediction_Reference``;
    ``ImageToReference`` + ``Pred`` -> ``PredToReference``; ``US`` -> ``Prediction_US``;
    ``ProbeToTracker`` + ``Pred`` -> ``Pred_ProbeToTracker``. Cut to the 20-byte field."""
    if name.startswith("Image"):
        return clip_device_name(tag + name[len("Image") :])
    return clip_device_name(f"{tag}_{name}" if name else tag)


def _recv_exact(
    sock: socket.socket, size: int, stop: threading.Event, idle_timeout: float | None = None
) -> bytes:
    """Read exactly ``size`` bytes as they arrive: memory grows with the bytes received (one
    chunk at most ahead), never with what a header claims. ConnectionError when the peer
    closes or we stop; TimeoutError when nothing arrives for ``idle_timeout`` s (a half-open
    connection: cable pulled, peer frozen)."""
    chunks: list[bytes] = []
    got = 0
    last = time.monotonic()
    while got < size:
        if stop.is_set():
            raise ConnectionAbortedError("stopped")
        readable, _, _ = select.select([sock], [], [], READ_POLL_S)
        if not readable:
            if idle_timeout is not None and time.monotonic() - last > idle_timeout:
                raise TimeoutError(f"nothing received for {idle_timeout:g} s (half-open connection?)")
            continue
        chunk = sock.recv(min(size - got, RECV_CHUNK))
        if not chunk:
            raise ConnectionResetError("connection closed by peer")
        chunks.append(chunk)
        got += len(chunk)
        last = time.monotonic()
    return b"".join(chunks)


def crc_checked(crc: str, body_size: int) -> bool:
    """Whether the ``crc`` mode (CRC_MODES) checks a body of ``body_size`` bytes."""
    return crc == CRC_ON or (crc == CRC_AUTO and body_size <= CRC_AUTO_MAX_BYTES)


def check_crc(pyigtl, fields: dict, header: bytes, body: bytes) -> None:
    """Raise SkipMessage('crc') when the header's CRC64 (ECMA-182, as OpenIGTLink and pyigtl
    compute it) does not match ``body``."""
    (sent,) = struct.unpack_from(CRC_FORMAT, header, HEADER_CRC_OFFSET)
    actual = pyigtl.messages.CRC64(body)
    if actual != sent:
        raise SkipMessage(
            "crc",
            f"{fields['message_type']} {fields['device_name']!r}: header CRC64 {sent:#018x} "
            f"does not match its {len(body)}-byte body ({actual:#018x})",
        )


def read_message(
    pyigtl,
    sock: socket.socket,
    stop: threading.Event,
    max_body: int = MAX_BODY_BYTES,
    idle_timeout: float | None = None,
    crc: str = CRC_AUTO,
):
    """Block until one whole message is read. Returns (header fields, message or None for
    types pyigtl does not know); raises SkipMessage('malformed') for an undecodable body and
    SkipMessage('crc') for a body that fails its CRC check (``crc``: CRC_MODES); the stream
    stays in sync (the body was read in full). ConnectionError on EOF or a body over
    ``max_body`` bytes, TimeoutError after ``idle_timeout`` s without a byte."""
    header = _recv_exact(sock, HEADER_SIZE, stop, idle_timeout)
    try:
        fields = pyigtl.MessageBase.parse_header(header)
    except DECODE_ERRORS as exc:
        raise ConnectionResetError(f"bad OpenIGTLink header ({exc}); resynchronising") from exc
    if fields["body_size"] > max_body:
        raise ConnectionResetError(
            f"OpenIGTLink body of {fields['body_size']} bytes from "
            f"{fields['device_name']!r} is over the {max_body} byte limit; resynchronising"
        )
    body = _recv_exact(sock, fields["body_size"], stop, idle_timeout)
    if crc_checked(crc, len(body)):
        check_crc(pyigtl, fields, header, body)
    msg = pyigtl.MessageBase.create_message(fields["message_type"])
    if msg is None:
        return fields, None
    try:
        msg.unpack(fields, body)
    except DECODE_ERRORS as exc:
        raise SkipMessage(
            "malformed",
            f"{fields['message_type']} {fields['device_name']!r}: "
            f"cannot decode ({type(exc).__name__}: {exc})",
        ) from exc
    return fields, msg
