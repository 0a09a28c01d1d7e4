"""The model manifest: the one contract between training, export and the runtime.

A manifest is a YAML file that travels beside every checkpoint, ONNX file and engine
(``<artifact>.yaml``, e.g. ``best.pt.yaml``, ``model.onnx.yaml``). It records what a
consumer needs to use the artifact correctly without importing the producer:

- ``input``: the network's input size (height, width) and channels (1, grayscale);
- ``normalisation``: ``mean``/``std`` applied after scaling uint8 to [0, 1];
- ``classes``: id, name and RGB colour of each output class;
- ``threshold``: the cancer-probability cut-off for the mask;
- ``temperature``: logits are divided by it before the softmax (temperature scaling fitted on
  validation data, so probabilities are calibrated; 1.0 = none). Graphs with
  ``preprocessing_in_graph`` have it folded in; a consumer of raw logits applies it itself;
- ``calibration_curve`` (optional, two-class models): knots ``margin`` -> ``prob`` of a
  non-decreasing piecewise-linear map from the temperature-scaled cancer-minus-tissue logit margin
  to the probability, used instead of the logistic (:mod:`edge_runtime.calibration_curve`); folded
  into graphs like the temperature; ``threshold`` is then the curve's value at margin 0;
- ``mask_filter`` (optional): which parts of the thresholded mask count as a finding (minimum
  peak probability, minimum part size, largest part only), :mod:`edge_runtime.mask_filter`;
  applied after the backend by the runtime and by evaluation, never folded into a graph;
- ``sha256``/``file``: the artifact itself (:func:`check_artifact`); ``source``: its origin;
- ``io``: tensor names, shapes and dtypes (ONNX/engines), and ``preprocessing_in_graph``
  when resize/normalise/softmax/threshold are folded into the graph (uint8 in, uint8 out).

The YAML is declared key by key in :class:`ManifestFile` (edge_runtime/manifest_schema.py,
edge_runtime/typed_config.py, docs/configuration.md); a wrong
type, a missing key (``schema`` too) or an unknown key is a one-line ``ConfigError`` naming the file
and the key path. :class:`Manifest` is the same content in memory, input size and normalisation flat.
"""

# no `from __future__ import annotations`: the annotations are the checked types, read as objects
import copy
import hashlib
from pathlib import Path
from typing import Any

import yaml

from edge_runtime.atomic import atomic_write_bytes
from edge_runtime.calibration_curve import check_curve
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.manifest_schema import (
    FORMATS,
    NESTED,
    WORDING,
    ClassInfo,
    ManifestFile,
    ManifestInput,
    Normalisation,
    check_input_size,
)
from edge_runtime.mask_filter import MaskFilter
from edge_runtime.typed_config import convert, finite
from edge_runtime.typed_struct import Struct, to_builtins
from edge_runtime.yamlfile import read_yaml_mapping

SCHEMA = "sonomap.manifest/1"
CANCER_CLASS = "cancer"
HASH_CHUNK_BYTES = 1 << 20
RGB_CHANNELS, RGB_MAX = 3, 255
OPEN_SECTIONS = ("source", "io", "versions", "metrics", "extra")  # free-form mappings; null = {}
# A TensorRT engine's names (it has no documented signature): the backends, the engine loader and
# training's checkpoint check all tell an engine by them.
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
# A TorchScript file's names: the backends serve it with torch by them, and export torchscript
# writes only such a name.
TORCHSCRIPT_SUFFIXES = (".ts", ".torchscript")
# The format an artifact's suffix means: the backends pick a loader by suffix, so a manifest whose
# format disagrees describes another kind of file. Suffixes not listed are not checked.
FORMAT_BY_SUFFIX = {".pt": "checkpoint", ".onnx": "onnx", ".ep": "torch-tensorrt"}
FORMAT_BY_SUFFIX |= dict.fromkeys(TORCHSCRIPT_SUFFIXES, "torchscript")
FORMAT_BY_SUFFIX |= dict.fromkeys(ENGINE_SUFFIXES, "tensorrt")


