"""Annotation geometry: a hole that crosses its outline is refused naming the feature, even inside the
outline's bounding box; holes traced inside an outline, touching it or not, are read; an outline that
crosses itself (a figure eight) is filled, and its area counts both loops, in polygon_area and in the
"annotation outside the tissue" check of a whole case."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from edge_runtime.errors import InputError
from registration.annotation_raster import polygon_area, rasterise
from registration.annotations import load_annotations
from registration.pipeline import register_case

CLASSES = (["Tumor"], ["Stroma"], [])
TUMOR = {"objectType": "annotation", "classification": {"name": "Tumor"}}
# an L: the square 0-100 without its lower right quarter (x > 40 and y > 40)
L_SHAPE = [[0, 0], [100, 0], [100, 40], [40, 40], [40, 100], [0, 100], [0, 0]]
# a square 0-100 with a slot 2 px wide cut in from its left side to x = 90, along y = 50
SLOTTED = [[0, 0], [100, 0], [100, 100], [0, 100], [0, 51], [90, 51], [90, 49], [0, 49], [0, 0]]
CENTRE_HOLE = [[20, 20], [80, 20], [80, 80], [20, 80], [20, 20]]
BOWTIE = [[0, 0], [600, 300], [600, 0], [0, 300], [0, 0]]  # two triangles meeting at (300, 150)
BOWTIE_LOOP_AREA = 300 * 300 / 2


def _write(path, *polygons):
    feats = [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": p}, "properties": TUMOR}
        for p in polygons
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return path


@pytest.mark.parametrize(
    "outline",
    [
        pytest.param(L_SHAPE, id="hole-corner-beyond-a-notched-outline"),  # a vertex off the L, in its box
        pytest.param(SLOTTED, id="hole-edges-over-a-slot"),  # every hole vertex inside, its edges cross
    ],
)
def test_a_hole_crossing_its_outline_inside_its_box_is_refused(tmp_path, outline):
    p = _write(tmp_path / "a.geojson", [outline, CENTRE_HOLE])
    with pytest.raises(
        InputError, match="feature 0: hole 1 reaches outside the outer ring of polygon 0"
    ) as err:
        load_annotations(p, *CLASSES)
    assert str(err.value).startswith(str(p)) and "\n" not in str(err.value)


def _traced(mask: np.ndarray, scale: float, offset: float) -> list:
    """The polygons of ``mask``'s regions as a pixel tracer writes them (outline + holes, level-0 px
    rounded to 2 decimals, as QuPath exports): holes inside their outline, some touching it."""
    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    polys = []
    for k, contour in enumerate(contours):
        if hierarchy[0][k][3] != -1 or len(contour) < 3:  # a hole, or a speck of a pixel or two
            continue
        rings, child = [contour], hierarchy[0][k][2]
        while child != -1:
            if len(contours[child]) >= 3:
                rings.append(contours[child])
            child = hierarchy[0][child][0]
        polys.append([np.round(r[:, 0] * scale + offset, 2).tolist() for r in rings])
    return polys


def _masks(n: int):
    """Tumour masks with holes: a 1 px wall and a 1 px bridge between a hole and the outside (the
    traced hole shares pixels with the outline), then ``n`` discs with random holes (necrosis), some
    of them a pixel from the tumour's edge."""
    wall = np.zeros((120, 120), np.uint8)
    wall[10:110, 10:110] = 1
    wall[30:60, 11:50] = 0  # column 10 alone keeps the hole from the outside
    wall[70:100, 60:109] = 0  # and column 109
    yield wall
    bridge = wall.copy()
    bridge[60:70, 11:50] = 0  # two holes meeting the wall and each other's corner rows
    yield bridge
    rng = np.random.default_rng(0)
    for _ in range(n):
        mask = np.zeros((120, 120), np.uint8)
        cv2.circle(mask, (60, 60), int(rng.integers(25, 55)), 1, -1)
        for _ in range(int(rng.integers(1, 6))):
            cv2.circle(mask, tuple(int(v) for v in rng.integers(10, 110, 2)), int(rng.integers(2, 15)), 0, -1)
        yield mask


def test_traced_holes_inside_or_touching_their_outline_are_read(tmp_path):
    rng = np.random.default_rng(1)
    n_holes = touching = 0
    for i, mask in enumerate(_masks(60)):
        polys = _traced(mask, float(rng.choice([1.0, 16.0])), float(rng.uniform(0, 5e4)))
        ann = load_annotations(_write(tmp_path / f"t{i}.geojson", *polys), *CLASSES)
        n_holes += sum(len(p) - 1 for p in ann.cancer)
        touching += sum(
            bool(set(map(tuple, h.tolist())) & set(map(tuple, p[0].tolist())))
            for p in ann.cancer
            for h in p[1:]
        )
    assert n_holes >= 40 and touching >= 3  # the common case and the touching one were both measured


def test_a_figure_eight_is_filled_and_its_area_counts_both_loops(tmp_path):
    ann = load_annotations(_write(tmp_path / "a.geojson", [BOWTIE]), *CLASSES)
    mask = rasterise(ann.cancer, (310, 610), 1.0)
    assert mask[150, 100] and mask[150, 500] and not mask[50, 300]  # both loops, not between them
    # the shoelace formula weighs the loops' opposite turns against each other: 0
    assert polygon_area(ann.cancer, "a.geojson") == pytest.approx(2 * BOWTIE_LOOP_AREA, rel=0.02)
    assert polygon_area(ann.cancer, "a.geojson") == np.count_nonzero(mask)


def test_polygon_area_is_the_filled_union_minus_holes():
    square = np.array([[0, 0], [40, 0], [40, 40], [0, 40]], float)
    hole = np.array([[10, 10], [30, 10], [30, 30], [10, 30]], float)
    assert (
        polygon_area([[square, hole]], "a.geojson") == 41 * 41 - 21 * 21
    )  # edge pixels: cancer's, not the hole's
    assert polygon_area([[square], [square]], "a.geojson") == 41 * 41  # an outline exported twice: once
    big = np.array([[0, 0], [6e7, 0], [6e7, 6e7]])  # a canvas of bounded size, coarser than 1 px
    assert polygon_area([[big]], "a.geojson") == pytest.approx(6e7 * 6e7 / 2, rel=0.01)
    for far in (1e300, np.inf, np.nan):
        with pytest.raises(InputError, match="a.geojson: the annotated cancer area cannot be measured"):
            polygon_area([[np.array([[0, 0], [far, 0], [far, far]])]], "a.geojson")


def test_a_figure_eight_off_the_tissue_is_annotation_outside_the_tissue(simulated_case, tmp_path):
    case = tmp_path / "case"
    shutil.copytree(simulated_case, case)
    gj = json.loads((case / "core.geojson").read_text())
    gj["features"] = [
        f for f in gj["features"] if f["properties"]["classification"]["name"].lower() != "tumor"
    ]
    gj["features"].append(
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [[[x + 1000, y + 8000] for x, y in BOWTIE]]},
            "properties": TUMOR,
        }
    )
    (case / "core.geojson").write_text(json.dumps(gj))
    with pytest.raises(InputError, match="core.geojson: annotation outside the tissue"):
        register_case(case / "case.yaml", tmp_path / "o")
