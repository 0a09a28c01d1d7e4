"""`sonomap export onnx` end to end on a tiny real checkpoint and real BUSI frames."""

from __future__ import annotations

import json

import cv2
import numpy as np
import onnx
import pytest
import yaml
from export_fixtures import shared_checkpoint

from edge_runtime.cli import main
from edge_runtime.manifest import load_manifest, manifest_path, sha256_file
from edge_runtime.preprocess import preprocess_for
from export.parity import ort_session, run_ort
from export.samples import load_frames

PARITY_FRAMES = 4


@pytest.fixture(scope="module")
def checkpoint():
    return shared_checkpoint()


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory, busi_sample):
    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    rc = main(
        [
            "export",
            "onnx",
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(out),
            "--fp16",
            "--parity-frames",
            str(PARITY_FRAMES),
            "--frames",
            str(busi_sample / "images"),
        ]
    )
    assert rc == 0
    return out


def test_onnx_file_manifest_and_checker(exported, checkpoint):
    onnx.checker.check_model(str(exported), full_check=True)
    model = onnx.load(str(exported))
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
    m = load_manifest(exported)  # verifies sha256
    assert m.format == "onnx" and m.preprocessing_in_graph
    assert m.sha256 == sha256_file(exported)
    assert m.source["checkpoint_sha256"] == sha256_file(checkpoint)
    assert [t["name"] for t in m.io["inputs"]] == ["frame"]
    assert {t["name"]: t["dtype"] for t in m.io["outputs"]} == {"prob": "float32", "mask": "uint8"}
    assert m.io["dynamic_hw"] is True and m.io["opset"] == 17
    assert m.io["profile"]["min"][2] <= m.io["profile"]["opt"][2] <= m.io["profile"]["max"][2]
    assert {"torch", "onnx", "onnxruntime", "exporter"} <= set(m.versions)
    assert [c.name for c in m.classes] == ["tissue", "cancer"] and m.classes[1].color == [255, 40, 40]


def test_parity_json_fp32_and_fp16(exported):
    report = json.loads((exported.parent / "model.onnx.parity.json").read_text())
    fp32, fp16 = report["fp32"], report["fp16"]
    assert fp32["frames"] == PARITY_FRAMES and fp32["passed"] and fp32["mask_agreement"] >= 0.999
    assert fp16["passed"] and fp16["mask_agreement"] >= 0.995
    # The fitted model marks lesions: agreement is not measured on empty masks.
    assert 0 < fp32["cancer_pixels_reference"] < fp32["pixels"]
    assert load_manifest(exported).extra["parity"]["passed"] is True


def test_a_second_model_in_the_folder_keeps_the_first_models_report(
    exported, checkpoint, busi_sample, capsys
):
    """Reports are named after their model: exporting other.onnx beside model.onnx (FP32 only) leaves
    model.onnx's report, FP16 section included, as it was."""
    first = exported.with_name("model.onnx.parity.json")
    before = first.read_bytes()
    other = exported.with_name("other.onnx")
    rc = main(
        ["export", "onnx", "--checkpoint", str(checkpoint), "--out", str(other), "--parity-frames", "1"]
        + ["--frames", str(busi_sample / "images")]
    )
    assert rc == 0
    assert f"parity report: {other}.parity.json" in capsys.readouterr().out
    assert first.read_bytes() == before
    report = json.loads(other.with_name("other.onnx.parity.json").read_text())
    assert set(report) == {"fp32"} and report["fp32"]["frames"] == 1
    assert not exported.with_name("parity.json").exists()


def test_dynamic_size_outputs_follow_input(exported):
    session = ort_session(exported)
    for h, w in ((97, 131), (480, 640)):
        prob, mask = run_ort(session, np.full((h, w), 90, np.uint8))
        assert prob.shape == (h, w) and mask.shape == (h, w)
        assert prob.dtype == np.float32 and mask.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 1}


def test_folded_graph_matches_shared_preprocessing(exported, checkpoint, busi_sample):
    """The graph's resize/normalise/softmax/threshold equal the runtime's unfolded path."""
    import torch

    from training.checkpoint import load_model

    model, manifest = load_model(checkpoint)
    session = ort_session(exported)
    for _, gray in load_frames(busi_sample / "images", 3):
        x = torch.from_numpy(preprocess_for(gray, manifest))[None]
        with torch.no_grad():
            p = torch.softmax(model(x), 1)[0, manifest.cancer_index].numpy()
        p = cv2.resize(p, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_LINEAR)
        ref_mask = (p >= manifest.threshold).astype(np.uint8)
        prob, mask = run_ort(session, gray)
        # Only uint8 rounding of the resized input differs (cv2 resizes uint8, the graph float).
        assert np.mean(ref_mask == mask) >= 0.99
        assert np.abs(prob - p).mean() < 0.01


def test_fp16_model_keeps_io_types(exported):
    half = exported.with_name("model.fp16.onnx")
    m = load_manifest(half)
    assert m.extra["precision"] == "fp16" and m.source["fp32_onnx_sha256"] == sha256_file(exported)
    session = ort_session(half)
    assert session.get_inputs()[0].type == "tensor(uint8)"
    assert {o.name: o.type for o in session.get_outputs()} == {
        "prob": "tensor(float)",
        "mask": "tensor(uint8)",
    }
    assert onnx.load(str(half)).ByteSize() < 0.6 * onnx.load(str(exported)).ByteSize()


