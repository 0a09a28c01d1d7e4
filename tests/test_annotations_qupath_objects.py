"""Annotation files as QuPath 0.2, wsinfer and pathologists write them: object types named in the
feature's "id" (detections, cells and tiles are no outlines, as with objectType), class names holding
``[ ] ?`` (matched literally, only a trailing ``*`` is a prefix), and ignored classes whose outline is
empty or damaged (skipped unread, the same in GeoJSON and ASAP XML)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import yaml

from edge_runtime.errors import InputError
from registration.annotation_raster import rasterise
from registration.annotations import load_annotations
from registration.case import DEFAULT_CANCER_CLASSES, DEFAULT_EXCLUDE_CLASSES, DEFAULT_IGNORE_CLASSES
from registration.pipeline import register_case

CLASSES = (DEFAULT_CANCER_CLASSES, DEFAULT_IGNORE_CLASSES, DEFAULT_EXCLUDE_CLASSES)
SQUARE = [[10, 10], [50, 10], [50, 50], [10, 50], [10, 10]]
WHOLE = [[0, 0], [200, 0], [200, 100], [0, 100], [0, 0]]  # a detection covering the whole "slide"
CELL = [[60, 60], [64, 60], [64, 64], [60, 60]]
SHAPE = (100, 200)
QUPATH_04_ID = "b2a20e35-5182-48e8-8338-2041628755e4"  # QuPath 0.4 writes a UUID as the id


def feature(cls: str | None, ring: list, **top) -> dict:
    """A QuPath feature; ``top`` adds top-level keys (the legacy "id") or ``properties``."""
    props = {"isLocked": False, "measurements": []}
    if cls is not None:
        props["classification"] = {"name": cls, "colorRGB": -3670016}
    props.update(top.pop("properties", {}))
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": props,
        **top,
    }


def write(tmp_path, feats: list, name: str = "a.geojson"):
    p = tmp_path / name
    p.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return p


@pytest.mark.parametrize("type_id", ["PathDetectionObject", "PathCellObject", "PathTileObject"])
def test_qupath_02_detections_cells_and_tiles_are_no_outlines(tmp_path, type_id):
    p = write(
        tmp_path,
        [
            feature("Tumor", SQUARE, id="PathAnnotationObject"),
            feature("Tumor", WHOLE, id=type_id),  # a classifier's Tumor object over the whole slide
            feature("Negative", CELL, id=type_id),  # a class no case lists: must not fail the case
            feature(None, CELL, id=type_id),  # wsinfer's tiles carry no class: no "unclassified" warning
        ],
    )
    ann = load_annotations(p, *CLASSES)
    assert (len(ann.cancer), ann.n_objects, ann.n_skipped, ann.warnings) == (1, 1, 3, [])
    assert int(rasterise(ann.cancer, SHAPE, 1.0).sum()) == 41 * 41  # the outline only, not the whole slide


@pytest.mark.parametrize("object_type", ["detection", "cell", "tile"])
def test_newer_qupath_object_types_are_skipped_the_same_way(tmp_path, object_type):
    p = write(
        tmp_path,
        [
            feature("Tumor", SQUARE, id=QUPATH_04_ID, properties={"objectType": "annotation"}),
            feature("Tumor", WHOLE, id=QUPATH_04_ID, properties={"objectType": object_type}),
            feature("Tumor", WHOLE, id=QUPATH_04_ID),  # no type and a UUID: a hand-made outline counts
        ],
    )
    ann = load_annotations(p, *CLASSES)
    assert (len(ann.cancer), ann.n_objects, ann.n_skipped) == (2, 2, 1)


def test_a_file_of_detections_only_says_what_it_skipped(tmp_path):
    p = write(tmp_path, [feature("Tumor", WHOLE, id="PathDetectionObject")] * 3)
    ann = load_annotations(p, *CLASSES)
    assert ann.cancer == [] and ann.warnings == [
        f"{p}: empty annotation file (no annotation objects; 3 detection/cell/tile/TMA core object(s) skipped): "
        "the core is labelled cancer-free"
    ]


def test_a_non_text_type_id_is_no_object_type(tmp_path):
    p = write(tmp_path, [feature("Tumor", SQUARE, id=7), feature("Tumor", SQUARE, id=["PathCellObject"])])
    assert len(load_annotations(p, *CLASSES).cancer) == 2


def test_class_names_with_brackets_and_question_marks_are_matched_literally(tmp_path):
    names = ["Tumor [IDC]", "Grade 3?", "Tumour (invasive)"]
    p = write(tmp_path, [feature(n, SQUARE) for n in names])
    ann = load_annotations(p, names, DEFAULT_IGNORE_CLASSES, ())
    assert len(ann.cancer) == 3 and ann.warnings == []
    # and nothing else: as fnmatch patterns "[IDC]" matched one letter and "?" any character
    for other in ("Tumor I", "Grade 3x"):
        p = write(tmp_path, [feature(other, SQUARE)])
        with pytest.raises(InputError, match=f"feature 0: unknown annotation class '{other}'") as err:
            load_annotations(p, names, DEFAULT_IGNORE_CLASSES, ())
        assert str(err.value).startswith(f"{p} feature 0: ")


def test_only_a_trailing_star_is_a_prefix_wildcard(tmp_path):
    p = write(tmp_path, [feature("Tumor [IDC] grade 2", SQUARE), feature("Region 3", SQUARE)])
    ann = load_annotations(p, ("tumor [idc]*",), ("Region*",), ())
    assert len(ann.cancer) == 1  # case aside, the prefix is literal too; "Region 3" is ignored
    p = write(tmp_path, [feature("Tumor XL", SQUARE)])
    with pytest.raises(InputError, match="unknown annotation class 'Tumor XL'"):
        load_annotations(p, ("Tumor*X",), (), ())  # a star inside the name is a character, not a wildcard


def asap(group: str, kind: str, points: list) -> str:
    coords = "".join(f'<Coordinate Order="{i}" X="{x}" Y="{y}"/>' for i, (x, y) in enumerate(points))
    return (
        '<?xml version="1.0"?><ASAP_Annotations><Annotations>'
        '<Annotation Name="t" Type="Polygon" PartOfGroup="Tumor"><Coordinates>'
        + "".join(f'<Coordinate Order="{i}" X="{x}" Y="{y}"/>' for i, (x, y) in enumerate(SQUARE[:4]))
        + f'</Coordinates></Annotation><Annotation Name="s" Type="{kind}" PartOfGroup="{group}">'
        f"<Coordinates>{coords}</Coordinates></Annotation></Annotations></ASAP_Annotations>"
    )


@pytest.mark.parametrize(
    "geometry,kind,points",
    [
        ({"type": "Polygon", "coordinates": []}, "Polygon", []),  # an outline the export lost
        ({"type": "Polygon", "coordinates": [[[10, 10], [20, 20]]]}, "Polygon", [(10, 10), (20, 20)]),
        ({"type": "MultiPolygon", "coordinates": []}, "Hexagon", SQUARE[:4]),  # a Type ASAP lacks
        ({"type": "Polygon", "coordinates": [[[10, 10], [20, "x"], [20, 20]]]}, "Polygon", [(10, "x")]),
        (None, "Spline", []),
    ],
)
def test_an_ignored_class_is_skipped_before_its_geometry_is_read_in_both_formats(
    tmp_path, geometry, kind, points
):
    stroma = {"type": "Feature", "geometry": geometry, "properties": {"classification": {"name": "Stroma"}}}
    geo = write(tmp_path, [feature("Tumor", SQUARE), stroma])
    xml = tmp_path / "a.xml"
    xml.write_text(asap("Stroma", kind, points))
    for p in (geo, xml):
        ann = load_annotations(p, *CLASSES)
        assert (len(ann.cancer), ann.n_objects, ann.warnings) == (1, 2, []), p.name
        assert np.array_equal(ann.cancer[0][0][:4], np.array(SQUARE[:4], float)), p.name
    # the same damage in a cancer outline is still refused, naming the feature
    tumour = dict(stroma, properties={"classification": {"name": "Tumor"}})
    with pytest.raises(InputError, match=f"^{geo} feature 1: "):
        load_annotations(write(tmp_path, [feature("Tumor", SQUARE), tumour]), *CLASSES)


def test_register_labels_a_case_the_same_with_qupath_02_detections_added(simulated_case, tmp_path):
    base = register_case(simulated_case / "case.yaml", tmp_path / "base")
    h, w = base["slide"]["level0_shape"]
    everywhere = [[0, 0], [w, 0], [w, h], [0, h], [0, 0]]  # a Tumor detection over the whole slide
    geo = json.loads((simulated_case / "core.geojson").read_text())
    geo["features"] += [feature("Tumor", everywhere, id="PathDetectionObject")]
    geo["features"] += [feature("Negative", CELL, id="PathCellObject")]
    (tmp_path / "with_detections.geojson").write_text(json.dumps(geo))
    case = yaml.safe_load((simulated_case / "case.yaml").read_text())
    case["pathology"]["annotations"] = str(tmp_path / "with_detections.geojson")
    (simulated_case / "qupath02_detections.yaml").write_text(yaml.safe_dump(case))
    rep = register_case(simulated_case / "qupath02_detections.yaml", tmp_path / "det")
    assert rep["label"] == base["label"]
    same = [cv2.imread(str(tmp_path / d / "label.png"), cv2.IMREAD_GRAYSCALE) for d in ("base", "det")]
    assert np.array_equal(*same)


def test_an_annotation_file_over_the_limit_is_refused_before_it_is_read(tmp_path):
    """A whole-slide detection export (hundreds of MB, ten times that once parsed) gets one line with
    what to export instead; the size is read from the file system, the file is never parsed."""
    from registration.annotation_text import MAX_ANNOTATION_BYTES

    p = tmp_path / "detections.geojson"
    with open(p, "wb") as fh:
        fh.write(b'{"type": "FeatureCollection", "features": [')
        fh.truncate(MAX_ANNOTATION_BYTES + 1)  # sparse: no disk space, the size is what counts
    size = rf"{MAX_ANNOTATION_BYTES + 1} bytes \(256\.0 MiB\)"
    with pytest.raises(
        InputError, match=rf"detections\.geojson: {size} of annotations is over the 256 MiB limit"
    ):
        load_annotations(p, *CLASSES)


@pytest.mark.parametrize(
    "classification,match",
    [
        # QuPath writes "names" as a list; read as a list, text would be the class of its first letter
        ({"names": "Tumor"}, r"classification 'names' must be a list of text .*got \"Tumor\""),
        ({"names": ["Tumor", 3]}, r"classification 'names' must be a list of text"),
        ({"names": {"Tumor": 1}}, r"classification 'names' must be a list of text"),
        (["Tumor"], r"'classification' must be an object or text, got list"),
    ],
)
def test_a_classification_of_a_type_qupath_never_writes_is_refused(tmp_path, classification, match):
    tumour = feature(None, SQUARE, properties={"classification": classification})
    p = write(tmp_path, [tumour])
    with pytest.raises(InputError, match=match) as err:
        load_annotations(p, ("T*",), DEFAULT_IGNORE_CLASSES, ())  # 'T' would be cancer: nothing may pass
    assert str(err.value).startswith(f"{p} feature 0: ") and "\n" not in str(err.value)


def test_qupath_class_names_lists_still_read(tmp_path):
    feats = [
        feature(None, SQUARE, properties={"classification": {"names": ["Tumor", "Positive"]}}),
        feature(None, WHOLE, properties={"classification": {"names": ["Stroma"]}}),
    ]
    ann = load_annotations(write(tmp_path, feats), *CLASSES)
    assert len(ann.cancer) == 1 and np.allclose(ann.cancer[0][0], SQUARE)
