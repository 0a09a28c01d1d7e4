"""What an annotation file's structure may hold: QuPath object types match case aside and without
surrounding blanks, and one QuPath does not know is refused (skipped, a misspelt annotation would make
the core cancer-free); ASAP XML elements are the ones ASAP writes; a file's format is told by its
content or, when that tells nothing, by its suffix."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import yaml
from cli import sonomap
from test_annotations_qupath_objects import write

from edge_runtime.errors import InputError
from registration.annotations import load_annotations
from registration.case import DEFAULT_CANCER_CLASSES, DEFAULT_EXCLUDE_CLASSES, DEFAULT_IGNORE_CLASSES
from registration.sim.slide import write_asap_xml

CLASSES = (DEFAULT_CANCER_CLASSES, DEFAULT_IGNORE_CLASSES, DEFAULT_EXCLUDE_CLASSES)
SQUARE = [[10, 10], [50, 10], [50, 50], [10, 50], [10, 10]]
WHOLE = [[0, 0], [200, 0], [200, 100], [0, 100], [0, 0]]


def feature(properties: dict, ring=SQUARE, **top) -> dict:
    props = {"classification": {"name": "Tumor"}, **properties}
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": props,
        **top,
    }


def one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text and "Traceback" not in text, text
    return text


@pytest.mark.parametrize(
    "object_type", ["Annotation", "ANNOTATION", "annotation ", "\tannotation\n", "PathAnnotationObject"]
)
def test_an_annotation_object_type_matches_case_aside_and_without_blanks(tmp_path, object_type):
    p = write(tmp_path, [feature({"objectType": "annotation"}), feature({"objectType": object_type})])
    ann = load_annotations(p, *CLASSES)
    assert (len(ann.cancer), ann.n_objects, ann.n_skipped, ann.warnings) == (2, 2, 0, [])


@pytest.mark.parametrize(
    "object_type",
    [
        "detection",
        "Detection",
        "CELL",
        " tile",
        "tmaCore",
        "tma_core",
        "TMACoreObject",
        "root",
        "PathCellObject",
    ],
)
def test_every_object_type_qupath_knows_but_annotation_is_skipped(tmp_path, object_type):
    p = write(tmp_path, [feature({"objectType": "annotation"}), feature({"objectType": object_type}, WHOLE)])
    ann = load_annotations(p, *CLASSES)
    assert (len(ann.cancer), ann.n_objects, ann.n_skipped) == (1, 1, 1)
    assert np.array_equal(ann.cancer[0][0], np.array(SQUARE, float))


@pytest.mark.parametrize("object_type", ["", "  ", "foo", "Anotation", "annotations", "unknown", "region"])
def test_an_object_type_qupath_does_not_know_is_refused_naming_file_feature_and_value(tmp_path, object_type):
    p = write(tmp_path, [feature({"objectType": "annotation"}), feature({"objectType": object_type})])
    with pytest.raises(InputError) as err:
        load_annotations(p, *CLASSES)
    assert one_line(err).startswith(f"{p} feature 1: unknown objectType {json.dumps(object_type)}; ")


def test_the_older_object_type_key_is_read_as_qupath_reads_it(tmp_path):
    """QuPath reads ``object_type`` when ``objectType`` is absent: a detection so typed is no outline."""
    p = write(tmp_path, [feature({"objectType": "annotation"}), feature({"object_type": "detection"}, WHOLE)])
    ann = load_annotations(p, *CLASSES)
    assert (len(ann.cancer), ann.n_skipped) == (1, 1)
    p = write(tmp_path, [feature({"object_type": "annotaton"})])
    with pytest.raises(InputError, match=rf"^{p} feature 0: unknown object_type \"annotaton\""):
        load_annotations(p, *CLASSES)


def test_a_feature_whose_type_is_not_feature_is_refused(tmp_path):
    p = write(tmp_path, [feature({"objectType": "annotation"}), {**feature({}), "type": "Featur"}])
    with pytest.raises(InputError) as err:
        load_annotations(p, *CLASSES)
    assert one_line(err) == f'{p} feature 1: \'type\' is "Featur", expected "Feature"'


def _register(case_yaml_of, geo: dict, name: str, out):
    """``sonomap register`` on the simulated case with its annotation replaced by ``geo``."""
    (case_yaml_of.parent / f"{name}.geojson").write_text(json.dumps(geo))
    case = yaml.safe_load(case_yaml_of.read_text())
    case["pathology"]["annotations"] = f"{name}.geojson"
    path = case_yaml_of.parent / f"{name}.yaml"
    path.write_text(yaml.safe_dump(case))
    return sonomap("register", path, "--out", out, check=False), path.parent / f"{name}.geojson"


def test_register_labels_cancer_whatever_the_case_of_object_type_and_refuses_a_misspelt_one(
    simulated_case, tmp_path
):
    geo = json.loads((simulated_case / "core.geojson").read_text())
    outlines = [f for f in geo["features"] if f["properties"].get("objectType") == "annotation"]
    assert outlines  # the simulated case's cancer outlines
    base, _ = _register(simulated_case / "case.yaml", geo, "types_base", tmp_path / "base")
    assert base.returncode == 0, base.stderr[-2000:]
    for f in outlines:
        f["properties"]["objectType"] = "Annotation"
    upper, _ = _register(simulated_case / "case.yaml", geo, "types_upper", tmp_path / "upper")
    assert upper.returncode == 0, upper.stderr[-2000:]
    labels = [cv2.imread(str(tmp_path / d / "label.png"), cv2.IMREAD_GRAYSCALE) for d in ("base", "upper")]
    assert (labels[0] == 1).sum() > 0 and np.array_equal(*labels)  # the cancer is there, the same
    outlines[0]["properties"]["objectType"] = "annotaton"
    typo, geo_path = _register(simulated_case / "case.yaml", geo, "types_typo", tmp_path / "typo")
    i = geo["features"].index(outlines[0])
    assert typo.returncode == 2 and "Traceback" not in typo.stderr
    err = typo.stderr.strip()
    assert "\n" not in err and f'{geo_path} feature {i}: unknown objectType "annotaton"' in err
    assert not (tmp_path / "typo" / "label.png").exists()


def asap_file(tmp_path, body: str, name: str = "core.xml"):
    p = tmp_path / name
    p.write_text(f'<?xml version="1.0"?><ASAP_Annotations>{body}</ASAP_Annotations>')
    return p


COORDS = "".join(f'<Coordinate Order="{i}" X="{x}" Y="{y}"/>' for i, (x, y) in enumerate(SQUARE[:4]))
ANNOTATION = f'<Annotation Name="t" Type="Polygon" PartOfGroup="Tumor"><Coordinates>{COORDS}</Coordinates></Annotation>'


@pytest.mark.parametrize(
    "body,element,parent",
    [
        (f"<annotations>{ANNOTATION}</annotations>", "annotations", "ASAP_Annotations"),
        (
            f"<Annotations>{ANNOTATION.replace('Annotation', 'annotation')}</Annotations>",
            "annotation",
            "Annotations",
        ),
        (ANNOTATION, "Annotation", "ASAP_Annotations"),  # no <Annotations> around it
        (f"<Annotations>{ANNOTATION}</Annotations><Groups/>", "Groups", "ASAP_Annotations"),
        (
            f"<Annotations>{ANNOTATION.replace('Coordinates>', 'coordinates>')}</Annotations>",
            "coordinates",
            "Annotation",
        ),
        (
            f"<Annotations>{ANNOTATION.replace('<Coordinate ', '<Point ')}</Annotations>",
            "Point",
            "Coordinates",
        ),
        (
            "<Annotations/><AnnotationGroups><group Name='Tumor'/></AnnotationGroups>",
            "group",
            "AnnotationGroups",
        ),
    ],
)
def test_an_asap_element_asap_does_not_write_is_refused_naming_file_and_element(
    tmp_path, body, element, parent
):
    p = asap_file(tmp_path, body)
    with pytest.raises(InputError) as err:
        load_annotations(p, *CLASSES)
    text = one_line(err)
    assert text.startswith(f"{p}") and f"element <{element}> in <{parent}>, expected <" in text, text


def test_a_real_asap_layout_with_groups_and_attributes_is_read(tmp_path):
    body = (
        f"<!-- exported --><Annotations>{ANNOTATION}</Annotations><AnnotationGroups>"
        '<Group Name="Tumor" PartOfGroup="None" Color="#64FE2E"><Attributes><Attribute a="b"/></Attributes>'
        "</Group></AnnotationGroups>"
    )
    ann = load_annotations(asap_file(tmp_path, body), *CLASSES)
    assert (len(ann.cancer), ann.n_objects, ann.warnings) == (1, 1, [])
    assert np.array_equal(ann.cancer[0][0], np.array(SQUARE[:4], float))


def test_the_simulators_camelyon_style_asap_file_is_read(simulated_case, tmp_path):
    geo = json.loads((simulated_case / "core.geojson").read_text())
    cancer = [f for f in geo["features"] if f["properties"]["classification"]["name"] == "Tumor"]
    assert cancer
    polys = [[np.array(r, float) for r in f["geometry"]["coordinates"]] for f in cancer]

    class Layout:  # what write_asap_xml reads of a SlideLayout
        cancer, extras = polys, {}

    write_asap_xml(Layout(), tmp_path / "core.xml")
    ann = load_annotations(tmp_path / "core.xml", *CLASSES)
    assert len(ann.cancer) == len(polys) and ann.n_objects == sum(len(p) for p in polys)


def test_asap_orders_written_twice_are_refused_and_missing_ones_keep_file_order(tmp_path):
    twice = ANNOTATION.replace('Order="3"', 'Order="1"')
    p = asap_file(tmp_path, f"<Annotations>{twice}</Annotations>")
    with pytest.raises(InputError) as err:
        load_annotations(p, *CLASSES)
    assert one_line(err).startswith(
        f"{p} Annotation 0 (t) Coordinate 3: malformed Coordinate (Order=1 written twice"
    )
    none = ANNOTATION
    for i in range(4):
        none = none.replace(f'Order="{i}" ', "")
    ann = load_annotations(asap_file(tmp_path, f"<Annotations>{none}</Annotations>"), *CLASSES)
    assert np.array_equal(ann.cancer[0][0], np.array(SQUARE[:4], float))


@pytest.mark.parametrize("content", [b"", b"   \n", b"hello", b"\x00\x01\x02", b"\xef\xbb\xbf"])
def test_an_xml_file_that_is_empty_or_not_xml_is_called_asap_xml(tmp_path, content):
    p = tmp_path / "core.XML"
    p.write_bytes(content)
    with pytest.raises(InputError) as err:
        load_annotations(p, *CLASSES)
    assert one_line(err).startswith(f"{p}: malformed ASAP XML (")
    q = tmp_path / "core.geojson"  # the same bytes named GeoJSON are malformed GeoJSON
    q.write_bytes(content)
    with pytest.raises(InputError, match=rf"^{q}: malformed GeoJSON \("):
        load_annotations(q, *CLASSES)


def test_geojson_content_in_an_xml_named_file_is_read_as_its_content_says(tmp_path):
    p = write(tmp_path, [feature({"objectType": "annotation"})], name="core.xml")
    assert len(load_annotations(p, *CLASSES).cancer) == 1
