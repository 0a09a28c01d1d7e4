"""Simulated biopsy core: what the notch cut out of the lesion, as it lies on the slide.

Input: the lesion mask, the tract (the notch in the ultrasound image) and ``CoreParams``.
Output: a ``SlideLayout`` (tissue outlines + cancer polygons in level-0 pixels) and the truth
of the simulation (shrinkage, fragments, tissue lost at breaks, bend, rotation, tip end).

The core in tract coordinates (a along from the distal end, d across, mm) is the lesion
sampled at the ultrasound pixel it falls in. It breaks into 1-3 fragments (a little tissue
lost at each break), shrinks isotropically by ``shrinkage``, and is laid on the slide along a
bent centre line (arc-length preserving, so along-core distances survive the bend) and
rotated; tip_end says which slide side carries the needle-tip end. Serial sections, the canvas
and the slide artefacts are :mod:`registration.sim.slide_placement`.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge_runtime.units import UM_PER_MM
from registration.sim.lab import (
    PROFILE_STEP_MM,
    CoreProfiles,
    LabParams,
    end_losses,
    ragged,
    sample_profiles,
)
from registration.sim.slide_placement import place_on_slide
from registration.tract import Tract

CORE_STEP_MM = 0.01  # raster step of the fresh core (10 µm << 100 µm ultrasound pixels)
OUTLINE_STEP_UM = 20.0
CONTOUR_KEEP_EVERY = 3  # thin the contour, keep it dense enough to follow the bend
MIN_FRAGMENT_MM = 3.0
CUT_RANGE = (0.15, 0.85)  # breaks fall within this share of the core length
FRAY_MIN_LOSS_MM = 0.2  # an outer end that lost more than this is likely frayed
CRUSH_OVERHANG = 1.05  # the darkened crushed zone covers the whole (ragged) width
PROFILE_KEEP = 10  # truth.json keeps every 10th shrink profile sample (0.1 mm)
FAT_MARGIN_MM = 0.6  # a lobule lies at least this far inside a fragment


@dataclass
class CoreParams:
    shrinkage: tuple = (0.75, 0.95)
    fragments: tuple = (1, 2, 3)
    fragment_p: tuple = (0.35, 0.35, 0.30)
    lost_mm: tuple = (0.1, 0.5)  # tissue lost at each break (fresh mm)
    slide_gap_um: tuple = (300.0, 1200.0)
    bend_deg: tuple = (10.0, 35.0)  # total turn of the centre line
    wiggle_deg: tuple = (-8.0, 8.0)  # S-shaped component
    rotation_deg: float = 12.0
    mpp: float = 4.0  # level-0 µm per pixel
    margin_um: float = 400.0
    canvas: tuple | None = None  # force (height, width) level-0 pixels (benchmarks)
    lab: LabParams | None = None  # lab phenomena (sim_lab); None = the clean core above


def _fragments(notch: float, rng, p: CoreParams, ends=(0.0, 0.0)) -> tuple[list, list]:
    lab = p.lab
    choices, probs = (lab.fragments, lab.fragment_p) if lab else (p.fragments, p.fragment_p)
    min_len = lab.min_fragment_mm if lab else MIN_FRAGMENT_MM
    lo, hi = ends[0], notch - ends[1]
    n = int(rng.choice(choices, p=probs))
    for _ in range(100):
        cuts = np.sort(lo + rng.uniform(*CUT_RANGE, n - 1) * (hi - lo))
        edges = np.concatenate([[lo], cuts, [hi]])
        if np.all(np.diff(edges) >= min_len):
            break
    else:
        cuts, n = np.array([]), 1
    lost = rng.uniform(*p.lost_mm, len(cuts))
    starts = [lo] + list(cuts + lost / 2)
    stops = list(cuts - lost / 2) + [hi]
    return list(zip(starts, stops, strict=False)), [float(v) for v in lost]


def _centre_line(total_um: float, rng, p: CoreParams, tip_right: bool):
    """Arc-length parametrised centre line: x (µm) -> position and direction angle."""
    bend, wig = (p.lab.bend_deg, p.lab.wiggle_deg) if p.lab else (p.bend_deg, p.wiggle_deg)
    turn = np.deg2rad(rng.uniform(*bend)) * (1 if rng.random() < 0.5 else -1)
    wiggle = np.deg2rad(rng.uniform(*wig))
    phi0 = np.deg2rad(rng.uniform(-p.rotation_deg, p.rotation_deg)) + (np.pi if tip_right else 0.0)
    xs = np.linspace(0.0, total_um, max(int(total_um / 5.0), 2))
    t = xs / total_um
    phi = phi0 + turn * (t - 0.5) + wiggle * np.sin(2 * np.pi * t)
    dx = np.diff(xs, prepend=0.0)
    cx, cy = np.cumsum(np.cos(phi) * dx), np.cumsum(np.sin(phi) * dx)
    return (
        xs,
        cx,
        cy,
        phi,
        {
            "bend_deg": float(np.rad2deg(turn)),
            "wiggle_deg": float(np.rad2deg(wiggle)),
            "rotation_deg": float(np.rad2deg(phi0)),
        },
    )


def _profiles(notch: float, rng, p: CoreParams) -> tuple[CoreProfiles, tuple[float, float]]:
    """Clean core: one shrinkage factor, no width variation, no end loss."""
    if p.lab is not None:
        return sample_profiles(notch, rng, p.lab), end_losses(rng, p.lab)
    a = np.arange(0.0, notch + 2 * PROFILE_STEP_MM, PROFILE_STEP_MM)
    shrink = float(rng.uniform(*p.shrinkage))
    return CoreProfiles(a, np.full(len(a), shrink), np.ones(len(a)), 0.0), (0.0, 0.0)


def _frays(frags: list, ends: tuple, rng, lab: LabParams | None) -> list[tuple[float, float, float]]:
    """Crushed ends as (end position a, zone length signed towards the tissue, widening)."""
    if lab is None:
        return []
    out = []
    for k, (a0, a1) in enumerate(frags):
        for pos, sign, outer_loss in (
            (a0, 1.0, ends[0] if k == 0 else None),
            (a1, -1.0, ends[1] if k == len(frags) - 1 else None),
        ):
            p_fray = (
                lab.fray_p if outer_loss is not None and outer_loss > FRAY_MIN_LOSS_MM else lab.fray_p / 3
            )
            if rng.random() < p_fray:
                zone = min(rng.uniform(*lab.fray_mm), (a1 - a0) / 3)
                out.append((float(pos), float(sign * zone), float(rng.uniform(*lab.fray_widen))))
    return out


def _fray_factor(a: np.ndarray, frays: list) -> np.ndarray:
    f = np.ones_like(a, dtype=np.float64)
    for pos, zone, widen in frays:
        t = np.clip(1.0 - (a - pos) / zone, 0.0, 1.0) * ((a - pos) * np.sign(zone) >= -1e-9)
        f = np.maximum(f, 1.0 + (widen - 1.0) * t)
    return f


def build_layout(lesion: np.ndarray, tract: Tract, rng: np.random.Generator, p: CoreParams):
    notch, width = tract.length_mm, tract.width_mm
    na, nd = int(np.ceil(notch / CORE_STEP_MM)), int(np.ceil(width / CORE_STEP_MM))
    aa, dd = np.meshgrid(
        (np.arange(na) + 0.5) * notch / na, -width / 2 + (np.arange(nd) + 0.5) * width / nd, indexing="ij"
    )
    px, py = tract.to_pixels(aa, dd)
    h, w = lesion.shape
    xi, yi = np.clip(np.round(px).astype(int), 0, w - 1), np.clip(np.round(py).astype(int), 0, h - 1)
    core = lesion[yi, xi].astype(np.uint8)  # [along, across]
    prof, ends = _profiles(notch, rng, p)
    frags, lost = _fragments(notch, rng, p, ends)
    frays = _frays(frags, ends, rng, p.lab)
    gaps = rng.uniform(*p.slide_gap_um, len(frags) - 1)
    lens_um = [float(prof.slide_um(b) - prof.slide_um(a)) for a, b in frags]
    x0s = np.concatenate([[0.0], np.cumsum(np.array(lens_um[:-1]) + gaps)])
    total = float(x0s[-1] + lens_um[-1])
    tip_right = bool(rng.random() < 0.5)
    xs, cx, cy, phi, bend = _centre_line(total, rng, p, tip_right)
    half_fresh = width * UM_PER_MM / 2

    def to_slide(x, y):  # straight slide coords (µm) -> bent slide coords (µm)
        ph = np.interp(x, xs, phi)
        return np.interp(x, xs, cx) - y * np.sin(ph), np.interp(x, xs, cy) + y * np.cos(ph)

    def across(a, d_um):  # fresh across offset (µm) -> slide across offset at fresh position a
        return d_um * prof.half_scale(a) * _fray_factor(a, frays)

    tissue_um, cancer_um, crushed_um, fat_um = [], [], [], []
    for k, ((a0, a1), x0) in enumerate(zip(frags, x0s, strict=False)):

        def along(a, x0=x0, a0=a0):  # one fragment's x(a)
            return x0 + prof.slide_um(a) - prof.slide_um(a0)

        aline = np.linspace(a0, a1, max(int(lens_um[k] / OUTLINE_STEP_UM), 2))
        xl = along(aline)
        sides = []
        for sgn in (-1.0, 1.0):
            rough = ragged(len(aline), rng, p.lab, OUTLINE_STEP_UM) if p.lab else 0.0
            sides.append(np.stack(to_slide(xl, across(aline, sgn * half_fresh) + sgn * rough), 1))
        tissue_um.append(np.vstack([sides[0], sides[1][::-1]]))
        for pos, zone, _ in frays:
            if a0 - 1e-9 <= pos <= a1 + 1e-9:
                za = np.linspace(pos, pos + zone, 12)
                top = np.stack(to_slide(along(za), across(za, -half_fresh * CRUSH_OVERHANG)), 1)
                bot = np.stack(to_slide(along(za), across(za, half_fresh * CRUSH_OVERHANG)), 1)
                crushed_um.append(np.vstack([top, bot[::-1]]))
        fat_um += _fat_polygons(
            a0,
            a1,
            rng,
            p.lab,
            lambda a, d, along=along: np.stack(to_slide(along(a), across(a, d)), 1),
            half_fresh,
        )
        i0, i1 = int(round(a0 / notch * na)), int(round(a1 / notch * na))
        block = np.pad(core[i0:i1], 1)
        contours, hier = cv2.findContours(block, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
        polys = {}
        for ci, cnt in enumerate(contours):
            pts = cnt[:, 0, :].astype(np.float64)[::CONTOUR_KEEP_EVERY] - 1.0  # (col, row) unpadded
            if len(pts) < 3:
                continue
            a = (i0 + pts[:, 1] + 0.5) * notch / na
            d = -width / 2 + (pts[:, 0] + 0.5) * width / nd
            ring = np.stack(to_slide(along(a), across(a, d * UM_PER_MM)), 1)
            parent = int(hier[0][ci][3])
            if parent < 0:
                polys.setdefault(ci, []).insert(0, ring)
            else:
                polys.setdefault(parent, []).append(ring)
        cancer_um += [v for v in polys.values() if len(v) and len(v[0]) >= 3]
    shrink = float(sum(lens_um) / UM_PER_MM / sum(b - a for a, b in frags))
    layout, extra = place_on_slide(
        tissue_um,
        cancer_um,
        crushed_um,
        fat_um,
        rng,
        mpp=p.mpp,
        margin_um=p.margin_um,
        canvas=p.canvas,
        lab=p.lab,
    )
    truth = {
        "shrinkage": shrink,
        "tip_end": "right" if tip_right else "left",
        "fragments_mm": [[round(a, 4), round(b, 4)] for a, b in frags],
        "lost_mm": lost,
        "slide_gaps_um": [float(g) for g in gaps],
        "slide_mpp": p.mpp,
        "slide_shape": [int(layout.height), int(layout.width)],
        "end_loss_mm": [round(e, 4) for e in ends],
        "stretch_amplitude": round(prof.amplitude, 4),
        "shrink_profile": {
            "step_mm": PROFILE_STEP_MM * PROFILE_KEEP,
            "values": [round(float(v), 4) for v in prof.shrink[::PROFILE_KEEP]],
        },
        "frayed_ends": [[round(a, 3), round(z, 3), round(w, 3)] for a, z, w in frays],
        "fat_lobules": len(fat_um),
        **bend,
        **extra,
    }
    return layout, truth


def _fat_polygons(a0: float, a1: float, rng, lab: LabParams | None, to_um, half_fresh: float) -> list:
    """Lobules spanning the core's width (slide µm polygons), at least FAT_MARGIN_MM inside the fragment."""
    if lab is None:
        return []
    out = []
    for _ in range(int(rng.choice(lab.fat_lobules, p=lab.fat_p))):
        ln = rng.uniform(*lab.fat_mm)
        if a1 - a0 < ln + 2 * FAT_MARGIN_MM:
            continue
        af = rng.uniform(a0 + FAT_MARGIN_MM, a1 - FAT_MARGIN_MM - ln)
        za = np.linspace(af, af + ln, 12)
        top, bot = to_um(za, np.full(12, -half_fresh * 1.3)), to_um(za, np.full(12, half_fresh * 1.3))
        out.append(np.vstack([top, bot[::-1]]))
    return out
