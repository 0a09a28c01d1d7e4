"""Working in the decoder's I420 (yuv420p) planes, so replay of a video skips two colour conversions.

H.264 decoders hand out yuv420p and libx264 wants yuv420p back. The BGR path converts twice per
frame (YUV->BGR after decode, BGR->YUV before encode) and blends three interleaved channels; the
YUV path instead:

- keeps the decoded planes in a :class:`YuvFrame` (one contiguous ``(H*3/2, W)`` uint8 array,
  OpenCV's I420 layout); ``frame.image`` still gives BGR, converted lazily on first use, for
  stages that need it (window, observers, mask dumps, live);
- takes the inference input straight from the Y plane (:func:`gray_roi`): limited-range luma
  (16..235, BT.601, what libx264/ffmpeg write by default) mapped to full range by a lookup table,
  which equals BGR->gray of the decoded frame within rounding;
- blends the class colour in Y and in the 2x2-subsampled U/V planes (:func:`blend_mask`): alpha
  blending commutes with the affine RGB->YUV map, so this matches blending in BGR.

Small decorations (legend, banners, HUD) are drawn by the BGR drawing code on a small box that is
converted to BGR and back (:func:`bgr_box`), so they look exactly like the BGR path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import cv2
import numpy as np

from edge_runtime.frames import Frame

# BT.601 limited ("TV") range, the default of libx264/ffmpeg and OpenCV's I420 conversions.
Y_BLACK, Y_WHITE = 16, 235
UV_NEUTRAL = 128  # chroma of a grey (or black) pixel
UINT8_MAX = 255
_FULL_FROM_LIMITED = np.clip(
    np.round((np.arange(UINT8_MAX + 1) - Y_BLACK) * UINT8_MAX / (Y_WHITE - Y_BLACK)), 0, UINT8_MAX
).astype(np.uint8)
YUV_FORMATS = ("yuv420p",)  # decoder formats kept as planes; anything else (yuvj420p, rgb, 4:2:2) -> BGR
# FFmpeg's AVColorRange of the frames kept as planes: unspecified (what libx264 leaves, read as
# limited, as the BGR conversion reads it) or MPEG (limited). Full range (JPEG: VP9/AV1 decode it as
# plain yuv420p) would be darkened by the limited->full luma map, so it goes the BGR path.
LIMITED_RANGES = (0, 1)


class YuvFrame(Frame):
    """A :class:`Frame` whose pixels are I420 planes (``i420``: ``(H*3/2, W)`` uint8).
    ``image`` (BGR) is made on first access and cached; ``shape`` is (H, W) without converting."""

    def __init__(
        self,
        index: int,
        i420: np.ndarray,
        timestamp: float,
        pts: float | None = None,
        meta: dict | None = None,
    ):
        self.index, self.i420, self.timestamp, self.pts = index, i420, timestamp, pts
        self.meta = meta if meta is not None else {}
        self._bgr: np.ndarray | None = None

    @property
    def image(self) -> np.ndarray:
        if self._bgr is None:
            self._bgr = cv2.cvtColor(self.i420, cv2.COLOR_YUV2BGR_I420)
        return self._bgr

    @image.setter
    def image(self, bgr: np.ndarray) -> None:
        self._bgr = bgr

    @property
    def shape(self) -> tuple[int, int]:
        return self.i420.shape[0] * 2 // 3, self.i420.shape[1]

    def converted_image(self) -> np.ndarray | None:
        """The BGR image if it was made already (whoever edits ``i420`` in place must edit it too), else None."""
        return self._bgr

    def __repr__(self) -> str:
        return f"YuvFrame(index={self.index}, size={self.shape[1]}x{self.shape[0]}, pts={self.pts})"


# cv2.compare's operators, as numpy's, for the one size OpenCV 5 refuses (compare_scalar)
_NUMPY_CMP = {cv2.CMP_EQ: np.equal, cv2.CMP_GE: np.greater_equal}


def compare_scalar(array: np.ndarray, value: int, cmp: int) -> np.ndarray:
    """uint8 0/255 where ``array <cmp> value`` (``cmp``: cv2.CMP_EQ or cv2.CMP_GE). cv2.compare is far
    cheaper than numpy's boolean ops on a frame-sized mask, but OpenCV 5 refuses a scalar against a
    1x1 array (a one-pixel ROI or heat area), which would end a live run: that one size takes numpy."""
    if array.size == 1:
        return _NUMPY_CMP[cmp](array, value).astype(np.uint8) * np.uint8(255)
    return cv2.compare(array, value, cmp)


def class_pixels(mask: np.ndarray, class_id: int) -> np.ndarray:
    """uint8 0/255 where ``mask == class_id`` (:func:`compare_scalar`)."""
    return compare_scalar(mask, class_id, cv2.CMP_EQ)


def frame_shape(frame: Frame) -> tuple[int, int]:
    """(H, W) of any frame, without converting a YuvFrame to BGR."""
    return frame.shape if isinstance(frame, YuvFrame) else frame.image.shape[:2]


def from_av(vf) -> np.ndarray | None:
    """A PyAV frame -> its I420 planes as one array, or None (the BGR path) when it is not plain
    even-sized limited-range yuv420p."""
    if vf.format.name not in YUV_FORMATS or vf.width % 2 or vf.height % 2:
        return None
    if int(vf.color_range) not in LIMITED_RANGES:
        return None
    return vf.to_ndarray(format="yuv420p")


def planes(i420: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views (no copies) of the Y (H, W), U and V (H/2, W/2) planes of a contiguous I420 array."""
    if not i420.flags.c_contiguous:
        raise ValueError("I420 frame must be one contiguous array")  # else reshape would copy
    height, width = i420.shape[0] * 2 // 3, i420.shape[1]
    flat = i420.reshape(-1)
    luma, chroma = height * width, (height // 2) * (width // 2)
    y = flat[:luma].reshape(height, width)
    u = flat[luma : luma + chroma].reshape(height // 2, width // 2)
    v = flat[luma + chroma : luma + 2 * chroma].reshape(height // 2, width // 2)
    return y, u, v


def full_range_luma(luma: np.ndarray) -> np.ndarray:
    """Limited-range Y -> full-range gray (a new contiguous array), i.e. BGR->gray of the decoded frame."""
    return cv2.LUT(luma, _FULL_FROM_LIMITED)


def gray_roi(i420: np.ndarray, roi) -> np.ndarray:
    """The inference input: the ROI of the Y plane as full-range gray (contiguous)."""
    return full_range_luma(roi.crop(planes(i420)[0]))


def bgr_to_yuv(bgr: tuple[int, int, int]) -> tuple[int, int, int]:
    """One BGR colour -> BT.601 limited-range (Y, U, V), as OpenCV's BGR2YUV_I420 computes it."""
    patch = np.empty((2, 2, 3), np.uint8)
    patch[:] = bgr
    y, u, v = planes(cv2.cvtColor(patch, cv2.COLOR_BGR2YUV_I420))
    return int(y[0, 0]), int(u[0, 0]), int(v[0, 0])


def _even_box(x0: int, y0: int, x1: int, y1: int, width: int, height: int) -> tuple[int, int, int, int]:
    """Grow a box to even corners (chroma samples cover 2x2 pixels), clipped to the frame."""
    return max(0, x0 & ~1), max(0, y0 & ~1), min(width, (x1 + 1) & ~1), min(height, (y1 + 1) & ~1)


def blend_mask(
    i420: np.ndarray,
    roi,
    mask: np.ndarray,
    class_id: int,
    yuv: tuple[int, int, int],
    alpha: float,
    contour_yuv: tuple[int, int, int] | None,
    contour_px: int,
) -> None:
    """Blend ``yuv`` at ``alpha`` where ``mask == class_id`` (mask at ROI size), in place, touching
    only the mask's bounding box; draw its outer contour when ``contour_yuv`` is given."""
    m = class_pixels(mask, class_id)
    bx, by, bw, bh = cv2.boundingRect(m)
    if bw == 0 or bh == 0:
        return
    y_plane, u_plane, v_plane = planes(i420)
    height, width = y_plane.shape
    # Work on an even-aligned box of the frame (grown by the contour's width); the mask is padded
    # with zeros there, so pixels outside the mask's own box stay untouched.
    grow = contour_px if contour_yuv is not None else 0
    x0, y0, x1, y1 = _even_box(
        roi.x + bx - grow, roi.y + by - grow, roi.x + bx + bw + grow, roi.y + by + bh + grow, width, height
    )
    box_mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    mx0, my0 = roi.x + bx - x0, roi.y + by - y0
    box_mask[my0 : my0 + bh, mx0 : mx0 + bw] = m[by : by + bh, bx : bx + bw]
    luma = y_plane[y0:y1, x0:x1]
    chroma = (u_plane[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2], v_plane[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2])
    # A chroma sample is tinted when its top-left pixel is: the contour drawn over the mask's
    # edge hides the difference to an exact 2x2 coverage there.
    for plane, value, sub_mask in (
        (luma, yuv[0], box_mask),
        (chroma[0], yuv[1], box_mask[::2, ::2]),
        (chroma[1], yuv[2], box_mask[::2, ::2]),
    ):
        # (1 - alpha) * plane + alpha * value in one pass, no solid-colour plane allocated
        tinted = cv2.convertScaleAbs(plane, alpha=1.0 - alpha, beta=alpha * value)
        cv2.copyTo(tinted, sub_mask, plane)  # masked copy straight into the plane (a view)
    if contour_yuv is None:
        return
    contours, _ = cv2.findContours(box_mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(luma, contours, -1, contour_yuv[0], contour_px, cv2.LINE_8)
    # The line's chroma: each sample takes the contour colour in proportion to how many of its
    # 2x2 pixels the line covers, as the encoder's subsampling of a BGR drawing would.
    line = np.zeros_like(box_mask)
    cv2.drawContours(line, contours, -1, UINT8_MAX, contour_px, cv2.LINE_8)
    coverage = cv2.resize(line, (line.shape[1] // 2, line.shape[0] // 2), interpolation=cv2.INTER_AREA)
    points = cv2.findNonZero(coverage)  # only the line's samples: a few thousand, not the box
    if points is None:
        return
    points = points.reshape(-1, 2)  # (x, y) pairs; OpenCV 4 adds a middle axis
    rows, cols = points[:, 1], points[:, 0]
    weight = coverage[rows, cols].astype(np.uint32)
    for plane, value in zip(chroma, contour_yuv[1:], strict=False):
        old = plane[rows, cols].astype(np.uint32)
        plane[rows, cols] = (
            (old * (UINT8_MAX - weight) + value * weight + UINT8_MAX // 2) // UINT8_MAX
        ).astype(np.uint8)


@contextlib.contextmanager
def bgr_box(i420: np.ndarray, box: tuple[int, int, int, int]) -> Iterator[np.ndarray | None]:
    """A small box of the frame (x0, y0, x1, y1, exclusive) as BGR, to draw on with OpenCV, in place:
    ``with bgr_box(i420, box) as bgr: ...`` gives exactly that box clipped to the frame (box
    coordinates; None when nothing of it is inside), and converts it back into the planes at the end
    of the block. The cost scales with the box, not the frame."""
    y_plane, u_plane, v_plane = planes(i420)
    height, width = y_plane.shape
    bx0, by0 = max(0, box[0]), max(0, box[1])
    bx1, by1 = min(width, box[2]), min(height, box[3])
    if bx1 <= bx0 or by1 <= by0:
        yield None
        return
    x0, y0, x1, y1 = _even_box(bx0, by0, bx1, by1, width, height)
    ys, us, vs = (
        y_plane[y0:y1, x0:x1],
        u_plane[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2],
        v_plane[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2],
    )
    small = np.concatenate([ys.ravel(), us.ravel(), vs.ravel()]).reshape((y1 - y0) * 3 // 2, x1 - x0)
    bgr = cv2.cvtColor(small, cv2.COLOR_YUV2BGR_I420)
    yield bgr[by0 - y0 : by1 - y0, bx0 - x0 : bx1 - x0]
    sy, su, sv = planes(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420))
    ys[...], us[...], vs[...] = sy, su, sv
