"""Research outputs name their inputs as the model manifests do, never by path: a folder above a
checkpoint, a dataset, a config or a cases folder may be named after the patient. `evaluate`'s
summary.json and report.md, `train`'s summary.json, last.pt and its "initial weights" log line,
`concordance`'s concordance.json and report.md, `bench-train --json`, and what `calibrate` and
`evaluate --compare` print and write: a file by its base name and SHA-256, a folder by its base
name. Real commands on real files under a patient-named folder."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
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


@pytest.mark.parametrize("cases_name", ["cases", PATIENT_FOLDER], ids=["under", "itself"])
def test_concordance_names_the_dataset_without_its_parents_and_never_the_cases_folder(tmp_path, cases_name):
    """The cases folder may be one patient's, named after them, and no rule tells that name from
    ``cases``: the report calls it CASES; the dataset, an output named by its base name."""
    root = tmp_path / PATIENT_FOLDER
    cases = root / "cases" if cases_name == "cases" else tmp_path / "site" / PATIENT_FOLDER
    ds = root / "ds"
    for case_id in ("A1", "B2"):
        write_captured_case(cases / case_id, np.zeros(SHAPE, bool))
        _registered(ds, cases, case_id)
    out = tmp_path / "report"
    res = sonomap("concordance", cases, "--dataset", ds, "--out", out)
    summary = json.loads((out / "concordance.json").read_text())
    assert summary["cases_dir"] == "CASES" and summary["dataset"] == "ds"
    assert "Cases: the folder given as `CASES`" in (out / "report.md").read_text()
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


def test_compare_report_names_checkpoints_by_name_and_digest(busi_dataset, tmp_path):
    ck_a = copy_model(shared_checkpoint(), tmp_path / PATIENT_FOLDER / "a")
    ck_b = copy_model(shared_checkpoint(), tmp_path / PATIENT_FOLDER / "b")
    out = tmp_path / "compare"
    res = sonomap("evaluate", "--compare", ck_a, ck_b, "--data", busi_dataset, "--split", "val", "--out", out)
    label = f"{ck_a.name} (sha256 {sha256_file(ck_a)[:12]})"
    assert (out / "report.md").read_text().startswith(f"# Paired comparison: A = `{label}` vs B = `{label}`")
    assert res.stdout.startswith(f"A = {label}, B = {label}, on split val:")  # as report.md names them
    assert_unnamed(folder_text(out), res.stdout, res.stderr)


@pytest.mark.parametrize("method", ["curve", "mask-filter"])
def test_calibrate_names_the_manifest_it_wrote_by_file_name(busi_dataset, tmp_path, method):
    ck = copy_model(shared_checkpoint(), tmp_path / PATIENT_FOLDER / "run")
    res = sonomap("calibrate", "--method", method, "--checkpoint", ck, "--data", busi_dataset)
    assert f"written to {ck.name}.yaml beside --checkpoint" in res.stdout
    manifest = yaml.safe_load((tmp_path / PATIENT_FOLDER / "run" / f"{ck.name}.yaml").read_text())
    record = manifest["extra"]["calibration" if method == "curve" else "mask_filter_fit"]
    assert record["fitted_on"] == f"{busi_dataset.name} split val"
    assert_unnamed(res.stdout, res.stderr, json.dumps(manifest))


def _batch_cases(simulated: Path, cases: Path) -> None:
    """Five cases in folders named after the patient, in this sorted order: a broken annotation,
    two copies of one case (their shared id fails both, each error naming the other), a case held
    for review at --min-quality 1.0 and a case pending its annotation."""
    sim = sorted(p for p in simulated.iterdir() if p.is_dir())
    for suffix, source in (("0", sim[0]), ("1", sim[1]), ("1_copy", sim[1]), ("2", sim[2]), ("3", sim[1])):
        shutil.copytree(source, cases / f"{PATIENT_FOLDER}_{suffix}")
    (cases / f"{PATIENT_FOLDER}_0" / "core.geojson").write_text("{broken")
    pending = cases / f"{PATIENT_FOLDER}_3"
    (pending / "core.geojson").unlink()
    spec = yaml.safe_load((pending / "case.yaml").read_text())
    (pending / "case.yaml").write_text(yaml.safe_dump({**spec, "id": "P-0099"}))


def test_register_batch_names_cases_by_their_place_not_their_folder(simulated_cases, tmp_path):
    cases, ds = tmp_path / "cases", tmp_path / "ds"
    _batch_cases(simulated_cases(3), cases)
    res = sonomap("register-batch", cases, "--out", ds, "--no-progress", "--min-quality", 1.0)
    report = json.loads((ds / "batch_report.json").read_text())
    errors = {f["case"]: f["error"] for f in report["failures"]}
    assert sorted(errors) == ["case 1 of 5", "case 2 of 5", "case 3 of 5"]
    assert errors["case 1 of 5"].startswith("case 1 of 5: pathology.annotations")
    assert errors["case 2 of 5"].startswith("case 2 of 5: case id") and "case 3 of 5" in errors["case 2 of 5"]
    (held,) = report["low_quality"]
    assert held["case"] == "case 4 of 5" and held["qa"] == f"registration/{held['id']}/qa.png"
    assert (ds / held["qa"]).is_file()
    assert [(p["case"], p["id"]) for p in report["pending_cases"]] == [("case 5 of 5", "P-0099")]
    assert_unnamed((ds / "batch_report.json").read_text(), res.stdout, res.stderr)
