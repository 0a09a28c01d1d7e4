"""Backends: ONNX Runtime (folded and plain graphs), torch (TorchScript), auto selection, and
the runtime config (shipped default, reload)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from runtime_model import DARK_GAIN, DARK_LEVEL, POOL, dark_onnx

from edge_runtime.backends import backend_from_config, choose_backend, create_backend, failsafe
from edge_runtime.backends.base import Backend
from edge_runtime.backends.failsafe import BANNER_NAN, GuardedInference
from edge_runtime.config import build_config, load_config
from edge_runtime.errors import ConfigError
from edge_runtime.frames import Prediction
from edge_runtime.manifest import load_manifest, save_manifest
from edge_runtime.model_contract import contract_props
from edge_runtime.pipeline.graph import Pipeline
from edge_runtime.stats import Stats
from edge_runtime.typed_config import as_dict

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def roi_image(busi_sample):
    return cv2.imread(str(busi_sample / "images" / "malignant_018.png"), cv2.IMREAD_GRAYSCALE)


def test_onnxruntime_folded_model_returns_roi_sized_prediction(roi_image):
    backend = create_backend("onnxruntime", dark_onnx(), load_manifest(dark_onnx()), device="cpu")
    pred = backend.infer(roi_image)
    assert pred.mask.shape == roi_image.shape == pred.prob.shape
    assert pred.mask.dtype == np.uint8 and pred.prob.dtype == np.float32
    assert 0.02 < pred.mask.mean() < 0.98 and pred.latency_ms > 0
    assert np.array_equal(pred.mask, (pred.prob > 0.5).astype(np.uint8))
    assert backend.describe()["device"] == "cpu" and "auto" not in backend.selected_because


def fixed_size_copy(src: Path, out: Path, height: int, width: int) -> Path:
    """The same folded graph with its frame/prob/mask fixed at (height, width), manifest beside it."""
    import onnx

    model = onnx.load(str(src))
    for value in (*model.graph.input, *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        dims[2].dim_value, dims[3].dim_value = height, width  # replaces the symbolic height/width
    onnx.save(model, str(out))
    save_manifest(load_manifest(src), out)
    return out


def test_fixed_size_model_keeps_prob_at_model_size_until_read(tmp_path, roi_image):
    """A model fixed at 256x256 is fed the resized ROI: its mask comes back at ROI size at once, its
    float probability only when something reads it (the unsmoothed overlay never does)."""
    model = fixed_size_copy(dark_onnx(), tmp_path / "fixed.onnx", 256, 256)
    pred = create_backend("onnxruntime", model, load_manifest(model), device="cpu").infer(roi_image)
    height, width = roi_image.shape
    assert (height, width) != (256, 256)
    assert pred.mask.shape == (height, width) and pred.native_prob.shape == (256, 256)
    assert pred._prob is None  # nothing resized yet
    expected = cv2.resize(pred.native_prob, (width, height), interpolation=cv2.INTER_LINEAR)
    assert pred.prob.shape == (height, width) and np.array_equal(pred.prob, expected)
    assert pred.prob is pred.prob  # resized once
    # The mask is the model's own 256x256 mask resized by nearest neighbour.
    native_mask = (pred.native_prob > 0.5).astype(np.uint8)
    assert 0.02 < native_mask.mean() < 0.98
    assert np.array_equal(
        pred.mask, cv2.resize(native_mask, (width, height), interpolation=cv2.INTER_NEAREST)
    )


def test_failsafe_sees_a_nan_in_a_model_size_probability():
    class OneNaN(Backend):
        def infer(self, gray_roi):
            prob = np.full((8, 8), 0.2, np.float32)
            prob[3, 5] = np.nan  # one model pixel: the ROI-size image is never made
            return Prediction(np.zeros(gray_roi.shape, np.uint8), prob, 1.0)

    model = dark_onnx()
    guard = GuardedInference(lambda: OneNaN(model, load_manifest(model)), Stats(), retry_after_s=0.0)
    assert guard.infer(np.zeros((40, 60), np.uint8)) is None
    assert guard.banner() == ("error", BANNER_NAN)


def test_a_failed_backend_re_creation_is_logged_and_the_old_backend_kept(caplog):
    class Broken(Backend):
        def infer(self, gray_roi):
            raise RuntimeError("CUDA error: an illegal memory access")

    model = dark_onnx()
    built = []

    def factory():
        if built:
            raise OSError(f"{model}: engine file unreadable")
        built.append(Broken(model, load_manifest(model)))
        return built[0]

    stats = Stats()
    guard = GuardedInference(factory, stats, retry_after_s=0.0, reload_after_errors=2)
    with caplog.at_level(logging.ERROR, logger=failsafe.log.name):
        for _ in range(3):  # faults 1 and 2, then the re-creation that fails
            assert guard.infer(np.zeros((40, 60), np.uint8)) is None
    failed = [r for r in caplog.records if "re-creation" in r.getMessage()]
    assert len(failed) == 1 and "engine file unreadable" in failed[0].getMessage()
    assert guard.backend is built[0] and guard.consecutive == 3  # the old one kept, still counted


def test_auto_backend_logs_why():
    name, why = choose_backend(dark_onnx())
    assert name == "onnxruntime" and "CPU" in why
    assert choose_backend("model.engine")[0] == "tensorrt"
    assert choose_backend("model.ts")[0] == "torch"


def make_torchscript(out: Path) -> Path:
    """The dark-region model of runtime_model as TorchScript with the folded contract, its model
    contract saved in the file as ``sonomap export torchscript`` saves it."""
    torch = pytest.importorskip("torch")

    class Dark(torch.nn.Module):
        def forward(self, frame):
            x = frame.float() / 255.0
            avg = torch.nn.functional.avg_pool2d(
                x, POOL, stride=1, padding=POOL // 2, count_include_pad=False
            )
            prob = torch.sigmoid((DARK_LEVEL - avg) * DARK_GAIN)
            return prob, (prob > 0.5).to(torch.uint8)

    traced = torch.jit.trace(Dark().eval(), torch.zeros(1, 1, 64, 80, dtype=torch.uint8))
    manifest = load_manifest(dark_onnx()).derive(format="torchscript")
    traced.save(str(out), _extra_files=contract_props(manifest))
    save_manifest(manifest, out)
    return out


@pytest.mark.parametrize("preset, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_torch_backend_makes_openmp_threads_sleep_unless_told_otherwise(tmp_path, preset, expected):
    """In a fresh process (the runtime loads torch only for this backend) OpenMP's wait policy is set
    before torch loads; a value the user set is kept."""
    model = make_torchscript(tmp_path / "dark.ts")
    code = (
        "import os, sys\n"
        "from edge_runtime.backends import create_backend\n"
        "from edge_runtime.manifest import load_manifest\n"
        "assert 'torch' not in sys.modules\n"
        f"create_backend('torch', {str(model)!r}, load_manifest({str(model)!r}), device='cpu')\n"
        "print(os.environ.get('OMP_WAIT_POLICY'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if preset:
        env["OMP_WAIT_POLICY"] = preset
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == expected


def test_torch_backend_matches_onnxruntime(tmp_path, roi_image):
    ts = make_torchscript(tmp_path / "model.ts")
    torch_backend = create_backend("auto", ts, load_manifest(ts), device="cpu", fp16=True, cuda_graphs=True)
    assert torch_backend.name == "torch" and "TorchScript" in torch_backend.selected_because
    assert torch_backend.describe()["precision"] == "fp32"  # FP16/graphs only on CUDA
    ort_backend = create_backend("onnxruntime", dark_onnx(), load_manifest(dark_onnx()), device="cpu")
    a, b = torch_backend.infer(roi_image), ort_backend.infer(roi_image)
    assert a.mask.shape == roi_image.shape
    assert (a.mask == b.mask).mean() > 0.999 and np.abs(a.prob - b.prob).max() < 1e-3


@pytest.mark.parametrize("input_size", [48, [48, 48]])
def test_torch_backend_input_size_as_one_int_or_a_pair_works_as_a_fixed_size_onnx_model(
    tmp_path, roi_image, input_size
):
    """``inference.input_size: 48`` (the config allows one int: a 48 x 48 square) and ``[48, 48]`` feed
    the torch model the ROI resized to 48 x 48, as ONNX Runtime feeds a model fixed at 48 x 48: the
    same mask at ROI size, the probability at the model's size until read."""
    ts = make_torchscript(tmp_path / "model.ts")
    inference = build_config(
        {"inference": {"model": str(ts), "backend": "torch", "device": "cpu", "input_size": input_size}}
    ).inference
    torch_backend = backend_from_config(inference, ts, load_manifest(ts))
    fixed = fixed_size_copy(dark_onnx(), tmp_path / "fixed.onnx", 48, 48)
    ort_backend = create_backend("onnxruntime", fixed, load_manifest(fixed), device="cpu")
    a, b = torch_backend.infer(roi_image), ort_backend.infer(roi_image)
    assert torch_backend.input_size == (48, 48)
    assert a.mask.shape == roi_image.shape and a.native_prob.shape == b.native_prob.shape == (48, 48)
    assert (a.mask == b.mask).mean() > 0.999 and np.abs(a.native_prob - b.native_prob).max() < 1e-3
    assert 0.02 < a.mask.mean() < 0.98  # something and not everything is predicted


