"""Biopsy capture on the synthetic procedure clip through the real `sonomap` command, where the AI
or the disk lets it down: `live --no-ai` still captures each fire, saying no prediction was shown,
and a replay whose case writes fail (a file-size limit below a case's size: 'File too large', as a
full disk fails them) leaves no case, counts none and ends with a one-line error."""

from __future__ import annotations

import resource
import subprocess

import pytest
import yaml
from cli import sonomap
from loopback import SONOMAP
from procedure_clip import PROCEDURE, write_procedure_clip

FILE_SIZE_LIMIT = 20_000  # bytes: a case's PNG is larger, so its write fails
REPLAY_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def procedure(tmp_path_factory):
    """The clip with one needle fired (the whole procedure takes twice as long to make)."""
    return write_procedure_clip(tmp_path_factory.mktemp("clip") / "procedure.mp4", procedure=PROCEDURE[:1])


def _scale(info: dict) -> list[str]:
    return ["--roi", ",".join(map(str, info["roi"])), "--mm-per-pixel", str(info["mm_per_pixel"])]


def test_live_with_the_ai_off_still_captures_each_fire_without_inventing_a_prediction(procedure, tmp_path):
    """No prediction reaches the capture while the AI is not ON (here off from the start; loading,
    stalled and failed are the same to it): the ROI comes from the frame, so each fire is captured,
    and each case says no prediction was shown."""
    cases = tmp_path / "cases"
    live = ["live", "--source", procedure["clip"], "--headless", "--no-ai", *_scale(procedure)]
    out = sonomap(*live, "--cases", cases)
    assert f"captured {len(procedure['fires'])} biops" in out.stdout and procedure["fires"]
    folders = sorted(f for f in cases.iterdir() if not f.name.startswith("."))  # dot files: not cases
    for folder, truth in zip(folders, procedure["fires"], strict=True):
        cap = yaml.safe_load((folder / "case.yaml").read_text())["capture"]
        assert cap["trigger"] == "fire" and cap["prediction"] is None
        assert cap["pre_fire"]["ai"] == cap["post_fire"]["ai"] == "OFF"
        assert cap["pre_fire"]["frame"] <= truth["pre_index"] < cap["post_fire"]["frame"]
        assert not (folder / "prefire_prob.png").exists() and not (folder / "prefire_mask.png").exists()


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


def test_replay_ends_with_an_error_when_its_cases_cannot_be_written(procedure, tmp_path):
    cases = tmp_path / "cases"
    run = subprocess.run(
        [*SONOMAP, "replay", str(procedure["clip"]), *_scale(procedure), "--cases", str(cases)],
        capture_output=True,
        text=True,
        timeout=REPLAY_TIMEOUT_S,
        preexec_fn=_limit_file_size,
    )
    assert run.returncode != 0
    assert f"captured 0 biopsies into {cases} (1 could not be written)" in run.stdout
    errors = [line for line in run.stderr.splitlines() if line.startswith("sonomap replay: error:")]
    assert errors == [
        f"sonomap replay: error: --cases {cases}: 1 of 1 biopsy capture(s) not saved (biopsy 1: File too large)"
    ]
    assert [f for f in cases.iterdir() if not f.name.startswith(".")] == []  # nothing half-written left
