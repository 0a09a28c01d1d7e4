"""Research outputs name their inputs as the model manifests do, never by path: a folder above a
checkpoint, a dataset, a config or a cases folder may be named after the patient. `evaluate`'s
summary.json and report.md, `train`'s summary.json, last.pt and its "initial weights" log line,
`concordance`'s concordance.json and report.md, and `bench-train --json`: a file by its base name and
SHA-256, a folder by its base name. Real commands on real files under a patient-named folder."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import yaml
from captured_cases import SHAPE, write_captured_case
from cli import sonomap
from export_fixtures import copy_model, shared_checkpoint

from edge_runtime.manifest import sha256_file
from training.checkpoint import read_checkpoint
from training.train import run

PATIENT_FOLDER = "DOE_JANE_1970"
TINY = {
    "name": "tiny-private",
    "model": {"arch": "unet_small", "width": 4},
    "data": {"input_height": 64, "input_width": 64, "mean": "auto", "std": "auto"},
    "train": {"epochs": 1, "batch_size": 4, "warmup_iters": 2, "lr": 3.0e-3},
}


def assert_unnamed(*texts: str) -> None:
    for text in texts:
        assert PATIENT_FOLDER not in text, text


def folder_text(root: Path) -> str:
    """Every text file under ``root`` (JSON, Markdown, CSV), joined."""
    return "\n".join(p.read_text() for p in root.rglob("*") if p.suffix in (".json", ".md", ".csv"))


def test_evaluate_names_checkpoint_and_dataset_without_their_folders(busi_dataset, tmp_path):
    ck = copy_model(shared_checkpoint(), tmp_path / PATIENT_FOLDER / "run")
    data = tmp_path / PATIENT_FOLDER / "ds"
    shutil.copytree(busi_dataset, data)
    out = tmp_path / "eval"
    res = sonomap("evaluate", "--checkpoint", ck, "--data", data, "--split", "val", "--out", out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["checkpoint"] == ck.name and summary["checkpoint_sha256"] == sha256_file(ck)
    assert summary["data"] == "ds"
    assert (out / "report.md").read_text().startswith(f"# Evaluation of `{ck.name}`")
    assert_unnamed(folder_text(out), res.stdout, res.stderr)


def test_train_records_and_logs_its_initial_weights_by_name(busi_dataset, tmp_path, caplog):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    base = tmp_path / PATIENT_FOLDER / "base"
    run(config, busi_dataset, base, show_progress=False, device="cpu")
    out = tmp_path / "tuned"
    with caplog.at_level(logging.INFO, logger="sonomap.train"):
        summary = run(
            config, busi_dataset, out, show_progress=False, device="cpu", init_from=base / "best.pt"
        )
    assert "initial weights from best.pt" in caplog.text
    init = {"init_from": "best.pt", "init_from_sha256": sha256_file(base / "best.pt")}
    written = json.loads((out / "summary.json").read_text())
    state = read_checkpoint(out / "last.pt")
    for record in (summary, written, state):
        assert {k: record[k] for k in init} == init
    assert_unnamed(caplog.text, json.dumps(written), json.dumps(state["manifest"]))


def _registered(ds: Path, cases: Path, case_id: str) -> None:
    """What register-batch leaves for one captured case: label.png (known band, no cancer) and
    report.json, and its dataset image."""
    reg = ds / "registration" / case_id
    reg.mkdir(parents=True)
    label = np.full(SHAPE, 255, np.uint8)
    label[50:70, 20:180] = 0
    cv2.imwrite(str(reg / "label.png"), label)
    report = {
        "case_id": case_id,
        "patient_id": f"P-{case_id}",
        "case_file": {"sha256": sha256_file(cases / case_id / "case.yaml")},
        "quality": {"score": 0.9},
    }
    (reg / "report.json").write_text(json.dumps(report))
    (ds / "images").mkdir(exist_ok=True)
    (ds / "images" / f"{case_id}.png").write_bytes(b"")


def test_concordance_names_its_folders_without_their_parents(tmp_path):
    cases, ds = tmp_path / PATIENT_FOLDER / "cases", tmp_path / PATIENT_FOLDER / "ds"
    for case_id in ("A1", "B2"):
        write_captured_case(cases / case_id, np.zeros(SHAPE, bool))
        _registered(ds, cases, case_id)
    out = tmp_path / "report"
    res = sonomap("concordance", cases, "--dataset", ds, "--out", out)
    summary = json.loads((out / "concordance.json").read_text())
    assert summary["cases_dir"] == "cases" and summary["dataset"] == "ds"
    assert_unnamed(folder_text(out), res.stdout, res.stderr)


def test_bench_train_json_names_the_config_by_name_and_digest(busi_dataset, tmp_path):
    config = tmp_path / PATIENT_FOLDER / "tiny.yaml"
    config.parent.mkdir()
    config.write_text(yaml.safe_dump({**TINY, "train": {"batch_size": 2}}))
    out = tmp_path / "bench.json"
    res = sonomap(
        "bench-train",
        *("--config", config, "--data", busi_dataset, "--json", out),
        *("--iters", 1, "--warmup", 0, "--rounds", 1, "--device", "cpu"),
    )
    result = json.loads(out.read_text())
    assert result["config"] == "tiny.yaml" and result["config_sha256"] == sha256_file(config)
    assert_unnamed(out.read_text(), res.stdout, res.stderr)
