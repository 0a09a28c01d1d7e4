"""Core geometry: medial axis of bent strips, straightening, fragment order and handedness, tract mapping."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_runtime.errors import InputError
from registration.centerline import medial_axis
from registration.fragments import find_fragments, orient
from registration.mapping import place, rasterise_label
from registration.tract import Tract

MPP = 8.0


def arc_strip(shape, centre, radius, half_width, a0, a1):
    """A strip bent along a circular arc; returns mask and the true centre-line length (px)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    r = np.hypot(xx - centre[0], yy - centre[1])
    ang = np.arctan2(yy - centre[1], xx - centre[0])
    mask = (np.abs(r - radius) <= half_width) & (ang >= a0) & (ang <= a1)
    return mask, radius * (a1 - a0)


def test_medial_axis_follows_a_bent_core_not_its_chord():
    mask, true_len = arc_strip((200, 700), (350, -250), 400, 14, np.deg2rad(45), np.deg2rad(135))
    line = medial_axis(mask)
    length = float(np.hypot(*np.diff(line, axis=0).T).sum())
    assert length == pytest.approx(true_len, rel=0.02)
    # every centre-line point sits mid-way across the strip
    r = np.hypot(line[:, 0] - 350, line[:, 1] + 250)
    assert np.abs(r - 400).max() < 1.0
    # a principal-axis (chord) measure is shorter: what the medial axis avoids
    ys, xs = np.nonzero(mask)
    pts = np.stack([xs, ys], 1) - [xs.mean(), ys.mean()]
    axis = np.linalg.svd(pts, full_matrices=False)[2][0]
    proj = pts @ axis
    assert proj.max() - proj.min() < 0.97 * true_len


def _slide_with_fragments():
    """Two pink fragments on glass; the left one has a cancer block on its upper (-y) half."""
    rgb = np.full((120, 600, 3), 244, np.uint8)
    cancer = np.zeros((120, 600), np.uint8)
    cv2.rectangle(rgb, (20, 40), (260, 79), (228, 160, 200), -1)  # 241 px long, 40 px wide
    cv2.rectangle(rgb, (320, 42), (560, 77), (228, 160, 200), -1)
    cancer[40:60, 100:180] = 1  # upper half, middle of fragment 1
    return rgb, cancer


def test_fragments_are_ordered_from_the_tip_end_and_keep_handedness():
    rgb, cancer = _slide_with_fragments()
    warnings = []
    frags = orient(find_fragments(rgb, MPP, cancer, "slide", warnings), "left")
    assert len(frags) == 2 and frags[0].centroid[0] < frags[1].centroid[0]
    assert frags[0].length_um == pytest.approx(241 * MPP, rel=0.02)
    f = frags[0]
    rows = np.nonzero((f.label == 1).any(axis=1))[0]
    assert rows.min() == pytest.approx(80, abs=2) and rows.max() == pytest.approx(159, abs=2)
    # tip end left, core runs +x: +normal is +y, so the upper (-y) cancer sits in the low columns
    cols = np.nonzero((f.label == 1).any(axis=0))[0]
    mid = (np.nanmean(f.lo) + np.nanmean(f.hi)) / 2
    assert cols.max() < mid + 1
    flipped = orient(find_fragments(rgb, MPP, cancer, "slide", []), "right")
    g = flipped[1]  # the cancer fragment is now the far one
    assert g.cancer_px == f.cancer_px
    cols_g = np.nonzero((g.label == 1).any(axis=0))[0]
    mid_g = (np.nanmean(g.lo) + np.nanmean(g.hi)) / 2
    assert cols_g.min() > mid_g - 1  # a 180-degree turn swaps sides, it does not mirror
    rows_g = np.nonzero((g.label == 1).any(axis=1))[0]
    assert rows_g.min() == pytest.approx(241 - 160, abs=2)


def test_mapping_shares_spare_length_over_ends_and_break_and_leaves_gap_unknown():
    rgb, cancer = _slide_with_fragments()
    frags = orient(find_fragments(rgb, MPP, cancer, "slide", []), "left")
    shrink = 0.8
    slide_mm = sum(f.length_um for f in frags) / 1000
    tract_mm = slide_mm / shrink + 1.0  # 1 mm of tissue lost at the break
    tract = Tract((10 + tract_mm / 0.1, 50.0), (10.0, 50.0), 1.6, (0.1, 0.1))  # horizontal, tip end left
    placements, info = place(frags, tract.length_mm, shrink, "test", "case", [])
    # the 1 mm spare may have been lost at either end or at the break: a third to each on average
    assert placements[0].a0 == pytest.approx(1 / 3, abs=0.02)
    assert placements[-1].a1 == pytest.approx(tract_mm - 1 / 3, abs=0.02)
    assert info["gap_mm"] == pytest.approx(1 / 3, abs=0.02) and info["spare_mm"] == pytest.approx(
        1.0, abs=0.05
    )
    assert all(p.sigma_mm < 0.25 for p in placements)  # 0.24 mm: committed to, not marked unknown
    label = rasterise_label((100, 600), tract, frags, placements)
    gap_x = int(round(10 + (placements[0].a1 + placements[1].a0) / 2 / 0.1))
    assert (label[:, gap_x] == 255).all()
    # cancer at fresh 80..160 px * 8 µm / 0.8 = 0.8..1.6 mm from the tip end, + 1/3 mm -> x = 21.3..29.3
    row = label[46]  # -normal side = upper half
    xs = np.nonzero(row == 1)[0]
    assert xs.min() == pytest.approx(21.3, abs=1) and xs.max() == pytest.approx(29.3, abs=1)


def test_blank_slide_has_no_tissue():
    with pytest.raises(InputError, match="no tissue found"):
        find_fragments(
            np.full((50, 80, 3), 245, np.uint8), MPP, np.zeros((50, 80), np.uint8), "empty.tif", []
        )


def _no_tissue_error(rgb: np.ndarray) -> str:
    with pytest.raises(InputError, match="no tissue found") as caught:
        find_fragments(rgb, MPP, np.zeros(rgb.shape[:2], np.uint8), "slide.tif", [])
    return str(caught.value)


@pytest.mark.parametrize(
    "colour, why",
    [
        (None, "the level is blank"),
        ((150, 150, 150), "is grey: a greyscale or unstained slide"),  # a slide scanned or stored grey
        ((150, 100, 60), "is coloured, but not as H&E stains"),  # IHC's DAB brown (RGB)
    ],
)
def test_no_tissue_says_why(colour, why):
    rgb = np.full((120, 600, 3), 244, np.uint8)
    if colour is not None:  # the two fragments of _slide_with_fragments, in another colour
        cv2.rectangle(rgb, (20, 40), (260, 79), colour, -1)
        cv2.rectangle(rgb, (320, 42), (560, 77), colour, -1)
    message = _no_tissue_error(rgb)
    assert message.startswith("slide.tif: no tissue found on the slide: ") and why in message, message


def test_no_tissue_names_specks_too_small_to_be_a_fragment():
    rgb = np.full((120, 600, 3), 244, np.uint8)
    for x in range(20, 560, 60):  # pink specks of 10 x 10 px (0.08 mm across): dust-sized pieces
        cv2.rectangle(rgb, (x, 50), (x + 9, 59), (228, 160, 200), -1)
    assert "its stained pieces are all smaller than 0.04 mm2" in _no_tissue_error(rgb)
