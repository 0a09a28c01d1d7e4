"""QA picture: can a person see at a glance that the registration is right?

Input: ultrasound gray image, tract, label, straightened fragments and their placements.
Output: a BGR image with three rows:
1. the ultrasound image with the band outline and the label (red cancer, green tissue,
   grey unknown);
2. the tract itself resampled straight (tip end left), at the same scale as row 3, with the label;
3. the straightened core fragments, placed where the transform puts them, with the cancer
   annotation outlined in red;
4. the slide level as read, with each fragment's medial axis, its order number and a dot at
   its needle-tip end (checks ordering and orientation); ink and debris that were not taken
   as tissue are tinted magenta;
5. the quality score and each of its parts (green fine, orange doubtful, red poor); the
   ambiguous span shows in rows 1-2 as grey (unknown) on both sides of a cancer boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from registration.fragments import Fragment
from registration.mapping import Placement
from registration.tract import Tract

US_PANEL_HEIGHT = 360
SLIDE_PANEL_MAX_HEIGHT = 300
PX_PER_MM = 40.0
MARGIN_MM = 1.0
ALPHA = 0.45
RED, GREEN, GREY, WHITE, YELLOW = (0, 0, 255), (0, 200, 0), (128, 128, 128), (255, 255, 255), (0, 255, 255)
FONT = cv2.FONT_HERSHEY_SIMPLEX
MAGENTA, ORANGE = (255, 0, 255), (0, 140, 255)
SCORE_OK, SCORE_DOUBT = 0.8, 0.5
QUALITY_LINE_PX = 20


@dataclass
class QaExtras:
    quality: dict | None = None  # quality.quality()
    rejected: np.ndarray | None = None  # bool, slide level: ink/debris not taken as tissue
    sections: object | None = None  # sections.Sections when copies were found


def _quality_view(q: dict, sections, width: int) -> np.ndarray:
    lines = [(f"quality {q['score']:.2f} (weakest: {q['weakest']})", q["score"])]
    for name, part in q["parts"].items():
        lines.append(
            (f"{name}: {part['value']}  score {part['score']:.2f}  - {part['meaning']}", part["score"])
        )
    if sections is not None:
        lines.append((f"serial sections: {sections.count} found, section {sections.used + 1} used", 0.6))
    img = np.full((QUALITY_LINE_PX * len(lines) + 8, width, 3), 255, np.uint8)
    for i, (text, score) in enumerate(lines):
        colour = GREEN if score >= SCORE_OK else ORANGE if score >= SCORE_DOUBT else RED
        cv2.putText(img, text, (6, QUALITY_LINE_PX * (i + 1)), FONT, 0.45, colour, 1, cv2.LINE_AA)
    return img


def _overlay(bgr: np.ndarray, label: np.ndarray, band: np.ndarray) -> np.ndarray:
    out = bgr.copy()
    colour = np.zeros_like(bgr)
    colour[label == 0] = GREEN
    colour[label == 1] = RED
    colour[(label == 255) & band] = GREY
    sel = (label != 255) | band
    out[sel] = (bgr[sel] * (1 - ALPHA) + colour[sel] * ALPHA).astype(np.uint8)
    return out


def _tract_view(gray: np.ndarray, tract: Tract, label: np.ndarray, band: np.ndarray) -> np.ndarray:
    half = tract.width_mm / 2 + MARGIN_MM
    n_a = max(int(tract.length_mm * PX_PER_MM), 1)
    n_d = max(int(2 * half * PX_PER_MM), 1)
    aa, dd = np.meshgrid((np.arange(n_a) + 0.5) / PX_PER_MM, -half + (np.arange(n_d) + 0.5) / PX_PER_MM)
    mx, my = tract.to_pixels(aa, dd)
    mx, my = mx.astype(np.float32), my.astype(np.float32)
    view = cv2.remap(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), mx, my, cv2.INTER_LINEAR)
    lab = cv2.remap(label, mx, my, cv2.INTER_NEAREST, borderValue=255)
    bnd = cv2.remap(band.astype(np.uint8), mx, my, cv2.INTER_NEAREST) > 0
    return _overlay(view, lab, bnd)


def _core_view(frags: list[Fragment], placements: list[Placement], tract: Tract) -> np.ndarray:
    n_a = max(int(tract.length_mm * PX_PER_MM), 1)
    half = tract.width_mm / 2 + MARGIN_MM
    n_d = max(int(2 * half * PX_PER_MM), 1)
    canvas = np.full((n_d, n_a, 3), 235, np.uint8)
    top = int(MARGIN_MM * PX_PER_MM)
    band_h = max(int(tract.width_mm * PX_PER_MM), 1)
    for f, p in zip(frags, placements, strict=False):
        x0, x1 = int(p.a0 * PX_PER_MM), min(int(p.a1 * PX_PER_MM), n_a)
        if x1 <= x0:
            continue
        ok = np.isfinite(f.lo)
        c0, c1 = int(np.nanmin(f.lo[ok])), int(np.nanmax(f.hi[ok])) + 1
        strip = np.ascontiguousarray(f.rgb[:, c0:c1].transpose(1, 0, 2))  # along -> x
        lab = np.ascontiguousarray(f.label[:, c0:c1].T)
        strip = cv2.resize(
            cv2.cvtColor(strip, cv2.COLOR_RGB2BGR), (x1 - x0, band_h), interpolation=cv2.INTER_AREA
        )
        lab = cv2.resize(lab, (x1 - x0, band_h), interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(
            (lab == 1).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
        cv2.drawContours(strip, contours, -1, RED, 2)
        canvas[top : top + band_h, x0:x1] = strip
    return canvas


def _slide_view(
    slide_rgb: np.ndarray, frags: list[Fragment], width: int, rejected: np.ndarray | None = None
) -> np.ndarray:
    view = cv2.cvtColor(slide_rgb, cv2.COLOR_RGB2BGR)
    if rejected is not None and rejected.shape == view.shape[:2] and rejected.any():
        view[rejected] = (view[rejected] * (1 - ALPHA) + np.array(MAGENTA) * ALPHA).astype(np.uint8)
    scale = min(width / view.shape[1], SLIDE_PANEL_MAX_HEIGHT / view.shape[0])
    view = cv2.resize(
        view,
        (max(int(view.shape[1] * scale), 1), max(int(view.shape[0] * scale), 1)),
        interpolation=cv2.INTER_AREA,
    )
    for k, f in enumerate(frags, 1):
        pts = np.round(f.centerline * scale).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(view, [pts], False, GREEN, 2)
        tip = tuple(int(v) for v in pts[0, 0])
        cv2.circle(view, tip, 5, YELLOW, -1)
        cv2.putText(view, str(k), (tip[0] + 6, tip[1] - 6), FONT, 0.6, (0, 0, 0), 2, cv2.LINE_AA)
    return view


def make_qa(
    gray: np.ndarray,
    tract: Tract,
    label: np.ndarray,
    frags: list[Fragment],
    placements: list[Placement],
    title: str,
    slide_rgb: np.ndarray | None = None,
    extras: QaExtras | None = None,
) -> np.ndarray:
    band, _, _ = tract.band(gray.shape)
    us = _overlay(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), label, band)
    quad = np.array(
        tract.to_pixels(
            np.array([0, tract.length_mm, tract.length_mm, 0]), np.array([-1, -1, 1, 1]) * tract.width_mm / 2
        )
    ).T
    cv2.polylines(us, [np.round(quad).astype(np.int32)], True, YELLOW, 1)
    cv2.circle(us, tuple(int(round(v)) for v in tract.end), 3, YELLOW, -1)  # tip end of the notch
    scale = US_PANEL_HEIGHT / us.shape[0]
    us = cv2.resize(us, (max(int(us.shape[1] * scale), 1), US_PANEL_HEIGHT), interpolation=cv2.INTER_AREA)
    rows = [us, _tract_view(gray, tract, label, band), _core_view(frags, placements, tract)]
    captions = [
        "ultrasound: red cancer, green tissue, grey unknown, yellow band (dot = tip end)",
        "tract straightened (tip end left)",
        "core fragments straightened along the medial axis",
    ]
    if slide_rgb is not None:
        rows.append(_slide_view(slide_rgb, frags, max(r.shape[1] for r in rows), extras and extras.rejected))
        captions.append(
            "slide level read: medial axes (green), fragment order, tip ends (yellow), "
            "ink/debris rejected (magenta)"
        )
    if extras is not None and extras.quality is not None:
        rows.append(_quality_view(extras.quality, extras.sections, max(r.shape[1] for r in rows)))
        captions.append("registration quality: each part's value and score")
    width = max(r.shape[1] for r in rows)
    header = np.full((28, width, 3), 255, np.uint8)
    cv2.putText(header, title, (6, 20), FONT, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    parts = [header]
    for cap, row in zip(captions, rows, strict=False):
        cap_img = np.full((22, width, 3), 255, np.uint8)
        cv2.putText(cap_img, cap, (6, 16), FONT, 0.45, (60, 60, 60), 1, cv2.LINE_AA)
        pad = np.full((row.shape[0], width, 3), 255, np.uint8)
        pad[:, : row.shape[1]] = row
        parts += [cap_img, pad]
    return np.vstack(parts)
