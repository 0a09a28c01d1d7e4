"""CUDA paths, run where a CUDA device exists (``gpu`` marker; skipped with a reason elsewhere):
torch backend FP16 autocast and CUDA graphs against ONNX Runtime on CPU, training with AMP and
channels_last on CUDA, and a replay through the pipeline on the GPU with no frame dropped."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
import yaml
from cli import sonomap as run_cli
from export_fixtures import shared_checkpoint

from edge_runtime.backends import create_backend
from edge_runtime.manifest import load_manifest
from export.samples import load_frames

pytestmark = pytest.mark.gpu
# FP16 moves a few boundary pixels; the FP16-vs-FP32 ONNX bar of the export stage is the same.
FP16_MASK_AGREEMENT = 0.995
PROB_ATOL_FP16 = 0.02
N_FRAMES = 6
CLIP_FRAMES = 20
GPU_CLI_TIMEOUT_S = 600  # each call starts a CUDA context and autotunes cuDNN


def sonomap(*args):
    return run_cli(*args, timeout=GPU_CLI_TIMEOUT_S)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, busi_sample):
    """The same tiny checkpoint as TorchScript (torch backend) and folded ONNX (the CPU oracle)."""
    root = tmp_path_factory.mktemp("gpu")
    ck = shared_checkpoint()
    sonomap(
        "export",
        "torchscript",
        "--checkpoint",
        ck,
        "--out",
        root / "model.ts",
        "--frames",
        busi_sample / "images",
        "--parity-frames",
        "2",
    )
    sonomap(
        "export",
        "onnx",
        "--checkpoint",
        ck,
        "--out",
        root / "model.onnx",
        "--frames",
        busi_sample / "images",
        "--parity-frames",
        "2",
    )
    return root / "model.ts", root / "model.onnx"


@pytest.mark.parametrize("cuda_graphs", [False, True], ids=["eager", "cuda-graphs"])
def test_torch_cuda_fp16_agrees_with_onnxruntime_cpu(exported, busi_sample, cuda_graphs):
    ts, onnx = exported
    gpu = create_backend("torch", ts, load_manifest(ts), device="cuda", fp16=True, cuda_graphs=cuda_graphs)
    cpu = create_backend("onnxruntime", onnx, load_manifest(onnx), device="cpu")
    assert gpu.describe() == {
        "backend": "torch",
        "device": "cuda",
        "model": gpu.manifest.name,
        "precision": "fp16",
        "cuda_graphs": cuda_graphs,
    }
    agree = total = 0
    try:
        # Twice over the frames: a CUDA graph is captured per shape on first use, then replayed.
        for _, gray in load_frames(busi_sample / "images", N_FRAMES) * 2:
            a, b = gpu.infer(gray), cpu.infer(gray)
            assert a.mask.shape == b.mask.shape == gray.shape
            assert np.isfinite(a.prob).all()
            assert np.abs(a.prob - b.prob).max() < PROB_ATOL_FP16
            agree += int(np.count_nonzero(a.mask == b.mask))
            total += a.mask.size
    finally:
        gpu.close()
        cpu.close()
    assert agree / total >= FP16_MASK_AGREEMENT


def test_train_on_cuda_with_amp(tmp_path, busi_sample):
    """`sonomap train --device cuda`: AMP + channels_last, then the checkpoint loads on CPU."""
    from training.checkpoint import load_model

    sonomap("prepare-busi", "--busi", busi_sample, "--out", tmp_path / "ds")
    cfg = {
        "name": "gpu-tiny",
        "model": {"arch": "lraspp_mobilenet_v3_large"},
        "data": {"input_height": 128, "input_width": 128, "mean": 0.25, "std": 0.2, "num_workers": 2},
        "train": {"epochs": 2, "batch_size": 8, "lr": 3.0e-3, "amp": True, "channels_last": True},
    }
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    sonomap(
        "train",
        "--config",
        tmp_path / "cfg.yaml",
        "--data",
        tmp_path / "ds",
        "--out",
        tmp_path / "run",
        "--device",
        "cuda",
        "--no-progress",
    )
    model, manifest = load_model(tmp_path / "run" / "best.pt")
    assert manifest.arch == "lraspp_mobilenet_v3_large"
    assert all(np.isfinite(p.detach().numpy()).all() for p in model.parameters())


def test_replay_on_cuda_keeps_every_frame(exported, tmp_path):
    ts, _ = exported
    clip, out = tmp_path / "clip.mp4", tmp_path / "overlay.mp4"
    sonomap("make-clip", "--out", clip, "--frames", CLIP_FRAMES, "--size", "640x360")
    sonomap(
        "replay",
        clip,
        "--model",
        ts,
        "--backend",
        "torch",
        "--device",
        "cuda",
        "--out",
        out,
        "--summary",
        tmp_path / "summary.json",
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["frames"] == CLIP_FRAMES and summary["inferred"] == CLIP_FRAMES
    assert summary["backend"]["device"].startswith("cuda") and summary["backend"]["precision"] == "fp16"
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(c.streams.video[0])) == CLIP_FRAMES
