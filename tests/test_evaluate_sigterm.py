"""`sonomap evaluate` stopped by SIGTERM (`timeout`, a batch scheduler) as by Ctrl-C: one line saying
so, exit 143 (128 + SIGTERM), and the hidden folder the report was being staged in removed, so no
half report is left beside --out. A real process and a real signal, sent once the report's first
prediction PNG is written."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from export_fixtures import shared_tiny_onnx

EXIT_SIGTERM = 143  # 128 + SIGTERM, as a shell reports a command the signal ended
WAIT_S = 120
POLL_S = 0.005


def test_sigterm_stops_evaluate_and_removes_the_staged_report(busi_dataset, tmp_path):
    args = [
        "evaluate",
        "--checkpoint",
        shared_tiny_onnx(),
        "--data",
        busi_dataset,
        "--split",
        "train",
        "--out",
        "report",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_runtime.cli", *map(str, args)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + WAIT_S
    while not list(tmp_path.glob(".report.*.partial/pred/*.png")) and time.monotonic() < deadline:
        assert proc.poll() is None, "evaluate ended before it was signalled"
        time.sleep(POLL_S)
    proc.send_signal(signal.SIGTERM)
    _stdout, stderr = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == EXIT_SIGTERM, stderr[-2000:]
    assert "Traceback" not in stderr
    assert (
        stderr.strip()
        .splitlines()[-1]
        .startswith("sonomap evaluate: stopped by SIGTERM; what it had already written")
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no staging folder, no report