def test_cuda_requested_without_cuda_is_a_config_error():
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has the CUDA execution provider")
    with pytest.raises(ConfigError, match="cuda"):
        create_backend("onnxruntime", dark_onnx(), load_manifest(dark_onnx()), device="cuda")


def with_parity(tmp_path: Path, passed: bool) -> Path:
    """A copy of the dark-region model whose manifest records a parity verdict."""
    model = tmp_path / "model.onnx"
    model.write_bytes(dark_onnx().read_bytes())
    manifest = load_manifest(dark_onnx())
    manifest.extra = {
        **manifest.extra,
        "parity": {
            "reference": "torch-fp32",
            "candidate": "onnxruntime-fp32",
            "frames": 8,
            "mask_agreement": 0.91 if not passed else 1.0,
            "bar": 0.999,
            "passed": passed,
        },
    }
    save_manifest(manifest, model)
    return model


def test_a_model_whose_parity_check_failed_is_refused_and_one_that_passed_is_served(tmp_path):
    failed = with_parity(tmp_path, passed=False)
    with pytest.raises(ConfigError, match=r"model\.onnx: its manifest records a failed parity check.*0\.91"):
        create_backend("onnxruntime", failed, load_manifest(failed), device="cpu")
    passed = with_parity(tmp_path, passed=True)
    backend = create_backend("onnxruntime", passed, load_manifest(passed), device="cpu")
    assert backend.infer(np.zeros((64, 64), np.uint8)).mask.shape == (64, 64)


