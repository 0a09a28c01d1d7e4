"""`sonomap export tensorrt`: build (or reuse) the engine for a folded ONNX model on this GPU.

Input: ``model.onnx`` (+ manifest; ``model.fp16.onnx`` is made here when the strongly
typed path needs it, and checked against the FP32 model with ONNX Runtime before the build, as
``sonomap export onnx --fp16`` checks it). Output: ``DIR/<model>-<precision>-<key>.engine`` +
manifest, and the timing cache in DIR. ``--via torch-tensorrt``: see :mod:`export.torch_trt`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from edge_runtime.errors import ConfigError, InputError
from edge_runtime.manifest import load_manifest
from edge_runtime.tensorrt.cache import check_cache_dir
from edge_runtime.tensorrt.engines import MAX_WORKSPACE_MB, MIN_WORKSPACE_MB, ensure_engine
from edge_runtime.tensorrt.key import PATH_STRONGLY_TYPED, choose_build_path
from edge_runtime.tensorrt.manifest_io import check_io
from edge_runtime.tensorrt.modules import import_tensorrt
from edge_runtime.tensorrt.twin import twin_path
from export.fp16 import FP16_CANDIDATE, convert_fp16, fp16_vs_fp32, record_twin_parity, stale_twin
from export.graph_io import check_model_io
from export.parity import describe
from export.samples import load_frames
from export.selfcheck import model_frame_limits
from export.shapes import INPUT_NAME, checked_profile, given_shapes
from export.torch_trt import run_torch_tensorrt
from export.trt_lint import lint_onnx

log = logging.getLogger("sonomap.export")
# real frames the FP16 twin made here is checked on: as many as 'sonomap export onnx' checks by default
TWIN_PARITY_FRAMES = 8


def profile_from_args(args, onnx_path: Path) -> dict | None:
    given = given_shapes(args)
    if not any(given.values()):
        return None  # the manifest's io.profile
    manifest = load_manifest(onnx_path)
    check_io(onnx_path, manifest)  # a profile of the wrong type is one line naming the manifest
    base = manifest.io.get("profile", {})
    return checked_profile(given, base, f"the manifest of {onnx_path}")


def ensure_fp16_twin(onnx_path: Path, trt) -> None:
    """The strongly typed path parses model.fp16.onnx: make it here if it is missing (export
    has onnxconverter-common; the cart's runtime does not), and check it against the FP32 model
    with ONNX Runtime before any engine is built from it."""
    if choose_build_path(trt.__version__, "fp16", hasattr(trt.BuilderFlag, "FP16")) != PATH_STRONGLY_TYPED:
        return
    manifest = load_manifest(onnx_path)
    if manifest.extra.get("precision") == "fp16":
        return
    twin = twin_path(onnx_path)
    # a twin converted from an earlier model.onnx would be refused by the build: make it again
    if not twin.is_file() or stale_twin(onnx_path, manifest.sha256) is not None:
        print(
            f"TensorRT {trt.__version__} builds FP16 as a strongly typed network: converting {onnx_path.name} "
            f"-> {twin.name}"
        )
        convert_fp16(onnx_path, twin)
    if not checked_twin(twin):
        check_twin(onnx_path, manifest, twin)


def checked_twin(twin: Path) -> bool:
    """True when the twin's manifest records its own FP16-vs-FP32 check as passed (a chain from
    ``sonomap export onnx --fp16``, or a single FP16 record of an older export). A record of
    another file (an FP32 record copied into the twin) or of a step not checked is not enough."""
    record = load_manifest(twin).extra.get("parity")
    return (
        isinstance(record, dict)
        and record.get("passed") is True
        and record.get("candidate") == FP16_CANDIDATE
    )


def check_twin(onnx_path: Path, manifest, twin: Path) -> None:
    """FP16 vs FP32 with ONNX Runtime on real frames (the one parity check, :mod:`export.parity`),
    recorded in the twin's manifest; ConfigError when the FP16 step fails, or when the FP32
    model's own record failed: no FP16 engine is built from a twin that is not checked."""
    roi, max_hw = model_frame_limits(manifest)
    section = fp16_vs_fp32(onnx_path, twin, load_frames(None, TWIN_PARITY_FRAMES), roi, max_hw, manifest)
    record_twin_parity(manifest, twin, section)
    print(describe(section))
    own = manifest.extra.get("parity")
    own_failed = isinstance(own, dict) and own.get("passed") is False
    if not section["passed"] or own_failed:
        why = f"{onnx_path.name}'s own parity failed" if section["passed"] else "; ".join(section["failures"])
        raise ConfigError(
            f"{twin}: the FP16 twin fails its parity check ({why}); no FP16 engine is built from it. "
            "Build FP32 (without --fp16), or re-export with 'sonomap export onnx --fp16' and read its report"
        )
    if not isinstance(own, dict):
        # a hand-made FP32 model: the FP16 step is checked, the step before it never was, so the
        # twin's chained record does not pass and the engine build refuses it (edge_runtime.tensorrt.twin)
        raise ConfigError(
            f"{onnx_path}: records no parity check of its own, so its FP16 twin is not a checked model "
            "and no FP16 engine is built from it. Export the model with 'sonomap export onnx --fp16' "
            "(checked against its checkpoint), or build FP32 (without --fp16)"
        )


