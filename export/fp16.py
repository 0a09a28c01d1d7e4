"""FP32 ONNX -> FP16 ONNX (onnxconverter-common), checked against the FP32 model with ONNX Runtime.

Input: ``model.onnx`` (+ manifest). Outputs: ``model.fp16.onnx`` + ``model.fp16.onnx.yaml``
(extra.precision fp16) and an ``fp16`` section (FP16 vs FP32) in the FP32 model's report,
``model.onnx.parity.json``.

The twin's manifest records parity as a chain (:func:`export.parity.chain_record`): the FP32
model's own check (torch vs ONNX Runtime) and the twin's FP16-vs-FP32 check, passed only when
both passed. A twin just converted records its FP16 step as not yet checked, so a twin whose
check never ran (or whose FP32 model failed its own) is refused by the runtime like a failed one.
The graph keeps the FP32 graph's metadata, the model contract among it.

``keep_io_types=True`` keeps the graph's I/O as it was: uint8 ``frame`` in, float32 ``prob``
and uint8 ``mask`` out, so the runtime feeds both models the same way. Resize stays in
FP32 (onnxconverter-common's default block list), which also keeps TensorRT's resize exact.
This FP16 ONNX is what the strongly typed TensorRT path (TensorRT >= 10.12 and 11) builds from.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from edge_runtime.atomic import atomic_path
from edge_runtime.errors import ConfigError, SonomapError
from edge_runtime.manifest import Manifest, load_manifest, save_manifest
from export.parity import (
    FP16_AGREEMENT_BAR,
    chain_record,
    count_frame,
    manifest_record,
    ort_session,
    run_ort,
    summarise,
    unchecked_record,
)
from export.samples import fit_frame

FP16_SUFFIX = ".fp16.onnx"
# Kept in FP32: the converter's defaults (Resize among them) plus the threshold test and the
# mask select, whose inputs come from the FP32 resize. (Blocking "Cast" makes the converter
# loop forever; instead the stale value_info it leaves is dropped and re-inferred.)
EXTRA_FP32_OPS = ("GreaterOrEqual", "Where")
FP32_REFERENCE, FP16_CANDIDATE = "onnxruntime-fp32", "onnxruntime-fp16"
NOT_CHECKED = "not checked yet: run 'sonomap export onnx --fp16' to convert and check the twin"


def fp16_path(fp32_path: str | Path) -> Path:
    path = Path(fp32_path)
    return path.with_name(path.name[: -len(".onnx")] + FP16_SUFFIX)


def stale_twin(fp32_path: str | Path, fp32_sha256: str) -> Path | None:
    """The FP16 twin beside ``fp32_path`` when it exists but was not converted from the FP32 file
    with ``fp32_sha256`` (its manifest's ``source.fp32_onnx_sha256`` differs, or the manifest is
    missing or unreadable): a twin left from an earlier export, which TensorRT would refuse."""
    twin = fp16_path(fp32_path)
    if not twin.exists():
        return None
    try:
        recorded = load_manifest(twin, verify_hash=False).source.get("fp32_onnx_sha256")
    except SonomapError:
        return twin
    return None if recorded == fp32_sha256 else twin


def convert_fp16(fp32_path: str | Path, out: str | Path | None = None) -> Path:
    """Write the FP16 twin of a folded FP32 ONNX model with its manifest; returns its path."""
    # deferred: onnx and onnxconverter-common are the optional [export] extra
    import onnx
    from onnxconverter_common import float16

    fp32_path = Path(fp32_path)
    manifest = load_manifest(fp32_path)
    if manifest.extra.get("precision") == "fp16":
        raise ConfigError(f"{fp32_path}: already an FP16 model (manifest extra.precision is fp16)")
    out = Path(out) if out is not None else fp16_path(fp32_path)
    model = onnx.load(str(fp32_path))
    declared = {o.name: o.type.tensor_type.elem_type for o in model.graph.output}  # before the converter runs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one warning per tiny weight clamped to the FP16 range
        blocked = [*float16.DEFAULT_OP_BLOCK_LIST, *EXTRA_FP32_OPS]
        half = float16.convert_float_to_float16(model, keep_io_types=True, op_block_list=blocked)
    # The converter marks the uint8->float Cast's output FP16 in value_info while the node still
    # casts to FP32; value_info is only a hint, so drop it and let shape inference redo it.
    del half.graph.value_info[:]
    _keep_output_types(half, declared)
    # same graph, same meaning: the twin carries the FP32 graph's metadata (the model contract),
    # set here rather than trusted to survive the converter
    onnx.helper.set_model_props(half, {entry.key: entry.value for entry in model.metadata_props})
    half = onnx.shape_inference.infer_shapes(half, strict_mode=True)
    try:
        with atomic_path(out) as tmp:  # an invalid graph never replaces the file
            onnx.save(half, str(tmp))
            onnx.checker.check_model(str(tmp), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ConfigError(f"{out}: FP16 conversion of {fp32_path} gives an invalid graph ({exc})") from exc
    derived = manifest.derive(
        format="onnx",
        source={**manifest.source, "fp32_onnx": fp32_path.name, "fp32_onnx_sha256": manifest.sha256},
        versions={**manifest.versions, "onnxconverter_common": _converter_version()},
        extra={
            **manifest.extra,
            "precision": "fp16",
            "fp16_converter": "onnxconverter_common.float16 keep_io_types",
            # the FP32 record describes another file: the twin's own step is not checked yet
            "parity": chain_record(
                [fp32_link(manifest), unchecked_record(FP32_REFERENCE, FP16_CANDIDATE, NOT_CHECKED)]
            ),
        },
    )
    save_manifest(derived, out)
    return out


def fp32_link(manifest: Manifest) -> dict:
    """The FP32 model's own parity record, the first link of its twin's chain (a link that did not
    pass when the FP32 model records none: the twin cannot be more checked than its source)."""
    record = manifest.extra.get("parity")
    if isinstance(record, dict) and "passed" in record:
        return dict(record)
    return unchecked_record("torch-fp32", FP32_REFERENCE, "no parity record")


def record_twin_parity(fp32_manifest: Manifest, twin: str | Path, fp16_section: dict) -> dict:
    """Write the twin's chained parity record (FP32 model's check, then ``fp16_section``) into its
    manifest; returns the record (``passed`` only when both steps passed)."""
    record = chain_record([fp32_link(fp32_manifest), manifest_record(fp16_section)])
    manifest = load_manifest(twin)
    manifest.extra = {**manifest.extra, "parity": record}
    save_manifest(manifest, twin)
    return record


def _keep_output_types(half, declared: dict) -> None:
    """Give ``half``'s graph outputs the element types the FP32 graph ``declared`` (name -> type), and
    make the Casts that write them cast to those types.

    With ``keep_io_types`` the converter still turns an output written by a *blocked* (FP32) node,
    such as a Resize writing ``prob`` directly, into FP16: it declares the output FP16 and casts the
    Resize's FP32 result down, while the output's other consumers are fed as FP32. Restoring the
    declared type makes that last Cast FP32 -> FP32, which is what keep_io_types promises."""
    for output in half.graph.output:
        output.type.tensor_type.elem_type = declared[output.name]
    for node in half.graph.node:
        if node.op_type == "Cast" and node.output[0] in declared:
            for attribute in node.attribute:
                if attribute.name == "to":
                    attribute.i = declared[node.output[0]]


def _converter_version() -> str:
    # deferred: the optional [export] extra
    import onnxconverter_common

    return str(onnxconverter_common.__version__)


def fp16_vs_fp32(
    fp32_path: str | Path, fp16_file: str | Path, frames, roi, max_hw, manifest: Manifest
) -> dict:
    """ONNX Runtime FP32 vs FP16 on the same frames: the gates of :mod:`export.parity` (bar 99.5%),
    the served masks through ``manifest``'s mask filter."""
    ref, cand = ort_session(fp32_path), ort_session(fp16_file)
    counts = []
    for frame_id, gray in frames:
        gray = fit_frame(gray, roi, max_hw)
        r_prob, r_mask = run_ort(ref, gray)
        c_prob, c_mask = run_ort(cand, gray)
        counts.append(
            count_frame(frame_id, r_mask, c_mask, r_prob, c_prob, manifest.cancer_index, manifest.mask_filter)
        )
    return summarise(counts, FP16_AGREEMENT_BAR, FP32_REFERENCE, FP16_CANDIDATE, manifest.mask_filter)
