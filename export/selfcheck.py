"""`sonomap selfcheck`: prove the TensorRT path on the target machine (no torch needed).

Prints versions and the GPU; lints the model (and its FP16 twin) for TensorRT
(:mod:`export.trt_lint`); runs ONNX Runtime on real sample frames; builds or loads the
TensorRT engine (the runtime's own cache and backend), runs it on the same frames and
prints parity (the gates of :mod:`export.parity`: masks, served masks and verdicts through the
manifest's mask filter, max |dprob|) and latency (each timed after an untimed run at the timed frame's
size, so buffer setup for a new size is never timed). Exit codes: 0 agree, 1 below the bar,
3 TensorRT or pycuda missing, 4 the model fails the lint (both after the ONNX Runtime part,
so the model itself is still checked).
It checks the engine cache given by ``--cache-dir`` (default: the runtime's, which from a shell is
the user's, not the service's; both are printed). TensorRT cannot be installed on this project's
build machines: this command is how a user checks it on their own hardware.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import time
from pathlib import Path

import numpy as np

import edge_runtime
from edge_runtime.backends.tensorrt import TensorRTBackend
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.manifest import SHA_SHOWN, load_manifest, manifest_path
from edge_runtime.model_contract import check_contract
from edge_runtime.tensorrt.cache import DEFAULT_CACHE_DIR, SERVICE_CACHE_DIR, check_cache_dir
from edge_runtime.tensorrt.key import current_gpu
from edge_runtime.tensorrt.modules import TensorRTUnavailable, import_tensorrt
from edge_runtime.tensorrt.preflight import check_folded
from edge_runtime.tensorrt.twin import twin_path
from edge_runtime.units import MS_PER_S
from export.graph_io import check_session_io
from export.parity import (
    FP16_AGREEMENT_BAR,
    FP32_AGREEMENT_BAR,
    count_frame,
    describe,
    ort_session,
    run_ort,
    summarise,
)
from export.samples import fit_frame, load_frames
from export.trt_lint import describe as describe_lint
from export.trt_lint import lint_onnx

DEFAULT_MODEL = Path(edge_runtime.__file__).resolve().parent / "models" / "default" / "model.onnx"
EXIT_OK, EXIT_DISAGREE, EXIT_NO_TENSORRT, EXIT_LINT_FAILED = 0, 1, 3, 4
LATENCY_RUNS = 20  # repeated runs on one frame: steady-state latency without per-size buffer setup
INPUT_RANK = 4  # [N, 1, H, W]
WARMUP_RUNS = 1  # untimed runs at the timed size first: a new size re-binds the TensorRT buffers


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, str]:
    # deferred: loaded only when the selfcheck runs
    import onnxruntime

    found = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "onnxruntime": f"{onnxruntime.__version__} {onnxruntime.get_available_providers()}",
        "opencv": _version("opencv-python"),
    }
    found["tensorrt"] = (
        _version("tensorrt") if _version("tensorrt") != "not installed" else _jetpack_tensorrt()
    )
    found["pycuda"] = _version("pycuda")
    return found


def _jetpack_tensorrt() -> str:
    """JetPack installs TensorRT's Python module as a Debian package, without pip metadata."""
    try:
        # deferred: optional, JetPack's own package
        import tensorrt
    except ImportError:
        return "not installed"
    return str(tensorrt.__version__)


def latency_text(samples_ms: list[float]) -> str:
    arr = np.asarray(samples_ms)
    return f"p50 {np.percentile(arr, 50):.1f} ms, p95 {np.percentile(arr, 95):.1f} ms over {arr.size} runs"


def timed_latency(infer, frame: np.ndarray, runs: int = LATENCY_RUNS) -> list[float]:
    """Milliseconds of ``runs`` calls ``infer(frame)``, after :data:`WARMUP_RUNS` untimed ones at
    this frame's size (the TensorRT backend allocates and binds buffers on the first frame of a
    new size; that belongs to the size change, not to the steady state)."""
    for _ in range(WARMUP_RUNS):
        infer(frame)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        infer(frame)
        samples.append((time.perf_counter() - start) * MS_PER_S)
    return samples


def lint_for_tensorrt(model: Path) -> bool:
    """Lint the model and, when present, its FP16 twin; print each verdict. False when one fails."""
    if importlib.util.find_spec("onnx") is None:  # the lint reads the graph with it; a cart may lack it
        print(
            "TensorRT ONNX lint NOT run: the 'onnx' package is not installed ('pip install sonomap[export]')"
        )
        return True
    twin = twin_path(model) if model.suffix == ".onnx" else None
    reports = [lint_onnx(path) for path in (model, twin) if path is not None and path.is_file()]
    for report in reports:
        print(describe_lint(report))
    return all(report.passed for report in reports)