def test_fixed_roi_dynamic_batch(checkpoint, tmp_path, busi_sample):
    out = tmp_path / "fixed.onnx"
    rc = main(
        [
            "export",
            "onnx",
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(out),
            "--roi",
            "96x128",
            "--dynamic-batch",
            "--parity-frames",
            "2",
            "--frames",
            str(busi_sample / "images"),
        ]
    )
    assert rc == 0
    session = ort_session(out)
    assert session.get_inputs()[0].shape == ["batch", 1, 96, 128]
    prob, mask = session.run(["prob", "mask"], {"frame": np.zeros((2, 1, 96, 128), np.uint8)})
    assert prob.shape == (2, 1, 96, 128) and mask.shape == (2, 1, 96, 128)
    assert load_manifest(out).io["profile"] == {
        "min": [1, 1, 96, 128],
        "opt": [1, 1, 96, 128],
        "max": [4, 1, 96, 128],
    }


def _one_line_error(capsys, rc: int) -> str:
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "Traceback" not in err and len(err.splitlines()) == 1
    return err


def test_unsupported_opset(checkpoint, tmp_path, capsys):
    rc = main(
        [
            "export",
            "onnx",
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(tmp_path / "m.onnx"),
            "--opset",
            "11",
        ]
    )
    assert "--opset 11" in _one_line_error(capsys, rc)
    assert not (tmp_path / "m.onnx").exists()


def test_checkpoint_and_manifest_disagree(checkpoint, tmp_path, capsys):
    ck = tmp_path / "copy" / checkpoint.name  # its own name: the manifest's 'file' names it
    ck.parent.mkdir()
    ck.write_bytes(checkpoint.read_bytes())
    data = yaml.safe_load(manifest_path(checkpoint).read_text())
    data["arch"] = "fcn_resnet50"
    manifest_path(ck).write_text(yaml.safe_dump(data))
    rc = main(["export", "onnx", "--checkpoint", str(ck), "--out", str(tmp_path / "m.onnx")])
    err = _one_line_error(capsys, rc)
    assert "lraspp_mobilenet_v3_large" in err and "fcn_resnet50" in err


def test_checkpoint_replaced_after_manifest(checkpoint, tmp_path, capsys):
    ck = tmp_path / "copy" / checkpoint.name  # its own name: the manifest's 'file' names it
    ck.parent.mkdir()
    ck.write_bytes(checkpoint.read_bytes() + b"\0")
    manifest_path(ck).write_text(manifest_path(checkpoint).read_text())
    rc = main(["export", "onnx", "--checkpoint", str(ck), "--out", str(tmp_path / "m.onnx")])
    assert "sha256" in _one_line_error(capsys, rc)


@pytest.mark.parametrize(
    "extra, culprit",
    [
        (["--frames", "/nonexistent/frames"], "/nonexistent/frames"),
        (["--roi", "96by128"], "--roi"),
        (["--min-hw", "900x900", "--opt-hw", "800x800"], "height"),
    ],
)
def test_bad_arguments(checkpoint, tmp_path, capsys, extra, culprit):
    rc = main(["export", "onnx", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "m.onnx"), *extra])
    assert culprit in _one_line_error(capsys, rc)


def test_missing_checkpoint(tmp_path, capsys):
    rc = main(
        ["export", "onnx", "--checkpoint", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "m.onnx")]
    )
    assert "nope.pt" in _one_line_error(capsys, rc)


@pytest.mark.parametrize("cancer_id", [1, 0])
def test_two_class_fold_equals_softmax_resize_slice(cancer_id):
    """The two-class shortcut (logistic of the logit difference, one channel resized) gives the
    values of the general softmax -> resize -> slice, and the mask uses the manifest's class ids."""
    import torch
    from torch.nn import functional as F

    from edge_runtime.manifest import ClassInfo, Manifest
    from export.folded import FoldedSegmenter

    torch.manual_seed(0)
    net = torch.nn.Conv2d(1, 2, 3, padding=1)
    classes = [ClassInfo(1 - cancer_id, "tissue", [0, 0, 0]), ClassInfo(cancer_id, "cancer", [255, 40, 40])]
    manifest = Manifest(
        name="t",
        arch="conv",
        format="checkpoint",
        input_height=16,
        input_width=24,
        mean=0.3,
        std=0.2,
        classes=sorted(classes, key=lambda c: c.id),
        threshold=0.5,
    )
    folded = FoldedSegmenter(net, manifest)
    frame = torch.randint(0, 256, (1, 1, 37, 53), dtype=torch.uint8)
    with torch.no_grad():
        prob, mask = folded(frame)
        x = (
            F.interpolate(frame.float(), size=(16, 24), mode="bilinear", align_corners=False) / 255.0 - 0.3
        ) / 0.2
        ref = F.interpolate(torch.softmax(net(x), 1), size=(37, 53), mode="bilinear", align_corners=False)
    ref = ref[:, cancer_id : cancer_id + 1]
    assert torch.allclose(prob, ref, atol=1e-6)
    expected = torch.where(ref >= 0.5, cancer_id, 1 - cancer_id).to(torch.uint8)
    assert mask.dtype == torch.uint8 and 0.05 < (mask == cancer_id).float().mean() < 0.95
    assert torch.equal(mask[(ref - 0.5).abs() > 1e-5], expected[(ref - 0.5).abs() > 1e-5])


def test_exported_graphs_pass_tensorrt_lint(exported):
    """Both files export onnx writes are checked against TensorRT's rules (export/trt_lint.py)."""
    from export.trt_lint import lint_onnx

    for path in (exported, exported.with_name("model.fp16.onnx")):
        report = lint_onnx(path)
        assert report.passed, report.problems
