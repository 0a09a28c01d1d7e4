"""A training run names itself by its folder's name, never by its path: a folder above the run may be
named after the patient. `train`'s and `pretrain`'s summary.json (``run``) and the warning a resume
gives for an ignored --max-minutes. Real tiny runs on the vendored BUSI sample."""

from __future__ import annotations

import json
import logging

import yaml

from training.pretrain import run as pretrain_run
from training.train import run as train_run

PATIENT_FOLDER = "DOE_JANE_1970"
TINY = {
    "name": "tiny-run-names",
    "model": {"arch": "unet_small", "width": 4},
    "data": {"input_height": 48, "input_width": 48, "mean": 0.3, "std": 0.2},
    "train": {"epochs": 2, "batch_size": 4, "warmup_iters": 0, "lr": 1.0e-3},
}
FIRST_BUDGET_MIN, RESUME_BUDGET_MIN = 10, 20


def test_train_and_its_resume_name_the_run_by_its_folder_name(busi_dataset, tmp_path, caplog):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    out = tmp_path / PATIENT_FOLDER / "run"
    train_run(
        config,
        busi_dataset,
        out,
        show_progress=False,
        device="cpu",
        max_minutes=FIRST_BUDGET_MIN,
        stop_after_epochs=1,
    )
    assert json.loads((out / "summary.json").read_text())["run"] == "run"
    with caplog.at_level(logging.WARNING, logger="sonomap.train"):
        summary = train_run(
            config,
            busi_dataset,
            out,
            show_progress=False,
            device="cpu",
            max_minutes=RESUME_BUDGET_MIN,
            resume=True,
        )
    assert f"--max-minutes {RESUME_BUDGET_MIN} is ignored" in caplog.text
    written = (out / "summary.json").read_text()
    assert summary["run"] == json.loads(written)["run"] == "run"
    assert PATIENT_FOLDER not in caplog.text and PATIENT_FOLDER not in written


def test_pretrain_names_the_run_by_its_folder_name(busi_dataset, tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "model": {**TINY["model"], "aux": True}}))
    out = tmp_path / PATIENT_FOLDER / "pretext"
    summary = pretrain_run(config, busi_dataset, out, epochs=1)
    written = (out / "summary.json").read_text()
    assert summary["run"] == json.loads(written)["run"] == "pretext"
    assert PATIENT_FOLDER not in written
