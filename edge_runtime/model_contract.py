"""The model contract: what a folded graph's outputs mean, stamped into the graph itself.

The manifest YAML beside a model says which class id is cancer, what threshold made the mask and
what input size the network was trained at. For a folded ONNX graph those facts are baked into the
graph (the mask holds class ids, the threshold, the temperature, the calibration curve and the
resize are constants in it), so a manifest edited afterwards, or copied from another export, would
describe a graph it does not belong to: with the class ids swapped the overlay paints cancer in the
tissue colour, which is to say not at all; with the temperature or the curve changed, evaluate and
the case report would state a calibration the graph does not apply. Export therefore writes a small
contract into the ONNX model's ``metadata_props`` (one key, :data:`CONTRACT_KEY`, whose value is
JSON: class ids and names, the cancer id, the threshold, the input size, the temperature, the
sha256 of the calibration curve or null, and the normalisation's mean and std), and the runtime
compares it with the manifest when it opens the model. The TorchScript export saves the same JSON
in the file's ``_extra_files`` under the same key; the torch backend checks it with
:func:`check_contract` and refuses a folded TorchScript model without one. A contract stamped
before the temperature and the curve were added to it (the same contract version: those two keys
absent) is checked for the rest, and the two are taken on trust with a logged warning, so such
exports still load. A contract without the normalisation (``mean``/``std``, baked into the graph's
input scaling), such as the shipped default model's, is likewise checked for the rest, and the
manifest's mean and std are noted at info level as unchecked.

- :func:`contract_of` / :func:`contract_props`: a manifest -> the contract / the metadata to stamp
  (export writes it with ``onnx.helper.set_model_props``);
- :func:`check_contract`: the graph's metadata (ONNX Runtime's
  ``InferenceSession.get_modelmeta().custom_metadata_map``) against the manifest: a mismatch is a
  one-line ConfigError naming the manifest file and the key; a graph without the contract (an
  export made before it existed) is accepted with a logged warning, so existing models still load
  (a graph whose manifest names no exporter, built by other means, is noted at info level);
- :func:`check_model_file`: the same for a model file, for callers without a session of their own;
- :func:`check_io`: the manifest's ``io`` listing (tensor names and dtypes) against the graph's.

Ground floor: onnxruntime is imported only inside :func:`check_model_file` (the ``onnx`` package is
an export-only extra, so the runtime reads the metadata through ONNX Runtime).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edge_runtime.errors import ConfigError, InputError
from edge_runtime.manifest import CANCER_CLASS, SHA_SHOWN, Manifest, manifest_path

log = logging.getLogger("sonomap.model_contract")

CONTRACT_KEY = "sonomap.model_contract"
CONTRACT_VERSION = 1
# The graph holds the threshold as a float32 constant while the manifest and the contract hold the
# float64 it was made from: equal values survive the JSON and YAML round trips exactly, so any
# difference beyond float noise is an edit.
THRESHOLD_TOLERANCE = 1e-9
# The temperature likewise (relative: T runs from 0.05 to 20); the curve is compared by a digest of
# its knots, whose float64 values the JSON and YAML round trips keep exactly
TEMPERATURE_REL_TOLERANCE = 1e-9
CALIBRATION_KEYS = ("temperature", "calibration_curve")  # added to the contract after its first stamps
NORMALISATION_KEY = "normalisation"  # added after those: checked only where the graph's contract has it
# mean/std: float64 in the manifest and in the contract's JSON, exact through both round trips
NORMALISATION_REL_TOLERANCE = 1e-9
# ONNX Runtime's tensor type names -> the numpy dtype names the manifest's ``io`` listing uses
ORT_DTYPES = {
    "tensor(uint8)": "uint8",
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
}
EXPORTER_KEY = "exporter"  # manifest ``versions`` key that every `sonomap export` writes


def curve_digest(curve: Mapping[str, Any] | None) -> str | None:
    """sha256 of a calibration curve's knots as float64 (None: no curve), so ``1`` and ``1.0`` in
    a hand-written manifest name the same curve."""
    if not curve:
        return None
    knots = {side: [float(v) for v in curve[side]] for side in ("margin", "prob")}
    return hashlib.sha256(json.dumps(knots, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def contract_of(manifest: Manifest) -> dict[str, Any]:
    """The facts of ``manifest`` that a folded graph bakes in (plain JSON types)."""
    return {
        "version": CONTRACT_VERSION,
        "classes": [{"id": int(c.id), "name": str(c.name)} for c in manifest.classes],
        "cancer_id": int(manifest.cancer_index),
        "threshold": float(manifest.threshold),
        "input": {"height": int(manifest.input_height), "width": int(manifest.input_width)},
        "temperature": float(manifest.temperature),
        "calibration_curve": curve_digest(manifest.calibration_curve),
        NORMALISATION_KEY: {"mean": float(manifest.mean), "std": float(manifest.std)},
    }


def contract_props(manifest: Manifest) -> dict[str, str]:
    """The ONNX ``metadata_props`` entry that carries ``manifest``'s contract."""
    return {CONTRACT_KEY: json.dumps(contract_of(manifest), sort_keys=True, separators=(",", ":"))}


