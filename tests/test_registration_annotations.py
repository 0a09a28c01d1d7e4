"""Annotation readers: QuPath GeoJSON variants and ASAP XML, class mapping, holes, rasterisation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_runtime.errors import InputError
from registration.annotation_raster import polygon_area, rasterise
from registration.annotations import load_annotations
from registration.case import DEFAULT_CANCER_CLASSES, DEFAULT_EXCLUDE_CLASSES, DEFAULT_IGNORE_CLASSES

CLASSES = (DEFAULT_CANCER_CLASSES, DEFAULT_IGNORE_CLASSES, DEFAULT_EXCLUDE_CLASSES)
SQUARE = [[0, 0], [40, 0], [40, 40], [0, 40], [0, 0]]
HOLE = [[10, 10], [30, 10], [30, 30], [10, 30], [10, 10]]


def feature(geom, cls, obj="annotation"):
    props = {"objectType": obj}
    if cls is not None:
        props["classification"] = cls
    return {"type": "Feature", "geometry": geom, "properties": props}


def test_geojson_variants_holes_and_object_types(tmp_path):
    feats = [
        feature({"type": "Polygon", "coordinates": [SQUARE, HOLE]}, {"name": "Tumor", "color": [200, 0, 0]}),
        feature(
            {"type": "MultiPolygon", "coordinates": [[[[100, 0], [120, 0], [120, 20], [100, 0]]]]},
            {"names": ["Tumor", "Positive"]},
        ),  # derived class counts as its base
        feature({"type": "Polygon", "coordinates": [SQUARE]}, "Carcinoma"),  # legacy string class
        feature({"type": "Polygon", "coordinates": [SQUARE]}, {"name": "Tumor"}, obj="detection"),  # ignored
        feature({"type": "Polygon", "coordinates": [SQUARE]}, {"name": "Stroma"}),
        feature({"type": "Point", "coordinates": [9, 9]}, None),  # unclassified, no area: warning
        feature({"type": "Point", "coordinates": [5, 5]}, {"name": "Tumor"}),  # no area
    ]
    p = tmp_path / "a.geojson"
    p.write_text(json.dumps(feats))  # bare list, as QuPath writes by default
    ann = load_annotations(p, *CLASSES)
    assert len(ann.cancer) == 3 and ann.n_objects == 6
    assert any("unclassified" in w for w in ann.warnings)
    assert polygon_area(ann.cancer[:1], "a.geojson") == 41 * 41 - 21 * 21  # with the edges' pixels
    mask = rasterise(ann.cancer[:1], (50, 50), 1.0)
    assert mask[5, 5] == 1 and mask[20, 20] == 0  # the hole is cut out
    assert int(mask.sum()) == pytest.approx(1200, rel=0.05)
    half = rasterise(ann.cancer[:1], (25, 25), 0.5)  # a 2x coarser level
    assert int(half.sum()) == pytest.approx(300, rel=0.1)


@pytest.mark.parametrize("cls", [None, {"color": [255, 0, 0]}, {"names": []}, {"name": None}])
def test_an_outline_without_a_class_is_refused_naming_the_file_and_feature(tmp_path, cls):
    """Left unclassified in QuPath, a tumour outline would otherwise be dropped with a warning and
    the core registered (and trained on) as cancer-free."""
    feats = [
        feature({"type": "Polygon", "coordinates": [SQUARE]}, {"name": "Stroma"}),
        {
            **feature({"type": "Polygon", "coordinates": [SQUARE]}, None),
            "properties": {"objectType": "annotation"},
        },
    ]
    if cls is not None:
        feats[1]["properties"]["classification"] = cls
    p = tmp_path / "a.geojson"
    p.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    with pytest.raises(
        InputError, match=rf"^{p} feature 1: an outline that has no classification; give it a"
    ):
        load_annotations(p, *CLASSES)


def test_an_asap_outline_in_no_group_is_refused(tmp_path):
    xml = """<?xml version="1.0"?>
<ASAP_Annotations><Annotations>
 <Annotation Name="A" Type="Polygon" PartOfGroup="None" Color="#F4FA58"><Coordinates>
  <Coordinate Order="0" X="0" Y="0" /><Coordinate Order="1" X="40" Y="0" />
  <Coordinate Order="2" X="40" Y="40" /><Coordinate Order="3" X="0" Y="40" />
 </Coordinates></Annotation>
