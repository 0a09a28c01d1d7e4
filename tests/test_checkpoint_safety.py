"""Checkpoints are read weights-only: a file whose unpickling would run code is refused with a
one-line error by every command that loads one, and the code never runs. A trusted older file is
converted once by `sonomap upgrade-checkpoint --trust-checkpoint`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from cli import sonomap
from export_fixtures import tiny_manifest

from edge_runtime.manifest import load_manifest, save_manifest
from training.checkpoint import load_model, read_checkpoint
from training.models import build_model

ARCH, WIDTH = "unet_small", 4
MANY_COMMANDS_S = 900  # several `sonomap` processes, each importing torch, on 2 shared cores
TINY = {
    "model": {"arch": ARCH, "width": WIDTH},
    "data": {"input_height": 32, "input_width": 32},
    "train": {"epochs": 2, "batch_size": 4, "warmup_iters": 1},
}


class CreatesFile:
    """Unpickling this object calls open(path, "w"): the file appears if the loader runs code."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def one_line_error(result) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr[-2000:])
    err = result.stderr.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def old_format_payload(payload_extra: dict | None = None) -> dict:
    """What sonomap train used to write: a state dict plus numpy objects (RNG state, scores)."""
    model = build_model(ARCH, 2, width=WIDTH)
    return {
        "model": model.state_dict(),
        "model_config": {"arch": ARCH, "num_classes": 2, "aux": False, "width": WIDTH},
        "manifest": tiny_manifest(ARCH, 32).to_dict(),
        "epoch": 0,
        "val": {"dice_pos_mean": np.float64(0.25)},
        "rng": {"numpy": np.random.get_state()},
        **(payload_extra or {}),
    }


@pytest.fixture()
def evil(tmp_path) -> tuple[Path, Path]:
    marker = tmp_path / "pwned"
    path = tmp_path / "run" / "last.pt"
    path.parent.mkdir()
    torch.save(old_format_payload({"best": CreatesFile(marker)}), path)
    save_manifest(tiny_manifest(ARCH, 32), path)
    return path, marker


def tiny_train(tmp_path: Path, data: Path, out: Path) -> tuple:
    """`sonomap train` arguments for the TINY config (written to TMP_PATH) on DATA into OUT, on CPU."""
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    return ("train", "--config", config, "--data", data, "--out", out, "--no-progress", "--device", "cpu")


def assert_refused(result, path: Path, marker: Path) -> None:
    err = one_line_error(result)
    assert f"{path}: holds Python objects besides tensors and plain values" in err
    assert "--trust-checkpoint" in err
    assert not marker.exists()


@pytest.mark.timeout(MANY_COMMANDS_S)
def test_pickle_payload_never_runs_in_evaluate_export_or_resume(evil, tmp_path, busi_dataset):
    path, marker = evil
    assert_refused(
        sonomap(
            "evaluate", "--checkpoint", path, "--data", busi_dataset, "--out", tmp_path / "eval", check=False
        ),
        path,
        marker,
    )
    assert_refused(
        sonomap("export", "onnx", "--checkpoint", path, "--out", tmp_path / "m.onnx", check=False),
        path,
        marker,
    )
    assert_refused(
        sonomap("export", "torchscript", "--checkpoint", path, "--out", tmp_path / "m.ts", check=False),
        path,
        marker,
    )
    assert_refused(
        sonomap(*tiny_train(tmp_path, busi_dataset, path.parent), "--resume", check=False), path, marker
    )
    err = one_line_error(sonomap("upgrade-checkpoint", path, check=False))
    assert "--trust-checkpoint" in err and not marker.exists()
    # the payload is live: an unguarded load runs it (so the checks above can fail)
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_trusted_old_checkpoint_is_upgraded_once_then_loads_weights_only(tmp_path):
    path = tmp_path / "best.pt"
    torch.save(old_format_payload(), path)
    save_manifest(tiny_manifest(ARCH, 32), path)
    with pytest.raises(Exception, match="holds Python objects"):
        read_checkpoint(path)
    result = sonomap("upgrade-checkpoint", path, "--trust-checkpoint")
    assert "weights-only checkpoint written" in result.stdout
    assert (tmp_path / "best.pt.orig").is_file()
    payload = torch.load(path, weights_only=True)  # the new file needs no unpickling of objects
    assert (
        isinstance(payload["rng"]["numpy"]["state"]["key"], list) and payload["val"]["dice_pos_mean"] == 0.25
    )
    model, manifest = load_model(path)  # manifest re-signed for the new file's sha256
    assert manifest.arch == ARCH and load_manifest(path).sha256
    assert model(torch.zeros(1, 1, 32, 32)).shape == (1, 2, 32, 32)
    upgraded, backup = path.read_bytes(), (tmp_path / "best.pt.orig").read_bytes()
    again = sonomap("upgrade-checkpoint", path)  # safe to ask: read weights-only, no trust needed
    assert "already a weights-only checkpoint; nothing to convert, nothing written" in again.stdout
    assert path.read_bytes() == upgraded and (tmp_path / "best.pt.orig").read_bytes() == backup
    torch.save(old_format_payload(), path)  # an old file again, beside the earlier backup
    save_manifest(tiny_manifest(ARCH, 32), path)
    err = one_line_error(sonomap("upgrade-checkpoint", path, "--trust-checkpoint", check=False))
    assert "best.pt.orig: exists already" in err  # the original is never overwritten
    assert (tmp_path / "best.pt.orig").read_bytes() == backup


@pytest.mark.timeout(MANY_COMMANDS_S)
def test_training_writes_weights_only_checkpoints_and_resumes_from_them(tmp_path, busi_dataset):
    run = tmp_path / "run"
    train = tiny_train(tmp_path, busi_dataset, run)
    first = sonomap(*train, "--stop-after-epochs", "1")
    epoch_lines = [line for line in first.stderr.splitlines() if "epoch 0 loss" in line]
    assert len(epoch_lines) == 1 and " INFO: " in epoch_lines[0]  # shown by default, at INFO
    state = torch.load(run / "last.pt", weights_only=True)
    assert {"optimizer", "scheduler", "rng", "history", "config"} <= set(state)
    torch.load(run / "best.pt", weights_only=True)
    sonomap(*train, "--resume")
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 1
