"""Frame and image file names never reach the files that ship or travel: `export onnx`'s parity
report (beside the model) and the manifest's `extra.parity`, and `make-clip`'s `.json` beside the clip.

Inputs are named after a patient (``DOE_JANE_1970``) with no patient data inside them, so only
keeping the name out passes. Real files and the real command (`tests/cli.py`).
"""

from __future__ import annotations

import json
import shutil

import pytest
from cli import sonomap
from export_fixtures import shared_checkpoint

from edge_runtime.errors import InputError
from edge_runtime.manifest import manifest_path, sha256_file
from export.samples import load_frames

PATIENT = "DOE_JANE_1970"
OTHER = "ROE_RICHARD_1955"
PARTS = ("DOE", "JANE", "ROE", "RICHARD")  # each part alone, searched in the text outputs
SOURCE_IMAGES = {PATIENT: "malignant_002", OTHER: "benign_002"}  # vendored BUSI sample stems


@pytest.fixture()
def patient_frames(tmp_path, busi_sample):
    folder = tmp_path / f"{PATIENT} frames"
    folder.mkdir()
    for name, stem in SOURCE_IMAGES.items():
        shutil.copy2(busi_sample / "images" / f"{stem}.png", folder / f"{name}.png")
    return folder


def _no_names(text: str) -> None:
    for part in PARTS:
        assert part not in text.upper(), part


def test_frames_are_named_by_index_and_hash(patient_frames):
    frames = load_frames(patient_frames)
    files = sorted(patient_frames.iterdir())
    assert [i for i, _ in frames] == [f"#{n} sha256:{sha256_file(f)[:16]}" for n, f in enumerate(files)]
    _no_names(" ".join(i for i, _ in frames))
    one = load_frames(patient_frames, 1)
    assert len(one) == 1 and one[0][0].startswith("#0 ")
    for limit in (0, -1):  # an empty selection is an error, not a ZeroDivisionError or IndexError
        with pytest.raises(InputError, match="at least 1"):
            load_frames(patient_frames, limit)


def test_export_onnx_parity_report_and_manifest_name_no_frame(tmp_path, patient_frames):
    out = tmp_path / "model.onnx"
    sonomap(
        "export", "onnx", "--checkpoint", shared_checkpoint(), "--out", out,
        "--frames", patient_frames, "--parity-frames", "2",
    )  # fmt: skip
    report = out.with_name(out.name + ".parity.json")
    text = report.read_text()
    _no_names(text)
    per_frame = json.loads(text)["fp32"]["per_frame"]
    assert [f["id"].split()[0] for f in per_frame] == ["#0", "#1"]
    _no_names(manifest_path(out).read_text())


def test_make_clip_json_records_the_image_by_hash(tmp_path, patient_frames):
    image = patient_frames / f"{PATIENT}.png"
    out = tmp_path / "clip.mp4"
    result = sonomap("make-clip", "--image", image, "--out", out, "--frames", "2", "--size", "320x240")
    assert PATIENT not in result.stdout  # stdout goes to logs and the journal too
    assert f"from image sha256 {sha256_file(image)[:12]}" in result.stdout
    text = out.with_suffix(".json").read_text()
    _no_names(text)
    info = json.loads(text)
    assert info["image_sha256"] == sha256_file(image) and "image" not in info