class Manifest(Struct):
    name: str
    arch: str
    format: str
    input_height: int
    input_width: int
    mean: float
    std: float
    classes: list[ClassInfo]
    threshold: float = 0.5
    temperature: float = 1.0
    calibration_curve: dict[str, list[float]] | None = None
    mask_filter: MaskFilter | None = None
    file: str = ""
    sha256: str = ""
    source: dict[str, Any] = {}
    io: dict[str, Any] = {}
    preprocessing_in_graph: bool = False
    versions: dict[str, str] = {}
    metrics: dict[str, Any] = {}
    extra: dict[str, Any] = {}

    # --- derived helpers -------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def cancer_index(self) -> int:
        for c in self.classes:
            if c.name == CANCER_CLASS:
                return c.id
        raise ConfigError(f"manifest {self.name!r}: no class named {CANCER_CLASS!r} in 'classes'")

    def derive(self, **changes: Any) -> "Manifest":
        """A copy for a derived artifact (e.g. checkpoint -> ONNX), with fields changed."""
        new = copy.deepcopy(self)
        for key, value in changes.items():
            if key not in self.__struct_fields__:
                raise ConfigError(f"manifest has no field {key!r}")
            setattr(new, key, value)
        return new

    # --- (de)serialisation ----------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in self.__struct_fields__ if name not in NESTED}
        nested: dict[str, dict[str, Any]] = {"input": {}, "normalisation": {}}
        for name, (section, key) in NESTED.items():
            nested[section][key] = getattr(self, name)
        file = ManifestFile(
            schema=SCHEMA,
            input=ManifestInput(**nested["input"]),
            normalisation=Normalisation(**nested["normalisation"]),
            **values,
        )
        out = to_builtins(file)
        for optional in ("calibration_curve", "mask_filter"):  # most models have none: no null key
            if out.get(optional) is None:
                out.pop(optional, None)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = "<manifest>") -> "Manifest":
        if not isinstance(data, dict):
            raise ConfigError(f"{origin}: a manifest must be a YAML mapping")
        if "schema" in data and data["schema"] != SCHEMA:  # a missing one: convert names the key
            raise ConfigError(f"{origin}: unsupported schema {data.get('schema')!r} (want {SCHEMA})")
        if "format" in data and data["format"] not in FORMATS:
            raise ConfigError(f"{origin}: 'format' is {data['format']!r}, expected one of {FORMATS}")
        data = {k: v for k, v in data.items() if not (k in OPEN_SECTIONS and v is None)}
        file = convert(data, ManifestFile, origin, WORDING)
        values = {name: getattr(file, name) for name in cls.__struct_fields__ if name not in NESTED}
        for name, (section, key) in NESTED.items():
            values[name] = getattr(getattr(file, section), key)
        values["versions"] = {str(k): str(v) for k, v in file.versions.items()}
        manifest = cls(**values)
        manifest.validate(origin)
        return manifest

    def validate(self, origin: str = "<manifest>") -> None:
        check_input_size(self.input_height, self.input_width, origin)
        if not (finite(self.mean) and finite(self.std)) or self.std <= 0:  # inf/NaN: every input 0 or NaN
            raise ConfigError(f"{origin}: 'normalisation' needs finite mean, std > 0: {self.mean}/{self.std}")
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"{origin}: 'threshold' must be in (0, 1), got {self.threshold}")
        if not finite(self.temperature) or self.temperature <= 0.0:  # inf: every probability 0.5
            raise ConfigError(f"{origin}: 'temperature' must be a finite number > 0, got {self.temperature}")
        ids = [c.id for c in self.classes]
        if sorted(ids) != list(range(len(ids))) or len(ids) < 2:
            raise ConfigError(f"{origin}: 'classes' ids must be 0..N-1 with N >= 2, got {ids}")
        for c in self.classes:
            if len(c.color) != RGB_CHANNELS or not all(0 <= v <= RGB_MAX for v in c.color):
                raise ConfigError(f"{origin}: class {c.name!r} colour must be 3 values in 0..255")
        if CANCER_CLASS not in {c.name for c in self.classes}:
            raise ConfigError(f"{origin}: no class named {CANCER_CLASS!r} in 'classes'")
        cancer = next(c for c in self.classes if c.name == CANCER_CLASS)
        check_cancer_colour(cancer.color, origin, f"manifest key 'classes[{cancer.id}].color'")
        # after the classes: the curve's rule depends on how many there are
        if self.calibration_curve is not None:
            check_curve(self.calibration_curve, len(self.classes), origin, self.threshold)


# B-mode is grey, so only a colour's chroma tells the overlay from the image: a grey, black or white
# cancer colour (strongest and weakest channel close) tinted at any alpha reads as speckle, not as a
# finding. The default [255, 40, 40] has a chroma of 215 of 255.
MIN_CANCER_CHROMA = 128


def check_cancer_colour(rgb, origin: str, key: str) -> None:
    """Refuse (one-line ConfigError naming ``origin`` and ``key``, e.g. "config key
    'overlay.classes.cancer.color'") a cancer colour too close to grey to be seen on a B-mode image
    (``MIN_CANCER_CHROMA``); checked for a configured colour and for the colour a manifest gives its
    cancer class."""
    chroma = max(rgb) - min(rgb)
    if chroma < MIN_CANCER_CHROMA:
        raise ConfigError(
            f"{origin}: {key}: {list(rgb)} is too close to grey to see on B-mode (its strongest and weakest "
            f"channels differ by {chroma}, below {MIN_CANCER_CHROMA}); use a saturated colour such as [255, 40, 40], "
            "or a screen with AI ON would look cancer-free"
        )


