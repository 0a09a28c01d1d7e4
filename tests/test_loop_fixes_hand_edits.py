"""The loop after a hurried hand edit of case.yaml (docs/biopsy-loop.md): a path no file will ever
mend is a broken case naming the key, not a case pending for good; a tab or a UTF-16 file says what
to change and where; a copied case folder is refused by `sonomap cases` as by register-batch, and
`sonomap concordance` scores no core twice; a core taken out of the dataset is skipped with that
reason, not told to register again."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import yaml
from captured_cases import SHAPE, write_captured_case

from edge_runtime.errors import ConfigError
from edge_runtime.manifest import sha256_file
from registration.batch import register_batch
from registration.case import load_case
from registration.cases.listing import list_cases
from registration.cases.status import BROKEN, COMPLETE, inspect_case
from training.concordance.cases_folder import load_cores

NAME = "Doe_Jane"  # the patient's name, as a lab's folders carry it
FIRST, SECOND = "20261130T010101Z-1", "20261130T010102Z-2"


def _edit(case_yaml, **pathology) -> None:
    case = yaml.safe_load(case_yaml.read_text())
    case["pathology"].update(pathology)
    case_yaml.write_text(yaml.safe_dump(case, sort_keys=False))


@pytest.mark.parametrize(
    "value",
    [
        rf"C:\Users\lab\{NAME}\slide.svs",  # typed on the lab's Windows PC
        rf".\{NAME}.svs",
        f"~/slides/{NAME}.svs",  # nothing expands '~'
        "slide.svs ",  # a space left at the end
        f"file:///slides/{NAME}.svs",
    ],
)
def test_a_path_no_file_will_ever_mend_is_broken_not_pending(tmp_path, value):
    cases, ds = tmp_path / "cases", tmp_path / "ds"
    slipped = write_captured_case(cases / FIRST) / "case.yaml"
    (slipped.parent / "slide.svs").write_bytes(b"x")
    (slipped.parent / "slide.geojson").write_text("{}")
    _edit(slipped, wsi=value, annotations="slide.geojson")
    write_captured_case(cases / SECOND)  # nothing back yet: still pending

    status = inspect_case(slipped)
    assert status.state == BROKEN and "pathology.wsi " in status.error and NAME not in status.error
    with pytest.raises(ConfigError, match="pathology.wsi") as refused:  # `sonomap register` alike
        load_case(slipped)
    assert NAME not in str(refused.value)

    summary = register_batch(cases, ds, progress=False)
    assert [p["id"] for p in summary["pending_cases"]] == [SECOND]  # the other case goes on waiting
    assert [f["case"] for f in summary["failures"]] == ["case 1 of 2"]
    assert "pathology.wsi" in summary["failures"][0]["error"]
    assert NAME not in (ds / "batch_report.json").read_text()


def test_a_relative_path_typed_from_another_folder_says_where_it_is_read_from(tmp_path, monkeypatch):
    cases = tmp_path / "cases"
    case_yaml = write_captured_case(cases / FIRST) / "case.yaml"
    (case_yaml.parent / "slide.svs").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)  # the technician's shell, one folder above the cases
    _edit(case_yaml, wsi=f"cases/{FIRST}/slide.svs")
    status = inspect_case(case_yaml)
    assert status.state == BROKEN and "relative paths are read from the case's folder" in status.error


def test_a_tab_or_a_utf16_case_yaml_says_what_to_change_and_where(tmp_path):
    tabbed = write_captured_case(tmp_path / FIRST) / "case.yaml"
    lines = tabbed.read_text().splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("  wsi:"))
    lines[row] = "\t" + lines[row].lstrip()
    tabbed.write_text("\n".join(lines) + "\n")
    error = inspect_case(tabbed).error
    assert f"a tab at line {row + 1}, column 1" in error and "spaces only" in error
    with pytest.raises(ConfigError, match=f"a tab at line {row + 1}"):
        load_case(tabbed)

    notepad = write_captured_case(tmp_path / SECOND) / "case.yaml"
    notepad.write_text(notepad.read_text().replace("\n", "\r\n"), encoding="utf-16")
    error = inspect_case(notepad).error
    assert "saved as UTF-16" in error and "save it again as UTF-8" in error


def _complete(folder) -> None:
    """A case whose slide and annotation are in its folder (the listing checks presence only)."""
    write_captured_case(folder)
    (folder / "slide.svs").write_bytes(b"x")
    (folder / "slide.geojson").write_text("{}")
    _edit(folder / "case.yaml", wsi="slide.svs", annotations="slide.geojson")


def test_the_listing_refuses_a_copied_case_folder_as_register_batch_does(tmp_path):
    cases = tmp_path / "cases"
    _complete(cases / FIRST)
    _complete(cases / SECOND)
    shutil.copytree(cases / FIRST, cases / f"{FIRST} - Copy")  # Explorer's copy: the same id inside
    states = {s.case_yaml.parent.name: (state, s.error) for s, state in list_cases(cases)}
    assert states[SECOND] == (COMPLETE, None)
    for name in (FIRST, f"{FIRST} - Copy"):
        state, error = states[name]
        assert state == BROKEN and f"case id '{FIRST}' is also used by" in error


def _registered(ds, case_yaml, cancer: bool, in_images: bool = True) -> None:
    """What register-batch leaves for the case: label.png, report.json, and the dataset image."""
    case_id = yaml.safe_load(case_yaml.read_text())["id"]
    reg = ds / "registration" / case_id
    reg.mkdir(parents=True)
    label = np.full(SHAPE, 255, np.uint8)
    label[50:70, 20:180] = 1 if cancer else 0
    cv2.imwrite(str(reg / "label.png"), label)
    report = {"case_id": case_id, "patient_id": "P-1", "case_file": {"sha256": sha256_file(case_yaml)}}
    (reg / "report.json").write_text(json.dumps({**report, "quality": {"score": 0.9}}))
    (ds / "images").mkdir(exist_ok=True)
    if in_images:
        (ds / "images" / f"{case_id}.png").write_bytes(b"")


def test_concordance_scores_no_core_twice_when_a_case_folder_was_copied(tmp_path):
    cases, ds = tmp_path / "cases", tmp_path / "ds"
    _registered(ds, write_captured_case(cases / FIRST) / "case.yaml", cancer=True)
    _registered(ds, write_captured_case(cases / SECOND) / "case.yaml", cancer=False)
    shutil.copytree(cases / FIRST, cases / f"{FIRST} - Copy")  # after register-batch ran
    cores, skipped = load_cores(cases, ds)
    assert [c.id for c in cores] == [SECOND]
    assert [s["case"] for s in skipped] == [FIRST, FIRST]
    assert "is also the id of case 2 of 3" in skipped[0]["reason"]
    assert "is also the id of case 1 of 3" in skipped[1]["reason"]
    assert all("Copy" not in s["reason"] for s in skipped)  # named by place, never by folder


def test_concordance_says_a_core_left_the_dataset_rather_than_register_it_again(tmp_path):
    cases, ds = tmp_path / "cases", tmp_path / "ds"
    _registered(ds, write_captured_case(cases / SECOND) / "case.yaml", cancer=False)
    first = write_captured_case(cases / FIRST) / "case.yaml"
    _registered(ds, first, cancer=True, in_images=False)  # the last register-batch took it out
    _edit(first, wsi="slide.svs")  # ... as the slide it now names is not in the folder: pending
    pending = {"id": FIRST, "case": "case 1 of 2", "lacks": ["slide (pathology.wsi)"]}
    removed = {"id": FIRST, "reason": "pending: lacks slide (pathology.wsi)", "moved": []}
    report = {"failures": [], "low_quality": [], "pending_cases": [pending], "removed_cases": [removed]}
    (ds / "batch_report.json").write_text(json.dumps(report))  # as that run wrote it
    cores, skipped = load_cores(cases, ds)
    assert [c.id for c in cores] == [SECOND] and [s["case"] for s in skipped] == [FIRST]
    reason = skipped[0]["reason"]
    assert "removed from the dataset by the last register-batch run" in reason
    assert "changed since" not in reason
