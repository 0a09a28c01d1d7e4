"""register-batch runs nightly under a systemd timer or cron, which stop it with SIGTERM: it stops as
Ctrl-C stops it (exit 143, one line), every case written whole or not at all, no hidden temp file in
the dataset, and the next run picks up where it stopped (a real process, a real signal)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sigterm_stop import sigterm_when

from registration.batch import register_batch

N_CASES = 4


def test_sigterm_stops_register_batch_between_whole_cases_and_the_next_run_resumes(simulated_cases, tmp_path):
    cases = Path(shutil.copytree(simulated_cases(N_CASES), tmp_path / "cases"))
    ds = tmp_path / "ds"

    def first_case_registered() -> bool:
        return any((ds / "registration").glob("*/report.json"))

    sigterm_when(["register-batch", cases, "--out", ds, "--no-progress"], first_case_registered)
    hidden = [p.relative_to(ds).as_posix() for p in ds.rglob(".*")]
    assert not hidden, hidden  # every atomic write cleaned up its temp file
    whole = {p.parent.name for p in (ds / "registration").glob("*/report.json")}
    assert whole and len(whole) < N_CASES  # stopped mid-batch
    for case_id in whole:  # a report.json marks a case whose four outputs are all in place
        assert {p.name for p in (ds / "registration" / case_id).iterdir()} >= {
            "us.png",
            "label.png",
            "qa.png",
        }
    summary = register_batch(cases, ds, progress=False)
    assert summary["failed"] == 0 and summary["registered"] + summary["skipped_done"] == N_CASES
    assert summary["skipped_done"] <= len(whole)
    assert json.loads((ds / "batch_report.json").read_text())["splits"]["train"] > 0
