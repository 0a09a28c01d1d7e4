"""Annotation files a size under the limit allows, and syntax Python reads too freely: rings of hundreds of
thousands of vertices are checked (holes inside their outline, not crossing it, not the outline again)
in seconds, where the checks compared every vertex with every edge for hours; rings too dense to check,
and an outline zigzagging across the slide, are refused in one line naming the file; ASAP coordinates
must be decimal numbers (not ``1_0`` or `` 12``); a key written twice where it makes a GeoJSON annotation
ambiguous is refused naming the file and the key."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_runtime.errors import InputError
from registration.annotation_holes import MAX_CHECK_PAIRS
from registration.annotation_raster import MAX_ROW_CROSSINGS, rasterise
from registration.annotations import load_annotations

CLASSES = (["Tumor"], ["Stroma"], [])
TUMOR = {"objectType": "annotation", "classification": {"name": "Tumor"}}
SQUARE = [[0, 0], [100, 0], [100, 100], [0, 100], [0, 0]]
CENTRE = (60_000.0, 60_000.0)


def _circle(n: int, radius: float, centre=CENTRE, decimals: int = 2) -> list:
    """A closed ring of ``n`` vertices on a circle, rounded to 2 decimals as QuPath writes them."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ring = np.round(np.stack([centre[0] + radius * np.cos(t), centre[1] + radius * np.sin(t)], 1), decimals)
    return ring.tolist() + ring[:1].tolist()


def _write(path, *rings, properties=TUMOR):
    feature = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": list(rings)}}
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": [dict(feature, properties=properties)]})
    )
    return path


def _one_line(err, prefix: str) -> None:
    assert str(err.value).startswith(prefix) and "\n" not in str(err.value), str(err.value)


# the old checks took ~2 minutes for 1e5 vertices a ring and grew with the square: hours at 1e6
@pytest.mark.timeout(60)
def test_an_outline_and_hole_of_200000_vertices_each_are_read(tmp_path):
    n = 200_000
    radius = n / (2 * np.pi)  # vertices ~1 px apart, as a traced outline's
    p = _write(tmp_path / "big.geojson", _circle(n, radius), _circle(n, 0.8 * radius))
    ann = load_annotations(p, *CLASSES)
    assert len(ann.cancer) == 1 and [len(r) for r in ann.cancer[0]] == [n + 1, n + 1]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "hole, message",
    [
        # a hole poking 3 px past its outline at one spot: a vertex outside, edges crossing
        pytest.param("off-centre", "hole 1 reaches outside the outer ring of polygon 0", id="crossing"),
        pytest.param("reversed", "hole 1 of polygon 0 is its outer ring again", id="outline-again"),
    ],
)
def test_a_large_hole_that_crosses_its_outline_or_is_it_again_is_refused(tmp_path, hole, message):
    n = 100_000
    radius = n / (2 * np.pi)
    outline = _circle(n, radius)
    if hole == "reversed":
        ring = outline[::-1]
    else:
        ring = _circle(n, radius - 10, (CENTRE[0] + 13, CENTRE[1]))
    p = _write(tmp_path / "big.geojson", outline, ring)
    with pytest.raises(InputError, match=message) as err:
        load_annotations(p, *CLASSES)
    _one_line(err, f"{p} feature 0: ")


@pytest.mark.timeout(60)
def test_rings_far_denser_than_a_drawn_outline_are_refused_not_checked_for_hours(tmp_path):
    # 200,000 vertices on a circle 63 px round (unrounded: 0.0003 px apart), its hole half a pixel
    # inside: each piece of the hole meets thousands of the outline's, billions of comparisons in all
    rings = _circle(200_000, 10.0, decimals=12), _circle(200_000, 9.5, decimals=12)
    p = _write(tmp_path / "dense.geojson", *rings)
    with pytest.raises(InputError, match=f"hole 1 of polygon 0 .* over the {MAX_CHECK_PAIRS} limit") as err:
        load_annotations(p, *CLASSES)
    _one_line(err, f"{p} feature 0: ")


@pytest.mark.timeout(60)
def test_an_outline_zigzagging_across_the_slide_is_refused_when_rasterised(tmp_path):
    n = 100_000  # each edge crosses ~4000 pixel rows: 4e8 crossings, which took minutes and gigabytes
    zigzag = np.stack([np.linspace(0, 4000, n), np.where(np.arange(n) % 2, 4000.0, 1.0)], 1).tolist()
    p = _write(tmp_path / "zigzag.geojson", zigzag + [[4000, 4090], [0, 4090], zigzag[0]])
    ann = load_annotations(p, *CLASSES)  # no hole to check: read
    with pytest.raises(InputError, match=f"over the {MAX_ROW_CROSSINGS} limit") as err:
        rasterise(ann.cancer, (4096, 4096), 1.0)
    _one_line(err, f"{p}: an outline of {n + 3} vertices crosses")