def check_contract(metadata: Mapping[str, str], manifest: Manifest, model_path: str | Path) -> bool:
    """Compare the contract in a graph's ``metadata`` with ``manifest`` (the one beside
    ``model_path``). True when it was checked, False when the graph has none (warning logged);
    ConfigError naming the manifest file and its key on the first difference."""
    origin = manifest_path(model_path)
    raw = metadata.get(CONTRACT_KEY)
    if raw is None:
        # A model `sonomap export` made before the contract existed gets the advice to re-export as
        # a warning; a graph built by other means (no exporter recorded) has no export to redo.
        level = logging.WARNING if manifest.versions.get(EXPORTER_KEY) else logging.INFO
        log.log(
            level,
            "%s: the graph carries no model contract (exported before sonomap stamped one); the "
            "manifest's classes, threshold, input size, temperature, calibration curve and normalisation "
            "are taken on trust; re-export to check them",
            model_path,
        )
        return False
    stamped = _parse(raw, model_path)
    expected = contract_of(manifest)
    for key, differs, said, graph in _differences(stamped, expected):
        if differs:
            raise ConfigError(
                f"{origin}: '{key}' says {said} but the graph {Path(model_path).name} was exported with "
                f"{graph}; this manifest does not belong to the graph (use the manifest exported with it)"
            )
    unstamped = [key for key in CALIBRATION_KEYS if key not in stamped]
    if unstamped:
        log.warning(
            "%s: the graph's model contract predates %s; the manifest's values are taken on trust; "
            "re-export to check them",
            model_path,
            " and ".join(unstamped),
        )
    if NORMALISATION_KEY not in stamped:
        # not a warning: the shipped default model's contract predates it, and a warning on every
        # start that the operator cannot act on would teach them to ignore the log
        log.info(
            "%s: the graph's model contract predates normalisation; the manifest's mean and std are "
            "taken on trust",
            model_path,
        )
    return True


def check_model_file(model_path: str | Path, manifest: Manifest) -> bool:
    """:func:`check_contract` for a model file: its metadata read with ONNX Runtime (graph
    optimisation off: only the metadata is wanted). A file ONNX Runtime cannot open is an
    InputError naming it."""
    # deferred: about 0.1 s, paid only by callers that open a model
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3  # errors only: FP16 graphs warn about every inserted cast
    try:
        session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/NoSuchFile types
        raise InputError(f"{model_path}: onnxruntime cannot read it ({exc})") from exc
    return check_contract(session.get_modelmeta().custom_metadata_map, manifest, model_path)


def check_io(manifest: Manifest, graph: Mapping[str, Mapping[str, str]], model_path: str | Path) -> None:
    """The tensors the manifest's ``io`` lists (``inputs``/``outputs``: name and dtype) against the
    graph's (``graph``: ``{"inputs"|"outputs": {name: ONNX Runtime type}}``, e.g.
    ``"tensor(uint8)"``). Every input must match the listing exactly; every listed output must be in the
    graph with its dtype. A manifest without a listing (written by other means) is not checked.
    ConfigError naming the manifest file and the ``io`` key on the first difference."""
    origin = manifest_path(model_path)
    for side in ("inputs", "outputs"):
        listed = manifest.io.get(side)
        if not isinstance(listed, list):
            continue
        wanted = {str(t.get("name")): str(t.get("dtype")) for t in listed if isinstance(t, Mapping)}
        have = {name: ORT_DTYPES.get(kind, kind) for name, kind in graph[side].items()}
        if side == "inputs" and set(wanted) != set(have):
            raise ConfigError(
                f"{origin}: 'io.inputs' lists {sorted(wanted)} but the graph {Path(model_path).name} "
                f"takes {sorted(have)}; this manifest does not belong to the graph"
            )
        for name, dtype in wanted.items():
            if name not in have or have[name] != dtype:
                found = f"is {have[name]}" if name in have else f"has no such tensor (it has {sorted(have)})"
                raise ConfigError(
                    f"{origin}: 'io.{side}' lists {name!r} as {dtype} but the graph "
                    f"{Path(model_path).name} {found}; this manifest does not belong to the graph"
                )


