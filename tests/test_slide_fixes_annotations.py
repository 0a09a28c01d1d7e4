"""Annotation files as exports write them: ASAP point sets and dots mark no area; an outline with too few
points, or an unknown Type, is refused naming the annotation; byte-order marks (UTF-8, UTF-16) are read;
the annotated area is that of the union of outlines minus exclusions, however often an outline is drawn."""

from __future__ import annotations

import codecs
import json
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from edge_runtime.errors import InputError
from registration.annotation_raster import rasterise
from registration.annotations import load_annotations
from registration.case import DEFAULT_CANCER_CLASSES, DEFAULT_EXCLUDE_CLASSES, DEFAULT_IGNORE_CLASSES

CLASSES = (DEFAULT_CANCER_CLASSES, DEFAULT_IGNORE_CLASSES, DEFAULT_EXCLUDE_CLASSES)
SQUARE = [(0, 0), (40, 0), (40, 40), (0, 40)]


def asap(*annotations: tuple[str, str, list]) -> str:
    """ASAP XML with (Type, PartOfGroup, points) annotations, as ASAP writes it."""
    body = []
    for i, (kind, group, pts) in enumerate(annotations):
        coords = "".join(f'<Coordinate Order="{k}" X="{x}" Y="{y}" />' for k, (x, y) in enumerate(pts))
        body.append(
            f'<Annotation Name="Annotation {i}" Type="{kind}" PartOfGroup="{group}" Color="#F4FA58">'
            f"<Coordinates>{coords}</Coordinates></Annotation>"
        )
    return (
        '<?xml version="1.0"?>\n<ASAP_Annotations><Annotations>'
        + "".join(body)
        + "</Annotations><AnnotationGroups /></ASAP_Annotations>"
    )


def test_asap_point_sets_and_dots_mark_no_area(tmp_path):
    p = tmp_path / "a.xml"
    p.write_text(
        asap(
            ("PointSet", "Tumor", [(2400, 550), (3800, 560), (3100, 1030)]),  # three cells, not a triangle
            ("Dot", "Tumor", [(10, 10)]),
            ("Polygon", "Tumor", SQUARE),
        )
    )
    ann = load_annotations(p, *CLASSES)
    assert len(ann.cancer) == 1 and ann.n_objects == 3
    assert int(rasterise(ann.cancer, (2000, 4000), 1.0).sum()) == pytest.approx(1600, rel=0.1)
    assert [w.split(": ", 1)[1] for w in ann.warnings] == [
        "a PointSet of class 'Tumor' marks no area (points or a line): ignored",
        "a Dot of class 'Tumor' marks no area (points or a line): ignored",
    ]
    assert ann.warnings[0].startswith(f"{p} Annotation 0 (Annotation 0): ")


def test_a_geojson_point_gets_the_same_warning(tmp_path):
    p = tmp_path / "a.geojson"
    feat = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [5, 5]}}
    feat["properties"] = {"objectType": "annotation", "classification": {"name": "Tumor"}}
    p.write_text(json.dumps([feat]))
    ann = load_annotations(p, *CLASSES)
    assert ann.cancer == [] and ann.warnings == [
        f"{p} feature 0: a Point of class 'Tumor' marks no area (points or a line): ignored"
    ]


@pytest.mark.parametrize(
    "kind,pts,match",
    [
        ("Polygon", [(1, 1), (2, 2)], "a Polygon of class 'Tumor' with 2 point"),
        (
            "Spline",
            [],
            "a Spline of class 'Tumor' with 0 point",
        ),  # <Coordinates/>: an outline the export lost
        ("Hexagon", SQUARE, "unknown annotation Type 'Hexagon'"),
    ],
)
def test_an_outline_without_an_area_or_of_an_unknown_type_is_refused(tmp_path, kind, pts, match):
    p = tmp_path / "a.xml"
    p.write_text(asap(("Polygon", "Tumor", SQUARE), (kind, "Tumor", pts)))
    with pytest.raises(InputError, match=match) as err:
        load_annotations(p, *CLASSES)
    assert str(err.value).startswith(f"{p} Annotation 1 (Annotation 1): ") and "\n" not in str(err.value)


def test_an_empty_exclusion_is_refused_and_an_ignored_class_is_not(tmp_path):
    p = tmp_path / "a.xml"
    p.write_text(asap(("Polygon", "Tumor", SQUARE), ("Polygon", "Exclusion", [])))
    with pytest.raises(InputError, match="a Polygon of class 'Exclusion' with 0 point"):
        load_annotations(p, *CLASSES)
    p.write_text(asap(("Polygon", "Tumor", SQUARE), ("Polygon", "Stroma", [])))
    assert len(load_annotations(p, *CLASSES).cancer) == 1