def test_replay_of_a_model_whose_parity_failed_ends_with_one_line_naming_it(tmp_path):
    failed = with_parity(tmp_path, passed=False)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_runtime.cli",
            "replay",
            "synthetic",
            "--max-frames",
            "2",
            "--model",
            str(failed),
            "--out",
            str(tmp_path / "out.mp4"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0 and "failed parity check" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_evaluate_refuses_a_model_the_runtime_refuses(tmp_path, busi_dataset):
    """evaluate builds its ONNX backend through the runtime's factory: it never reports figures for
    a model the cart would not serve."""
    failed = with_parity(tmp_path, passed=False)
    cmd = [sys.executable, "-m", "edge_runtime.cli", "evaluate", "--checkpoint", str(failed)]
    cmd += ["--data", str(busi_dataset), "--split", "test", "--out", str(tmp_path / "report")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "failed parity check" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "report" / "summary.json").exists()


def test_shipped_default_config_is_valid_and_complete():
    config = load_config(REPO / "edge_runtime" / "configs" / "default.yaml")
    assert config == build_config(as_dict(config))  # every key known; round-trips
    assert list(as_dict(config)) == ["source", "roi", "inference", "overlay", "sinks", "live", "privacy"]


def test_request_reload_applies_a_good_config_and_keeps_the_old_one_on_a_bad_edit(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        f"source: {{input: synthetic}}\ninference: {{model: {dark_onnx()}}}\noverlay: {{alpha: 0.4}}\n"
    )
    pipeline = Pipeline(load_config(path), config_path=path)
    path.write_text(
        f"source: {{input: synthetic}}\ninference: {{model: {dark_onnx()}}}\noverlay: {{alpha: 0.6}}\n"
    )
    pipeline.request_reload()
    pipeline.apply_reload()
    assert pipeline.overlay.styles[1].alpha == pytest.approx(0.6)
    path.write_text("overlay: {alpha: 0.2, typo: 1}\n")
    pipeline.request_reload()
    pipeline.apply_reload()
    assert pipeline.overlay.styles[1].alpha == pytest.approx(0.6)
    assert "typo" in pipeline.stats()["last_error"]
    pipeline.close()