def _asap(path, x: str = "0", order: str = "0"):
    coords = [(order, x, "0"), ("1", "100", "0"), ("2", "100", "100"), ("3", "0", "100")]
    path.write_text(
        '<?xml version="1.0"?><ASAP_Annotations><Annotations>'
        '<Annotation Name="t" Type="Polygon" PartOfGroup="Tumor"><Coordinates>'
        + "".join(f'<Coordinate Order="{o}" X="{cx}" Y="{cy}"/>' for o, cx, cy in coords)
        + "</Coordinates></Annotation></Annotations></ASAP_Annotations>"
    )
    return path


@pytest.mark.parametrize("x", ["0", "-0.0", "+3", "1.5", ".5", "5.", "1.2e+01", "1E1"])
def test_asap_coordinates_in_decimal_syntax_are_read(tmp_path, x):
    ann = load_annotations(_asap(tmp_path / "core.xml", x=x), *CLASSES)
    assert ann.cancer[0][0][0, 0] == float(x)


@pytest.mark.parametrize(
    "x",
    ["1_0", " 12", "12 ", "", "nan", "inf", "1,5", "0x10", "\u0663", "1e", "--1", "1.2.3"],
)
def test_an_asap_coordinate_float_reads_but_no_exporter_writes_is_refused(tmp_path, x):
    p = _asap(tmp_path / "core.xml", x=x)
    with pytest.raises(
        InputError, match=r"Coordinate 0: malformed Coordinate \(X=.* is not a decimal number\)"
    ) as err:
        load_annotations(p, *CLASSES)
    _one_line(err, f"{p} Annotation 0 (t) Coordinate 0: ")


@pytest.mark.parametrize("order", ["1_0", " 0", "0.0", "9" * 40])
def test_an_asap_order_that_is_not_a_whole_number_is_refused(tmp_path, order):
    p = _asap(tmp_path / "core.xml", order=order)
    with pytest.raises(InputError, match=r"malformed Coordinate \(Order=.* is not a whole number\)") as err:
        load_annotations(p, *CLASSES)
    _one_line(err, f"{p} Annotation 0 (t) Coordinate 0: ")


def test_an_asap_coordinate_without_x_is_refused(tmp_path):
    p = tmp_path / "core.xml"
    p.write_text(_asap(p).read_text().replace('X="0" ', "", 1))
    with pytest.raises(InputError, match=r"Coordinate 0: malformed Coordinate \(no X attribute"):
        load_annotations(p, *CLASSES)


FEATURE = (
    '{"type": "Feature", "properties": {"objectType": "annotation", %s"classification": {%s"name": "Tumor"}}, '
    '"geometry": {"type": "Polygon", %s"coordinates": [[[0, 0], [100, 0], [100, 100], [0, 0]]]}%s}'
)


@pytest.mark.parametrize(
    "text, key, what",
    [
        (
            FEATURE % ("", "", '"coordinates": [[[0, 0], [9, 0], [9, 9], [0, 0]]], ', ""),
            "coordinates",
            "geometry",
        ),
        (FEATURE % ("", '"name": "Stroma", ', "", ""), "name", "classification"),
        (FEATURE % ('"classification": {"name": "Stroma"}, ', "", "", ""), "classification", "properties"),
        (
            FEATURE % ("", "", "", ', "geometry": {"type": "Point", "coordinates": [0, 0]}'),
            "geometry",
            "feature",
        ),
    ],
    ids=[
        "coordinates-in-geometry",
        "name-in-classification",
        "classification-in-properties",
        "geometry-in-feature",
    ],
)
def test_a_key_written_twice_where_it_makes_the_annotation_ambiguous_is_refused(tmp_path, text, key, what):
    p = tmp_path / "core.geojson"
    p.write_text(f'{{"type": "FeatureCollection", "features": [{text}]}}')
    with pytest.raises(InputError, match=f"key '{key}' written twice in the {what}") as err:
        load_annotations(p, *CLASSES)
    _one_line(err, f"{p} feature 0: ")


def test_features_written_twice_in_a_feature_collection_are_refused(tmp_path):
    p = tmp_path / "core.geojson"
    feature = FEATURE % ("", "", "", "")
    p.write_text(f'{{"type": "FeatureCollection", "features": [{feature}], "features": []}}')
    with pytest.raises(InputError, match="key 'features' written twice in the FeatureCollection") as err:
        load_annotations(p, *CLASSES)
    _one_line(err, f"{p}: ")


def test_a_key_written_twice_in_measurements_changes_no_annotation_and_is_read(tmp_path):
    p = tmp_path / "core.geojson"
    measured = FEATURE.replace('"objectType"', '"measurements": {"Area": 1, "Area": 2}, "objectType"')
    p.write_text(f'{{"type": "FeatureCollection", "features": [{measured % ("", "", "", "")}]}}')
    assert len(load_annotations(p, *CLASSES).cancer) == 1
