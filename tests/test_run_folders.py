"""configs/run_folders.sh's fresh_run, which demo.sh, gpu-bench.sh and study-models.sh call before
each `sonomap train`: a run folder a script made is cleared only when it holds nothing but what train
writes; a report someone put in it (RUN/eval, the folder evaluate's own refusal suggests) stops the
script with nothing deleted, and a folder no script made is never touched. Real bash, real folders."""

from __future__ import annotations

import subprocess
from pathlib import Path

from file_trees import tree_bytes

SCRIPT = Path(__file__).resolve().parents[1] / "configs" / "run_folders.sh"
TRAIN_WRITES = ("best.pt", "best.pt.yaml", "last.pt", "metrics.csv", "summary.json")


def fresh_run(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", 'set -euo pipefail; . "$0"; fresh_run "$1"', SCRIPT, folder],
        capture_output=True,
        text=True,
        check=False,
    )


def _earlier_run(folder: Path) -> None:
    assert fresh_run(folder).returncode == 0
    for name in TRAIN_WRITES:
        (folder / name).write_text(name)
    (folder / "tb").mkdir()
    (folder / "tb" / "events.out").write_text("log")


def test_a_run_the_script_made_is_cleared_for_the_next(tmp_path):
    run = tmp_path / "run"
    _earlier_run(run)
    assert fresh_run(run).returncode == 0
    assert sorted(p.name for p in run.iterdir()) == [".made-by-this-script"]


def test_a_report_put_in_the_run_stops_the_script_and_nothing_is_deleted(tmp_path):
    run = tmp_path / "run"
    _earlier_run(run)
    (run / "eval").mkdir()
    (run / "eval" / "report.md").write_text("the reviewer's figures")
    before = tree_bytes(run, folders=True)
    result = fresh_run(run)
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == f"{run} holds eval, which sonomap train does not write: nothing deleted "
        + ("(move it, or give another folder)")
    )
    assert tree_bytes(run, folders=True) == before


def test_a_folder_no_script_made_is_left_for_train_to_refuse(tmp_path):
    run = tmp_path / "someone_elses"
    run.mkdir()
    (run / "best.pt").write_text("theirs")
    assert fresh_run(run).returncode == 0
    assert sorted(p.name for p in run.iterdir()) == ["best.pt"]
