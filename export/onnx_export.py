"""Checkpoint -> ONNX (opset 17, pre/post folded in) + manifest + torch/ORT parity report.

Inputs: ``CK`` (a ``sonomap train`` checkpoint with ``CK.yaml`` beside it).
Outputs: ``model.onnx``, ``model.onnx.yaml`` (format onnx, io, profile, sha256, source),
``model.onnx.parity.json`` (torch FP32 vs ONNX Runtime FP32 on real frames) beside the model.
The graph carries the model contract in its metadata (:mod:`edge_runtime.model_contract`).
An ``out`` that is the checkpoint itself is refused before anything is written. The manifest
names the checkpoint by file name and sha256 only: it travels to the cart, and a folder above
the checkpoint or the dataset may be named after a patient.
"""

from __future__ import annotations

import logging
import platform
import warnings
from importlib.metadata import version
from pathlib import Path, PurePath

import numpy as np

from edge_runtime.atomic import atomic_path, same_file
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import Manifest, save_manifest, sha256_file
from edge_runtime.model_contract import contract_props
from export.fp16 import FP16_SUFFIX
from export.parity import FP32_AGREEMENT_BAR, count_frame, ort_session, run_ort, summarise
from export.samples import fit_frame
from export.shapes import INPUT_NAME, OUTPUT_NAMES, ShapeSpec

log = logging.getLogger("sonomap.export")

DEFAULT_OPSET = 17
# Opsets whose Resize/Softmax semantics we rely on and TensorRT 10.3+ parses.
SUPPORTED_OPSETS = (17, 18, 19, 20)
EXPORTER = "sonomap.export (torch.onnx TorchScript exporter)"
# extra sections whose ``fitted_on`` names the dataset (calibrate, mask-filter); manifests written
# before it held only the folder's name may hold a full path there
FITTED_SECTIONS = ("calibration", "mask_filter_fit")
SPLIT_SEPARATOR = " split "
PARITY_KEY = "parity"  # extra's parity record (edge_runtime.parity_record), one per checked artifact


def refuse_overwrite(checkpoint: str | Path, out: str | Path) -> None:
    """ConfigError when ``out`` is the checkpoint itself (or its manifest): exporting over it
    would destroy the trained model it is made from; also when ``checkpoint`` has no file name."""
    if not Path(checkpoint).name:  # '', '.', '/': no file name to compare (or to load)
        raise ConfigError(
            f"--checkpoint {str(checkpoint) or repr('')}: not a checkpoint file name (a folder, or nothing): "
            "give the best.pt that 'sonomap train' wrote"
        )
    checkpoint = Path(checkpoint)
    for kept in (checkpoint, checkpoint.with_name(checkpoint.name + ".yaml")):
        if same_file(out, kept):
            raise ConfigError(
                f"--out {out} is the checkpoint's file {kept}: give another file name, "
                "or the trained model would be overwritten"
            )


def exported_source(checkpoint: Path, source: Manifest) -> dict:
    """The exported manifest's ``source``: the checkpoint by file name and sha256, never its path."""
    return {
        "checkpoint": checkpoint.name,
        "checkpoint_sha256": sha256_file(checkpoint),
        "checkpoint_name": source.name,
    }


def exported_extra(extra: dict, precision: str) -> dict:
    """The checkpoint's ``extra`` for the exported manifest, with each ``fitted_on`` reduced to the
    dataset folder's base name (an older checkpoint may hold the full path) and ``precision`` set.
    Its ``parity`` is dropped: it records a check of another artifact (a checkpoint recovered from an
    ONNX export carries that export's), and each export writes the verdict of its own check."""
    out = {key: value for key, value in extra.items() if key != PARITY_KEY}
    out["precision"] = precision
    for section in FITTED_SECTIONS:
        record = out.get(section)
        if isinstance(record, dict) and isinstance(record.get("fitted_on"), str):
            dataset, sep, split = record["fitted_on"].rpartition(SPLIT_SEPARATOR)
            public = f"{PurePath(dataset).name}{sep}{split}" if sep else PurePath(split).name
            out[section] = {**record, "fitted_on": public}
    return out


def check_onnx_name(out: Path) -> None:
    """ConfigError naming ``--out`` unless it ends in .onnx (the runtime picks its backend by suffix), or
    when it ends in .fp16.onnx: that name is an export's FP16 twin, which a later export of the FP32 name
    would replace or remove as stale."""
    if out.name == ".onnx":  # a hidden file with no suffix: "must end in .onnx" would puzzle
        raise ConfigError(f"--out {out}: give the ONNX file a name before .onnx, e.g. model.onnx")
    if out.suffix != ".onnx":
        raise ConfigError(f"--out {out}: the ONNX file name must end in .onnx")
    if out.name.endswith(FP16_SUFFIX):  # the twin's name: it would replace another export's twin
        fp32 = out.name[: -len(FP16_SUFFIX)] + ".onnx"
        raise ConfigError(
            f"--out {out}: a name ending in {FP16_SUFFIX} is the FP16 twin that --fp16 writes beside an "
            f"export; give the FP32 model's name ({fp32}) and add --fp16"
        )


