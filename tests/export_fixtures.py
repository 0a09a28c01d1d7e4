"""Test helper for the export tests: a tiny real checkpoint (+ manifest) written with
training's own builders, so export runs on the same files ``sonomap train`` writes.

The model is a seeded LRASPP-MobileNetV3 at a small input size, fitted for a few steps on
the vendored BUSI sample (lesion mask = class 1) so its masks have structure: parity is
then measured on masks with both classes and real boundaries, not trivially uniform ones.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import cv2
import numpy as np
from run_shared import made_once

from edge_runtime.manifest import DEFAULT_CLASSES, Manifest, load_manifest, save_manifest
from edge_runtime.preprocess import preprocess

ARCH = "lraspp_mobilenet_v3_large"
INPUT_SIZE = 64
MEAN, STD = 0.25, 0.2
SEED = 0
FIT_STEPS = 25
FIT_BATCH = 8
LEARNING_RATE = 3e-3
LESION_WEIGHT = 6.0  # lesions cover ~10% of pixels; weight them so the model marks some
SAMPLE = Path(__file__).resolve().parent / "data" / "busi"
EXTERNAL_DATA = "model.onnx.data"  # where external_copy keeps the weights


def tiny_manifest(arch: str = ARCH, size: int = INPUT_SIZE) -> Manifest:
    return Manifest(
        name="tiny-export-test",
        arch=arch,
        format="checkpoint",
        input_height=size,
        input_width=size,
        mean=MEAN,
        std=STD,
        classes=list(DEFAULT_CLASSES),
        threshold=0.5,
    )


def _sample_batch(size: int):
    import torch

    xs, ys = [], []
    for path in sorted((SAMPLE / "images").glob("*.png")):
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        lesion = cv2.imread(str(SAMPLE / "masks" / path.name), cv2.IMREAD_GRAYSCALE)
        xs.append(preprocess(gray, size, size, MEAN, STD))
        ys.append((cv2.resize(lesion, (size, size), interpolation=cv2.INTER_NEAREST) > 0).astype(np.int64))
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def _recalibrate_batchnorm(model, x) -> None:
    """MobileNetV3's BatchNorm momentum is 0.01, so a few steps leave running stats near their
    init; recompute them over the sample (cumulative average) so eval mode matches training."""
    import torch

    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
            module.reset_running_stats()
            module.momentum = None
    model.train()
    with torch.no_grad():
        for start in range(0, len(x), FIT_BATCH):
            model(x[start : start + FIT_BATCH])


def make_checkpoint(out_dir: Path, arch: str = ARCH, size: int = INPUT_SIZE, steps: int = FIT_STEPS) -> Path:
    """Write ``out_dir/tiny.pt`` + ``tiny.pt.yaml``; returns the checkpoint path."""
    import torch

    threads = torch.get_num_threads()
    # One thread: on a shared 2-core machine, OpenMP spin-waiting made these few steps cost
    # ten times the CPU time of a single-threaded run.
    torch.set_num_threads(1)
    try:
        return _fit_and_save(out_dir, arch, size, steps)
    finally:
        torch.set_num_threads(threads)


def _fit_and_save(out_dir: Path, arch: str, size: int, steps: int) -> Path:
    import torch

    from training.checkpoint_save import save_checkpoint
    from training.models import build_model

    torch.manual_seed(SEED)
    model = build_model(arch, 2)
    x, y = _sample_batch(size)
    class_weights = torch.tensor([1.0, LESION_WEIGHT])
    opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    gen = torch.Generator().manual_seed(SEED)
    model.train()
    for _ in range(steps):
        idx = torch.randperm(len(x), generator=gen)[:FIT_BATCH]
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx], weight=class_weights)
        opt.zero_grad()
        loss.backward()
        opt.step()
    _recalibrate_batchnorm(model, x)
    model.eval()
    manifest = tiny_manifest(arch, size)
    payload = {
        "model": model.state_dict(),
        "model_config": {"arch": arch, "num_classes": 2, "aux": False},
        "manifest": manifest.to_dict(),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(payload, out_dir / "tiny.pt", manifest)


def export_tiny_onnx(out_dir: Path, steps: int = 1) -> Path:
    """A folded ONNX model (+ manifest) from a barely fitted checkpoint: for tests that need a
    real file with the export contract but do not look at its masks."""
    from export.onnx_export import export_onnx
    from export.shapes import ShapeSpec

    out = out_dir / "model.onnx"
    export_onnx(
        make_checkpoint(out_dir / "ck", steps=steps),
        out,
        ShapeSpec(min_hw=(64, 64), opt_hw=(240, 320), max_hw=(480, 640)),
    )
    return out


# One copy per test run (run_shared), shared by the export/TensorRT/selfcheck test files (fitting
# and exporting dominate their run time). Tests must not modify these files in place.
def shared_checkpoint(steps: int = FIT_STEPS) -> Path:
    return made_once(f"checkpoint-{steps}", functools.partial(_checkpoint_into, steps))


def _checkpoint_into(steps: int, folder: Path) -> Path:
    return make_checkpoint(folder / "ck", steps=steps)


def shared_tiny_onnx() -> Path:
    return made_once("tiny-onnx", export_tiny_onnx)


def copy_model(model: Path, out_dir: Path) -> Path:
    """Copy a model and its manifest (for tests that add files beside it)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for src in (model, model.with_name(model.name + ".yaml")):
        shutil.copy2(src, out_dir / src.name)
    return out_dir / model.name


def old_style(model):
    """A copy of a folded graph whose uint8 ``frame`` also feeds Shape (what tracing ``frame.shape``
    before ``frame.float()`` gives): every Shape reading the frame's float cast reads ``frame``."""
    import onnx

    model = onnx.ModelProto.FromString(model.SerializeToString())
    cast = next(n for n in model.graph.node if n.op_type == "Cast" and n.input[0] == "frame")
    rewired = 0
    for node in model.graph.node:
        if node.op_type == "Shape" and node.input[0] == cast.output[0]:
            node.input[0] = "frame"
            rewired += 1
    assert rewired, "no Shape reads the frame's cast; the exporter changed"
    return model


def external_copy(src, folder, keep_data: bool = True):
    """``src`` saved with its weights in ``model.onnx.data`` and a manifest vouching for the .onnx."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "model.onnx"
    import onnx  # deferred: only the tests of external data need it

    onnx.save(
        onnx.load(str(src)),
        str(out),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=EXTERNAL_DATA,
        size_threshold=1024,
    )
    save_manifest(load_manifest(src), out)
    if not keep_data:
        (folder / EXTERNAL_DATA).unlink()
    return out
