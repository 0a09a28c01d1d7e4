"""A library's log lines about an input file lose its name even when case.yaml sits in the working
directory and names the file bare, without an extension (a DICOM is known by its magic, not its
name), or with a space in it: the readers hand libraries absolute paths (edge_runtime.privacy.
library_path). Only the final one-line error names the file. Through the real CLI, run in the case
folder, on a truncated DICOM whose pixel data pydicom cannot read to the end."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TRUNCATED_BYTES = 70000  # the header and part of the pixel data: pydicom warns, naming the file
CHILD_TIMEOUT_S = 300


@pytest.mark.parametrize("name", ["Roe_Richard_MRN112233", "Roe Richard MRN112233"])
def test_pydicom_lines_of_a_bare_name_in_the_working_directory_name_no_file(simulated_case, tmp_path, name):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    case_dir = tmp_path / "case"
    shutil.copytree(simulated_case, case_dir)
    full = tmp_path / "full.dcm"
    pydicom.dcmread(get_testdata_file("examples_ybr_color.dcm")).save_as(str(full))
    (case_dir / name).write_bytes(full.read_bytes()[:TRUNCATED_BYTES])
    spec = yaml.safe_load((case_dir / "case.yaml").read_text())
    spec["ultrasound"] = {"image": name, "mm_per_pixel": spec["ultrasound"]["mm_per_pixel"]}
    (case_dir / "case.yaml").write_text(yaml.safe_dump(spec))
    res = subprocess.run(
        [sys.executable, "-m", "edge_runtime.cli", "register", "case.yaml", "--out", str(tmp_path / "out")],
        cwd=case_dir,
        env={**os.environ, "PYTHONPATH": str(REPO)},  # this checkout, from another working directory
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and lines[-1].startswith("sonomap register: error: "), res.stderr
    log_lines = lines[:-1]
    assert any("pydicom" in line and "[file]" in line for line in log_lines), res.stderr  # it did log
    assert not [line for line in log_lines if "Roe" in line or "Richard" in line or "MRN" in line], log_lines


def test_replay_of_a_dicom_named_with_a_space_in_the_working_directory_names_no_part_of_it(tmp_path):
    """The runtime's DICOM cine reader hands pydicom the path too: a bare "Roe Richard.dcm" would
    otherwise lose only its last word to the log filter."""
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    full = tmp_path / "full.dcm"
    pydicom.dcmread(get_testdata_file("examples_ybr_color.dcm")).save_as(str(full))
    (tmp_path / "Roe Richard.dcm").write_bytes(full.read_bytes()[:TRUNCATED_BYTES])
    res = subprocess.run(
        [sys.executable, "-m", "edge_runtime.cli", "replay", "Roe Richard.dcm", "--out", "o.mp4"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and lines[-1].startswith("sonomap replay: error: "), res.stderr
    assert any("pydicom" in line and "[file]" in line for line in lines[:-1]), res.stderr
    assert not [line for line in lines[:-1] if "Roe" in line or "Richard" in line], res.stderr
