"""`sonomap evaluate` stopped by SIGTERM (`timeout`, a batch scheduler) as by Ctrl-C: one line saying
so, exit 143 (128 + SIGTERM), and the hidden folder the report was being staged in removed, so no
half report is left beside --out. A real process and a real signal, sent once the report's first
prediction PNG is written."""

from __future__ import annotations

from export_fixtures import shared_tiny_onnx
from sigterm_stop import sigterm_when


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
    sigterm_when(args, lambda: bool(list(tmp_path.glob(".report.*.partial/pred/*.png"))), cwd=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no staging folder, no report
