"""The biopsy loop end to end, as docs/biopsy-loop.md gives it: configs/biopsy-loop.sh run for real
(three simulated patients, two fires each, replayed with the shipped default model), then its
outputs checked against the clips' truth: the cases captured, listed pending and then registered,
one patient per split, concordance values that match the truth along each core, and a dataset that
`sonomap train` trains on."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from cli_fork import sonomap_shim
from run_shared import made_once

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "configs" / "biopsy-loop.sh"
DEFAULT_MODEL = ROOT / "edge_runtime" / "models" / "default" / "model.onnx"
PATIENTS = {"pat-1": True, "pat-2": True, "pat-3": False}  # patient -> scanned lesion is cancer
FIRES_PER_CLIP = 2
LOOP_TIMEOUT_S = 1200
OBSERVED_TOLERANCE = 0.05  # registered vs simulated cancer share of a core: needle fit + registration
YIELD_TOLERANCE = 0.03  # concordance's predicted share vs the capture's expected yield (same prediction)


def _run_loop(work: Path) -> tuple[Path, str]:
    env = {**os.environ, **sonomap_shim(work / "bin")}
    out = work / "out"
    run = subprocess.run(
        ["bash", str(SCRIPT), str(out)], capture_output=True, text=True, env=env, timeout=LOOP_TIMEOUT_S
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return out, run.stdout


@pytest.fixture(scope="session")
def loop():
    """Run the script with `sonomap` = this checkout's CLI (forked as tests/cli.py's commands are);
    return (output folder, its log). Once per test run (run_shared): under pytest-xdist the first
    worker to need it runs it (a minute) and the others wait for its outputs, which every test here
    only reads."""
    return made_once("biopsy-loop", _run_loop)


@pytest.mark.slow
def test_every_fire_is_captured_listed_pending_then_registered(loop):
    out, log = loop
    folders = sorted((out / "cases").glob("*/*/case.yaml"))
    assert len(folders) == FIRES_PER_CLIP * len(PATIENTS)
    n = len(folders)
    assert f"{n} case(s): 0 registered, 0 held, 0 failed, 0 complete, {n} pending, 0 broken" in log
    assert f"registered 0, already done 0, failed 0, held for review 0, pending {n}" in log
    assert f"{n} case(s): 0 registered, 0 held, 0 failed, {n} complete, 0 pending, 0 broken" in log
    assert f"{n} case(s): {n} registered, 0 held, 0 failed, 0 complete, 0 pending, 0 broken" in log
    with open(out / "dataset" / "cases.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == n
    split_of = {}
    for r in rows:
        assert split_of.setdefault(r["case_id"], r["split"]) == r["split"]  # one patient, one split
    assert set(split_of) == set(PATIENTS) and sorted(split_of.values()) == ["test", "train", "val"]


@pytest.mark.slow
def test_concordance_matches_the_truth_of_each_core(loop):
    out, _ = loop
    summary = json.loads((out / "concordance" / "concordance.json").read_text())
    sha = hashlib.sha256(DEFAULT_MODEL.read_bytes()).hexdigest()
    (model,) = summary["models"]
    assert model.endswith(sha[:12])  # the shipped default model made every prediction
    cores = {c["id"]: c for c in summary["cores"]}
    assert len(cores) == FIRES_PER_CLIP * len(PATIENTS) and not summary["skipped"]
    for case_yaml in (out / "cases").glob("*/*/case.yaml"):
        folder, patient = case_yaml.parent, case_yaml.parent.parent.name
        core = cores[folder.name]
        truth = json.loads((folder / "pathology_truth.json").read_text())
        capture = yaml.safe_load(case_yaml.read_text())["capture"]
        assert core["patient_id"] == patient
        assert core["pathology_cancer"] == truth["core_has_cancer"] == PATIENTS[patient]
        assert abs(core["observed_fraction"] - truth["truth_cancer_fraction"]) <= OBSERVED_TOLERANCE
        assert abs(core["predicted_fraction"] - capture["expected_yield"]["fraction"]) <= YIELD_TOLERANCE
        # the counts, recomputed from the files: live mask vs registered label over the known band
        label = cv2.imread(str(out / "dataset" / "registration" / folder.name / "label.png"), -1)
        pred = cv2.imread(str(folder / "prefire_mask.png"), -1) == 1
        known = label != 255
        assert core["tp"] == int(np.count_nonzero(pred & (label == 1)))
        assert core["fp"] == int(np.count_nonzero(pred & (label == 0)))
        assert core["tn"] + core["fn"] == int(np.count_nonzero(~pred & known))
        for key in ("dice", "sensitivity", "specificity"):
            assert core[key] is None or 0.0 <= core[key] <= 1.0  # undefined: null in the JSON
    group = summary["models"][model]
    counts = group["core_counts"]
    assert counts["tp"] + counts["fn"] == 4 and counts["fp"] + counts["tn"] == 2
    sens = group["core_scores"]["sensitivity"]
    assert sens["value"] == counts["tp"] / 4 and sens["ci_low"] <= sens["value"] <= sens["ci_high"]
    for png in ("scatter.png", "bland_altman.png"):
        assert cv2.imread(str(out / "concordance" / png)) is not None


@pytest.mark.slow
def test_the_registered_cores_train(loop):
    out, _ = loop
    run = out / "run"
    assert (run / "best.pt").is_file() and (run / "best.pt.yaml").is_file()
    with open(run / "metrics.csv", newline="") as fh:
        epochs = list(csv.DictReader(fh))
    assert len(epochs) == 1 and math.isfinite(float(epochs[0]["train_loss"]))
    images = sorted((out / "dataset" / "images").glob("*.png"))
    prefire = {p.parent.name: p for p in (out / "cases").glob("*/*/prefire.png")}
    assert len(images) == len(prefire)
    for img in images:  # the dataset image is the pre-fire frame, not the one with the needle
        assert np.array_equal(cv2.imread(str(img), -1), cv2.imread(str(prefire[img.stem]), -1))
