"""Output paths of `sonomap replay`, `make-clip` and `bench`: refused up front when they would destroy
an input, collide, or cannot be created; a failed writer is an error, not a ``wrote`` line.

Real CLI runs on real files (tiny clips, a few frames). Failing writers are real too: ``/dev/full``
(every write: no space left) and a file size limit (RLIMIT_FSIZE, as a full disk).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli import sonomap
from file_size_limit import small_disk
from runtime_model import dark_onnx

from edge_runtime.config import DEFAULT_MODEL

CLIP_FRAMES = 3
CLIP_SIZE = "320x180"
DEV_FULL = Path("/dev/full")  # Linux: every write fails with ENOSPC
needs_dev_full = pytest.mark.skipif(not DEV_FULL.exists(), reason="needs /dev/full (Linux)")
FILE_SIZE_LIMIT = 2000  # bytes: smaller than a few frames of the clip, larger than its .json
RECORDER_LIMIT_BYTES = 6000  # above a replay's summary of the clip (~2 KB), below its overlay video (~12 KB)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clip") / "clip.mp4"
    sonomap("make-clip", "--out", out, "--frames", CLIP_FRAMES, "--size", CLIP_SIZE, "--noise", 0)
    return out


def refused(result: subprocess.CompletedProcess, command: str, *words: str) -> str:
    """Assert a one-line user error (exit 2, no traceback) naming ``words``; return the line."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith(f"sonomap {command}: error: "), result.stderr[-2000:]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------- an output that is an input or another output


def test_out_equal_to_the_input_is_refused_and_the_input_kept(clip, tmp_path):
    victim = tmp_path / "victim.mp4"
    shutil.copy(clip, victim)
    before = victim.read_bytes()
    line = refused(sonomap("replay", victim, "--model", dark_onnx(), "--out", victim, check=False), "replay")
    assert "--out" in line and "input" in line
    assert victim.read_bytes() == before


def test_save_masks_on_the_input_is_refused(clip, tmp_path):
    victim = tmp_path / "victim.mp4"
    shutil.copy(clip, victim)
    before = victim.read_bytes()
    refused(
        sonomap("replay", victim, "--model", dark_onnx(), "--save-masks", victim, check=False),
        "replay",
        "--save-masks",
    )
    assert victim.read_bytes() == before


def test_an_output_on_the_models_manifest_is_refused_and_the_model_still_loads(clip, tmp_path):
    model = tmp_path / "model.onnx"
    shutil.copy(dark_onnx(), model)
    shutil.copy(f"{dark_onnx()}.yaml", f"{model}.yaml")
    before = Path(f"{model}.yaml").read_bytes()
    result = sonomap("replay", clip, "--model", model, "--summary", f"{model}.yaml", check=False)
    refused(result, "replay", "--summary", "the model's manifest")
    assert Path(f"{model}.yaml").read_bytes() == before


def test_an_output_on_the_shipped_default_model_is_refused_when_no_model_is_named(clip, tmp_path):
    # A hard link to the shipped manifest: were the output not refused, the atomic write would only
    # replace the link's name in tmp_path, never the shipped file.
    alias = tmp_path / "alias.yaml"
    alias.hardlink_to(Path(f"{DEFAULT_MODEL}.yaml"))
    refused(
        sonomap("replay", clip, "--summary", alias, check=False),
        "replay",
        "--summary",
        "the model's manifest",
    )
    refused(sonomap("replay", clip, "--out", DEFAULT_MODEL, check=False), "replay", "--out", "--model")


@pytest.mark.parametrize("second", ["--record-raw", "--summary"])
def test_two_outputs_on_one_path_are_refused_before_anything_is_written(tmp_path, second):
    dup = tmp_path / "dup.mp4"
    result = sonomap(
        "replay",
        "synthetic",
        "--max-frames",
        2,
        "--model",
        dark_onnx(),
        "--out",
        dup,
        second,
        dup,
        check=False,
    )
    refused(result, "replay", "--out", second)
    assert files_in(tmp_path) == []


def test_one_path_spelled_two_ways_is_one_path(tmp_path):
    (tmp_path / "sub").mkdir()
    result = sonomap(
        "replay",
        "synthetic",
        "--max-frames",
        2,
        "--model",
        dark_onnx(),
        "--out",
        tmp_path / "sub" / ".." / "o.mp4",
        "--record-raw",
        tmp_path / "o.mp4",
        check=False,
    )
    refused(result, "replay", "--out", "--record-raw")
    assert files_in(tmp_path) == ["sub"]


