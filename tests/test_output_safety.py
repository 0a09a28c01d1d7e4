"""Outputs never destroy inputs, and what leaves the process names no patient folder.

Through the real CLI and public functions on real files: an export onto its own checkpoint, a
registration into its own case folder, a register-batch into a prepare-busi dataset are refused
with one line and change no byte; an atomic write onto a folder or under a file names the target;
calibrate + export of a dataset under a folder named after a patient write neither that name nor
an absolute path into the manifests. An output on a real FIFO or a device is refused at once naming
its kind (a hang would hit the subprocess timeout); make-clip and replay failing part-way under a real
file size limit keep the earlier clip byte for byte; prepare-busi refuses a folder it did not make.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import av
import pytest
import yaml
from cli import simulate_biopsy, sonomap
from export_fixtures import copy_model, shared_checkpoint
from file_size_limit import small_disk
from file_trees import tree_bytes

from edge_runtime.atomic import atomic_write_text
from edge_runtime.cli import os_error_text
from edge_runtime.manifest import load_manifest, save_manifest

EXIT_USER_ERROR = 2
PATIENT_FOLDER = "Doe_Jane_MRN12345"
PATIENT_PARTS = ("Doe", "Jane", "MRN12345")
REGISTRATION_OUTPUTS = ("us.png", "label.png", "qa.png", "report.json")


def one_line_error(result) -> str:
    assert result.returncode == EXIT_USER_ERROR, (result.stdout, result.stderr)
    err = result.stderr.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


# --- export ----------------------------------------------------------------------------------


def test_torchscript_export_onto_its_checkpoint_is_refused_and_the_checkpoint_kept(tmp_path):
    ck = copy_model(shared_checkpoint(), tmp_path / "run")
    before = tree_bytes(tmp_path)
    err = one_line_error(sonomap("export", "torchscript", "--checkpoint", ck, "--out", ck, check=False))
    assert f"--out {ck}" in err and "checkpoint" in err
    other = tmp_path / "run" / "best.pt"  # a checkpoint's suffix is not a TorchScript file name
    err = one_line_error(sonomap("export", "torchscript", "--checkpoint", ck, "--out", other, check=False))
    assert f"--out {other}" in err and ".ts" in err
    assert tree_bytes(tmp_path) == before


# --- registration ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def us_png_case(tmp_path_factory, busi_sample) -> Path:
    """A simulated case: its ultrasound image is us.png, beside its case.yaml."""
    cases = tmp_path_factory.mktemp("sim") / "cases"
    simulate_biopsy(busi_sample, cases, n=1, seed=3)
    (case_yaml,) = cases.glob("*/case.yaml")
    assert yaml.safe_load(case_yaml.read_text())["ultrasound"]["image"] == "us.png"
    return case_yaml.parent


def test_register_into_its_own_case_folder_is_refused_and_the_image_kept(us_png_case):
    before = tree_bytes(us_png_case)
    err = one_line_error(sonomap("register", us_png_case / "case.yaml", "--out", us_png_case, check=False))
    assert f"--out {us_png_case}" in err and "ultrasound.image" in err
    assert tree_bytes(us_png_case) == before


def test_register_into_another_cases_folder_is_refused_and_its_files_kept(us_png_case, tmp_path, busi_sample):
    other = tmp_path / "cases"
    simulate_biopsy(busi_sample, other, n=1, seed=4)
    (other_case,) = (p.parent for p in other.glob("*/case.yaml"))
    before = tree_bytes(other_case)
    err = one_line_error(sonomap("register", us_png_case / "case.yaml", "--out", other_case, check=False))
    assert f"--out {other_case}: holds a case.yaml" in err
    assert tree_bytes(other_case) == before  # its us.png, an input of that case, as it was


def test_register_batch_refuses_a_prepare_busi_dataset_and_reruns_its_own(
    us_png_case, busi_dataset, tmp_path
):
    foreign = tmp_path / "busi"
    shutil.copytree(busi_dataset, foreign)
    before = tree_bytes(foreign)
    cases = us_png_case.parent
    err = one_line_error(sonomap("register-batch", cases, "--out", foreign, "--no-progress", check=False))
    n_rows = len((foreign / "cases.csv").read_text().splitlines()) - 1
    assert f"--out {foreign}" in err and f"{n_rows} row(s)" in err
    assert tree_bytes(foreign) == before  # cases.csv byte-identical, nothing added
    own = tmp_path / "own"
    sonomap("register-batch", cases, "--out", own, "--no-progress")
    rows = (own / "cases.csv").read_text()
    sonomap("register-batch", cases, "--out", own, "--no-progress")  # its own dataset: resumes
    assert (own / "cases.csv").read_text() == rows and len(rows.splitlines()) == 2


# --- atomic writes ---------------------------------------------------------------------------


def test_atomic_write_onto_a_folder_or_under_a_file_names_the_target(tmp_path):
    folder = tmp_path / "best.pt"
    folder.mkdir()
    afile = tmp_path / "afile"
    afile.write_text("keep")
    for target in (folder, afile / "sub" / "x.json"):
        with pytest.raises(OSError) as caught:
            atomic_write_text(target, "{}")
        line = os_error_text(caught.value)
        assert line.startswith(f"{target}: ") and "\n" not in line and ".tmp" not in line, line
    assert afile.read_text() == "keep" and sorted(p.name for p in tmp_path.iterdir()) == ["afile", "best.pt"]


# --- privacy of manifests --------------------------------------------------------------------


def assert_private(path: Path, tmp_path: Path) -> None:
    text = path.read_text()
    for part in PATIENT_PARTS:
        assert part not in text, f"{path.name} names {part!r}"
    assert str(tmp_path) not in text and str(tmp_path.resolve()) not in text, f"{path.name} holds a path"


def test_calibrate_and_export_write_no_patient_folder_or_path_into_manifests(busi_dataset, tmp_path):
    patient = tmp_path / PATIENT_FOLDER
    data = patient / "ds"
    shutil.copytree(busi_dataset, data)
    ck = copy_model(shared_checkpoint(), patient / "run")
    # the train split: on the sample's few val images this barely fitted model's T runs into the
    # search bound, which calibrate refuses (test_calibration_bookkeeping)
    sonomap("calibrate", "--checkpoint", ck, "--data", data, "--split", "train", "--device", "cpu")
    calibration = load_manifest(ck).extra["calibration"]
    assert calibration["fitted_on"] == "ds split train" and len(calibration["dataset_sha256"]) == 64
    assert_private(ck.with_name(ck.name + ".yaml"), tmp_path)
    ts = tmp_path / "cart" / "model.ts"
    sonomap("export", "torchscript", "--checkpoint", ck, "--out", ts, "--parity-frames", "1")
    assert load_manifest(ts).source["checkpoint"] == ck.name
    assert_private(ts.with_name(ts.name + ".yaml"), tmp_path)


def test_export_of_an_older_checkpoint_drops_its_absolute_paths(tmp_path):
    from export.onnx_export import export_onnx
    from export.shapes import ShapeSpec

    ck = copy_model(shared_checkpoint(), tmp_path / PATIENT_FOLDER / "run")
    legacy = f"{tmp_path / PATIENT_FOLDER / 'ds'} split val"  # what calibrate used to record
    manifest = load_manifest(ck)
    save_manifest(
        manifest.derive(
            source={"dataset": str(tmp_path / PATIENT_FOLDER / "ds"), "dataset_sha256": "0" * 64},
            extra={
                **manifest.extra,
                "calibration": {"fitted_on": legacy},
                "mask_filter_fit": {"fitted_on": legacy},
            },
        ),
        ck,
    )
    onnx = tmp_path / "cart" / "model.onnx"
    exported, _ = export_onnx(ck, onnx, ShapeSpec(min_hw=(64, 64), opt_hw=(64, 64), max_hw=(128, 128)))
    assert exported.extra["calibration"]["fitted_on"] == "ds split val"
    assert_private(onnx.with_name(onnx.name + ".yaml"), tmp_path)


def test_training_manifest_names_dataset_and_config_without_paths(busi_dataset, tmp_path, repo_root):
    from training.config import load_config
    from training.provenance import make_manifest

    data = tmp_path / PATIENT_FOLDER / "ds"
    config = repo_root / "configs" / "cpu-fast.yaml"
    cfg = load_config(config)
    manifest = make_manifest(
        cfg,
        0.3,
        0.2,
        data,
        "a" * 64,
        config,
        "b" * 64,
        {"epoch": 1, "metric": "dice"},
        {},
        init_from=tmp_path / PATIENT_FOLDER / "base" / "last.pt",
    )
    assert manifest.source["dataset"] == "ds" and manifest.source["config"] == "cpu-fast.yaml"
    assert manifest.source["init_from"] == "last.pt"
    text = yaml.safe_dump(manifest.to_dict())
    assert PATIENT_FOLDER not in text and str(repo_root) not in text


# --- outputs that are no regular file: refused at once, never waited on ----------------------

FIFO_TIMEOUT_S = 60  # a refusal takes seconds; opening a FIFO nobody reads would block for ever
CLIP_ARGS = ("--frames", 6, "--size", "320x180", "--noise", 0)
REPLAY_FRAMES = 6
SMALL_DISK_BYTES = 2000  # smaller than a few frames of the clip, larger than its .json


@pytest.mark.parametrize(
    ("command", "option"),
    [
        ("replay", "--out"),
        ("replay", "--record-raw"),
        ("replay", "--summary"),
        ("make-clip", "--out"),
    ],
)
def test_an_output_on_a_fifo_is_refused_at_once_naming_its_kind(tmp_path, command, option):
    fifo = tmp_path / "out.mp4"
    os.mkfifo(fifo)
    if command == "replay":
        args = ["replay", "synthetic", "--max-frames", 2, option, fifo]
        if option != "--out":
            args += ["--out", tmp_path / "overlay.mp4"]
    else:
        args = ["make-clip", "--out", fifo, *CLIP_ARGS]
    err = one_line_error(sonomap(*args, check=False, timeout=FIFO_TIMEOUT_S))
    assert f"{option} {fifo}" in err and "FIFO" in err, err
    assert stat.S_ISFIFO(fifo.stat().st_mode) and sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_make_clip_refuses_a_fifo_where_its_json_goes(tmp_path):
    fifo = tmp_path / "clip.json"
    os.mkfifo(fifo)
    err = one_line_error(
        sonomap("make-clip", "--out", tmp_path / "clip.mp4", *CLIP_ARGS, check=False, timeout=FIFO_TIMEOUT_S)
    )
    assert str(fifo) in err and "FIFO" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.json"]


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="needs /dev/null")
def test_replay_out_on_a_device_is_refused_naming_its_kind():
    err = one_line_error(sonomap("replay", "synthetic", "--max-frames", 2, "--out", "/dev/null", check=False))
    assert "--out /dev/null" in err and "device" in err, err


# --- a failed writer keeps the earlier video ---------------------------------------------------


def frames_in(clip: Path) -> int:
    with av.open(str(clip)) as container:
        return sum(1 for packet in container.demux(container.streams.video[0]) if packet.size)


def hidden_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def on_small_disk(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edge_runtime.cli", *map(str, args)],
        preexec_fn=small_disk(SMALL_DISK_BYTES),
        capture_output=True,
        text=True,
        timeout=FIFO_TIMEOUT_S,
    )


def test_make_clip_that_fails_midway_keeps_the_earlier_clip_and_its_json(tmp_path):
    out = tmp_path / "clip.mp4"
    sonomap("make-clip", "--out", out, *CLIP_ARGS)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert json.loads((tmp_path / "clip.json").read_text())["clip"] == "clip.mp4"  # its name, not a path
    result = on_small_disk("make-clip", "--out", out, *CLIP_ARGS, "--seed", 1)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith(f"sonomap make-clip: error: --out {out}")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temp file left either
    assert frames_in(out) == CLIP_ARGS[1]


def test_replay_that_fails_midway_keeps_the_earlier_overlay(tmp_path):
    out = tmp_path / "overlay.mp4"
    sonomap("replay", "synthetic", "--max-frames", REPLAY_FRAMES, "--out", out)
    before = out.read_bytes()
    result = on_small_disk("replay", "synthetic", "--max-frames", REPLAY_FRAMES, "--out", out)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert f"--out {out}" in result.stderr.strip().splitlines()[-1], result.stderr[-2000:]
    assert out.read_bytes() == before and frames_in(out) == REPLAY_FRAMES
    assert hidden_files(tmp_path) == []
    sonomap("replay", "synthetic", "--max-frames", REPLAY_FRAMES + 1, "--out", out)  # a good run replaces it
    assert frames_in(out) == REPLAY_FRAMES + 1 and hidden_files(tmp_path) == []


# --- prepare-busi clears only its own dataset --------------------------------------------------


@pytest.mark.parametrize(
    "files",
    [
        {"cases.csv": "id,case_id,split\npat-1-core,pat-1,train\n"},  # a register-batch index
        {"cases.csv": "id,case_id,split\nx,x,train\n", "registration/x/report.json": "{}"},
        {"best.pt": "weights", "metrics.csv": "epoch,train_loss\n1,0.5\n"},  # a training run
    ],
)
def test_prepare_busi_refuses_a_folder_it_did_not_make(tmp_path, busi_sample, files):
    out = tmp_path / "dataset"
    for name, text in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    before = tree_bytes(out)
    err = one_line_error(sonomap("prepare-busi", "--busi", busi_sample, "--out", out, check=False))
    assert f"--out {out}" in err and "prepare-busi" in err, err
    assert tree_bytes(out) == before and sorted(p.name for p in out.rglob("*") if p.is_file()) == sorted(
        Path(n).name for n in files
    )


def test_prepare_busi_reruns_into_its_own_dataset_and_an_empty_folder(tmp_path, busi_sample, busi_dataset):
    own = tmp_path / "own"
    shutil.copytree(busi_dataset, own)
    before = tree_bytes(own)
    sonomap("prepare-busi", "--busi", busi_sample, "--out", own)
    assert tree_bytes(own) == before
    (tmp_path / "empty").mkdir()
    sonomap("prepare-busi", "--busi", busi_sample, "--out", tmp_path / "empty")
    assert (tmp_path / "empty" / "cases.csv").read_bytes() == before["cases.csv"]
