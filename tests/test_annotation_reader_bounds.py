"""Hostile or mistaken annotation files get one line naming the file (and the feature), never a traceback,
an unbounded read or a silently wrong class or region: an ASAP XML file over the size limit, more bytes
coming out of a file than the limit, a non-text classification name, a hole that is its outline again,
JSON numbers no float or int holds, XML encodings expat cannot take, a GeometryCollection without a
list of geometries, a ring going back and forth between two points."""

from __future__ import annotations

import json
import os
import re

import pytest

from edge_runtime.errors import InputError
from registration import annotation_text
from registration.annotation_text import MAX_ANNOTATION_BYTES
from registration.annotations import load_annotations

CLASSES = (["Tumor"], ["Stroma"], [])
TUMOR = {"objectType": "annotation", "classification": {"name": "Tumor"}}
SQUARE = [[0, 0], [100, 0], [100, 100], [0, 100], [0, 0]]
INSET = [[2, 2], [98, 2], [98, 98], [2, 98], [2, 2]]  # a hole 2 px inside the square: a real hole


def _geojson(path, *geometries, properties=TUMOR):
    feats = [{"type": "Feature", "geometry": g, "properties": properties} for g in geometries]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return path


def _polygon(*rings) -> dict:
    return {"type": "Polygon", "coordinates": list(rings)}


def _one_line(err, prefix: str) -> None:
    assert str(err.value).startswith(prefix) and "\n" not in str(err.value), str(err.value)


def test_an_asap_xml_file_over_the_limit_is_refused_before_it_is_read(tmp_path):
    """The limit GeoJSON has holds for ASAP XML too: ElementTree also takes about ten times a file's size."""
    p = tmp_path / "detections.xml"
    with open(p, "wb") as fh:
        fh.write(b'<?xml version="1.0"?><ASAP_Annotations><Annotations>')
        fh.truncate(MAX_ANNOTATION_BYTES + 1)  # sparse: no disk space, the size is what counts
    with pytest.raises(
        InputError, match=rf"{MAX_ANNOTATION_BYTES + 1} bytes \(256\.0 MiB\) of annotations"
    ) as err:
        load_annotations(p, *CLASSES)
    _one_line(err, f"{p}: ")
    assert "over the 256 MiB limit" in str(err.value) and "export the annotations alone" in str(err.value)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_no_more_than_the_limit_is_read_from_a_file_whose_size_the_file_system_does_not_know(monkeypatch):
    """/dev/zero reports 0 bytes and never ends (as a file still growing after its size was read): the
    read stops one byte past the limit, instead of taking all memory."""
    monkeypatch.setattr(annotation_text, "MAX_ANNOTATION_BYTES", 1000)
    with pytest.raises(InputError, match=r"more than 1000 bytes of annotations is over") as err:
        load_annotations("/dev/zero", *CLASSES)
    _one_line(err, "/dev/zero: ")


@pytest.mark.parametrize(
    "name,shown",
    [
        (5, "int 5"),
        (2.5, "float 2.5"),
        (True, "bool true"),
        (["Tumor"], 'list ["Tumor"]'),
        ({"a": 1}, "dict"),
    ],
)
def test_a_classification_name_that_is_not_text_is_refused(tmp_path, name, shown):
    """Stringified, 5 or true would be class '5' or 'True', which a cancer class ('T*', '5') matches."""
    props = {"objectType": "annotation", "classification": {"name": name}}
    p = _geojson(tmp_path / "core.geojson", _polygon(SQUARE), properties=props)
    with pytest.raises(
        InputError, match=rf"classification 'name' must be text .*got {re.escape(shown)}"
    ) as err:
        load_annotations(p, ("T*", "5", "2.5"), (), ())
    _one_line(err, f"{p} feature 0: ")


def test_a_null_classification_name_is_still_no_class(tmp_path):
    p = _geojson(tmp_path / "core.geojson", _polygon(SQUARE), properties={"classification": {"name": None}})
    with pytest.raises(InputError, match="feature 0: an outline that has no classification"):
        load_annotations(p, *CLASSES)


@pytest.mark.parametrize(
    "hole",
    [
        pytest.param(SQUARE, id="same"),
        pytest.param(SQUARE[2:-1] + SQUARE[:3], id="other-start"),
        pytest.param(SQUARE[::-1], id="reversed"),
        pytest.param([[100, 100], [100, 0], [0, 0], [0, 100], [100, 100]], id="reversed-other-start"),
        pytest.param([[0, 0], [50, 0], [100, 0], [100, 100], [0, 100], [0, 0]], id="a-vertex-more"),
        pytest.param([[0.2, 0.1], [99.8, 0], [100, 100.3], [0, 99.9], [0.2, 0.1]], id="rounded"),
    ],
)
def test_a_hole_that_is_its_outline_again_is_refused(tmp_path, hole):
    """Such a hole lies inside its outline by the touching rule, and erased the whole outline's cancer."""
    p = _geojson(tmp_path / "core.geojson", _polygon(SQUARE, hole))
    with pytest.raises(InputError, match="hole 1 of polygon 0 is its outer ring again") as err:
        load_annotations(p, *CLASSES)
    _one_line(err, f"{p} feature 0: ")


