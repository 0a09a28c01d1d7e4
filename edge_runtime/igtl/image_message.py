"""OpenIGTLink IMAGE messages as frames: a received IMAGE -> a BGR frame plus its geometry, and a
prediction plane -> an IMAGE in the input's layout; the device names our messages go out under.

pyigtl (optional extra ``igtl``) packs and unpacks the bytes; reading whole messages off the socket
is wire.py's job. What cannot be segmented (not uint8, a 3-D volume, 2 or 4 components, empty,
over MAX_IMAGE_SIDE pixels a side) is a :class:`edge_runtime.igtl.wire.SkipMessage`; an unusable
matrix (geometry.py) costs the image its geometry, never the image.

Inputs: decoded pyigtl ImageMessages, 2-D uint8 planes. Outputs: :class:`IgtlImage`, pyigtl
ImageMessages, device names. Files: none.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from edge_runtime.igtl.geometry import UnusableGeometry, check_geometry
from edge_runtime.igtl.wire import SkipMessage

DEVICE_NAME_BYTES = 20  # the header's device-name field; longer names are cut
SPATIAL_AXES = 3  # IGTL images are (k, j, i[, components]) arrays
# The widest or tallest image segmented. A scanner screen is at most 4K (3840x2160); a larger
# image under the body limit (a 6000x6000 frame is 34 MiB) costs seconds per frame in conversion,
# ROI and inference, stalling the pipeline, so it is skipped (``skipped_too_large``).
MAX_IMAGE_SIDE = 4096
GRAY_COMPONENTS, RGB_COMPONENTS = 1, 3
# IGTL world is RAS or LPS; LPS -> RAS flips the first two world axes.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


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
