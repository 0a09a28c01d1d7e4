"""configs/biopsy-loop.sh run twice on one OUT replaces its first run's outputs instead of adding a
second set of biopsies beside them, and never deletes what it did not make.

The script runs for real with `sonomap` replaced by a stand-in on PATH that makes what each command
would make, in a second (the real loop takes minutes; tests/test_biopsy_loop.py runs it, slow):
`simulate-procedure` the clip, `replay --cases DIR` one new case folder named by the time, as the
capture names them, so a second run that kept the first's cases would hold twice as many."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "configs" / "biopsy-loop.sh"
PATIENTS = ("pat-1", "pat-2", "pat-3")
MARK = ".made-by-biopsy-loop"
SCRIPT_TIMEOUT_S = 60

FAKE_SONOMAP = r"""#!/usr/bin/env bash
set -eu
echo "$*" >> "$FAKE_LOG"
case "$1" in
  simulate-procedure) mkdir -p "$(dirname "$2")" && touch "$2" ;;
  replay)
    while [ "$#" -gt 0 ] && [ "$1" != --cases ]; do shift; done
    mkdir -p "$2" && d=$(mktemp -d "$2/$(date -u +%Y%m%dT%H%M%SZ)-XXXX") && touch "$d/case.yaml" ;;
  register-batch|concordance|train)
    while [ "$#" -gt 0 ] && [ "$1" != --out ]; do shift; done
    mkdir -p "$2" && touch "$2/written" ;;
esac
"""


def _run(tmp_path, out: Path) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"
    if not bin_dir.exists():
        bin_dir.mkdir()
        (bin_dir / "sonomap").write_text(FAKE_SONOMAP)
        (bin_dir / "sonomap").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_LOG": str(tmp_path / "calls.log")}
    (tmp_path / "calls.log").write_text("")
    return subprocess.run(
        ["bash", str(SCRIPT), str(out)], capture_output=True, text=True, env=env, timeout=SCRIPT_TIMEOUT_S
    )


def _cases(out: Path) -> list[Path]:
    return sorted(out.glob("cases/*/*/case.yaml"))


def _refused(tmp_path, res, needle: str) -> None:
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], res.stderr
    assert (tmp_path / "calls.log").read_text() == ""  # refused before any step ran


def test_a_second_run_on_the_same_out_replaces_the_first(tmp_path):
    out = tmp_path / "out"
    assert _run(tmp_path, out).returncode == 0
    first = _cases(out)
    assert len(first) == len(PATIENTS) and (out / MARK).is_file()
    res = _run(tmp_path, out)
    assert res.returncode == 0, res.stderr
    second = _cases(out)
    assert len(second) == len(PATIENTS) and not set(first) & set(second)  # new captures, none kept
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [MARK, "cases", "clips", "concordance", "dataset", "run"]
    )


def test_a_file_added_to_a_marked_out_is_refused_and_nothing_deleted(tmp_path):
    out = tmp_path / "out"
    assert _run(tmp_path, out).returncode == 0
    before = _cases(out)
    (out / "notes.txt").write_text("mine")
    _refused(tmp_path, _run(tmp_path, out), f"{out}: holds notes.txt, which this script did not make")
    assert _cases(out) == before and (out / "notes.txt").read_text() == "mine"


def test_a_folder_the_script_did_not_make_is_refused(tmp_path):
    out = tmp_path / "study"
    (out / "cases" / "pat-1").mkdir(parents=True)  # looks like the loop's, but carries no mark
    (out / "cases" / "pat-1" / "case.yaml").write_text("id: real\n")
    _refused(tmp_path, _run(tmp_path, out), f"{out}: not empty and not made by this script")
    assert (out / "cases" / "pat-1" / "case.yaml").read_text() == "id: real\n"


def test_an_empty_out_is_used_and_a_file_is_refused(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _run(tmp_path, empty).returncode == 0 and len(_cases(empty)) == len(PATIENTS)
    file = tmp_path / "file"
    file.write_text("x")
    _refused(tmp_path, _run(tmp_path, file), f"{file}: is a file, not a folder")