# ---------------------------------------------------------------- outputs that cannot be created


def test_summary_on_a_folder_is_refused_before_the_run(clip, tmp_path):
    (tmp_path / "folder").mkdir()
    out = tmp_path / "overlay.mp4"
    result = sonomap(
        "replay", clip, "--model", dark_onnx(), "--out", out, "--summary", tmp_path / "folder", check=False
    )
    refused(result, "replay", "--summary", "folder")
    assert not out.exists()  # refused before the run, not after it


@pytest.mark.parametrize("option", ["--out", "--summary"])
def test_an_output_below_a_file_is_refused(clip, tmp_path, option):
    (tmp_path / "garbage.png").write_bytes(b"not a folder")
    name = "x.mp4" if option == "--out" else "s.json"
    result = sonomap(
        "replay", clip, "--model", dark_onnx(), option, tmp_path / "garbage.png" / name, check=False
    )
    refused(result, "replay", option, "garbage.png", "not a folder")


def test_save_masks_on_a_file_is_refused_and_the_file_kept(clip, tmp_path):
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me")
    result = sonomap("replay", clip, "--model", dark_onnx(), "--save-masks", existing, check=False)
    refused(result, "replay", "--save-masks", "not a folder")
    assert existing.read_text() == "keep me"


def test_bench_json_on_a_folder_is_refused_before_the_benchmark(clip, tmp_path):
    (tmp_path / "folder").mkdir()
    result = sonomap(
        "bench",
        clip,
        "--model",
        dark_onnx(),
        "--frames",
        2,
        "--live-seconds",
        0,
        "--json",
        tmp_path / "folder",
        check=False,
    )
    refused(result, "bench", "--json", "folder")
    assert "backend only" not in result.stdout  # nothing was measured


def test_a_video_not_named_mp4_is_refused_before_the_run(clip, tmp_path):
    # the recorder writes H.264 MP4 whatever the name: x.png would hold a video, or replace a mask
    for option in ("--out", "--record-raw"):
        out = tmp_path / "000000_mask.png"
        result = sonomap("replay", clip, "--model", dark_onnx(), option, out, check=False)
        refused(result, "replay", f"{option} {out}: the video is written as H.264 MP4; name it *.mp4")
    assert files_in(tmp_path) == []


def test_a_name_too_long_for_its_hidden_twin_and_a_folder_taking_no_files_are_refused_up_front(
    clip, tmp_path
):
    # the output is first written under a hidden, longer name; /proc takes no new files, even for root
    long = tmp_path / ("b" * 245 + ".mp4")
    refused(sonomap("replay", clip, "--out", long, check=False), "replay", "the file name is 249 bytes")
    result = sonomap("bench", clip, "--frames", 2, "--live-seconds", 0, "--json", "/proc/x.json", check=False)
    refused(result, "bench", "--json /proc/x.json: cannot create files in /proc")
    assert "backend only" not in result.stdout and files_in(tmp_path) == []


def _model_with_parity(tmp_path) -> Path:
    model = tmp_path / "model.onnx"
    shutil.copy(dark_onnx(), model)
    shutil.copy(f"{dark_onnx()}.yaml", f"{model}.yaml")
    Path(f"{model}.parity.json").write_text('{"passed": true}')
    return model


def test_bench_json_never_replaces_the_model_its_manifest_parity_record_or_config(clip, tmp_path):
    model = _model_with_parity(tmp_path)
    config = tmp_path / "bench.yaml"
    config.write_text("overlay:\n  alpha: 0.4\n")
    alias = tmp_path / "default.yaml"  # a hard link to the shipped default's manifest (see above)
    alias.hardlink_to(Path(f"{DEFAULT_MODEL}.yaml"))
    victims = {
        Path(f"{model}.yaml"): ("--model", model, "the model's manifest"),
        Path(f"{model}.parity.json"): ("--model", model, "the model's parity record"),
        config: ("--model", model, "--config"),
        alias: ("--frames", 2, "the model's manifest"),  # no --model: the shipped default is read
    }
    for victim, (flag, value, name) in victims.items():
        before = victim.read_bytes()
        result = sonomap(
            "bench", clip, flag, value, "--config", config, "--live-seconds", 0, "--json", victim, check=False
        )
        refused(result, "bench", "--json", name)
        assert victim.read_bytes() == before and "backend only" not in result.stdout


