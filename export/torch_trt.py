"""`sonomap export tensorrt --via torch-tensorrt --checkpoint CK --out DIR`: the alternative path.

Input: ``CK`` (+ manifest). Output: ``DIR/model.ep`` (an ExportedProgram with the TensorRT
engine embedded; reload with ``torch.export.load(path).module()``) + ``model.ep.yaml``
(format ``torch-tensorrt``; its ``source`` names the checkpoint by file name and sha256, never
its path, as the ONNX export does). The folded model (uint8 frame in, prob/mask out) is compiled
with the dynamo frontend, in FP16 with ``--fp16`` (else FP32, as the ONNX path), over sonomap's
default shape range or ``--min/--opt/--max`` (checked min <= opt <= max, as the ONNX path does).
An existing ``DIR/model.ep`` is replaced only with ``--force``; the program is saved under a temp
name in DIR and renamed over it, so a failed save never leaves half a file. The flags are checked
before torch or torch_tensorrt is imported.

FP16 per Torch-TensorRT release (read from pytorch/TensorRT at each tag; the table the tests
check is tests/data/torch_tensorrt_signatures.json): from 2.10, ``CompilationSettings`` has
``autocast_low_precision_type`` and FP16 is ``enable_autocast=True,
autocast_low_precision_type=torch.float16`` (autocast turns on explicit typing itself;
``use_explicit_typing`` is deprecated in 2.10 and gone in 2.13, ``enabled_precisions`` gone
from ``dynamo.compile`` in 2.13). 2.5 - 2.9 take ``enabled_precisions={torch.half}``.
``dynamo.compile`` takes ``**kwargs`` and ignores a keyword it does not know, so a misspelt
or renamed one silently builds FP32: hence the table and the test. 2.3/2.4 lack
``arg_inputs`` and are refused (:data:`MIN_TORCH_TENSORRT`). The saved program embeds a serialized
engine, so it carries the same GPU/TensorRT-version lock as a plan file. On Jetson, the
ONNX -> TensorRT API path is the lower-risk one (Torch-TensorRT wheels pin TensorRT
versions JetPack may not ship). Not run here: no GPU or torch_tensorrt on build machines.
"""

from __future__ import annotations

from pathlib import Path

from edge_runtime.atomic import atomic_path
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import Manifest, save_manifest
from edge_runtime.tensorrt.key import parse_version
from edge_runtime.tensorrt.modules import TensorRTUnavailable
from export.onnx_export import exported_extra, exported_source, library_versions
from export.parity import unchecked_record
from export.shapes import ShapeSpec, checked_profile, given_shapes

MIN_TORCH_TENSORRT = (2, 5)  # first release whose compile() and save() take arg_inputs
# This path compiles without comparing the program with the network: its manifest says so, in the
# form of a parity record that did not pass, so nothing reads it as checked (edge_runtime.parity_record).
NOT_CHECKED = "not checked: the torch-tensorrt path runs no parity check; the ONNX path checks its models"
PROGRAM_NAME = "model.ep"


def import_torch_tensorrt():
    try:
        # deferred: the optional [torch-tensorrt] extra
        import torch_tensorrt
    except ImportError as exc:
        raise TensorRTUnavailable(
            "torch_tensorrt not found: 'pip install sonomap[torch-tensorrt]' on a CUDA "
            "machine with a matching torch/TensorRT pair, or use the default ONNX path "
            "(sonomap export tensorrt --onnx MODEL.onnx)"
        ) from exc
    check_torch_tensorrt_version(str(torch_tensorrt.__version__))
    return torch_tensorrt


def check_torch_tensorrt_version(version: str) -> None:
    if parse_version(version)[:2] < MIN_TORCH_TENSORRT:
        raise TensorRTUnavailable(
            f"torch_tensorrt {version} is too old: sonomap needs >= "
            f"{'.'.join(map(str, MIN_TORCH_TENSORRT))} (compile/save with arg_inputs); "
            "'pip install -U sonomap[torch-tensorrt]'"
        )


def settings_fields(torch_tensorrt) -> set[str]:
    """The field names of this release's ``torch_tensorrt.dynamo.CompilationSettings`` dataclass."""
    return set(torch_tensorrt.dynamo.CompilationSettings.__dataclass_fields__)


def fp16_settings(fields: set[str], torch) -> dict:
    """Compile kwargs for FP16 given the release's CompilationSettings fields (module docstring)."""
    if "autocast_low_precision_type" in fields:
        return {"enable_autocast": True, "autocast_low_precision_type": torch.float16}
    return {"enabled_precisions": {torch.half}}