def _parse(raw: str, model_path: str | Path) -> dict[str, Any]:
    try:
        stamped = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{model_path}: the graph's {CONTRACT_KEY} metadata is not JSON ({exc})") from exc
    if not isinstance(stamped, dict) or stamped.get("version") != CONTRACT_VERSION:
        raise ConfigError(
            f"{model_path}: the graph's {CONTRACT_KEY} metadata is not contract version {CONTRACT_VERSION} "
            "(exported by another sonomap version); re-export the model"
        )
    return stamped


def _differences(stamped: dict[str, Any], expected: dict[str, Any]):
    """(manifest key, differs?, what the manifest says, what the graph was made with), most
    dangerous first: which class is cancer decides whether a finding is painted at all."""
    names = {c["id"]: c["name"] for c in expected["classes"]}
    graph_names = {c.get("id"): c.get("name") for c in stamped.get("classes", []) if isinstance(c, dict)}
    yield (
        "classes",
        stamped.get("cancer_id") != expected["cancer_id"],
        f"{CANCER_CLASS} is id {expected['cancer_id']}",
        f"{CANCER_CLASS} as id {stamped.get('cancer_id')}",
    )
    yield "classes", graph_names != names, _classes_text(names), _classes_text(graph_names)
    threshold = stamped.get("threshold")
    yield (
        "threshold",
        not isinstance(threshold, (int, float))
        or not math.isclose(threshold, expected["threshold"], rel_tol=0.0, abs_tol=THRESHOLD_TOLERANCE),
        f"{expected['threshold']!r}",
        f"threshold {threshold!r}",
    )
    yield from _calibration_differences(stamped, expected)
    yield from _normalisation_differences(stamped, expected)
    graph_input = stamped.get("input") if isinstance(stamped.get("input"), dict) else {}
    for side in ("height", "width"):
        yield (
            f"input.{side}",
            graph_input.get(side) != expected["input"][side],
            f"{expected['input'][side]}",
            f"input {side} {graph_input.get(side)!r}",
        )


def _calibration_differences(stamped: dict[str, Any], expected: dict[str, Any]):
    """:func:`_differences` for the temperature and the curve, each only where the graph's contract
    carries it (a contract stamped before they were added to it has neither)."""
    if "temperature" in stamped:
        graph_t = stamped["temperature"]
        yield (
            "temperature",
            not isinstance(graph_t, (int, float))
            or not math.isclose(graph_t, expected["temperature"], rel_tol=TEMPERATURE_REL_TOLERANCE),
            f"{expected['temperature']!r}",
            f"temperature {graph_t!r}",
        )
    if "calibration_curve" in stamped:
        graph_curve = stamped["calibration_curve"]
        yield (
            "calibration_curve",
            graph_curve != expected["calibration_curve"],
            _curve_text(expected["calibration_curve"], "none"),
            _curve_text(graph_curve, "no calibration curve"),
        )


def _normalisation_differences(stamped: dict[str, Any], expected: dict[str, Any]):
    """:func:`_differences` for the input's mean and std, only where the graph's contract carries them."""
    if NORMALISATION_KEY not in stamped:
        return
    graph = stamped[NORMALISATION_KEY] if isinstance(stamped[NORMALISATION_KEY], dict) else {}
    for side in ("mean", "std"):
        value, want = graph.get(side), expected[NORMALISATION_KEY][side]
        yield (
            f"normalisation.{side}",
            not isinstance(value, (int, float))
            or not math.isclose(value, want, rel_tol=NORMALISATION_REL_TOLERANCE),
            f"{want!r}",
            f"{side} {value!r}",
        )


def _curve_text(digest: Any, absent: str) -> str:
    return absent if digest is None else f"a calibration curve with sha256 {str(digest)[:SHA_SHOWN]}…"


def _classes_text(names: Mapping[Any, Any]) -> str:
    return ", ".join(f"{ident}={name}" for ident, name in sorted(names.items(), key=lambda kv: str(kv[0])))
