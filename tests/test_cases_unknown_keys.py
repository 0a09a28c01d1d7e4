"""A case.yaml with a misspelt key is broken, naming the key, never pending for the key it was meant
to be: `sonomap cases` and `sonomap register-batch` look for unknown keys before what a case lacks."""

from __future__ import annotations

import json
import shutil

import pytest
from cli import sonomap

EXIT_ERROR = 2
FIRST = "case 1 of 2"


def _misspell(case_yaml, *edits: tuple[str, str]) -> None:
    """Each (line start, replacement) in ``case_yaml``: one line each, as a hand edit would make."""
    text = case_yaml.read_text()
    for old, new in edits:
        assert text.count(f"\n{old}") == 1, old
        text = text.replace(f"\n{old}", f"\n{new}")
    case_yaml.write_text(text)


def _listing(cases) -> dict[str, str]:
    """`sonomap cases` line by case folder name, and the count line under ``"count"``."""
    lines = sonomap("cases", cases).stdout.splitlines()
    return {**{line.split()[0]: line for line in lines[:-1]}, "count": lines[-1]}


@pytest.fixture()
def cases(simulated_cases, tmp_path):
    """Two complete simulated cases, copied to change."""
    return shutil.copytree(simulated_cases(2), tmp_path / "cases")


@pytest.mark.parametrize(
    "edits, unknown",
    [
        ([("  annotations:", "  anotations:")], "['anotations'] in 'pathology'"),
        ([("pathology:", "patholgy:")], "['patholgy'] (allowed: "),
        ([("  wsi:", "  wis:")], "['wis'] in 'pathology'"),
        (
            [("  annotations:", "  anotations:"), ("  shrinkage:", "  shrinkge:")],
            "['anotations', 'shrinkge'] in 'pathology'",
        ),
    ],
    ids=["anotations", "patholgy", "wis", "anotations+shrinkge"],
)
def test_a_misspelt_key_is_broken_naming_it_not_pending(cases, tmp_path, edits, unknown):
    first, second = sorted(p.name for p in cases.iterdir())
    _misspell(cases / first / "case.yaml", *edits)

    listed = _listing(cases)
    assert f"unknown key(s) {unknown}" in listed[first] and listed[first].split()[1] == "broken"
    assert "lacks" not in listed[first]
    assert listed[second].split()[1] == "complete"
    assert listed["count"].endswith(", 1 complete, 0 pending, 1 broken")

    ds = tmp_path / "ds"
    out = sonomap("register-batch", cases, "--out", ds, "--no-progress")
    assert "pending 0" in out.stdout and f"failed: {FIRST}: unknown key(s) {unknown}" in out.stdout
    report = json.loads((ds / "batch_report.json").read_text())
    assert report["pending"] == 0 and report["pending_cases"] == []
    assert [f["case"] for f in report["failures"]] == [FIRST]
    assert f"unknown key(s) {unknown}" in report["failures"][0]["error"]
    assert [d["id"] for d in report["done"]] == [second]


def test_a_registered_case_misspelt_since_leaves_the_dataset_as_failed_not_pending(cases, tmp_path):
    ds = tmp_path / "ds"
    sonomap("register-batch", cases, "--out", ds, "--no-progress")
    first = sorted(p.name for p in cases.iterdir())[0]
    _misspell(cases / first / "case.yaml", ("  annotations:", "  anotations:"))

    sonomap("register-batch", cases, "--out", ds, "--no-progress")
    report = json.loads((ds / "batch_report.json").read_text())
    assert report["pending"] == 0 and "unknown key(s) ['anotations']" in report["failures"][0]["error"]
    assert [(r["id"], r["reason"]) for r in report["removed_cases"]] == [
        (first, "failed in this run (see failures)")
    ]
    listing = sonomap("cases", cases, "--dataset", ds).stdout.splitlines()
    assert listing[-1] == "2 case(s): 1 registered, 0 held, 0 failed, 0 complete, 0 pending, 1 broken"


def test_an_annotation_not_back_yet_under_its_own_key_is_still_pending(cases, tmp_path):
    first = sorted(p.name for p in cases.iterdir())[0]
    case_yaml = cases / first / "case.yaml"
    (case_yaml.parent / "core.geojson").unlink()  # named, with its key spelt right, not copied in yet
    assert "\n  annotations: core.geojson\n" in case_yaml.read_text()

    listed = _listing(cases)
    assert listed[first].split()[1] == "pending"
    assert "lacks: annotation file (pathology.annotations) not in the folder yet" in listed[first]

    ds = tmp_path / "ds"
    out = sonomap("register-batch", cases, "--out", ds, "--no-progress")
    assert "failed 0" in out.stdout and "pending 1" in out.stdout
    report = json.loads((ds / "batch_report.json").read_text())
    assert report["pending_cases"] == [
        {
            "case": FIRST,
            "id": first,
            "lacks": ["annotation file (pathology.annotations) not in the folder yet"],
        }
    ]


def test_a_section_that_is_no_mapping_is_broken_not_a_section_to_wait_for(cases):
    first, second = sorted(p.name for p in cases.iterdir())
    case_yaml = cases / first / "case.yaml"
    lines = case_yaml.read_text().splitlines()
    start = lines.index("pathology:")
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")), len(lines))
    case_yaml.write_text("\n".join([*lines[:start], "pathology: 5", *lines[end:]]) + "\n")
    listed = _listing(cases)
    assert listed[first].split()[1] == "broken" and "'pathology' must be a mapping, got int" in listed[first]
    assert listed[second].split()[1] == "complete"
