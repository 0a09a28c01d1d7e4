"""register-batch: a case registered again that fails while its copy goes into the dataset (here
images/<id>.png is a folder, so the copy cannot be written) is listed once under removed_cases, with
every file of it moved to removed/, and the batch goes on. It was listed twice (once by the copies it
retired before registering, once by what was left in images/), and `removed from the dataset` counted
it twice. A real batch of simulated cases."""

from __future__ import annotations

import json

from cli import simulate_biopsy, sonomap


def test_a_case_failing_after_its_old_copies_were_retired_is_listed_once(tmp_path, busi_sample):
    cases, ds = tmp_path / "cases", tmp_path / "dataset"
    simulate_biopsy(busi_sample, cases, n=3, seed=0)
    ds.mkdir()
    sonomap("register-batch", cases, "--out", ds, "--no-progress")
    victim = sorted(p.stem for p in (ds / "images").glob("*.png"))[-1]
    (ds / "images" / f"{victim}.png").unlink()
    (
        ds / "images" / f"{victim}.png"
    ).mkdir()  # the dataset copy damaged: registered again, and its copy fails
    run = sonomap("register-batch", cases, "--out", ds, "--no-progress", check=False)
    report = json.loads((ds / "batch_report.json").read_text())
    assert report["failed"] == 1 and victim in json.dumps(report["failures"]), report["failures"]
    removed = [r for r in report["removed_cases"] if r["id"] == victim]
    assert len(removed) == 1, report["removed_cases"]
    assert removed[0]["moved"] == [f"removed/labels/{victim}.png"], removed  # its old label, retired first
    assert run.stdout.count(f"removed: {victim} ") == 1, run.stdout
    assert f"removed from the dataset: {len(report['removed_cases'])} " in run.stdout
