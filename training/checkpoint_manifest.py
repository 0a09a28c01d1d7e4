"""The manifest beside a checkpoint (``best.pt.yaml``) against the copy the checkpoint carries inside
it (``payload["manifest"]``, written with the weights by ``sonomap train``, ``recover``, ``average``
and ``ensemble``).

What the weights were trained with must agree: the classes (each id with its name: which output
channel is cancer), the input's channels and size (height, width), and the normalisation (mean,
std). A manifest beside the file that says otherwise, with its sha256 still that of the checkpoint,
was edited or copied from another run: an export from it would pass its parity check (the
reference reads the same manifest) and yet paint tissue as cancer, or squash every frame. It is a
one-line ConfigError naming the manifest file and the key.

Everything else may differ, as it is rewritten after training without touching the weights:
``threshold``, ``temperature``, ``calibration_curve`` (``sonomap calibrate``), ``mask_filter``
(``calibrate --method mask-filter``), ``sha256`` (re-signed by ``upgrade-checkpoint``), ``extra``
(the calibration record, a parity verdict), ``name``, ``source``, ``metrics``, ``versions``, ``io``
and the class colours (a display choice). ``arch`` and the number of classes are checked against
the checkpoint's ``model_config`` (:func:`training.checkpoint.load_model`). A checkpoint without an
embedded copy (an older one), or a key its copy lacks, is not compared.

Inputs: the checkpoint's path, the loaded manifest beside it and the embedded copy (any value).
Outputs: none; ConfigError on a contradiction.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from edge_runtime.errors import ConfigError
from edge_runtime.manifest import Manifest, manifest_path

# the one value the manifest schema allows for input.channels (edge_runtime/manifest_schema.py)
GRAY_CHANNELS = 1
FLOAT_REL_TOL = 1e-9  # a YAML round trip of a float is exact; this only forgives formatting


def check_embedded_manifest(path: Path, manifest: Manifest, embedded: Any) -> None:
    """ConfigError ``best.pt.yaml: manifest key 'KEY' is X but best.pt was trained with Y ...`` when
    the manifest beside ``path`` contradicts the checkpoint's own copy in what the weights fix."""
    if not isinstance(embedded, dict):  # an older checkpoint without its own copy
        return
    for key, beside, inside in _fixed_values(manifest, embedded):
        if inside is None or _same(beside, inside):
            continue
        raise ConfigError(
            f"{manifest_path(path)}: manifest key '{key}' is {beside} but {path.name} was trained with "
            f"{inside} (its own copy of the manifest); this manifest was edited or is from another run: "
            "put back the one written with the checkpoint"
        )


def _fixed_values(manifest: Manifest, embedded: dict) -> list[tuple[str, Any, Any]]:
    """(key, value beside, value inside or None when the copy lacks it) for each key the weights fix."""
    section = embedded.get("input")
    inputs = section if isinstance(section, dict) else {}
    section = embedded.get("normalisation")
    norm = section if isinstance(section, dict) else {}
    beside_classes = _shown_classes([(c.id, c.name) for c in manifest.classes])
    return [
        ("classes", beside_classes, _embedded_classes(embedded.get("classes"))),
        ("input.channels", GRAY_CHANNELS, inputs.get("channels", GRAY_CHANNELS if inputs else None)),
        ("input.height", manifest.input_height, inputs.get("height")),
        ("input.width", manifest.input_width, inputs.get("width")),
        ("normalisation.mean", manifest.mean, norm.get("mean")),
        ("normalisation.std", manifest.std, norm.get("std")),
    ]


def _embedded_classes(classes: Any) -> str | None:
    """The copy's classes shown as :func:`_shown_classes` shows them; None when it has none readable."""
    if not isinstance(classes, list) or not classes:
        return None
    if not all(isinstance(c, dict) and "id" in c and "name" in c for c in classes):
        return None
    return _shown_classes([(c["id"], c["name"]) for c in classes])


def _shown_classes(pairs: list[tuple[Any, Any]]) -> str:
    """Classes by id, e.g. ``[0 'tissue', 1 'cancer']``: the same text whatever order the list has."""
    ordered = sorted(
        pairs, key=lambda p: (not isinstance(p[0], int), p[0] if isinstance(p[0], int) else str(p[0]))
    )
    return "[" + ", ".join(f"{i} {n!r}" for i, n in ordered) + "]"


def _same(beside: Any, inside: Any) -> bool:
    if isinstance(beside, float) and isinstance(inside, (int, float)) and not isinstance(inside, bool):
        return math.isclose(beside, float(inside), rel_tol=FLOAT_REL_TOL, abs_tol=0.0)
    return beside == inside
