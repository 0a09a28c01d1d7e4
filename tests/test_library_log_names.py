"""A library's own log lines (tifffile reading a truncated slide) keep their reason but not the file
name, which is often the patient's: only the final one-line error names the file the user gave. By
default that error is all stderr gets; ``sonomap -v`` adds the library's lines, file names taken out."""

from __future__ import annotations

import shutil

import yaml
from cli import sonomap

from registration.sim.biopsy_core import CoreParams
from registration.sim.simulate import SimParams, simulate_cases

NAME = "DOE_JANE_1970"
TRUNCATED_BYTES = 3000  # the header and the first tags: tifffile warns about every series it tries


def test_tifffile_log_lines_of_a_truncated_slide_name_no_file(tmp_path, busi_sample):
    s = simulate_cases(
        busi_sample / "images",
        busi_sample / "masks",
        tmp_path,
        1,
        seed=11,
        params=SimParams(core=CoreParams(mpp=8.0)),
    )
    case_dir = tmp_path / s["cases"][0]["case_id"]
    case = yaml.safe_load((case_dir / "case.yaml").read_text())
    slide = case_dir / f"{NAME}.ome.tif"
    shutil.move(case_dir / case["pathology"]["wsi"], slide)
    with open(slide, "r+b") as fh:
        fh.truncate(TRUNCATED_BYTES)
    case["pathology"]["wsi"] = slide.name
    (case_dir / "case.yaml").write_text(yaml.safe_dump(case))
    res = sonomap("register", case_dir / "case.yaml", "--out", tmp_path / "out", check=False)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1, res.stderr  # tifffile's lines stay off stderr
    assert lines[0].startswith("sonomap register: error: ") and NAME in lines[0]
    res = sonomap("-v", "register", case_dir / "case.yaml", "--out", tmp_path / "out", check=False)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and lines[-1].startswith("sonomap register: error: ") and NAME in lines[-1]
    log_lines = lines[:-1]
    assert any("tifffile" in line for line in log_lines)  # the library did log, with its reason
    assert not [line for line in log_lines if "DOE_JANE" in line]