def check_onnx_arg(onnx_path: Path) -> None:
    """One line naming ``--onnx`` when it cannot be a folded ONNX model by its name: a folder, a
    checkpoint, TorchScript or a manifest (read as ONNX, each would be called a corrupt ONNX file)."""
    if onnx_path.is_dir() or not onnx_path.name:
        raise ConfigError(f"--onnx {onnx_path}: is a folder; give the ONNX model file in it, e.g. model.onnx")
    if not onnx_path.exists():  # named itself, before its manifest beside it is looked for
        raise InputError(f"--onnx {onnx_path}: file not found")
    if onnx_path.suffix.lower() != ".onnx":
        raise ConfigError(
            f"--onnx {onnx_path}: not an ONNX model (the name must end in .onnx); give the folded model "
            "that 'sonomap export onnx --checkpoint CK --out model.onnx' writes"
        )


def refuse_failed_lint(onnx_path: Path) -> None:
    """Run the TensorRT compatibility lint (export/trt_lint.py) before a build; one line naming the
    file and its first problem when it fails."""
    report = lint_onnx(onnx_path)
    if not report.passed:
        raise ConfigError(
            f"{onnx_path}: TensorRT would not build this graph ({len(report.problems)} problem(s); "
            f"first: {report.problems[0]}); re-export it with 'sonomap export onnx'"
        )


def run_tensorrt_export(args) -> int:
    # the parser checks it too; this guards callers that build ``args`` themselves
    if not MIN_WORKSPACE_MB <= args.workspace_mb <= MAX_WORKSPACE_MB:
        raise ConfigError(
            f"--workspace-mb must be between {MIN_WORKSPACE_MB} and {MAX_WORKSPACE_MB}, got {args.workspace_mb}"
        )
    # both paths write into the folder: named before TensorRT loads (an empty --out too)
    check_cache_dir(args.out, "--out")
    if args.via == "torch-tensorrt":
        return run_torch_tensorrt(args)
    if not args.onnx:
        raise ConfigError("--onnx MODEL.onnx is required (or --via torch-tensorrt --checkpoint CK)")
    onnx_path = Path(args.onnx)
    check_onnx_arg(onnx_path)
    load_manifest(onnx_path)  # missing file/manifest, wrong sha256 or format: clear error before TensorRT
    profile = profile_from_args(args, onnx_path)  # a bad flag is named before TensorRT loads
    refuse_failed_lint(onnx_path)  # minutes before the parser would say so
    check_model_io(onnx_path, load_manifest(onnx_path))  # the profile is built from the manifest's io
    trt = import_tensorrt()
    precision = "fp16" if args.fp16 else "fp32"
    if args.fp16:
        ensure_fp16_twin(onnx_path, trt)
    record = ensure_engine(
        onnx_path,
        args.out,
        precision=precision,
        profile=profile,
        workspace_mb=args.workspace_mb,
        force=args.force,
        trt=trt,
        on_long_build=lambda s: print(f"building a TensorRT engine; this may take up to {s / 60:.0f} min"),
    )
    verb = f"built in {record.seconds:.0f} s" if record.built else "reused from cache"
    print(
        f"engine {record.path} ({record.key.precision}, {record.key.build_path}, TensorRT {record.key.trt_version}, "
        f"{record.key.gpu_name} sm {record.key.compute_capability}, profile {record.key.profile[INPUT_NAME]}) {verb}"
    )
    print(f"check it on this machine: sonomap selfcheck --model {onnx_path} --cache-dir {args.out}")
    return 0