def compile_kwargs(fields: set[str], torch, spec, workspace_mb: int, fp16: bool = True) -> dict:
    """Every keyword sonomap passes to ``torch_tensorrt.compile`` (checked against the table).
    Without ``fp16`` no precision keyword is passed: every release then builds FP32."""
    return {
        "ir": "dynamo",
        "arg_inputs": [spec],
        "workspace_size": int(workspace_mb) << 20,
        **(fp16_settings(fields, torch) if fp16 else {}),
    }


def save_kwargs(example) -> dict:
    """Every keyword sonomap passes to ``torch_tensorrt.save`` (checked against the table).
    ``retrace=False`` keeps the compiled program's dynamic height/width: from torch_tensorrt 2.10
    ``retrace`` defaults to True, which re-exports from the example tensor alone and fixes the saved
    program at that one shape (the manifest's profile would then promise sizes it refuses)."""
    return {"arg_inputs": [example], "retrace": False}


def check_args(args) -> tuple[Path, dict[str, list[int]]]:
    """The flags, before torch loads: --checkpoint given, the shape range ordered, and an existing
    program replaced only with --force. Returns (the program's path, the profile)."""
    if not args.checkpoint:
        raise ConfigError("--via torch-tensorrt needs --checkpoint CK")
    shapes = checked_profile(given_shapes(args), ShapeSpec().profile(), "sonomap's default range")
    out = Path(args.out) / PROGRAM_NAME
    if out.exists() and not args.force:
        raise ConfigError(f"{out} exists: pass --force to replace it")
    return out, shapes


def save_program(save, compiled, out: Path, example) -> None:
    """``save`` (torch_tensorrt.save) the compiled program to a temp file beside ``out``, then rename
    it over ``out``: a save that fails leaves the previous program whole."""
    with atomic_path(out) as tmp:
        save(compiled, str(tmp), **save_kwargs(example))


def run_torch_tensorrt(args) -> int:
    out, shapes = check_args(args)
    # deferred: torch takes seconds to load
    import torch

    from export.folded import load_folded  # deferred: torch, as above

    torch_tensorrt = import_torch_tensorrt()
    if not torch.cuda.is_available():
        raise TensorRTUnavailable("--via torch-tensorrt needs a CUDA device; torch sees none")
    folded, source = load_folded(args.checkpoint)
    folded = folded.cuda().eval()
    spec = torch_tensorrt.Input(
        min_shape=shapes["min"], opt_shape=shapes["opt"], max_shape=shapes["max"], dtype=torch.uint8
    )
    example = torch.zeros(shapes["opt"], dtype=torch.uint8, device="cuda")
    fields = settings_fields(torch_tensorrt)
    compiled = torch_tensorrt.compile(
        folded, **compile_kwargs(fields, torch, spec, args.workspace_mb, fp16=args.fp16)
    )
    save_program(torch_tensorrt.save, compiled, out, example)
    versions = {
        **library_versions(),
        "torch_tensorrt": str(torch_tensorrt.__version__),
        "gpu": torch.cuda.get_device_name(0),
    }
    precision = "fp16" if args.fp16 else "fp32"
    manifest = compiled_manifest(source, Path(args.checkpoint), shapes, versions, precision)
    save_manifest(manifest, out)
    print(
        f"wrote {out} (Torch-TensorRT {torch_tensorrt.__version__}, {precision.upper()}, "
        f"{torch.cuda.get_device_name(0)})"
    )
    return 0


def compiled_manifest(
    source: Manifest, checkpoint: Path, shapes: dict, versions: dict, precision: str = "fp16"
) -> Manifest:
    """The manifest of ``model.ep``: the checkpoint's (model_config, calibration, mask filter kept),
    with the folded graph's I/O over ``shapes``, the checkpoint by file name and sha256, and a
    parity record saying that no parity check was run."""
    return source.derive(
        format="torch-tensorrt",
        preprocessing_in_graph=True,
        io={
            "inputs": [{"name": "frame", "dtype": "uint8", "shape": ["batch", 1, "height", "width"]}],
            "outputs": [
                {"name": "prob", "dtype": "float32", "shape": ["batch", 1, "height", "width"]},
                {"name": "mask", "dtype": "uint8", "shape": ["batch", 1, "height", "width"]},
            ],
            "profile": shapes,
        },
        source=exported_source(checkpoint, source),
        versions=versions,
        extra={
            **exported_extra(source.extra, precision),
            "exporter": "torch_tensorrt.compile(ir=dynamo) + torch_tensorrt.save",
            "parity": unchecked_record("torch-fp32", f"torch-tensorrt-{precision}", NOT_CHECKED),
        },
    )