def test_a_hole_that_is_its_outline_again_in_a_multipolygon_names_the_feature_and_polygon(tmp_path):
    multi = {"type": "MultiPolygon", "coordinates": [[INSET], [SQUARE, INSET, SQUARE[::-1]]]}
    p = _geojson(tmp_path / "core.geojson", _polygon(SQUARE), multi)
    with pytest.raises(InputError, match="hole 2 of polygon 1 is its outer ring again") as err:
        load_annotations(p, *CLASSES)
    _one_line(err, f"{p} feature 1: ")


@pytest.mark.parametrize(
    "hole",
    [
        pytest.param(INSET, id="inset"),
        pytest.param([[0, 0], [100, 0], [100, 100], [0, 0]], id="half-touching-three-sides"),
    ],
)
def test_a_hole_smaller_than_its_outline_is_read(tmp_path, hole):
    p = _geojson(tmp_path / "core.geojson", _polygon(SQUARE, hole))
    ann = load_annotations(p, *CLASSES)
    assert len(ann.cancer) == 1 and len(ann.cancer[0]) == 2


def test_a_coordinate_no_float_holds_is_refused(tmp_path):
    huge = 10**400  # valid JSON, an int of 401 digits: float() overflowed with a traceback
    p = _geojson(tmp_path / "core.geojson", _polygon([[huge, 0], [100, 0], [100, 100], [huge, 0]]))
    with pytest.raises(InputError, match=r"a coordinate beyond 67108864 pixels") as err:
        load_annotations(p, *CLASSES)
    _one_line(err, f"{p} feature 0: ")


def test_a_number_of_thousands_of_digits_is_malformed_geojson(tmp_path):
    p = tmp_path / "core.geojson"
    p.write_text('{"type": "FeatureCollection", "features": [], "n": ' + "7" * 5000 + "}")
    with pytest.raises(InputError, match=r"malformed GeoJSON \(a number of more than \d+ digits\)") as err:
        load_annotations(p, *CLASSES)
    _one_line(err, f"{p}: ")


@pytest.mark.parametrize("encoding", ["utf-32", "idna"])
def test_an_xml_encoding_expat_cannot_take_is_malformed_asap_xml(tmp_path, encoding):
    p = tmp_path / "core.xml"
    p.write_text(f'<?xml version="1.0" encoding="{encoding}"?><ASAP_Annotations/>')
    with pytest.raises(InputError, match=r"malformed ASAP XML \(encoding: ") as err:
        load_annotations(p, *CLASSES)
    _one_line(err, f"{p}: ")


@pytest.mark.parametrize("geometries", [None, 5, "Polygon", {"type": "Polygon"}])
def test_a_geometry_collection_without_a_list_of_geometries_is_refused(tmp_path, geometries):
    p = _geojson(tmp_path / "core.geojson", {"type": "GeometryCollection", "geometries": geometries})
    with pytest.raises(InputError, match="a GeometryCollection whose 'geometries' is not a list") as err:
        load_annotations(p, *CLASSES)
    _one_line(err, f"{p} feature 0: ")


@pytest.mark.parametrize(
    "ring",
    [
        pytest.param([[0, 0], [100, 100], [0, 0], [100, 100], [0, 0]], id="two-points-back-and-forth"),
        pytest.param([[5, 5], [5, 5], [5, 5], [5, 5]], id="one-point-four-times"),
    ],
)
def test_a_ring_of_fewer_than_three_distinct_points_is_refused(tmp_path, ring):
    """Enough positions, no area: the outline would drop out of the label and the placement check."""
    p = _geojson(tmp_path / "core.geojson", _polygon(ring))
    with pytest.raises(InputError, match=r"needs >= 3 distinct points .*distinct") as err:
        load_annotations(p, *CLASSES)
    _one_line(err, f"{p} feature 0: ")


def test_a_ring_of_collinear_points_is_refused_not_painted_as_a_line(tmp_path):
    line = [[3000, 700], [3100, 700], [3200, 700.3], [3000, 700]]  # 3 distinct points within 0.5 px of a line
    with pytest.raises(InputError) as err:
        load_annotations(_geojson(tmp_path / "a.geojson", _polygon(line)), *CLASSES)
    _one_line(err, f"{tmp_path / 'a.geojson'} feature 0: a polygon ring whose points all lie on one line")
    thin = [[3000, 700], [3100, 700], [3200, 701], [3000, 700]]  # 1 px off the line: a thin sliver, kept
    assert len(load_annotations(_geojson(tmp_path / "b.geojson", _polygon(thin)), *CLASSES).cancer) == 1
