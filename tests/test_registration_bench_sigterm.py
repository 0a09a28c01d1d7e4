"""`bench-registration` stopped by SIGTERM (`timeout`, a batch scheduler) as by Ctrl-C while it registers
its simulated cases: one line saying so, exit 143 (128 + SIGTERM), no hidden temp file left in --work,
the case registered before the stop whole, and no bench.json (the benchmark did not end). A real process
and a real signal (tests/sigterm_stop.py `sigterm_when`), sent once the first case is registered."""

from __future__ import annotations

from sigterm_stop import sigterm_when

N_CASES = 6  # the stop comes while the later ones are registered


def test_sigterm_mid_benchmark_leaves_no_temp_file_in_work(busi_sample, tmp_path):
    work = tmp_path / "work"
    first = work / "cases" / "sim_0000" / "out"
    args = ["bench-registration", "--images", busi_sample / "images", "--masks", busi_sample / "masks"]
    args += ["--n", N_CASES, "--no-timing", "--work", work]
    stderr = sigterm_when(args, (first / "report.json").exists)
    assert len(stderr.strip().splitlines()) == 1, stderr
    hidden = [p.relative_to(work).as_posix() for p in work.rglob(".*")]
    assert hidden == [], hidden
    assert {"us.png", "label.png", "qa.png", "report.json"} <= {p.name for p in first.iterdir()}
    assert not (work / "bench.json").exists()