</Annotations><AnnotationGroups /></ASAP_Annotations>"""
    p = tmp_path / "a.xml"
    p.write_text(xml)
    with pytest.raises(InputError, match=rf"^{p} Annotation 0 \(A\): an outline that is in no group"):
        load_annotations(p, *CLASSES)


def test_asap_xml_with_exclusion_group(tmp_path):
    xml = """<?xml version="1.0"?>
<ASAP_Annotations><Annotations>
 <Annotation Name="A" Type="Polygon" PartOfGroup="_0" Color="#F4FA58"><Coordinates>
  <Coordinate Order="2" X="40" Y="40" /><Coordinate Order="0" X="0" Y="0" />
  <Coordinate Order="1" X="40" Y="0" /><Coordinate Order="3" X="0" Y="40" />
 </Coordinates></Annotation>
 <Annotation Name="B" Type="Polygon" PartOfGroup="_2" Color="#000000"><Coordinates>
  <Coordinate Order="0" X="10" Y="10" /><Coordinate Order="1" X="30" Y="10" />
  <Coordinate Order="2" X="30" Y="30" /><Coordinate Order="3" X="10" Y="30" />
 </Coordinates></Annotation>
</Annotations><AnnotationGroups /></ASAP_Annotations>"""
    p = tmp_path / "a.xml"
    p.write_text(xml)
    ann = load_annotations(p, *CLASSES)
    assert len(ann.cancer) == 1 and len(ann.exclude) == 1
    assert polygon_area(ann.cancer, "a.xml") == 41 * 41  # sorted by Order; the edges' pixels included


@pytest.mark.parametrize(
    "text,match",
    [
        (
            '{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1]]]}, '
            '"properties": {"classification": {"name": "Tumor"}}}',
            "malformed coordinates|>= 3 finite",
        ),
        (  # numbers as text, and true/false, are no coordinates (numpy would read them as 12.0 and 1.0)
            '{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[["0", "0"], ["9", "0"], '
            '["9", "9"]]]}, "properties": {"classification": {"name": "Tumor"}}}',
            "malformed coordinates \\(not all numbers",
        ),
        (
            '{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[true, false], [9, 0], '
            '[9, 9]]]}, "properties": {"classification": {"name": "Tumor"}}}',
            "malformed coordinates \\(not all numbers",
        ),
        ('{"type": "Topology"}', "malformed GeoJSON"),
        (
            '{"type": "Feature", "properties": {"classification": {"name": "Tumor"}}}',
            "without a valid 'geometry'",
        ),
        (
            '{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "Polygon", '
            '"coordinates": [[[0, 0], [1, 0], [1, 1]]]}, "properties": {"classification": {"name": "Tumour-ish"}}}]}',
            "unknown annotation class 'Tumour-ish'",
        ),
    ],
)
def test_geojson_errors_name_the_file_and_feature(tmp_path, text, match):
    p = tmp_path / "bad.geojson"
    p.write_text(text)
    with pytest.raises(InputError, match=match) as exc:
        load_annotations(p, *CLASSES)
    assert "bad.geojson" in str(exc.value)


TUMOR = {"classification": {"name": "Tumor"}}
BIG = 1e39  # beyond float32: cv2's float32 area would be inf


@pytest.mark.parametrize(
    "geometry,properties,match",
    [
        ({"type": "Polygon", "coordinates": []}, TUMOR, r"feature 0: a polygon without rings"),
        ({"type": "MultiPolygon", "coordinates": [[]]}, TUMOR, r"feature 0: a polygon without rings"),
        ({"type": "MultiPolygon", "coordinates": []}, TUMOR, r"feature 0: a MultiPolygon without polygons"),
        (
            {"type": "GeometryCollection", "geometries": []},
            TUMOR,
            r"feature 0: a GeometryCollection without geometries",
        ),
        (
            {"type": "Polygon", "coordinates": [SQUARE]},
            {"objectType": [1]},
            r"'objectType' must be text, got list",
        ),
        (
            {"type": "Polygon", "coordinates": [[[1e300, 0], [0, 1e300], [1e300, 1e300]]]},
            TUMOR,
            r"feature 0: a coordinate beyond \d+ pixels \(1e\+300\)",
        ),
        (
            {"type": "Polygon", "coordinates": [[[BIG, 0], [0, BIG], [BIG, BIG]]]},
            TUMOR,
            "a coordinate beyond",
        ),
    ],
)
def test_empty_polygons_odd_object_types_and_huge_coordinates_are_one_line_errors(
    tmp_path, geometry, properties, match
):
    p = tmp_path / "bad.geojson"
    p.write_text(json.dumps({"type": "Feature", "geometry": geometry, "properties": properties}))
    with pytest.raises(InputError, match=match) as exc:
        load_annotations(p, *CLASSES)
    assert str(exc.value).startswith(str(p)) and "\n" not in str(exc.value)


def test_asap_coordinates_beyond_float32_are_refused(tmp_path):
    p = tmp_path / "bad.xml"
    coords = "".join(
        f'<Coordinate Order="{i}" X="{x}" Y="{y}"/>'
        for i, (x, y) in enumerate([(BIG, 0), (0, BIG), (BIG, BIG)])
    )
    p.write_text(
        '<ASAP_Annotations><Annotations><Annotation Name="a" Type="Polygon" PartOfGroup="_0">'
        f"<Coordinates>{coords}</Coordinates></Annotation></Annotations></ASAP_Annotations>"
    )
    with pytest.raises(InputError, match=f"{p} Annotation 0 .*a coordinate beyond"):
        load_annotations(p, *CLASSES)


def test_custom_cancer_classes_and_prefix_patterns(tmp_path):
    feats = [
        feature({"type": "Polygon", "coordinates": [SQUARE]}, {"name": "IDC grade 2"}),
        feature({"type": "Polygon", "coordinates": [SQUARE]}, {"name": "Region 3"}),
    ]
    p = tmp_path / "c.geojson"
    p.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    ann = load_annotations(p, ("IDC*",), DEFAULT_IGNORE_CLASSES, ())
    assert len(ann.cancer) == 1 and np.allclose(ann.cancer[0][0][:4], SQUARE[:4])


OUTSIDE_HOLE = [[-10, -10], [60, -10], [60, 60], [-10, 60], [-10, -10]]  # covers the whole SQUARE


@pytest.mark.parametrize(
    "geometry,match",
    [
        # not a GeoJSON geometry type: it may enclose an area, so it is not ignored as a point or line
        (
            {"type": "Polgon", "coordinates": [SQUARE]},
            r"feature 0: geometry type 'Polgon' is not one of GeoJSON's",
        ),
        (
            {"type": ["Polygon"], "coordinates": [SQUARE]},
            r"feature 0: geometry type \['Polygon'\] is not one",
        ),
        # a closed ring of 3 positions has 2 distinct points: no area, an outline the export lost
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [40, 40], [0, 0]]]},
            r"feature 0: a polygon ring needs >= 3",
        ),
        (
            {"type": "Polygon", "coordinates": [SQUARE, [[10, 10], [20, 20], [10, 10]]]},
            r"feature 0: a polygon ring",
        ),
        # a hole beyond its outline would erase the whole outline's cancer without a word
        ({"type": "Polygon", "coordinates": [SQUARE, OUTSIDE_HOLE]}, r"feature 0: hole 1 reaches outside"),
        (
            {
                "type": "MultiPolygon",
                "coordinates": [[SQUARE], [[[100, 0], [120, 0], [120, 20], [100, 0]], HOLE]],
            },
            r"feature 0: hole 1 reaches outside",
        ),
    ],
)
def test_a_cancer_outline_that_would_vanish_is_refused(tmp_path, geometry, match):
    p = tmp_path / "bad.geojson"
    p.write_text(json.dumps({"type": "Feature", "geometry": geometry, "properties": TUMOR}))
    with pytest.raises(InputError, match=match) as exc:
        load_annotations(p, *CLASSES)
    assert str(exc.value).startswith(str(p)) and "\n" not in str(exc.value)


def test_points_lines_open_triangles_and_inner_holes_still_read(tmp_path):
    feats = [
        feature({"type": "LineString", "coordinates": [[0, 0], [5, 5]]}, {"name": "Tumor"}),
        feature({"type": "MultiPoint", "coordinates": [[0, 0], [5, 5]]}, {"name": "Tumor"}),
        feature({"type": "Polygon", "coordinates": [[[0, 0], [9, 0], [9, 9]]]}, {"name": "Tumor"}),  # open
        feature({"type": "Polygon", "coordinates": [SQUARE, HOLE]}, {"name": "Tumor"}),
    ]
    p = tmp_path / "ok.geojson"
    p.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    ann = load_annotations(p, *CLASSES)
    assert len(ann.cancer) == 2 and [len(poly) for poly in ann.cancer] == [1, 2]
    assert sum("marks no area" in w for w in ann.warnings) == 2
