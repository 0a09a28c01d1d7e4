"""`sonomap export onnx`: export, check parity on real frames, optionally make the FP16 twin.

Wiring only (one place): export_onnx -> torch_vs_ort -> [convert_fp16 -> fp16_vs_fp32]
-> MODEL.parity.json + parity summary in the manifest -> TensorRT lint of each file written -> exit code.
"""

from __future__ import annotations

from pathlib import Path

from edge_runtime.manifest import load_manifest, save_manifest
from export.parity import describe, write_parity
from export.samples import load_frames
from export.shapes import DEFAULT_MAX_HW, DEFAULT_MIN_HW, DEFAULT_OPT_HW, ShapeSpec, parse_hw
from export.trt_lint import describe as describe_lint
from export.trt_lint import lint_onnx

EXIT_OK = 0
EXIT_PARITY_FAILED = 1
EXIT_LINT_FAILED = 4


def shape_spec_from_args(args) -> ShapeSpec:
    roi = parse_hw(args.roi, "--roi") if args.roi else None
    spec = ShapeSpec(
        roi=roi,
        dynamic_batch=bool(args.dynamic_batch),
        min_hw=parse_hw(args.min_hw, "--min-hw") if args.min_hw else DEFAULT_MIN_HW,
        opt_hw=parse_hw(args.opt_hw, "--opt-hw") if args.opt_hw else DEFAULT_OPT_HW,
        max_hw=parse_hw(args.max_hw, "--max-hw") if args.max_hw else DEFAULT_MAX_HW,
        max_batch=int(args.max_batch),
    )
    spec.validate()
    return spec


def record_parity(model_path: Path, section: dict) -> None:
    """Keep the parity verdict in the manifest too (the sha256 of the model is unchanged)."""
    manifest = load_manifest(model_path)
    manifest.extra = {
        **manifest.extra,
        "parity": {
            k: section[k] for k in ("reference", "candidate", "frames", "mask_agreement", "bar", "passed")
        },
    }
    save_manifest(manifest, model_path)


def run_onnx_export(args) -> int:
    from export.fp16 import convert_fp16, fp16_vs_fp32
    from export.onnx_export import export_onnx, torch_vs_ort

    spec = shape_spec_from_args(args)
    frames = load_frames(args.frames, args.parity_frames)  # fail on bad --frames before the slow export
    out = Path(args.out)
    manifest, folded = export_onnx(args.checkpoint, out, spec, opset=args.opset)
    print(
        f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) and {out.name}.yaml "
        f"[{manifest.arch}, input {manifest.input_height}x{manifest.input_width}, "
        f"frame {'x'.join(map(str, spec.dims))} uint8, opset {args.opset}]"
    )
    sections = {"fp32": torch_vs_ort(folded, out, frames, spec, manifest.cancer_index)}
    record_parity(out, sections["fp32"])
    print(describe(sections["fp32"]))
    if args.fp16:
        half = convert_fp16(out)
        sections["fp16"] = fp16_vs_fp32(out, half, frames, spec.roi, spec.max_hw, manifest.cancer_index)
        record_parity(half, sections["fp16"])
        print(f"wrote {half} ({half.stat().st_size / 1e6:.1f} MB)")
        print(describe(sections["fp16"]))
    report = write_parity(out, sections)
    print(f"parity report: {report}")
    failed = [name for name, s in sections.items() if not s["passed"]]
    if failed:
        print(f"PARITY FAILED for {', '.join(failed)}: files are kept for inspection; do not deploy them")
        return EXIT_PARITY_FAILED
    lints = [lint_onnx(path) for path in ([out, half] if args.fp16 else [out])]
    for lint in lints:
        print(describe_lint(lint))
    rejected = [lint.path.name for lint in lints if not lint.passed]
    if rejected:
        print(
            f"TENSORRT LINT FAILED for {', '.join(rejected)}: ONNX Runtime runs them, TensorRT would not build "
            "them; files are kept for inspection"
        )
        return EXIT_LINT_FAILED
    return EXIT_OK
