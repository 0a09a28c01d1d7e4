"""register-batch: dataset layout, patient-level splits, resume, bad cases collected; CLI errors in one line."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import yaml

from edge_runtime.case_split import split_cases
from registration.batch import register_batch
from registration.sim.biopsy_core import CoreParams
from registration.sim.simulate import SimParams, simulate_cases


def sonomap_exe(repo_root: Path) -> str:
    exe = repo_root / ".venv" / "bin" / "sonomap"
    return str(exe if exe.exists() else Path(sys.executable).parent / "sonomap")


@pytest.fixture(scope="module")
def cases_dir(busi_sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("batch") / "cases"
    s = simulate_cases(
        busi_sample / "images",
        busi_sample / "masks",
        out,
        3,
        seed=41,
        params=SimParams(core=CoreParams(mpp=8.0)),
    )
    first = out / s["cases"][0]["case_id"]
    # a second image of the first patient: must land in the same split
    twin = out / "twin_case1"
    shutil.copytree(first, twin)
    c = yaml.safe_load((twin / "case.yaml").read_text())
    c["id"] = "twin_case1"
    (twin / "case.yaml").write_text(yaml.safe_dump(c))
    # a broken case: malformed annotations
    bad = out / "zz_bad1"
    shutil.copytree(first, bad)
    c["id"] = "zz_bad1"
    (bad / "case.yaml").write_text(yaml.safe_dump(c))
    (bad / "core.geojson").write_text("{broken")
    return out


def _rows(ds):
    with open(ds / "cases.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_batch_builds_dataset_collects_errors_and_resumes(cases_dir, tmp_path):
    ds = tmp_path / "ds"
    s = register_batch(cases_dir, ds, progress=False)
    assert (s["registered"], s["failed"], s["skipped_done"]) == (4, 1, 0)
    # named by its place among the case files and its id, never by its folder (often the patient's name)
    assert s["failures"][0]["case"] == "case 5 of 5" and s["failures"][0]["id"] == "zz_bad1"
    assert s["failures"][0]["error"].startswith("case 5 of 5: ")
    assert (
        "malformed GeoJSON" in s["failures"][0]["error"] and str(cases_dir) not in s["failures"][0]["error"]
    )
    rows = _rows(ds)
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows) and len(rows) == 4
    assert {r["split"] for r in rows} == {"train", "val", "test"}  # 3 patients: every split non-empty
    by_patient = {}
    for r in rows:
        by_patient.setdefault(r["case_id"], set()).add(r["split"])
        img = cv2.imread(str(ds / "images" / f"{r['id']}.png"), cv2.IMREAD_UNCHANGED)
        lab = cv2.imread(str(ds / "labels" / f"{r['id']}.png"), cv2.IMREAD_UNCHANGED)
        assert img.ndim == 2 and img.dtype.name == "uint8" and lab.shape == img.shape
        assert set(lab.ravel().tolist()) <= {0, 1, 255}
        if r["id"] != "twin_case1":  # the dataset gets the pre-fire frame, not the needle-covered one
            prefire = cv2.imread(str(cases_dir / r["id"] / "us_prefire.png"), cv2.IMREAD_GRAYSCALE)
            assert (img == prefire).all()
    assert all(len(v) == 1 for v in by_patient.values())  # one patient, one split
    # the one splitter prepare-busi uses too: same patients and seed, same split
    assert {p: v.pop() for p, v in by_patient.items()} == split_cases(list(by_patient), seed=0)
    assert json.loads((ds / "batch_report.json").read_text())["failed"] == 1
    assert not list(ds.rglob("*.tmp"))

    again = register_batch(cases_dir, ds, progress=False)
    assert (again["registered"], again["skipped_done"], again["failed"]) == (0, 4, 1)
    assert _rows(ds) == rows

    (ds / "labels" / f"{rows[0]['id']}.png").unlink()  # an interrupted case is redone
    third = register_batch(cases_dir, ds, progress=False)
    assert (third["registered"], third["skipped_done"]) == (1, 3)
    assert _rows(ds) == rows


@pytest.mark.parametrize(
    "n,expected",
    [
        (1, {"train": 1}),
        (2, {"train": 1, "test": 1}),
        (3, {"train": 1, "val": 1, "test": 1}),
        (10, {"train": 7, "val": 2, "test": 1}),
        (40, {"train": 28, "val": 8, "test": 4}),
    ],
)
def test_split_counts_and_seeding(n, expected):
    groups = [f"p{i}" for i in range(n)]
    s = split_cases(groups + groups[:1], seed=3)  # duplicates are one group
    counts = {}
    for v in s.values():
        counts[v] = counts.get(v, 0) + 1
    assert counts == expected and set(s) == set(groups)
    assert split_cases(list(reversed(groups)), seed=3) == s  # order of discovery does not matter


def test_cli_register_batch_and_simulate(cases_dir, tmp_path, repo_root, busi_sample):
    exe = sonomap_exe(repo_root)
    r = subprocess.run(
        [exe, "register-batch", str(cases_dir), "--out", str(tmp_path / "ds"), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "registered 4, already done 0, failed 1" in r.stdout
    r = subprocess.run(
        [exe, "register-batch", str(cases_dir), "--out", str(tmp_path / "ds"), "--no-progress", "--strict"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1 and "already done 4" in r.stdout


def test_cli_errors_are_one_line(tmp_path, repo_root, cases_dir):
    exe = sonomap_exe(repo_root)
    r = subprocess.run(
        [exe, "register", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert "nope.yaml" in r.stderr
    r = subprocess.run(
        [exe, "register", str(cases_dir / "zz_bad1" / "case.yaml"), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "core.geojson: malformed GeoJSON" in r.stderr
    r = subprocess.run(
        [
            exe,
            "simulate-biopsy",
            "--images",
            str(tmp_path / "none"),
            "--masks",
            str(tmp_path / "masks"),
            "--out",
            str(tmp_path / "c"),
            "--n",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "--images" in r.stderr and "Traceback" not in r.stderr


def test_split_is_stable_when_patients_are_added():
    first = split_cases([f"p{i}" for i in range(10)], seed=1)
    grown = split_cases([f"p{i}" for i in range(20)], seed=1, existing=first)
    assert all(grown[g] == s for g, s in first.items())  # nobody moves
    counts = {s: sum(1 for v in grown.values() if v == s) for s in ("train", "val", "test")}
    assert counts == {"train": 14, "val": 4, "test": 2}
    assert split_cases(["a", "b"], seed=0, existing={"a": "test", "gone": "train"})["a"] == "test"
