"""Research outputs and their log lines name a dataset, run or input by its kind or base name, never by
a path or an input file's name (a folder or slide may be named after the patient): the readers a slide
was not read with (report.json), the labels train warns about, a run's metrics.csv that evaluate
cannot read, and bench's live source."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import yaml
from cli import sonomap
from export_fixtures import shared_tiny_onnx

from registration.wsi_slide import SlideLevel
from training.data import CANCER, IGNORE_INDEX, read_cases
from training.train import run

PATIENT = "DOE_JANE_1970"
TINY = {
    "name": "tiny-names",
    "model": {"arch": "unet_small", "width": 4},
    "data": {"input_height": 32, "input_width": 32, "mean": 0.3, "std": 0.2},
    "train": {"epochs": 1, "batch_size": 4, "warmup_iters": 1},
}


def test_report_json_names_no_file_a_slide_reader_quoted():
    """tifffile quotes the slide in its own messages (<tifffile.TiffFile 'DOE_JANE_1970.ome.tif'>); the
    reason another reader was used keeps what failed, not the file's name."""
    level = SlideLevel(np.zeros((2, 2, 3), np.uint8), 1.0, 1.0, 0, (2, 2), "s")
    level.tried = [f"tifffile: <tifffile.TiffFile '{PATIENT}.ome.tif'> OME series cannot read: corrupted IFD"]
    (reason,) = level.describe()["readers_not_used"]
    assert PATIENT not in reason and reason.startswith("tifffile: ") and "corrupted IFD" in reason


def test_train_warns_of_0_255_labels_by_the_dataset_base_name_not_its_path(busi_dataset, tmp_path, caplog):
    data = tmp_path / PATIENT / "dataset"
    shutil.copytree(busi_dataset, data)
    val = [s for s in read_cases(data) if s.split == "val"]
    for sample in val:  # one val label saved as a 0/255 mask; the others keep their cancer
        label = cv2.imread(str(sample.label), cv2.IMREAD_UNCHANGED)
        if (label == CANCER).any():
            cv2.imwrite(str(sample.label), np.where(label == CANCER, IGNORE_INDEX, label).astype(np.uint8))
            masked = sample
            break
    assert sum((cv2.imread(str(s.label), cv2.IMREAD_UNCHANGED) == CANCER).any() for s in val) > 0
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    caplog.set_level(logging.WARNING, logger="sonomap")
    run(config, data, tmp_path / "run", show_progress=False, device="cpu")
    warned = [r.getMessage() for r in caplog.records if "look like a lesion mask" in r.getMessage()]
    assert len(warned) == 1 and PATIENT not in warned[0], warned
    assert warned[0].startswith("dataset/cases.csv: split 'val': 1 label(s)") and (
        f"dataset/labels/{Path(masked.label).name} holds only 0 and 255" in warned[0]
    ), warned


def test_evaluate_names_an_unreadable_metrics_csv_by_the_run_folder_not_its_path(busi_dataset, tmp_path):
    run_dir = tmp_path / PATIENT / "run"
    run_dir.mkdir(parents=True)
    model = run_dir / "model.onnx"
    shutil.copy(shared_tiny_onnx(), model)
    shutil.copy(f"{shared_tiny_onnx()}.yaml", f"{model}.yaml")
    (run_dir / "metrics.csv").write_text("epoch,loss\n1,0.5\n")  # not a training run's log
    out = sonomap("evaluate", "--checkpoint", model, "--data", busi_dataset, "--out", tmp_path / "report")
    assert "run/metrics.csv: no column(s)" in out.stderr and PATIENT not in out.stderr, out.stderr


def test_bench_prints_its_live_source_by_kind(tmp_path):
    clip = tmp_path / PATIENT / "procedure.mp4"
    clip.parent.mkdir()
    sonomap("make-clip", "--out", clip, "--frames", 8, "--size", "320x180")
    out = sonomap("bench", clip, "--source", clip, "--frames", 4, "--rounds", 1, "--live-seconds", 1)
    lines = [line for line in out.stdout.splitlines() if line.startswith("live (")]
    assert lines and lines[0].startswith("live (video file, 1 s;"), out.stdout
    assert PATIENT not in out.stdout
