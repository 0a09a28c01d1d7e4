"""The sampled segment of the needle tract and its band in the ultrasound image.

Input: an explicit segment (start, end, width) or a needle (tip + shaft point) plus biopsy
device geometry. Output: a ``Tract`` and, per ultrasound pixel, tract coordinates
``a`` (mm along the tract from the distal/tip end towards the proximal end) and ``d`` (mm
across, signed). The same band function builds the simulator's truth and the registered
label, so "known" pixels mean the same thing in both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_runtime.errors import ConfigError, InputError

# Common spring-loaded core-needle devices (e.g. 14G/16G with a ~19 mm notch, 22 mm throw).
# width_mm is the sampled core diameter (stylet notch), od_mm the outer cannula diameter (echo width).
GAUGE_DEFAULTS = {
    14: {"width_mm": 1.6, "notch_mm": 19.0, "tip_offset_mm": 5.0, "od_mm": 2.11},
    16: {"width_mm": 1.2, "notch_mm": 19.0, "tip_offset_mm": 4.5, "od_mm": 1.65},
    18: {"width_mm": 0.9, "notch_mm": 19.0, "tip_offset_mm": 4.0, "od_mm": 1.27},
}


@dataclass
class Tract:
    start: tuple[float, float]  # proximal end of the sampled segment (pixels)
    end: tuple[float, float]  # distal end, towards the needle tip (pixels)
    width_mm: float
    mm_per_px: tuple[float, float]

    @property
    def length_mm(self) -> float:
        return float(
            np.hypot(
                (self.start[0] - self.end[0]) * self.mm_per_px[0],
                (self.start[1] - self.end[1]) * self.mm_per_px[1],
            )
        )

    def axes(self) -> tuple[np.ndarray, np.ndarray]:
        """Unit vectors in mm space: u (distal -> proximal) and n (u rotated +90 deg)."""
        sx, sy = self.mm_per_px
        v = np.array([(self.start[0] - self.end[0]) * sx, (self.start[1] - self.end[1]) * sy])
        u = v / np.linalg.norm(v)
        return u, np.array([-u[1], u[0]])

    def coords(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tract coordinates (a, d) in mm of pixel centres xs, ys (any matching shapes)."""
        sx, sy = self.mm_per_px
        u, n = self.axes()
        px = (xs - self.end[0]) * sx
        py = (ys - self.end[1]) * sy
        return px * u[0] + py * u[1], px * n[0] + py * n[1]

    def to_pixels(self, a: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inverse of coords: tract mm -> pixel x, y."""
        sx, sy = self.mm_per_px
        u, n = self.axes()
        return (self.end[0] + (a * u[0] + d * n[0]) / sx, self.end[1] + (a * u[1] + d * n[1]) / sy)

    def band_bbox(self, shape: tuple[int, int]) -> tuple[int, int, int, int]:
        """Pixel bounding box (x0, y0, x1, y1; exclusive ends) of the band, clipped to the image."""
        half = self.width_mm / 2
        xs, ys = self.to_pixels(np.array([0, 0, self.length_mm, self.length_mm]), np.array([-half, half] * 2))
        h, w = shape
        x0, y0 = max(int(np.floor(xs.min())) - 1, 0), max(int(np.floor(ys.min())) - 1, 0)
        x1, y1 = min(int(np.ceil(xs.max())) + 2, w), min(int(np.ceil(ys.max())) + 2, h)
        return x0, y0, x1, y1

    def band(self, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Full-image arrays: in-band mask, a (mm), d (mm); a/d are NaN outside the band box."""
        h, w = shape
        inside = np.zeros((h, w), bool)
        a_full = np.full((h, w), np.nan, np.float32)
        d_full = np.full((h, w), np.nan, np.float32)
        x0, y0, x1, y1 = self.band_bbox(shape)
        if x1 <= x0 or y1 <= y0:
            return inside, a_full, d_full
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        a, d = self.coords(xs, ys)
        inside[y0:y1, x0:x1] = (a >= 0) & (a <= self.length_mm) & (np.abs(d) <= self.width_mm / 2)
        a_full[y0:y1, x0:x1] = a
        d_full[y0:y1, x0:x1] = d
        return inside, a_full, d_full

    def to_dict(self) -> dict:
        return {
            "start": [round(v, 3) for v in self.start],
            "end": [round(v, 3) for v in self.end],
            "width_mm": round(self.width_mm, 4),
            "length_mm": round(self.length_mm, 4),
            "mm_per_pixel": [round(v, 6) for v in self.mm_per_px],
        }


def device_geometry(gauge: int, notch_mm=None, tip_offset_mm=None, width_mm=None, where: str = "") -> dict:
    """Defaults for the gauge, each overridable (None = keep the default). A gauge without defaults
    needs all three."""
    given = {"notch_mm": notch_mm, "tip_offset_mm": tip_offset_mm, "width_mm": width_mm}
    if gauge not in GAUGE_DEFAULTS and any(v is None for v in given.values()):
        raise ConfigError(
            f"{where}needle.gauge={gauge} has no defaults (known: {sorted(GAUGE_DEFAULTS)}); "
            "give needle.notch_mm, tip_offset_mm and width_mm or an explicit tract"
        )
    geo = dict(GAUGE_DEFAULTS.get(gauge, {}))
    for key, val in given.items():
        if val is not None:
            geo[key] = float(val)
    return geo


def tract_from_needle(tip, shaft, mm_per_px, geo: dict) -> Tract:
    """Sampled segment = the notch, tip_offset_mm behind the needle tip, notch_mm long."""
    sx, sy = mm_per_px
    v = np.array([(shaft[0] - tip[0]) * sx, (shaft[1] - tip[1]) * sy])
    u = v / np.linalg.norm(v)  # tip -> shaft, mm space
    a_end, a_start = geo["tip_offset_mm"], geo["tip_offset_mm"] + geo["notch_mm"]
    end = (tip[0] + u[0] * a_end / sx, tip[1] + u[1] * a_end / sy)
    start = (tip[0] + u[0] * a_start / sx, tip[1] + u[1] * a_start / sy)
    return Tract(start, end, geo["width_mm"], mm_per_px)


def check_inside(points: dict, shape: tuple[int, int], where: str) -> None:
    """Raise InputError naming the key of the first point outside the image."""
    h, w = shape
    for key, (x, y) in points.items():
        if not (0 <= x <= w - 1 and 0 <= y <= h - 1):
            raise InputError(f"{where}: {key}=({x:.1f}, {y:.1f}) lies outside the {w}x{h} ultrasound image")
