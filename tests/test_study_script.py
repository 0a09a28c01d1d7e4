"""configs/study-models.sh, the study's FCN-101 vs DeepLabV3 comparison a GPU machine runs in one
command, run here for real on CPU at a tiny size and budget: on the prepared vendored BUSI sample,
shrunk to 64 px so that evaluating two ResNet-101 models at each image's own size takes seconds, it
trains both study models, evaluates each and writes the paired comparison."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import yaml
from cli_fork import sonomap_shim

SCRIPT_TIMEOUT_S = 600
TINY = {"STUDY_DEVICE": "cpu", "STUDY_MINUTES": "0.05", "STUDY_SIZE": "64", "STUDY_BATCH": "2"}
SIDE = 64


def shrunk(dataset: Path, out: Path) -> Path:
    """A copy of a prepared dataset with every image and label at SIDE x SIDE (labels: nearest)."""
    (out / "images").mkdir(parents=True)
    (out / "labels").mkdir()
    (out / "cases.csv").write_bytes((dataset / "cases.csv").read_bytes())
    for folder, interpolation in (("images", cv2.INTER_AREA), ("labels", cv2.INTER_NEAREST)):
        for png in (dataset / folder).glob("*.png"):
            image = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
            cv2.imwrite(
                str(out / folder / png.name), cv2.resize(image, (SIDE, SIDE), interpolation=interpolation)
            )
    return out


def test_study_script_trains_evaluates_and_compares_both_models(
    tmp_path: Path, busi_dataset: Path, repo_root: Path
):
    venv_path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # python3 with torch
    env = {**os.environ, **TINY, **sonomap_shim(tmp_path / "bin", venv_path)}
    out = tmp_path / "study"
    data = shrunk(busi_dataset, tmp_path / "tiny_ds")
    run = subprocess.run(
        ["bash", str(repo_root / "configs" / "study-models.sh"), str(data), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT_S,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert not (out / "ds").exists()  # a prepared dataset is used as it is
    for model, arch, report in (("fcn101", "fcn_resnet101", "A"), ("deeplabv3", "deeplabv3_resnet101", "B")):
        cfg = yaml.safe_load((out / f"{model}.yaml").read_text())
        reference = yaml.safe_load((repo_root / "configs" / f"{model}.yaml").read_text())
        assert cfg["model"]["arch"] == arch and cfg["train"]["batch_size"] == 2
        assert cfg["train"]["lr"] == reference["train"]["lr"] * 2 / 32  # linear scaling from 8 x 4
        assert (out / model / "best.pt").is_file()
        own = (out / "compare" / report / "report.md").read_text()
        # each report is of its own model: named by file name (never a path) and architecture
        assert "Evaluation of `best.pt`" in own and f"Architecture `{arch}`" in own and "dice" in own.lower()
    compare = (out / "compare" / "report.md").read_text()
    assert "Wilcoxon" in compare and "| dice |" in compare


@pytest.mark.parametrize("script", ["study-models.sh", "gpu-bench.sh"])
def test_gpu_scripts_name_the_venv_when_sonomap_is_not_on_path(tmp_path: Path, repo_root: Path, script: str):
    # a shell without the venv active (only the system's tools): one line saying what to do,
    # before anything is created
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        ["bash", str(repo_root / "configs" / script), str(tmp_path / "in"), str(tmp_path / "out")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 2
    assert "sonomap is not on PATH" in run.stderr and ".venv/bin/activate" in run.stderr
    assert not (tmp_path / "out").exists()
