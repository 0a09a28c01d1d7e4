"""`sonomap bench` takes only the options it honours: it writes its report (--json) and nothing else, so
replay's file options are refused by the parser, not accepted and ignored. `--live-seconds 0` skips the
live run, and the report says it was skipped instead of printing a measurement of 0 frames/s."""

from __future__ import annotations

import json

import pytest
from cli import sonomap
from runtime_model import dark_onnx

SKIPPED = "skipped (--live-seconds 0)"


@pytest.mark.parametrize(
    ("flag", "name"), [("--summary", "s.json"), ("--save-masks", "masks"), ("--record-raw", "raw.mp4")]
)
def test_bench_refuses_the_file_options_it_would_not_write(tmp_path, flag, name):
    out = sonomap("bench", "--frames", 1, "--live-seconds", 0, flag, tmp_path / name, check=False)
    assert out.returncode == 2 and f"unrecognized arguments: {flag}" in out.stderr, out.stderr
    assert not (tmp_path / name).exists()


def test_replay_and_live_keep_their_file_options():
    for command in ("replay", "live"):
        text = sonomap(command, "--help").stdout
        assert all(flag in text for flag in ("--summary", "--save-masks", "--record-raw", "--cases")), command


def test_bench_keeps_the_model_roi_and_capture_options():
    text = sonomap("bench", "--help").stdout
    for flag in ("--model", "--backend", "--device", "--config", "--roi", "--mm-per-pixel", "--ema"):
        assert flag in text
    assert "--cases" in text and "--gauge" in text


def test_bench_live_seconds_0_reports_the_live_run_as_skipped(tmp_path):
    clip = tmp_path / "clip.mp4"
    sonomap("make-clip", "--out", clip, "--frames", 4, "--size", "320x180")
    report_path = tmp_path / "b.json"
    out = sonomap(
        "bench", clip, "--model", dark_onnx(), "--frames", 4, "--live-seconds", 0, "--json", report_path
    )
    lines = out.stdout.splitlines()
    assert f"live: {SKIPPED}" in lines
    assert f"live capture-to-display vs budget: {SKIPPED}" in lines
    assert not any(line.startswith("live (") for line in lines)  # no measured-looking live stages
    assert "nan" not in out.stdout
    report = json.loads(report_path.read_text())
    assert report["live"] is None and report["live_budget_ms"] is None
    assert report["pipeline"]["frames"] == 4  # the rest of the bench ran as before


def test_bench_uses_its_mm_per_pixel(tmp_path):
    # the scale --cases' fire detector measures with: a bad one is refused as replay refuses it
    clip = tmp_path / "clip.mp4"
    sonomap("make-clip", "--out", clip, "--frames", 2, "--size", "320x180")
    out = sonomap("bench", clip, "--frames", 2, "--live-seconds", 0, "--mm-per-pixel", -1, check=False)
    assert out.returncode == 2 and "'roi.mm_per_pixel' must be a number > 0, got -1.0" in out.stderr


def test_bench_measures_capture_to_display_on_a_file_given_as_source(tmp_path):
    """A file as ``--source`` plays as 'sonomap live' plays it (paced at its frame rate, newest frame
    wins), so the live run measures capture-to-display on it instead of printing nan."""
    clip = tmp_path / "clip.mp4"
    sonomap("make-clip", "--out", clip, "--frames", 30, "--size", "320x180")
    report_path = tmp_path / "b.json"
    out = sonomap(
        *("bench", clip, "--model", dark_onnx(), "--frames", 4, "--rounds", 1),
        *("--source", clip, "--live-seconds", 0.5, "--json", report_path),
    )
    assert "nan" not in out.stdout, out.stdout
    live = json.loads(report_path.read_text())["live"]
    assert live["latency_ms"]["capture_to_display"]["n"] > 0
    assert any(line.startswith("live capture-to-display p99 ") for line in out.stdout.splitlines())


def test_bench_removes_its_scratch_folder(tmp_path):
    # each round writes its clips (the synthetic input, naive, pipeline) to a scratch folder: MB a run
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    sonomap(
        "bench",
        "--model",
        dark_onnx(),
        "--frames",
        2,
        "--rounds",
        1,
        "--live-seconds",
        0,
        env={"TMPDIR": str(scratch)},
    )
    # sonomap's own only: importing ONNX Runtime leaves a `.ses` file of its own in the temp folder
    assert [p.name for p in scratch.iterdir() if p.name.startswith("sonomap-")] == []