def check_opset(opset: int) -> None:
    if opset not in SUPPORTED_OPSETS:
        raise ConfigError(
            f"--opset {opset} is not supported; use one of {SUPPORTED_OPSETS} (default {DEFAULT_OPSET})"
        )


def library_versions() -> dict[str, str]:
    # deferred: onnx ([export] extra), onnxruntime (0.1 s) and torch (seconds to load); torchvision's
    # version is read from its installed metadata, since importing it costs seconds more (torch._dynamo)
    import onnx
    import onnxruntime
    import torch

    found = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": version("torchvision"),
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
    }
    return {name: str(value) for name, value in found.items()}  # TorchVersion is not YAML-safe


def _name_output_dims(model, spec: ShapeSpec) -> None:
    """The exporter names output dims after internal nodes; give them the input's names."""
    for output in model.graph.output:
        dims = output.type.tensor_type.shape.dim
        for dim, value in zip(dims, spec.dims, strict=False):
            if isinstance(value, str):
                dim.dim_param = value
            else:
                dim.dim_value = int(value)


def stamp_contract(model, manifest: Manifest) -> None:
    """Write ``manifest``'s model contract (:mod:`edge_runtime.model_contract`) into the ONNX
    ``model``'s metadata_props, keeping any other entries: the runtime refuses a manifest that
    does not describe the graph it sits beside."""
    # deferred: onnx ([export] extra)
    import onnx

    props = {entry.key: entry.value for entry in model.metadata_props}
    onnx.helper.set_model_props(model, {**props, **contract_props(manifest)})


def write_onnx(folded, path: Path, spec: ShapeSpec, opset: int, manifest: Manifest | None = None) -> None:
    """Trace ``folded`` and write a checked ONNX file (atomically: temp file, then rename), with
    ``manifest``'s model contract in its metadata when given."""
    # deferred: onnx ([export] extra) and torch (seconds to load)
    import onnx
    import torch

    h, w = spec.example_hw()
    dummy = torch.zeros(1, 1, h, w, dtype=torch.uint8)
    with atomic_path(path) as tmp:  # a graph failing the checker never replaces the file
        with warnings.catch_warnings():
            # The TorchScript exporter is deprecated upstream but needs no onnxscript; its warnings are noise here.
            warnings.simplefilter("ignore")
            with torch.no_grad():
                torch.onnx.export(
                    folded,
                    (dummy,),
                    str(tmp),
                    input_names=[INPUT_NAME],
                    output_names=list(OUTPUT_NAMES),
                    dynamic_axes=spec.dynamic_axes(),
                    opset_version=opset,
                    dynamo=False,
                )
        model = onnx.load(str(tmp))
        _name_output_dims(model, spec)
        if manifest is not None:
            stamp_contract(model, manifest)
        onnx.save(model, str(tmp))
        try:
            onnx.checker.check_model(str(tmp), full_check=True)
        except onnx.checker.ValidationError as exc:
            raise ConfigError(f"{path}: exported graph fails onnx.checker ({exc})") from exc


def torch_vs_ort(folded, onnx_path: Path, frames, spec: ShapeSpec, manifest: Manifest) -> dict:
    """Run the folded torch model and ONNX Runtime on the same real frames; pooled counts, the
    served masks through ``manifest``'s mask filter (:mod:`export.parity`)."""
    import torch  # deferred: torch takes seconds to load

    session = ort_session(onnx_path)
    counts = []
    for frame_id, gray in frames:
        gray = fit_frame(gray, spec.roi, spec.max_hw)
        with torch.no_grad():
            t_prob, t_mask = folded(torch.from_numpy(gray)[None, None])
        o_prob, o_mask = run_ort(session, gray)
        counts.append(
            count_frame(
                frame_id,
                t_mask[0, 0].numpy(),
                o_mask,
                t_prob[0, 0].numpy(),
                o_prob,
                manifest.cancer_index,
                manifest.mask_filter,
            )
        )
    return summarise(counts, FP32_AGREEMENT_BAR, "torch-fp32", "onnxruntime-fp32", manifest.mask_filter)


def export_onnx(
    checkpoint: str | Path, out: str | Path, spec: ShapeSpec | None = None, opset: int = DEFAULT_OPSET
) -> tuple[Manifest, object]:
    """Export ``checkpoint`` to ``out``; returns (manifest written beside it, folded torch model)."""
    from export.folded import load_folded  # deferred: torch (seconds to load)

    check_opset(opset)
    spec = spec or ShapeSpec()
    spec.validate()
    checkpoint, out = Path(checkpoint), Path(out)
    check_onnx_name(out)
    refuse_overwrite(checkpoint, out)
    folded, source = load_folded(checkpoint)
    out.parent.mkdir(parents=True, exist_ok=True)
    # the folded graph is built from the checkpoint's manifest: its classes, threshold and input
    # size are what the graph bakes in (the derived manifest below keeps them)
    write_onnx(folded, out, spec, opset, source)
    manifest = source.derive(
        format="onnx",
        preprocessing_in_graph=True,
        io=spec.io(opset),
        source=exported_source(checkpoint, source),
        versions={**source.versions, **library_versions(), "exporter": EXPORTER},
        extra=exported_extra(source.extra, "fp32"),
    )
    save_manifest(manifest, out)
    log.info("wrote %s (%d bytes)", out, out.stat().st_size)
    return manifest, folded
