"""The tests' ``sonomap`` helper forks each command from a server that imported the libraries once
(tests/cli_zygote.py). A forked command must answer as a new interpreter does: the same exit status,
stdout and stderr, in the caller's working folder, and it must be killed with
``TimeoutExpired`` when it runs past its time."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cli_fork import run_forked, server_kind


def fresh(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edge_runtime.cli", *argv], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["make-clip"],  # usage error: exit 2, argparse's lines on stderr
        ["cases", "no-such-folder"],  # a one-line error
        ["make-clip", "--out", "clip.mp4", "--frames", "2", "--seed", "1"],  # works, relative to the folder
        ["evaluate", "--checkpoint", "missing.pt", "--data", "nowhere"],  # from the torch server
        ["export", "onnx", "--checkpoint", "missing.pt", "--out", "m.onnx"],
    ],
)
def test_a_forked_command_answers_as_a_new_interpreter(argv, tmp_path, monkeypatch):
    (tmp_path / "fork").mkdir()
    (tmp_path / "fresh").mkdir()
    monkeypatch.chdir(tmp_path / "fork")
    forked = run_forked(argv, timeout=120)
    monkeypatch.chdir(tmp_path / "fresh")
    new = fresh(argv)
    assert (forked.returncode, forked.stdout, forked.stderr) == (new.returncode, new.stdout, new.stderr)
    produced = sorted(p.name for p in (tmp_path / "fork").iterdir())
    assert produced == sorted(p.name for p in (tmp_path / "fresh").iterdir())


def test_a_forked_command_past_its_time_is_killed(tmp_path):
    """`live` on the synthetic screen runs until stopped: the helper kills it, as subprocess.run does."""
    with pytest.raises(subprocess.TimeoutExpired):
        run_forked(["live", "--source", "synthetic", "--headless", "--no-ai"], timeout=3)


def test_commands_that_load_torch_come_from_the_torch_server():
    assert server_kind(["-v", "evaluate", "--checkpoint", "a.pt"]) == "torch"
    assert server_kind(["export", "onnx", "--checkpoint", "a.pt"]) == "torch"
    assert server_kind(["export", "tensorrt", "--onnx", "a.onnx"]) == "plain"
    assert server_kind(["replay", "clip.mp4"]) == "plain"