SHA_SHOWN = 12  # leading hex digits of a sha256 that name a file in messages and reports


PARITY_SUFFIX = ".parity.json"  # MODEL.parity.json: the export's parity record, beside the model


def manifest_path(artifact: str | Path) -> Path:
    """Where the manifest of an artifact lives: ``model.onnx`` -> ``model.onnx.yaml``."""
    return Path(artifact).with_name(Path(artifact).name + ".yaml")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def vouched_bytes(path: Path, manifest: Manifest) -> bytes:
    """The model file's bytes, when their sha256 is the manifest's (for a backend that loads the very
    bytes it checked, rather than the file again after :func:`load_manifest` hashed it); InputError
    naming the file when it changed after the manifest was checked (a re-export or copy while the
    runtime started)."""
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if manifest.sha256 and actual != manifest.sha256:
        raise InputError(
            f"{path}: sha256 {actual[:SHA_SHOWN]}… is not its manifest's ({manifest.sha256[:SHA_SHOWN]}…): "
            "the file changed after its manifest was read; start again once the copy or export is done"
        )
    return data


def load_manifest(artifact_or_yaml: str | Path, verify_hash: bool = True) -> Manifest:
    """Load the manifest of an artifact (or a manifest YAML path) and check it matches: beside an
    artifact (its path given, or a YAML path whose artifact exists) by :func:`check_artifact`;
    ``verify_hash`` (an artifact path only) also compares the sha256 of the file's bytes."""
    path = Path(artifact_or_yaml)
    by_yaml = path.suffix in (".yaml", ".yml")
    yaml_path = path if by_yaml else manifest_path(path)
    data = read_yaml_mapping(yaml_path, "model manifest (every model file needs one beside it)")
    manifest = Manifest.from_dict(data, origin=str(yaml_path))
    artifact = path.with_suffix("") if by_yaml else path
    if not by_yaml or artifact.is_file():
        check_artifact(manifest, artifact, yaml_path)
    if verify_hash and not by_yaml:
        if not path.is_file():
            raise InputError(f"{path}: model file not found")
        check_sha256(manifest, path, sha256_file(path))
    return manifest


def check_sha256(manifest: Manifest, path: Path, actual: str) -> None:
    """ConfigError naming ``path`` and its manifest when ``actual`` (the sha256 of the file's bytes,
    hashed by the caller) is not the manifest's: the file and manifest are from different exports."""
    if actual != manifest.sha256:
        raise ConfigError(
            f"{path}: sha256 {actual[:SHA_SHOWN]}… does not match its manifest {manifest_path(path).name} "
            f"({manifest.sha256[:SHA_SHOWN]}…); the file and manifest are from different exports"
        )


def check_artifact(manifest: Manifest, artifact: Path, yaml_path: Path) -> None:
    """ConfigError naming the key when the manifest cannot vouch for ``artifact``: with no ``sha256``
    any file copied over it would be served; ``file``/``format`` of another file is a mix-up."""
    if not manifest.sha256.strip():
        raise ConfigError(f"{yaml_path}: missing manifest key 'sha256' (the hash of {artifact.name})")
    # the resolved name too: a link (current.onnx -> v3.onnx) serves the file its manifest names
    if manifest.file and manifest.file not in (artifact.name, artifact.resolve().name):
        raise ConfigError(f"{yaml_path}: manifest key 'file' is {manifest.file!r}, not {artifact.name!r}")
    expected = FORMAT_BY_SUFFIX.get(artifact.suffix.lower())
    if expected is not None and manifest.format != expected:
        raise ConfigError(f"{yaml_path}: manifest key 'format' is {manifest.format!r}, not {expected!r}")


def save_manifest(
    manifest: Manifest, artifact: str | Path, sha256: str | None = None, durable: bool = False
) -> Path:
    """Write ``<artifact>.yaml`` with its name and sha256 (atomically; ``durable``: fsynced). ``sha256``
    of the bytes the caller wrote, if given, rather than re-read from disk; InputError when the
    artifact does not exist (a manifest vouches for real bytes, never for "")."""
    artifact = Path(artifact)
    if not artifact.is_file():
        raise InputError(f"{artifact}: no such model file; its manifest is written only beside it")
    manifest.file = artifact.name
    manifest.sha256 = sha256 or sha256_file(artifact)
    text = yaml.safe_dump(manifest.to_dict(), sort_keys=False)
    return atomic_write_bytes(manifest_path(artifact), text.encode(), durable=durable)


DEFAULT_CLASSES = [
    ClassInfo(0, "tissue", [0, 0, 0]),
    ClassInfo(1, CANCER_CLASS, [255, 40, 40]),
]
