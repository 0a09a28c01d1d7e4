"""The manifest of a Torch-TensorRT export (``model.ep.yaml``), built without torch-tensorrt.

Compiling needs a GPU and the torch-tensorrt package, neither of which is here; the manifest that
travels with the compiled model is plain data, so it is checked against the shipped model's real
manifest: its calibration, mask filter and model config travel on, and nothing names a folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from edge_runtime.manifest import load_manifest, sha256_file
from export.shapes import ShapeSpec
from export.torch_trt import compiled_manifest

DEFAULT = Path(__file__).resolve().parents[1] / "edge_runtime" / "models" / "default" / "model.onnx"


def test_compiled_manifest_keeps_the_checkpoint_records_and_names_no_folder(tmp_path: Path):
    source = load_manifest(DEFAULT)
    checkpoint = tmp_path / "PATIENT_FOLDER" / "best.pt"
    checkpoint.parent.mkdir()
    shutil.copyfile(DEFAULT, checkpoint)  # any file: only its name and digest are recorded
    shapes = ShapeSpec().profile()
    manifest = compiled_manifest(source, checkpoint, shapes, {"torch_tensorrt": "2.9.0"})

    assert manifest.format == "torch-tensorrt" and manifest.preprocessing_in_graph
    assert manifest.extra["precision"] == "fp16"
    assert manifest.extra["model_config"] == source.extra["model_config"]
    for fitted in ("calibration", "mask_filter_fit"):  # what they fitted on: the dataset's name only
        record = dict(manifest.extra[fitted])
        assert record.pop("fitted_on") == "busi_ds split val"
        assert record == {k: v for k, v in source.extra[fitted].items() if k != "fitted_on"}
    assert manifest.mask_filter == source.mask_filter and manifest.threshold == source.threshold
    assert manifest.source["checkpoint"] == "best.pt"
    assert manifest.source["checkpoint_sha256"] == sha256_file(checkpoint)
    assert manifest.io["profile"] == shapes
    text = yaml.safe_dump(manifest.to_dict())
    assert "PATIENT_FOLDER" not in text and str(tmp_path) not in text
