"""The model manifest's YAML, key by key: what :func:`edge_runtime.manifest.load_manifest` accepts.

:class:`ManifestFile` declares every key with its type (edge_runtime/typed_config.py turns a wrong
type, a missing key or an unknown key into a one-line ``ConfigError`` naming the file and the key
path, worded by :data:`WORDING`); :data:`NESTED` maps the flat :class:`edge_runtime.manifest.Manifest`
fields to the YAML sections they live in.

:func:`check_input_size` bounds ``input.height``/``input.width``: at least 1 and at most
:data:`MAX_INPUT_SIDE` pixels. Input: the two sizes and the manifest's name. Output: none; a
ConfigError naming the manifest file and the key otherwise.
"""

# no `from __future__ import annotations`: the annotations are the checked types, read as objects
from typing import Any, Literal

from edge_runtime.errors import ConfigError
from edge_runtime.mask_filter import MaskFilter
from edge_runtime.typed_config import Section, Wording, described, shown
from edge_runtime.typed_struct import Struct

FORMATS = ("checkpoint", "onnx", "torchscript", "tensorrt", "torch-tensorrt")
# The largest input side a manifest may declare, the same as export's shape flags (export.shapes.
# MAX_SIDE; the runtime may not import export): the cart runs one video stream, and an 8K frame is
# twice a 4K scanner screen. A larger side is a typo that would pass export and only exhaust memory
# when the runtime allocates its frame buffers for it.
MAX_INPUT_SIDE = 8192


class ClassInfo(Struct, forbid_unknown_fields=True):
    id: described(int, "an integer")
    name: described(str, "a text")
    color: described(list[int], "[r, g, b] integers")  # RGB, 0-255


class ManifestInput(Section):
    height: described(int, "an integer")
    width: described(int, "an integer")
    # one value each here and in Normalisation.scale: what the runtime implements; others refused
    channels: described(Literal[1], "1 (the runtime feeds one gray channel)") = 1


class Normalisation(Section, kw_only=True):
    scale: described(Literal["1/255"], "'1/255' (the runtime scales uint8 frames to [0, 1])") = "1/255"
    mean: described(float, "a number")
    std: described(float, "a number")


class ManifestFile(Section, kw_only=True):
    """The manifest YAML key by key, in the order written. A new field: add it here and to
    :class:`Manifest` under the same name (copied both ways by name)."""

    schema: described(str, "a text")  # required: a YAML without it is not known to be a manifest
    name: described(str, "a text")
    arch: described(str, "a text")
    format: described(str, f"one of {FORMATS}")
    file: described(str, "a text") = ""
    sha256: described(str, "a text") = ""
    source: dict[str, Any] = {}
    input: ManifestInput
    normalisation: Normalisation
    classes: described(list[ClassInfo], "a list of {id, name, color}")
    threshold: described(float, "a number") = 0.5
    temperature: described(float, "a number") = 1.0
    # checked by edge_runtime.calibration_curve.check_curve (its messages name the rule broken)
    calibration_curve: Any = None
    mask_filter: MaskFilter | None = None
    preprocessing_in_graph: described(bool, "true or false") = False
    io: dict[str, Any] = {}
    versions: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    extra: dict[str, Any] = {}


NESTED = {  # Manifest field -> (ManifestFile section, key)
    "input_height": ("input", "height"),
    "input_width": ("input", "width"),
    "mean": ("normalisation", "mean"),
    "std": ("normalisation", "std"),
}


class ManifestWording(Wording):
    def bad_value(self, origin: str, key: str, want: str, value: Any) -> str:
        return f"{origin}: malformed manifest value: '{key}' must be {want}, got {shown(value)}"

    def unknown(self, origin: str, key: str, known: list[str]) -> str:
        return f"{origin}: unknown manifest key '{key}' (known: {', '.join(known)})"

    def not_mapping(self, origin: str, key: str, value: Any) -> str:
        return f"{origin}: manifest key '{key}' must be a mapping, got {shown(value)}"


WORDING = ManifestWording()


def check_input_size(height: int, width: int, origin: str) -> None:
    """ConfigError ``ORIGIN: manifest key 'input.KEY' ...`` unless both sides are 1..MAX_INPUT_SIDE."""
    for key, value in (("height", height), ("width", width)):
        if not 0 < value <= MAX_INPUT_SIDE:
            raise ConfigError(
                f"{origin}: manifest key 'input.{key}' is {value}; it must be 1 to {MAX_INPUT_SIDE} pixels"
            )
