"""`sonomap export tensorrt --via torch-tensorrt --checkpoint CK --out DIR`: the alternative path.

Input: ``CK`` (+ manifest). Output: ``DIR/model.ep`` (an ExportedProgram with the TensorRT
engine embedded; reload with ``torch.export.load(path).module()``) + ``model.ep.yaml``
(format ``torch-tensorrt``). The folded model (uint8 frame in, prob/mask out) is compiled
with the dynamo frontend in FP16 over the manifest's shape profile.

FP16 follows the Torch-TensorRT docs: releases with ``enable_autocast`` (explicit typing by
default, ``enabled_precisions`` deprecated) get rule-based autocast to float16; older
releases get ``enabled_precisions={torch.half}``. The saved program embeds a serialized
engine, so it carries the same GPU/TensorRT-version lock as a plan file. On Jetson, the
ONNX -> TensorRT API path is the lower-risk one (Torch-TensorRT wheels pin TensorRT
versions JetPack may not ship). Not run here: no GPU or torch_tensorrt on build machines.
"""
from __future__ import annotations

import inspect
from pathlib import Path

from edge_runtime.errors import ConfigError
from edge_runtime.manifest import save_manifest, sha256_file
from edge_runtime.tensorrt.modules import TensorRTUnavailable
from export.shapes import ShapeSpec, parse_nchw


def import_torch_tensorrt():
    try:
        import torch_tensorrt
    except ImportError as exc:
        raise TensorRTUnavailable("torch_tensorrt not found: 'pip install sonomap[torch-tensorrt]' on a CUDA "
                                  "machine with a matching torch/TensorRT pair, or use the default ONNX path "
                                  "(sonomap export tensorrt --onnx MODEL.onnx)") from exc
    return torch_tensorrt


def fp16_settings(torch_tensorrt, torch) -> dict:
    """Compile kwargs for FP16 on this Torch-TensorRT release (see module docstring)."""
    fields = getattr(getattr(torch_tensorrt.dynamo, "CompilationSettings", None), "__dataclass_fields__", {})
    if "enable_autocast" in fields:
        return {"use_explicit_typing": True, "enable_autocast": True, "low_precision_type": torch.float16}
    return {"enabled_precisions": {torch.half}}


def run_torch_tensorrt(args) -> int:
    import torch

    from export.folded import load_folded
    from export.onnx_export import library_versions

    if not args.checkpoint:
        raise ConfigError("--via torch-tensorrt needs --checkpoint CK")
    torch_tensorrt = import_torch_tensorrt()
    if not torch.cuda.is_available():
        raise TensorRTUnavailable("--via torch-tensorrt needs a CUDA device; torch sees none")
    folded, source = load_folded(args.checkpoint)
    folded = folded.cuda().eval()
    base = ShapeSpec().profile()
    shapes = {k: parse_nchw(v, f"--{k}") if v else base[k]
              for k, v in (("min", args.min_shape), ("opt", args.opt_shape), ("max", args.max_shape))}
    spec = torch_tensorrt.Input(min_shape=shapes["min"], opt_shape=shapes["opt"], max_shape=shapes["max"],
                                dtype=torch.uint8)
    example = torch.zeros(shapes["opt"], dtype=torch.uint8, device="cuda")
    compiled = torch_tensorrt.compile(folded, ir="dynamo", arg_inputs=[spec],
                                      workspace_size=int(args.workspace_mb) << 20,
                                      **fp16_settings(torch_tensorrt, torch))
    out = Path(args.out) / "model.ep"
    out.parent.mkdir(parents=True, exist_ok=True)
    inputs_kw = "arg_inputs" if "arg_inputs" in inspect.signature(torch_tensorrt.save).parameters else "inputs"
    torch_tensorrt.save(compiled, str(out), **{inputs_kw: [example]})
    manifest = source.derive(
        format="torch-tensorrt", preprocessing_in_graph=True,
        io={"inputs": [{"name": "frame", "dtype": "uint8", "shape": ["batch", 1, "height", "width"]}],
            "outputs": [{"name": "prob", "dtype": "float32", "shape": ["batch", 1, "height", "width"]},
                        {"name": "mask", "dtype": "uint8", "shape": ["batch", 1, "height", "width"]}],
            "profile": shapes},
        source={"checkpoint": str(Path(args.checkpoint).resolve()), "checkpoint_sha256": sha256_file(args.checkpoint)},
        versions={**library_versions(), "torch_tensorrt": str(torch_tensorrt.__version__),
                  "gpu": torch.cuda.get_device_name(0)},
        extra={"precision": "fp16", "exporter": "torch_tensorrt.compile(ir=dynamo) + torch_tensorrt.save"},
    )
    save_manifest(manifest, out)
    print(f"wrote {out} (Torch-TensorRT {torch_tensorrt.__version__}, FP16, {torch.cuda.get_device_name(0)})")
    return 0