@pytest.mark.parametrize(
    "encoding,mark",
    [("utf-8", codecs.BOM_UTF8), ("utf-16-le", codecs.BOM_UTF16_LE), ("utf-16-be", codecs.BOM_UTF16_BE)],
)
def test_byte_order_marks_are_read_in_both_formats(tmp_path, encoding, mark):
    xml = asap(("Polygon", "Tumor", SQUARE))
    if encoding != "utf-8":
        xml = xml.replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>')
    geo = json.dumps(
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in SQUARE + [SQUARE[0]]]]},
            "properties": {"classification": {"name": "Tumor"}},
        }
    )
    for name, text in (("a.xml", xml), ("a.geojson", geo)):
        p = tmp_path / name
        p.write_bytes(mark + text.encode(encoding))
        ann = load_annotations(p, *CLASSES)
        assert len(ann.cancer) == 1 and np.array_equal(ann.cancer[0][0][:4], np.array(SQUARE, float)), name


def _area(cancer_polys, exclude_polys, shape, scale=1.0) -> float:
    """annotated_area of these outlines on a level of ``shape``, as register_case measures it."""
    from registration.slide_region import annotated_area

    ann = SimpleNamespace(
        cancer=[[np.array(r, float) for r in p] for p in cancer_polys],
        exclude=[[np.array(r, float) for r in p] for p in exclude_polys],
    )
    mask = rasterise(ann.cancer, shape, scale)
    if ann.exclude:
        mask[rasterise(ann.exclude, shape, scale) > 0] = 0
    return annotated_area(mask, ann, scale)


def test_the_annotated_area_is_the_union_minus_exclusions_on_and_off_the_slide():
    square = [[(10, 10), (50, 10), (50, 50), (10, 50)]]
    area = _area([square], [], (100, 100))  # 41x41 pixel centres on or inside the outline
    assert area == 41 * 41
    assert _area([square] * 10, [], (100, 100)) == area  # drawn ten times: counted once
    exclusion = [[(0, 0), (46, 0), (46, 60), (0, 60)]]
    assert _area([square], [exclusion], (100, 100)) == 4 * 41  # 90 % excluded: what is left
    half_off = [[(-20, 10), (20, 10), (20, 50), (-20, 50)]]
    assert _area([half_off, half_off], [], (100, 100)) == area  # half on the slide, half off it, once
    assert _area([half_off], [], (50, 50), scale=0.5) == pytest.approx(
        area / 4, rel=0.1
    )  # a 2x coarser level
    far = [[(-200_000, 0), (-199_960, 0), (-199_960, 40), (-200_000, 40)]]  # measured on a coarse canvas
    assert _area([square, far], [], (100, 100)) == pytest.approx(2 * area, rel=0.1)


def _lasso(turns: float, points: int = 400) -> list[tuple[float, float]]:
    """A freehand lasso round a disc of radius ~40, going past its start by ``turns - 1`` turns
    (the second pass slightly outside the first), as a hand on a tablet draws one."""
    t = np.linspace(0, 2 * np.pi * turns, points)
    r = 40 + 1.5 * t / (2 * np.pi)
    return [(round(60 + x, 2), round(60 + y, 2)) for x, y in zip(r * np.cos(t), r * np.sin(t), strict=True)]


@pytest.mark.parametrize("turns", [1.25, 1.5, 2.0])
def test_a_lasso_that_overshoots_its_start_fills_all_it_circles(tmp_path, turns):
    """Filled by parity, the part enclosed twice read as not cancer (at 1.5 turns, 45 % of the
    lesion; an outline traced twice kept only its rim). The winding rule fills what was circled:
    the same pixels as one clean turn round the outer pass, give or take the rim."""
    path = tmp_path / "lasso.xml"
    path.write_text(asap(("Polygon", "Tumor", _lasso(turns))))
    mask = rasterise(load_annotations(path, *CLASSES).cancer, (120, 120), 1.0)
    clean = tmp_path / "clean.xml"
    t = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    r_out = 40 + 1.5 * turns + 1  # the outer pass, and a pixel for its rim
    clean.write_text(
        asap(("Polygon", "Tumor", [(60 + r_out * np.cos(a), 60 + r_out * np.sin(a)) for a in t]))
    )
    outer = rasterise(load_annotations(clean, *CLASSES).cancer, (120, 120), 1.0)
    assert not (mask & ~outer).any()  # nothing outside the outline
    inner = np.zeros_like(mask)
    cv2.circle(inner, (60, 60), 39, 1, -1)
    assert mask[inner > 0].all()  # everything the first turn circled, the overlap included


def test_a_figure_eight_fills_both_loops_as_before():
    """Opposite windings (+1 and -1) are both inside: the winding fill keeps what parity filled."""
    eight = [[np.array([(10, 10), (50, 50), (90, 10), (90, 50), (50, 10), (10, 50)], float)]]
    mask = rasterise(eight, (60, 100), 1.0)
    assert mask[30, 20] and mask[30, 80]  # both lobes
    assert not mask[5, 50] and not mask[55, 50]  # not outside
