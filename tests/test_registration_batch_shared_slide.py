"""register-batch refuses cases that name one slide or annotation file: one pathologist's outline
would otherwise be paired with two cores (a copy-paste slip in the lab) and both registered."""

from __future__ import annotations

import os
import shutil

import yaml

from registration.batch import register_batch


def _two_cases(simulated_cases, tmp_path):
    cases = tmp_path / "cases"
    shutil.copytree(simulated_cases(2), cases)
    first, second = sorted(p.parent for p in cases.glob("*/case.yaml"))
    return cases, first, second


def _point(case_dir, **pathology):
    path = case_dir / "case.yaml"
    case = yaml.safe_load(path.read_text())
    case["pathology"].update(pathology)
    path.write_text(yaml.safe_dump(case, sort_keys=False))


def _refused_both(cases, first, second, tmp_path, key):
    summary = register_batch(cases, tmp_path / "ds", progress=False)
    assert summary["registered"] == 0 and summary["failed"] == 2, summary
    by_case = {f["case"]: f["error"] for f in summary["failures"]}
    # named by their places among the sorted case files, never by their folders
    mine, theirs = "case 1 of 2", "case 2 of 2"
    assert set(by_case) == {mine, theirs}
    for own, other in ((mine, theirs), (theirs, mine)):
        assert by_case[own].startswith(own) and other in by_case[own] and f"pathology.{key}" in by_case[own]
        assert first.name not in by_case[own] and second.name not in by_case[own]
    assert not list((tmp_path / "ds" / "images").iterdir())
    return by_case


def test_two_cases_naming_one_slide_and_annotation_are_both_refused(simulated_cases, tmp_path):
    cases, first, second = _two_cases(simulated_cases, tmp_path)
    own = yaml.safe_load((first / "case.yaml").read_text())["pathology"]
    _point(
        second,
        wsi=f"../{first.name}/{own['wsi']}",
        annotations=f"../{first.name}/{own['annotations']}",
    )
    errors = _refused_both(cases, first, second, tmp_path, "wsi")
    assert all("pathology.annotations" in e for e in errors.values())
    assert all(own["wsi"] not in e for e in errors.values())  # the input named by its key, not its name


def test_a_hard_link_to_another_case_s_annotation_is_the_same_file(simulated_cases, tmp_path):
    cases, first, second = _two_cases(simulated_cases, tmp_path)
    own = yaml.safe_load((first / "case.yaml").read_text())["pathology"]
    os.link(first / own["annotations"], second / "linked.geojson")
    _point(second, annotations="linked.geojson")
    _refused_both(cases, first, second, tmp_path, "annotations")
