"""What a pathology lab does to a core before it is scanned: the simulator's lab phenomena.

Input: ``LabParams`` (parameter ranges, below) and a random generator. Output: the per-core
profiles that ``sim_core.build_layout`` lays the core out with, and the slide artefacts that
``sim_artifacts`` renders. Every range is documented in docs/registration.md.

Phenomena (all on with ``LabParams()``; ``None`` fields or zero probabilities turn one off):
- non-uniform shrinkage: a smooth local factor s(a) in [0.75, 1.0] along the fresh core
  (mean 0.80-0.95, amplitude 0-0.10, correlation 2-6 mm); width shrinks alike;
- tissue lost at the two outer ends (0-1 mm each), and frayed/crushed ends (darker, wider);
- width variation (+-20 %, smooth) and ragged edges (10-40 µm);
- bends up to 60 deg in total and S-shapes (wiggle up to +-25 deg);
- 1-5 fragments, down to 1 mm long (stubby: about as long as the core is wide);
- fat lobules spanning the core (glass with thin membranes), splitting a fragment on sight;
- pen marks (green, blue, black, red), dust specks and air-bubble outlines;
- serial sections: 2-3 translated copies of the core, side by side;
- annotation habits: outlines simplified at 20-50 µm, drawn 0-25 µm inside or outside,
  Normal/Stroma regions, class names in different cases.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from edge_runtime.units import UM_PER_MM

PROFILE_STEP_MM = 0.01
INK_COLOURS = {"green": (40, 140, 80), "blue": (40, 70, 170), "black": (35, 35, 40), "red": (200, 40, 50)}
CANCER_SPELLINGS = ("Tumor", "tumor", "TUMOR")


@dataclass
class LabParams:
    shrink_mean: tuple = (0.80, 0.95)
    shrink_amplitude: tuple = (0.0, 0.10)  # +- around the mean, clipped to shrink_range
    shrink_range: tuple = (0.75, 1.0)
    shrink_corr_mm: tuple = (2.0, 6.0)
    end_loss_mm: tuple = (0.0, 1.0)  # each outer end
    fray_p: float = 0.6  # an end that lost tissue is frayed/crushed
    fray_mm: tuple = (0.15, 0.4)  # crushed zone length (slide, fresh mm)
    fray_widen: tuple = (1.15, 1.35)
    width_var: float = 0.20
    width_corr_mm: tuple = (1.0, 3.0)
    ragged_um: tuple = (10.0, 40.0)
    bend_deg: tuple = (10.0, 60.0)
    wiggle_deg: tuple = (-25.0, 25.0)
    fragments: tuple = (1, 2, 3, 4, 5)
    fragment_p: tuple = (0.2, 0.3, 0.25, 0.15, 0.1)
    min_fragment_mm: float = 1.0
    fat_lobules: tuple = (0, 1, 2)
    fat_p: tuple = (0.4, 0.4, 0.2)
    fat_mm: tuple = (0.3, 1.0)  # lobule length along the fresh core
    fat_cell_um: tuple = (50.0, 90.0)
    ink_p: float = 0.6
    ink_strokes: tuple = (1, 3)
    ink_on_tissue_p: float = 0.4  # a stroke that runs onto the tissue
    dust: tuple = (5, 30)
    bubbles: tuple = (0, 3)
    serial_p: float = 0.3  # 2-3 copies of the core
    roi_p: float = 0.5  # a serial case names its section in pathology.roi
    simplify_um: tuple = (20.0, 50.0)
    outline_offset_um: tuple = (-25.0, 25.0)
    normal_regions_p: float = 0.5
    fresh_length_p: float = 0.6  # case.yaml gives fresh_length_mm (else shrinkage)


def smooth_noise(n: int, corr_steps: float, rng) -> np.ndarray:
    """Unit-peak smooth noise of n samples with a correlation length of corr_steps samples."""
    x = gaussian_filter1d(rng.normal(0.0, 1.0, n + int(6 * corr_steps)), corr_steps, mode="wrap")
    x = x[int(3 * corr_steps) : int(3 * corr_steps) + n]
    return x / (np.abs(x).max() + 1e-12)


@dataclass
class CoreProfiles:
    """Along the fresh core (mm from the distal end, PROFILE_STEP_MM grid)."""

    a: np.ndarray
    shrink: np.ndarray  # local shrinkage factor
    width: np.ndarray  # width factor (1 +- width variation), times the local shrinkage
    amplitude: float

    def slide_um(self, a) -> np.ndarray:
        """Slide arc length (µm) from a = 0 to a: the integral of the local shrinkage."""
        cum = np.concatenate([[0.0], np.cumsum(self.shrink[:-1] * PROFILE_STEP_MM * UM_PER_MM)])
        return np.interp(a, self.a, cum)

    def half_scale(self, a) -> np.ndarray:
        """Factor on the fresh half-width at a (local shrinkage x width variation)."""
        return np.interp(a, self.a, self.shrink * self.width)


def sample_profiles(notch_mm: float, rng, p: LabParams) -> CoreProfiles:
    a = np.arange(0.0, notch_mm + 2 * PROFILE_STEP_MM, PROFILE_STEP_MM)
    mean, amp = rng.uniform(*p.shrink_mean), rng.uniform(*p.shrink_amplitude)
    corr = rng.uniform(*p.shrink_corr_mm) / PROFILE_STEP_MM
    shrink = np.clip(mean + amp * smooth_noise(len(a), corr, rng), *p.shrink_range)
    wcorr = rng.uniform(*p.width_corr_mm) / PROFILE_STEP_MM
    width = 1.0 + p.width_var * smooth_noise(len(a), wcorr, rng)
    return CoreProfiles(a, shrink, width, float(amp))


def ragged(n: int, rng, p: LabParams, step_um: float) -> np.ndarray:
    """Edge roughness (µm) for n outline points step_um apart."""
    amp = rng.uniform(*p.ragged_um)
    return amp * smooth_noise(n, max(50.0 / step_um, 1.0), rng)


def end_losses(rng, p: LabParams) -> tuple[float, float]:
    return float(rng.uniform(*p.end_loss_mm)), float(rng.uniform(*p.end_loss_mm))


def fat_segments(poly: np.ndarray, cell_um: float, mpp: float, rng) -> np.ndarray:
    """Membrane segments [N, 2, 2] (level-0 px) of a lobule of fat cells filling poly's bbox."""
    # deferred: scipy.spatial only for the lab simulator's fat cells
    from scipy.spatial import Voronoi

    lo, hi = poly.min(0), poly.max(0)
    step = cell_um / mpp
    gx, gy = np.meshgrid(
        np.arange(lo[0] - step, hi[0] + 2 * step, step), np.arange(lo[1] - step, hi[1] + 2 * step, step)
    )
    pts = np.stack([gx.ravel(), gy.ravel()], 1) + rng.uniform(-0.35, 0.35, (gx.size, 2)) * step
    vor = Voronoi(pts)
    segs = [vor.vertices[list(r)] for r in vor.ridge_vertices if -1 not in r]
    segs = np.array(segs) if segs else np.zeros((0, 2, 2))
    keep = np.all((segs >= lo - step) & (segs <= hi + step), axis=(1, 2))
    return segs[keep]


