"""`sonomap soak` checks what it can before the run, not after minutes of it: a --json that is the
clip being replayed is refused (the report would overwrite the clip), and a run too short for its
growth windows to hold samples is refused with the shortest run that gives a verdict, instead of a
report of "None MiB" and FAIL."""

from __future__ import annotations

from pathlib import Path

from cli import sonomap
from runtime_model import dark_onnx

USER_ERROR = 2
SHORT = ("--minutes", "0.02", "--sample-s", "0.05", "--fast", "--no-record")  # 1.2 s: a verdict's minimum


def test_a_json_report_over_the_clip_is_refused_and_the_clip_kept(tmp_path):
    clip = tmp_path / "clip.mp4"
    sonomap("make-clip", "--out", clip, "--frames", 5, "--size", "320x240", "--noise", 0)
    before = clip.read_bytes()
    res = sonomap("soak", clip, "--json", clip, *SHORT, check=False)
    assert res.returncode == USER_ERROR, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and f"--json {clip} is the same file as the input" in lines[0], res.stderr
    assert clip.read_bytes() == before


def test_a_run_too_short_for_a_verdict_is_refused_up_front(tmp_path):
    report = tmp_path / "soak.json"
    res = sonomap("soak", "--minutes", "0.01", "--json", report, check=False)
    assert res.returncode == USER_ERROR, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "--minutes 0.01: too short" in lines[0] and "at least 0.333" in lines[0], lines
    assert "None" not in res.stdout and not report.exists()


def test_a_json_report_over_the_models_manifest_is_refused_and_the_manifest_kept(tmp_path):
    manifest = Path(f"{dark_onnx()}.yaml")
    before = manifest.read_bytes()
    res = sonomap("soak", "--model", dark_onnx(), "--json", manifest, *SHORT, check=False)
    assert res.returncode == USER_ERROR, res.stderr
    assert f"is the same file as the model's manifest {manifest}" in res.stderr, res.stderr
    assert manifest.read_bytes() == before
