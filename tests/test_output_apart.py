"""A command's --out and the folders it reads are kept apart: `train`, `pretrain`, `crossval`,
`evaluate` and `evaluate --compare` refuse an --out that is the dataset, lies inside it or contains
it (and `pretrain` the same for each --images folder), in one line naming both flags, before
anything is written: the dataset and the folder around it stay byte for byte as they were. Real
runs of `sonomap` (in process) on a copy of the vendored BUSI sample's dataset."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from export_fixtures import shared_tiny_onnx
from file_trees import tree_bytes

from edge_runtime.cli import main as sonomap
from edge_runtime.privacy import redact

TINY = {
    "name": "tiny-apart",
    "model": {"arch": "unet_small", "width": 4},
    "data": {"input_height": 32, "input_width": 32, "mean": "auto", "std": "auto"},
    "train": {"epochs": 1, "batch_size": 4, "warmup_iters": 1},
}
EXIT_USER_ERROR = 2


@pytest.fixture(scope="module")
def tiny_cfg(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def _command(name: str, cfg: Path, data: Path, out: Path) -> list[str]:
    """The command line of NAME reading dataset DATA and writing OUT."""
    common = ["--data", str(data), "--out", str(out)]
    if name == "train":
        return ["train", "--config", str(cfg), *common, "--no-progress", "--device", "cpu"]
    if name == "pretrain":
        return ["pretrain", "--config", str(cfg), *common, "--epochs", "1"]
    if name == "crossval":
        return ["crossval", "--config", str(cfg), *common, "--folds", "3", "--no-calibration"]
    model = str(shared_tiny_onnx())
    if name == "evaluate":
        return ["evaluate", "--checkpoint", model, *common, "--split", "val"]
    return ["evaluate", "--compare", model, model, *common, "--split", "val"]


@pytest.mark.parametrize("where", ["the dataset", "inside it", "around it"])
@pytest.mark.parametrize("name", ["train", "pretrain", "crossval", "evaluate", "compare"])
def test_an_out_overlapping_the_dataset_is_refused_before_anything_is_written(
    name, where, busi_dataset, tiny_cfg, tmp_path, capsys
):
    work = tmp_path / "work"
    data = work / "data"
    shutil.copytree(busi_dataset, data)
    out = {"the dataset": data, "inside it": data / "labels" / "out", "around it": work}[where]
    before = tree_bytes(work, folders=True)
    code = sonomap(_command(name, tiny_cfg, data, out))
    err = capsys.readouterr().err.strip()
    assert code == EXIT_USER_ERROR, err
    assert "\n" not in err and "Traceback" not in err, err
    assert redact(f"--out {out}: is, lies inside or contains --data {data}") in err, err
    assert tree_bytes(work, folders=True) == before  # nothing written into the dataset, nor beside it


def test_pretrain_keeps_its_out_apart_from_each_images_folder(busi_dataset, tiny_cfg, tmp_path, capsys):
    frames = tmp_path / "frames"
    shutil.copytree(busi_dataset / "images", frames)
    before = tree_bytes(frames, folders=True)
    out = frames / "pretext"
    cmd = ["pretrain", "--config", str(tiny_cfg), "--data", str(busi_dataset), "--out", str(out)]
    code = sonomap([*cmd, "--images", str(frames), "--epochs", "1"])
    err = capsys.readouterr().err.strip()
    assert code == EXIT_USER_ERROR, err
    assert redact(f"--out {out}: is, lies inside or contains --images {frames}") in err, err
    assert tree_bytes(frames, folders=True) == before