def ink_strokes(core_pts: np.ndarray, mpp: float, rng, p: LabParams) -> list[dict]:
    """Pen strokes near the core (level-0 px): beside it, some running onto the tissue."""
    if rng.random() >= p.ink_p:
        return []
    out = []
    lo, hi = core_pts.min(0), core_pts.max(0)
    for _ in range(int(rng.integers(p.ink_strokes[0], p.ink_strokes[1] + 1))):
        colour = str(rng.choice(list(INK_COLOURS)))
        # anchor near a core point, offset outwards; a stroke on tissue starts on the core itself
        anchor = core_pts[int(rng.integers(len(core_pts)))]
        on_tissue = rng.random() < p.ink_on_tissue_p
        centre = (lo + hi) / 2
        out_dir = anchor - centre
        out_dir = out_dir / (np.linalg.norm(out_dir) + 1e-9)
        start = anchor + out_dir * (0.0 if on_tissue else rng.uniform(300, 1500) / mpp)
        length = rng.uniform(1000, 4000) / mpp
        ang = np.arctan2(out_dir[1], out_dir[0]) + rng.uniform(-1.2, 1.2)
        t = np.linspace(0, 1, 40)
        curve = rng.uniform(-0.3, 0.3)
        angs = ang + curve * (t - 0.5) * 2
        steps = np.stack([np.cos(angs), np.sin(angs)], 1) * length / len(t)
        pts = start + np.cumsum(steps, 0)
        out.append(
            {
                "points": pts,
                "thickness": rng.uniform(150, 400) / mpp,
                "colour": INK_COLOURS[colour],
                "name": colour,
                "on_tissue": bool(on_tissue),
            }
        )
    return out


def specks(lo: np.ndarray, hi: np.ndarray, mpp: float, rng, p: LabParams) -> tuple[list, list]:
    """Dust specks (centre, radius px, grey) and bubble outlines (centre, radius px, ring px)."""
    span = hi - lo
    dust = [
        (lo + rng.random(2) * span, rng.uniform(5, 40) / mpp, float(rng.uniform(60, 140)))
        for _ in range(int(rng.integers(p.dust[0], p.dust[1] + 1)))
    ]
    bubbles = [
        (lo + rng.random(2) * span, rng.uniform(300, 1500) / mpp, rng.uniform(10, 25) / mpp)
        for _ in range(int(rng.integers(p.bubbles[0], p.bubbles[1] + 1)))
    ]
    return dust, bubbles
