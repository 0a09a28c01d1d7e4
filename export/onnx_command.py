"""`sonomap export onnx`: export, check parity on real frames, optionally make the FP16 twin.

Wiring only (one place): export_onnx -> torch_vs_ort -> [convert_fp16 -> fp16_vs_fp32]
-> MODEL.parity.json + parity summary in the manifest (the twin's: the chain of both checks,
:func:`export.fp16.record_twin_parity`) -> TensorRT lint of each file written -> exit code.
Everything is written into a staging folder beside ``--out`` (:mod:`export.staging`) and renamed
into place only when parity and the lint pass; a failed export is kept in ``MODEL.failed/`` and the
previous model at ``--out`` stays as it was. An FP16 twin left beside the new model by an earlier
export (not converted from it) is removed, since TensorRT would refuse it.
"""

from __future__ import annotations

from pathlib import Path

from edge_runtime.errors import ConfigError
from edge_runtime.manifest import load_manifest, manifest_path, save_manifest, sha256_file
from export.fp16 import convert_fp16, fp16_vs_fp32, record_twin_parity, stale_twin
from export.onnx_export import check_onnx_name, check_opset, export_onnx, refuse_overwrite, torch_vs_ort
from export.parity import checked_file, describe, manifest_record, parity_path, write_parity
from export.samples import load_frames
from export.shapes import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_HW,
    DEFAULT_MIN_HW,
    DEFAULT_OPT_HW,
    ShapeSpec,
    parse_hw,
)
from export.staging import staged, untouched
from export.trt_lint import describe as describe_lint
from export.trt_lint import lint_onnx

EXIT_OK = 0
EXIT_PARITY_FAILED = 1
EXIT_LINT_FAILED = 4


def shape_spec_from_args(args) -> ShapeSpec:
    if args.max_batch is not None and not args.dynamic_batch:
        # without --dynamic-batch the batch is fixed at 1: the value would be dropped unseen
        raise ConfigError(f"--max-batch {args.max_batch} needs --dynamic-batch (without it the batch is 1)")
    roi = parse_hw(args.roi, "--roi") if args.roi else None
    given = [
        flag for flag in ("--min-hw", "--opt-hw", "--max-hw") if getattr(args, flag[2:].replace("-", "_"))
    ]
    if roi is not None and given:  # a fixed ROI has no dynamic range: the sizes would be dropped unseen
        raise ConfigError(
            f"{', '.join(given)} set a dynamic ROI's range; with --roi {args.roi} the ROI is fixed"
        )
    spec = ShapeSpec(
        roi=roi,
        dynamic_batch=bool(args.dynamic_batch),
        min_hw=parse_hw(args.min_hw, "--min-hw") if args.min_hw else DEFAULT_MIN_HW,
        opt_hw=parse_hw(args.opt_hw, "--opt-hw") if args.opt_hw else DEFAULT_OPT_HW,
        max_hw=parse_hw(args.max_hw, "--max-hw") if args.max_hw else DEFAULT_MAX_HW,
        max_batch=DEFAULT_MAX_BATCH if args.max_batch is None else int(args.max_batch),
    )
    spec.validate()
    return spec


def record_parity(model_path: Path, section: dict) -> None:
    """Keep the parity verdict in the manifest too (the sha256 of the model is unchanged)."""
    manifest = load_manifest(model_path)
    manifest.extra = {**manifest.extra, "parity": manifest_record(section)}
    save_manifest(manifest, model_path)


def run_onnx_export(args) -> int:
    spec = shape_spec_from_args(args)
    frames = load_frames(args.frames, args.parity_frames)  # fail on bad --frames before the slow export
    out = Path(args.out)
    # the export itself sees only the staged path: these name --out as given, before any folder is made
    refuse_overwrite(args.checkpoint, out)
    check_onnx_name(out)
    check_opset(args.opset)
    with staged(out) as stage:
        code, names = export_and_check(args, spec, frames, stage.path())
        if code != EXIT_OK:
            kept = stage.keep_failed()
            print(f"the failed files are kept in {kept} for inspection; {untouched(out)}")
            return code
        stage.install(names)
    print(f"installed {', '.join(names)} in {out.parent}")
    print(f"parity report: {parity_path(out)}")
    if not args.fp16:
        remove_stale_twin(out)
    return EXIT_OK


def export_and_check(args, spec: ShapeSpec, frames, out: Path) -> tuple[int, list[str]]:
    """Export, compare and lint into the staging folder (``out`` is the staged model path);
    returns (exit code, the file names to install in order: the FP32 model's manifest last)."""
    manifest, folded = export_onnx(args.checkpoint, out, spec, opset=args.opset)
    print(
        f"exported {out.name} ({out.stat().st_size / 1e6:.1f} MB) and {out.name}.yaml "
        f"[{manifest.arch}, input {manifest.input_height}x{manifest.input_width}, "
        f"frame {'x'.join(map(str, spec.dims))} uint8, opset {args.opset}]"
    )
    fp32 = torch_vs_ort(folded, out, frames, spec, manifest)
    sections = {"fp32": checked_file(out, manifest.sha256, fp32)}
    record_parity(out, sections["fp32"])
    print(describe(sections["fp32"]))
    files = [out]
    if args.fp16:
        half = convert_fp16(out)
        fp16 = fp16_vs_fp32(out, half, frames, spec.roi, spec.max_hw, manifest)
        sections["fp16"] = checked_file(half, sha256_file(half), fp16)
        # the twin is only as checked as the chain that made it: torch -> FP32 -> FP16
        record_twin_parity(load_manifest(out), half, sections["fp16"])
        print(f"exported {half.name} ({half.stat().st_size / 1e6:.1f} MB)")
        print(describe(sections["fp16"]))
        files.append(half)
    report = write_parity(out, sections)
    names = [n for f in files[1:] for n in (f.name, manifest_path(f).name)]
    names += [report.name, out.name, manifest_path(out).name]
    failed = [name for name, s in sections.items() if not s["passed"]]
    if failed:
        print(f"PARITY FAILED for {', '.join(failed)}: do not deploy these files")
        return EXIT_PARITY_FAILED, names
    lints = [lint_onnx(path) for path in files]
    for lint in lints:
        print(describe_lint(lint))
    rejected = [lint.path.name for lint in lints if not lint.passed]
    if rejected:
        print(
            f"TENSORRT LINT FAILED for {', '.join(rejected)}: ONNX Runtime runs them, TensorRT would not build "
            "them"
        )
        return EXIT_LINT_FAILED, names
    return EXIT_OK, names


def remove_stale_twin(out: Path) -> None:
    """Remove an FP16 twin beside ``out`` left by an earlier export (converted from another FP32
    file): TensorRT would refuse it, and selfcheck would lint it as if it were this model's."""
    twin = stale_twin(out, load_manifest(out).sha256)
    if twin is not None:
        twin.unlink(missing_ok=True)
        manifest_path(twin).unlink(missing_ok=True)
        print(f"removed {twin.name}: an FP16 twin of an earlier export (re-run with --fp16 to make one)")
