"""Runtime config: one YAML section per pipeline stage, keys equal to stage names.

Input: a YAML path (or a mapping). Output: a :class:`RuntimeConfig` (edge_runtime/config_schema.py:
sections ``source``, ``roi``, ``inference``, ``overlay``, ``sinks``, ``live``, ``privacy``, read as
attributes, ``config.overlay.alpha``). Unknown sections or keys and bad values raise one-line
:class:`ConfigError` naming the file and the key. CLI flags override file values (``merge``).
``edge_runtime/configs/default.yaml`` documents every key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge_runtime.config_schema import (
    LIVE_MODES,
    SECTIONS,
    RuntimeConfig,
    check_cancer_visible,
    check_study_id_pattern,
)
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.typed_config import Wording, as_dict, convert, shown
from edge_runtime.units import MS_PER_S
from edge_runtime.yamlfile import read_yaml_mapping

DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "default" / "model.onnx"
COMMAND_LINE = "command line"  # the origin named in errors about a flag's value
MAX_MESSAGE_CHARS = 300  # a fuzzed value can be huge: the one-line error stays readable
__all__ = [
    "LIVE_MODES",
    "RuntimeConfig",
    "build_config",
    "load_config",
    "load_with_overrides",
    "merge",
    "resolve_model",
]


class RuntimeWording(Wording):
    """The runtime config's message shapes (sections are pipeline stages)."""

    def bad_value(self, origin: str, key: str, want: str, value: Any) -> str:
        return f"{origin}: config key '{key}' must be {want}, got {value!r}"[:MAX_MESSAGE_CHARS]

    def unknown(self, origin: str, key: str, known: list[str]) -> str:
        if "." not in key:
            return f"{origin}: unknown config section {key!r} (stages: {', '.join(SECTIONS)})"
        return super().unknown(origin, key, known)

    def not_mapping(self, origin: str, key: str, value: Any) -> str:
        return f"{origin}: config section {key!r} must be a mapping, got {shown(value)}"


WORDING = RuntimeWording()


def build_config(data: dict | None = None, origin: str = "<config>") -> RuntimeConfig:
    """Defaults + ``data`` (section -> keys), validated: a :class:`RuntimeConfig`."""
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: a runtime config must be a YAML mapping of stage sections")
    data = {
        section: values for section, values in data.items() if values is not None
    }  # `overlay:` = defaults
    config = convert(data, RuntimeConfig, origin, WORDING)
    check_cancer_visible(config.overlay, origin)
    check_study_id_pattern(config.privacy, origin)
    inference = config.inference
    if (
        inference.stall_restart_s is not None
        and inference.stall_restart_s * MS_PER_S <= inference.deadline_ms
    ):
        raise ConfigError(
            f"{origin}: config key 'inference.stall_restart_s' ({inference.stall_restart_s} s) must "
            f"be longer than inference.deadline_ms ({inference.deadline_ms} ms)"
        )
    return config


def load_config(path: str | Path | None) -> RuntimeConfig:
    if path is None:
        return build_config()
    path = Path(path)
    data = read_yaml_mapping(path, "config file", allow_empty=True)
    return build_config(data, str(path))


def merge(
    config: RuntimeConfig, overrides: dict[str, dict[str, Any]], origin: str = COMMAND_LINE
) -> RuntimeConfig:
    """Apply CLI overrides (None values are ignored); returns a new config, validated as a whole
    exactly as a file is, so a flag can no more set a bad value than a YAML key can. A bad value is
    a one-line ConfigError naming ``origin`` and the config key."""
    data = as_dict(config)  # plain builtins: the caller's config stays as it was
    for section, values in overrides.items():
        changes = {key: value for key, value in values.items() if value is not None}
        for key in changes:
            if key not in type(getattr(config, section)).__struct_fields__:
                raise ConfigError(f"{origin}: config key '{section}.{key}' is unknown")
        data[section].update(changes)
    return build_config(data, origin)


def load_with_overrides(path: str | Path | None, overrides: dict[str, dict[str, Any]]) -> RuntimeConfig:
    """The config file at ``path`` (None: the defaults) with the command line's ``overrides`` merged
    over it (:func:`merge`). A run starts from it, and a reload (SIGHUP) re-reads the file with the
    same overrides, so a flag keeps its value and the reload changes only what the file changed."""
    return merge(load_config(path), overrides)


def resolve_model(config: RuntimeConfig) -> Path:
    model = config.inference.model
    if model is None:
        if DEFAULT_MODEL.is_file():
            return DEFAULT_MODEL
        raise ConfigError(f"no --model given and the shipped default {DEFAULT_MODEL} is missing")
    path = Path(model)
    if not path.is_file():
        raise InputError(f"{path}: model file not found")
    return path
