"""The demo flow at tiny size, through the real `sonomap` console command.

simulate-biopsy -> register-batch -> train -> evaluate -> export onnx -> make-clip -> replay,
each step reading the previous step's files, as `make demo` does.
"""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import yaml
from cli import simulate_biopsy, sonomap

pytestmark = pytest.mark.slow

STEP_TIMEOUT_S = 600
N_CASES = 8
N_FRAMES = 12
TINY_SIZE = 64


def run(*args) -> subprocess.CompletedProcess:
    return sonomap(*args, timeout=STEP_TIMEOUT_S)


def test_demo_flow_end_to_end(tmp_path: Path, busi_sample: Path, repo_root: Path):
    cases, dataset, runs = tmp_path / "cases", tmp_path / "dataset", tmp_path / "run"
    simulate_biopsy(busi_sample, cases, N_CASES, seed=1, wsi_mpp=None, timeout=STEP_TIMEOUT_S)
    assert len(list(cases.glob("*/case.yaml"))) == N_CASES

    run("register-batch", cases, "--out", dataset)
    rows = list(csv.DictReader(open(dataset / "cases.csv")))
    assert {r["split"] for r in rows} >= {"train", "test"}
    label = cv2.imread(str(dataset / "labels" / f"{rows[0]['id']}.png"), cv2.IMREAD_UNCHANGED)
    assert set(np.unique(label).tolist()) <= {0, 1, 255}
    assert (label != 255).any(), "registration labelled no pixel of the tract"

    cfg = yaml.safe_load((repo_root / "configs" / "cpu-fast.yaml").read_text())
    cfg["data"]["input_height"] = cfg["data"]["input_width"] = TINY_SIZE
    cfg.setdefault("train", {})["epochs"] = 1
    tiny_cfg = tmp_path / "tiny.yaml"
    tiny_cfg.write_text(yaml.safe_dump(cfg))
    run("train", "--config", tiny_cfg, "--data", dataset, "--out", runs, "--max-minutes", 1)
    assert (runs / "best.pt").is_file() and (runs / "best.pt.yaml").is_file()

    run(
        "evaluate",
        "--checkpoint",
        runs / "best.pt",
        "--data",
        dataset,
        "--split",
        "test",
        "--out",
        tmp_path / "eval",
    )
    metrics = list(csv.DictReader(open(tmp_path / "eval" / "metrics.csv")))
    test_ids = {r["id"] for r in rows if r["split"] == "test"}
    assert {m["id"] for m in metrics} == test_ids
    for m in metrics:
        tp, fp, fn, tn = (int(m[k]) for k in ("tp", "fp", "fn", "tn"))
        assert float(m["pixel_accuracy"]) == pytest.approx((tp + tn) / (tp + fp + fn + tn))

    model = tmp_path / "model.onnx"
    run("export", "onnx", "--checkpoint", runs / "best.pt", "--out", model)
    assert (tmp_path / "model.onnx.yaml").is_file()

    clip = tmp_path / "clip.mp4"
    image = sorted((busi_sample / "images").glob("malignant_*.png"))[0]
    run("make-clip", "--image", image, "--out", clip, "--frames", N_FRAMES)

    overlay, summary = tmp_path / "overlay.mp4", tmp_path / "summary.json"
    run("replay", clip, "--model", model, "--out", overlay, "--summary", summary)
    with av.open(str(overlay)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        n = sum(1 for _ in container.decode(stream))
    assert n == N_FRAMES
    stats = json.loads(summary.read_text())
    assert stats["frames"] == N_FRAMES
