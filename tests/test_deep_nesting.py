"""Deeply nested YAML and JSON (``a: [[[ ... ]]]`` thousands deep) get a one-line error naming the
file, never a RecursionError traceback: in every command that reads a YAML file a person gave
(register, replay --config, simulate-pathology --truth), in GeoJSON annotations, and in the
``sonomap cases`` listing and export, where such a case is marked broken and the others go on.
Also: the ``captured N biopsies into DIR`` line of replay --cases is redacted like its neighbours."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from captured_cases import write_captured_case
from cli import sonomap
from runtime_model import dark_onnx

from edge_runtime.errors import ConfigError, InputError
from edge_runtime.yamlfile import MAX_DEPTH, read_yaml_mapping
from registration.annotations import load_annotations

EXIT_ERROR = 2
YAML_DEPTH = 20_000  # far past Python's recursion limit (1000)
JSON_DEPTH = 100_000


def deep_yaml(path: Path, depth: int = YAML_DEPTH) -> Path:
    path.write_text("a: " + "[" * depth + "]" * depth + "\n")
    return path


def deep_geojson(path: Path, depth: int = JSON_DEPTH) -> Path:
    path.write_text("[" * depth + "]" * depth)
    return path


def assert_one_line_error(res, command: str, file: Path) -> None:
    assert res.returncode == EXIT_ERROR, res.stderr[-2000:]
    assert "Traceback" not in res.stderr and "RecursionError" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"sonomap {command}: error: "), lines[-3:]
    assert file.name in lines[0], lines[0]


# --- the shared readers -------------------------------------------------------------------------


def test_deep_yaml_is_a_one_line_error_naming_the_file(tmp_path):
    with pytest.raises(
        ConfigError, match=rf"deep\.yaml: not valid YAML \(nested deeper than {MAX_DEPTH}"
    ) as err:
        read_yaml_mapping(deep_yaml(tmp_path / "deep.yaml"), "config file")
    assert "\n" not in str(err.value)
    block = tmp_path / "block.yaml"  # block style, one indent per level
    block.write_text(
        "".join(f"{' ' * i}k{i}:\n" for i in range(MAX_DEPTH + 5)) + " " * (MAX_DEPTH + 5) + "1\n"
    )
    with pytest.raises(ConfigError, match=r"block\.yaml: not valid YAML \(nested deeper"):
        read_yaml_mapping(block, "config file")


def test_nesting_up_to_the_limit_still_loads(tmp_path):
    ok = deep_yaml(tmp_path / "ok.yaml", MAX_DEPTH - 1)  # the mapping itself is one level
    value = read_yaml_mapping(ok, "config file")["a"]
    for _ in range(MAX_DEPTH - 2):
        value = value[0]
    assert value == []


def test_deep_geojson_is_an_input_error_naming_the_file(tmp_path):
    where = deep_geojson(tmp_path / "core.geojson")
    with pytest.raises(InputError, match=r"core\.geojson: malformed GeoJSON \(nested too deeply\)"):
        load_annotations(where, ["Tumor"], [], [])
    # around json's own limit, GeometryCollections nest as deep as the Python stack allows: each
    # either loads or is the same one-line error, whichever reader reaches the limit first
    polygon = json.dumps({"type": "Polygon", "coordinates": [[[0, 0], [9, 0], [9, 9]]]})
    for depth in range(470, 505, 5):
        geometry = '{"type": "GeometryCollection", "geometries": [' * depth + polygon + "]}" * depth
        collection = tmp_path / f"collection{depth}.geojson"
        collection.write_text(
            '{"type": "Feature", "properties": {"classification": {"name": "Tumor"}}, "geometry": '
            + geometry
            + "}"
        )
        try:
            ann = load_annotations(collection, ["Tumor"], [], [])
        except InputError as exc:
            assert f"collection{depth}.geojson: malformed GeoJSON" in str(exc)
        else:
            assert len(ann.cancer) == 1


# --- the commands -------------------------------------------------------------------------------


def test_register_replay_and_simulate_pathology_refuse_a_deep_yaml(tmp_path):
    deep = deep_yaml(tmp_path / "deep.yaml")
    res = sonomap("register", deep, "--out", tmp_path / "out", check=False)
    assert_one_line_error(res, "register", deep)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")  # never opened: the config is read first
    res = sonomap("replay", clip, "--config", deep, "--out", tmp_path / "o.mp4", check=False)
    assert_one_line_error(res, "replay", deep)
    write_captured_case(tmp_path / "cases" / "20261130T010101Z-1")
    res = sonomap("simulate-pathology", tmp_path / "cases", "--truth", deep, check=False)
    assert_one_line_error(res, "simulate-pathology", deep)


def test_register_refuses_a_deep_geojson(tmp_path):
    cv2.imwrite(str(tmp_path / "us.png"), np.full((120, 200), 90, np.uint8))
    cv2.imwrite(str(tmp_path / "core.png"), np.zeros((20, 200, 3), np.uint8))
    deep = deep_geojson(tmp_path / "core.geojson")
    case = {
        "id": "c1",
        "ultrasound": {"image": "us.png", "mm_per_pixel": 0.2},
        "needle": {"tip": [170, 60], "shaft": [120, 60], "gauge": 14},
        "pathology": {"wsi": "core.png", "mpp": 4.0, "annotations": deep.name, "cancer_classes": ["Tumor"]},
    }
    (tmp_path / "case.yaml").write_text(yaml.safe_dump(case))
    res = sonomap("register", tmp_path / "case.yaml", "--out", tmp_path / "out", check=False)
    assert_one_line_error(res, "register", deep)
    assert "nested too deeply" in res.stderr


def test_cases_listing_and_export_mark_a_deep_case_broken_and_go_on(tmp_path):
    root = tmp_path / "cases"
    write_captured_case(root / "20261130T010101Z-1")
    write_captured_case(root / "20261130T010102Z-2")
    deep_yaml(root / "20261130T010102Z-2" / "case.yaml")
    write_captured_case(root / "20261130T010103Z-3")
    out = sonomap("cases", root).stdout.splitlines()
    assert out[-1] == "3 case(s): 0 registered, 0 held, 0 failed, 0 complete, 2 pending, 1 broken"
    by_name = {line.split()[0]: line for line in out[:-1]}
    broken = by_name["20261130T010102Z-2"]
    assert " broken " in broken and "case.yaml: not valid YAML (nested deeper than" in broken
    assert " pending " in by_name["20261130T010101Z-1"] and " pending " in by_name["20261130T010103Z-3"]

    res = sonomap("cases", "export", root, "--dry-run", tmp_path / "export", check=False)
    assert "Traceback" not in res.stderr and "RecursionError" not in res.stderr
    lines = (res.stdout + res.stderr).splitlines()
    deep_lines = [line for line in lines if line.startswith("20261130T010102Z-2")]
    assert len(deep_lines) == 1 and "not valid YAML (nested deeper than" in deep_lines[0], lines
    assert any(line.startswith("20261130T010101Z-1") for line in lines), lines  # the others go on
    assert any(line.startswith("20261130T010103Z-3") for line in lines), lines


# --- the capture line names no patient ---------------------------------------------------------

PATIENT_NAME = "Sorensen^Ingrid"
PATIENT_ID = "PID-90210-77"


def test_the_captured_line_is_redacted_like_its_neighbours(tmp_path):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("examples_ybr_color.dcm"))
    ds.PatientName, ds.PatientID = PATIENT_NAME, PATIENT_ID
    folder = tmp_path / "Sorensen Ingrid ü"  # a folder named after the patient
    folder.mkdir()
    clip = folder / f"Sorensen_Ingrid_{PATIENT_ID}.dcm"
    ds.save_as(str(clip))
    cases = folder / "cases"
    res = sonomap(
        "-v",
        "replay",
        clip,
        "--model",
        dark_onnx(),
        "--max-frames",
        6,
        "--out",
        folder / "o.mp4",
        "--cases",
        cases,
    )
    captured = [line for line in res.stdout.splitlines() if line.startswith("captured ")]
    assert len(captured) == 1 and "[REDACTED]" in captured[0] and "/cases" in captured[0], res.stdout
    for part in ("Sorensen", "Ingrid", PATIENT_ID):
        assert part not in res.stdout and part not in res.stderr, part
