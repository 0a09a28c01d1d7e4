"""An annotation class claimed by two of pathology.cancer_classes / exclude_classes / ignore_classes is
never resolved by list order: an exact name beats a wildcard (`exclude_classes: [Tumor excluded]`
beats `cancer_classes: ['Tumor*']`, so excluded tissue is never painted as cancer), two claims alike
are one line naming the file, the class and both lists, and one name in two lists of case.yaml is
refused when the case loads. A list given in case.yaml takes its names from the default lists."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from edge_runtime.errors import ConfigError, InputError
from registration.annotations import load_annotations
from registration.case import load_case

SQUARE = [[0, 0], [100, 0], [100, 100], [0, 100], [0, 0]]
INNER = [[20, 20], [60, 20], [60, 60], [20, 60], [20, 20]]


def _geojson(path, *features):
    feats = [
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {"classification": {"name": name}},
        }
        for name, ring in features
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return path


def test_an_exact_exclude_name_beats_a_cancer_wildcard(tmp_path):
    path = _geojson(tmp_path / "a.geojson", ("Tumor", SQUARE), ("Tumor excluded", INNER))
    ann = load_annotations(path, ["Tumor*"], [], ["Tumor excluded"])
    assert len(ann.cancer) == 1 and len(ann.exclude) == 1


def test_two_wildcards_claiming_one_class_are_refused_naming_both_lists(tmp_path):
    path = _geojson(tmp_path / "a.geojson", ("Tumor margin", SQUARE))
    with pytest.raises(InputError) as err:
        load_annotations(path, ["Tumor*"], ["Tumor m*"], [])
    message = str(err.value)
    assert message.startswith(str(path)) and "\n" not in message
    assert "'Tumor margin' matches both pathology.cancer_classes and pathology.ignore_classes" in message


@pytest.fixture()
def case(simulated_case, tmp_path):
    d = tmp_path / "case"
    shutil.copytree(simulated_case, d)
    return d


def _with_pathology(case, **lists):
    raw = yaml.safe_load((case / "case.yaml").read_text())
    raw["pathology"].update(lists)
    (case / "case.yaml").write_text(yaml.safe_dump(raw))
    return case / "case.yaml"


def test_one_name_in_two_given_lists_is_refused_when_the_case_loads(case):
    path = _with_pathology(case, cancer_classes=["Tumor"], exclude_classes=["tumor"])
    with pytest.raises(ConfigError) as err:
        load_case(path)
    assert str(err.value) == (
        f"{path}: 'tumor' is in both pathology.cancer_classes and pathology.exclude_classes; give it one role"
    )


def test_a_given_list_takes_its_names_from_the_defaults(case):
    spec = load_case(
        _with_pathology(case, cancer_classes=["Tumor", "Other"])
    )  # "Other" is ignored by default
    assert "Other" in spec.pathology.cancer_classes and "Other" not in spec.pathology.ignore_classes
    assert "Stroma" in spec.pathology.ignore_classes