def check_onnx_model(model: Path, manifest) -> None:
    """One line naming the file when ``model`` is not a folded ONNX model: a checkpoint (or any
    other format) has no ONNX graph for ONNX Runtime or TensorRT to run."""
    if manifest.format != "onnx":
        raise InputError(
            f"{model}: its manifest says format {manifest.format!r}; selfcheck needs a folded ONNX model "
            "(make one with 'sonomap export onnx --checkpoint CK --out model.onnx')"
        )
    check_folded(model, manifest)  # format onnx, but not sonomap's folded contract
    shape = manifest.io["inputs"][0].get("shape")
    if not isinstance(shape, list) or len(shape) != INPUT_RANK:
        raise ConfigError(
            f"{manifest_path(model)}: io.inputs[0].shape must be [N, 1, H, W], got {shape!r}; "
            "re-export with 'sonomap export onnx'"
        )


def model_frame_limits(manifest) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    """(fixed ROI or None, largest dynamic H/W or None) from the manifest's io section."""
    shape = manifest.io["inputs"][0]["shape"]
    if all(isinstance(d, int) for d in shape[2:4]):
        return (shape[2], shape[3]), None
    top = manifest.io.get("profile", {}).get("max")
    return None, (tuple(top[2:4]) if top else None)


def engine_cache(given: str | None) -> Path:
    """The engine cache this run checks, printed with how to check the service's: from a shell the
    default is this user's cache, not the one the service builds into and loads from."""
    cache_dir = Path(given) if given else DEFAULT_CACHE_DIR
    check_cache_dir(cache_dir, "--cache-dir")  # before the ONNX Runtime part, not after it
    print(f"  engine cache {cache_dir}")
    if cache_dir != SERVICE_CACHE_DIR:
        print(
            f"               (the service's is {SERVICE_CACHE_DIR}; to check the engine it runs: "
            f"sudo -u sonomap /opt/sonomap/venv/bin/sonomap selfcheck --cache-dir {SERVICE_CACHE_DIR})"
        )
    return cache_dir


def run_selfcheck(args) -> int:
    model = Path(args.model) if args.model else DEFAULT_MODEL
    print("sonomap selfcheck")
    for name, value in versions().items():
        print(f"  {name:12s} {value}")
    if not model.is_file():
        raise InputError(f"{model}: model not found (pass --model MODEL.onnx)")
    manifest = load_manifest(model)
    check_onnx_model(model, manifest)
    print(f"  model        {model} ({manifest.name}, {manifest.arch}, sha256 {manifest.sha256[:SHA_SHOWN]})")
    cache_dir = engine_cache(args.cache_dir)
    roi, max_hw = model_frame_limits(manifest)
    frames = [(i, fit_frame(g, roi, max_hw)) for i, g in load_frames(args.frames, args.max_frames)]
    lint_passed = lint_for_tensorrt(model)
    session = ort_session(model)
    # the manifest must describe this graph before anything is measured against it: the tensors
    # fed and read (else ONNX Runtime fails on the first frame), then what the outputs mean
    check_session_io(session, manifest, model)
    check_contract(session.get_modelmeta().custom_metadata_map, manifest, model)
    ort_out = {frame_id: run_ort(session, gray) for frame_id, gray in frames}
    ort_ms = timed_latency(lambda gray: run_ort(session, gray), frames[0][1])
    print(
        f"ONNX Runtime {session.get_providers()[0]} on a {frames[0][1].shape[0]}x{frames[0][1].shape[1]} frame: "
        f"{latency_text(ort_ms)}"
    )
    try:
        import_tensorrt()
        gpu = current_gpu()
    except TensorRTUnavailable as exc:
        print(f"TensorRT check NOT run: {exc}")
        return EXIT_NO_TENSORRT if lint_passed else EXIT_LINT_FAILED
    if not lint_passed:
        print(
            "TensorRT check NOT run: the model fails the TensorRT lint above; re-export it with "
            "'sonomap export onnx'"
        )
        return EXIT_LINT_FAILED
    print(f"  gpu          {gpu.name} (compute capability {gpu.compute_capability}, {gpu.sm_count} SMs)")
    precision = "fp32" if args.fp32 else "fp16"
    backend = TensorRTBackend(
        model,
        manifest,
        cache_dir=cache_dir,
        fp16=not args.fp32,
        on_long_build=lambda s: print(f"building the engine (up to {s / 60:.0f} min)..."),
    )
    try:
        counts = []
        for frame_id, gray in frames:
            pred = backend.infer(gray)
            prob, mask = ort_out[frame_id]
            counts.append(
                count_frame(
                    frame_id, mask, pred.mask, prob, pred.prob, manifest.cancer_index, manifest.mask_filter
                )
            )
        trt_ms = timed_latency(backend.infer, frames[0][1])
        record = backend.engine_record
    finally:
        backend.close()
    if record is not None:
        print(
            f"engine {record.path}: {'built' if record.built else 'loaded from cache'} ({record.key.build_path})"
        )
    print(
        f"TensorRT {precision} on the same frame: {latency_text(trt_ms)} (host uint8 in -> host prob/mask out)"
    )
    bar = FP32_AGREEMENT_BAR if args.fp32 else FP16_AGREEMENT_BAR
    section = summarise(counts, bar, "onnxruntime-fp32", f"tensorrt-{precision}", manifest.mask_filter)
    print(describe(section))
    return EXIT_OK if section["passed"] else EXIT_DISAGREE