def test_a_replay_summary_on_the_models_parity_record_is_refused(clip, tmp_path):
    model = _model_with_parity(tmp_path)
    result = sonomap("replay", clip, "--model", model, "--summary", f"{model}.parity.json", check=False)
    refused(result, "replay", "--summary", "the model's parity record")
    assert Path(f"{model}.parity.json").read_text() == '{"passed": true}'


# ---------------------------------------------------------------- a writer that fails during the run


def test_a_failing_recorder_is_an_error_and_the_others_are_kept(clip, tmp_path):
    """A disk that fills during the run (a file size limit between the summary's size and the
    overlay video's): the video's failure is the run's one-line error, the summary is still written."""
    out, summary = tmp_path / "out.mp4", tmp_path / "s.json"
    result = subprocess.run(
        [sys.executable, "-m", "edge_runtime.cli", "replay", str(clip), "--model", str(dark_onnx())]
        + ["--out", str(out), "--summary", str(summary)],
        preexec_fn=small_disk(RECORDER_LIMIT_BYTES),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"sonomap replay: error: --out {out}: recording failed"), last
    assert "file size limit" in last, last
    assert f"wrote {out}" not in result.stdout
    assert json.loads(summary.read_text())["frames"] == CLIP_FRAMES  # what succeeded is kept


@needs_dev_full
def test_an_unwritable_summary_is_one_line_not_a_traceback(clip, tmp_path):
    """A device is no summary file: refused in one line naming it (the atomic writer's rule)."""
    result = sonomap("replay", clip, "--model", dark_onnx(), "--summary", DEV_FULL, check=False)
    refused(result, "replay", str(DEV_FULL), "is a device")


def test_make_clip_with_a_failing_writer_is_an_error_without_json(tmp_path):
    out = tmp_path / "c.mp4"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_runtime.cli",
            "make-clip",
            "--out",
            str(out),
            "--frames",
            "6",
            "--size",
            CLIP_SIZE,
        ],
        preexec_fn=small_disk(FILE_SIZE_LIMIT),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith(f"sonomap make-clip: error: --out {out}")
    assert "wrote" not in result.stdout
    assert not out.with_suffix(".json").exists()


# ---------------------------------------------------------------- make-clip settings


@pytest.mark.parametrize(
    "args,named",
    [
        (["--size", "0x0"], "--size"),
        (["--size", "16x9"], "--size"),
        (["--size", "1920x1080000"], "--size"),
    ],
)
def test_make_clip_refuses_bad_settings_and_writes_nothing(tmp_path, args, named):
    result = sonomap("make-clip", "--out", tmp_path / "c.mp4", "--size", CLIP_SIZE, *args, check=False)
    refused(result, "make-clip", named)
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("args", [["--frames", "0"], ["--frames", "-5"], ["--fps", "-1"], ["--fps", "0"]])
def test_make_clip_parser_refuses_bad_counts_and_writes_nothing(tmp_path, args):
    result = sonomap("make-clip", "--out", tmp_path / "c.mp4", "--size", CLIP_SIZE, *args, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr  # argparse: usage, then the line
    assert (
        result.stderr.strip().splitlines()[-1].startswith(f"sonomap make-clip: error: argument {args[0]}: ")
    )
    assert files_in(tmp_path) == []


def test_make_clip_refuses_a_name_that_is_not_mp4(tmp_path):
    result = sonomap(
        "make-clip", "--out", tmp_path / "k.json", "--frames", 2, "--size", CLIP_SIZE, check=False
    )
    refused(result, "make-clip", "--out", "*.mp4")
    assert files_in(tmp_path) == []


def test_make_clip_refuses_a_folder_as_out(tmp_path):
    (tmp_path / "d.mp4").mkdir()
    result = sonomap(
        "make-clip", "--out", tmp_path / "d.mp4", "--frames", 2, "--size", CLIP_SIZE, check=False
    )
    refused(result, "make-clip", "--out", "folder")
    assert files_in(tmp_path / "d.mp4") == []
