"""`sonomap export torchscript`: the folded model as TorchScript for the runtime's torch backend.

Input: ``CK`` (+ ``CK.yaml``). Outputs: ``model.ts`` (torch.jit.trace of
:class:`export.folded.FoldedSegmenter`, uint8 frame in, (prob, mask) out, dynamic H/W and
batch) and ``model.ts.yaml`` (format ``torchscript``, preprocessing_in_graph true).
The runtime loads it with ``torch.jit.load`` and never imports training. The file carries the
model contract in its ``_extra_files`` (:mod:`edge_runtime.model_contract`), which the runtime
checks against the manifest beside it.
Before the model is installed the trace is checked against eager torch on real frames at
their own sizes, so a trace that froze a shape is caught here, not on the cart; the verdict is
kept in ``model.ts.yaml`` (``extra.parity``: a failed one makes the runtime refuse the model) and
the frames' details in ``model.ts.parity.json``.
``--out`` must end in ``.ts`` or ``.torchscript`` (the suffixes the runtime recognises; never a
checkpoint's ``.pt``) and must not be the checkpoint itself: both are refused before anything
is written. The manifest names the checkpoint by file name and sha256 only.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from edge_runtime.atomic import atomic_write_bytes
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import TORCHSCRIPT_SUFFIXES, manifest_path, save_manifest
from edge_runtime.model_contract import contract_props
from export.onnx_export import exported_extra, exported_source, library_versions, refuse_overwrite
from export.parity import (
    FP32_AGREEMENT_BAR,
    checked_file,
    count_frame,
    describe,
    manifest_record,
    parity_path,
    summarise,
    write_parity,
)
from export.samples import load_frames
from export.shapes import ShapeSpec
from export.staging import staged, untouched

TRACE_HW = (240, 320)
EXIT_OK = 0
EXIT_PARITY_FAILED = 1


def export_torchscript(checkpoint: str | Path, out: str | Path):
    """Trace ``checkpoint`` and save it to ``out`` (+ ``out.yaml``); returns (manifest, eager
    folded model, traced module). ConfigError for an ``out`` without a TorchScript suffix or that
    is the checkpoint."""
    # deferred: torch takes seconds to load
    import torch

    from export.folded import load_folded  # deferred: torch, as above

    checkpoint, out = Path(checkpoint), Path(out)
    refuse_overwrite(checkpoint, out)
    check_suffix(out)
    folded, source = load_folded(checkpoint)
    dummy = torch.zeros(1, 1, *TRACE_HW, dtype=torch.uint8)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about shape arithmetic; checked below instead
        traced = torch.jit.trace(folded, (dummy,), check_trace=False)
    # the checkpoint's manifest is what the folded graph was built from: its contract, as ONNX's.
    # Serialised in memory, then written by Python: torch's file writer fails a short write (a full
    # disk) in a C++ destructor, which aborts the process instead of raising, leaving its files behind
    atomic_write_bytes(out, traced.save_to_buffer(_extra_files=contract_props(source)))
    spec = ShapeSpec(roi=None, dynamic_batch=True)
    io = {key: value for key, value in spec.io(opset=0).items() if key not in ("opset", "profile")}
    manifest = source.derive(
        format="torchscript",
        preprocessing_in_graph=True,
        io=io,
        source=exported_source(checkpoint, source),
        versions={**source.versions, **library_versions(), "exporter": "sonomap.export (torch.jit.trace)"},
        extra=exported_extra(source.extra, "fp32"),
    )
    save_manifest(manifest, out)
    return manifest, folded, traced


def eager_vs_traced(folded, traced, frames, cancer_id: int, mask_filter=None) -> dict:
    # deferred: torch takes seconds to load
    import torch

    counts = []
    for frame_id, gray in frames:
        x = torch.from_numpy(gray)[None, None]
        with torch.no_grad():
            e_prob, e_mask = folded(x)
            t_prob, t_mask = traced(x)
        if t_mask.shape != e_mask.shape:
            raise ConfigError(
                f"TorchScript trace froze the input size: frame {frame_id} "
                f"{tuple(x.shape)} gave {tuple(t_mask.shape)}"
            )
        counts.append(
            count_frame(
                frame_id,
                e_mask[0, 0].numpy(),
                t_mask[0, 0].numpy(),
                e_prob[0, 0].numpy(),
                t_prob[0, 0].numpy(),
                cancer_id,
                mask_filter,
            )
        )
    return summarise(counts, FP32_AGREEMENT_BAR, "torch-eager-fp32", "torchscript-fp32", mask_filter)


def check_suffix(out: Path) -> None:
    """ConfigError naming ``--out`` unless it ends in a suffix the runtime loads as TorchScript."""
    if out.name.lower() in TORCHSCRIPT_SUFFIXES:  # '.ts' alone is a hidden file without a suffix
        raise ConfigError(f"--out {out}: give the TorchScript file a name before {out.name}, e.g. model.ts")
    if out.suffix.lower() not in TORCHSCRIPT_SUFFIXES:
        raise ConfigError(
            f"--out {out}: the TorchScript file name must end in {' or '.join(TORCHSCRIPT_SUFFIXES)}, "
            "e.g. model.ts"
        )


def run_torchscript_export(args) -> int:
    """As `export onnx` (:mod:`export.staging`): written beside ``--out``, installed only when the
    trace agrees with eager torch; a failed one is kept in ``MODEL.failed/``, the old model stays."""
    out = Path(args.out)
    frames = load_frames(args.frames, args.parity_frames)
    refuse_overwrite(args.checkpoint, out)  # the export itself sees only the staged path
    check_suffix(out)
    with staged(out) as stage:
        staged_out = stage.path()
        manifest, folded, traced = export_torchscript(args.checkpoint, staged_out)
        print(
            f"exported {out.name} ({staged_out.stat().st_size / 1e6:.1f} MB) and {out.name}.yaml "
            f"[{manifest.arch}, format torchscript]"
        )
        section = eager_vs_traced(folded, traced, frames, manifest.cancer_index, manifest.mask_filter)
        print(describe(section))
        report = write_parity(staged_out, {"torchscript": checked_file(staged_out, manifest.sha256, section)})
        # the verdict in the manifest too, before a failed export is kept: a copy of it is refused
        manifest.extra = {**manifest.extra, "parity": manifest_record(section)}
        save_manifest(manifest, staged_out, sha256=manifest.sha256)
        if not section["passed"]:
            print(f"PARITY FAILED: kept in {stage.keep_failed()} for inspection; {untouched(out)}")
            return EXIT_PARITY_FAILED
        stage.install([report.name, out.name, manifest_path(out).name])
    print(f"installed {out} and {out.name}.yaml; parity report: {parity_path(out)}")
    return EXIT_OK
