"""Runtime config: one YAML section per pipeline stage, keys equal to stage names.

Sections: ``source``, ``roi``, ``inference``, ``overlay``, ``sinks``, ``live``, ``privacy``. Unknown
sections or keys raise :class:`ConfigError` naming them. CLI flags override file values
(``merge``). ``edge_runtime/configs/default.yaml`` documents every key.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from edge_runtime.config_schema import check_values
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.units import MS_PER_S
from edge_runtime.yamlfile import read_yaml_mapping

DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "default" / "model.onnx"

DEFAULTS: dict[str, dict[str, Any]] = {
    "source": {
        "input": None,
        "loop": False,
        "realtime": False,
        "fps": None,
        "width": None,
        "height": None,
        "fourcc": None,
        "image": None,
        "frames": None,
        "max_frames": None,
    },
    "roi": {"rect": "auto", "mm_per_pixel": None},
    "inference": {
        "model": None,
        "backend": "auto",
        "device": "auto",
        "threads": None,
        "fp16": True,
        "cuda_graphs": False,
        "input_size": None,
        "retry_after_s": 1.0,
        "retry_max_s": 30.0,
        "reload_after_errors": 3,
        "enabled": True,
        "deadline_ms": 1000.0,
        "stall_restart_s": 30.0,
    },
    "overlay": {
        "alpha": 0.4,
        "contour": True,
        "classes": {},
        "legend": True,
        "hud": True,
        "ema": 0.0,
        "threshold": None,
        "style": "mask",
    },
    "sinks": {
        "video": None,
        "raw": None,
        "masks": None,
        "window": False,
        "fullscreen": False,
        "preset": "ultrafast",
        "summary": None,
        "fps": None,
        "min_free_gb": 1.0,
        "retention_days": None,
    },
    "live": {"mode": "latest", "stale_ms": 500.0, "fade_ms": 300.0, "duration_s": None},
    "privacy": {"deidentify": True, "blank": [], "keep": []},  # see edge_runtime/pipeline/deidentify.py
}
LIVE_MODES = ("latest", "strict")


def _check(section: str, values: Any) -> dict:
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"config section {section!r} must be a mapping")
    unknown = set(values) - set(DEFAULTS[section])
    if unknown:
        raise ConfigError(
            f"config key '{section}.{sorted(unknown)[0]}' is unknown "
            f"(known: {', '.join(sorted(DEFAULTS[section]))})"
        )
    return values


def build_config(data: dict | None = None, origin: str = "<config>") -> dict:
    """Defaults + ``data`` validated section by section."""
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: a runtime config must be a YAML mapping of stage sections")
    unknown = set(data) - set(DEFAULTS)
    if unknown:
        raise ConfigError(
            f"{origin}: unknown config section {sorted(unknown)[0]!r} (stages: {', '.join(DEFAULTS)})"
        )
    config = copy.deepcopy(DEFAULTS)
    for section, values in data.items():
        config[section].update(_check(section, values))
    check_values(config, origin)  # value types/ranges (edge_runtime/config_schema.py)
    inference = config["inference"]
    if (
        inference["stall_restart_s"] is not None
        and inference["stall_restart_s"] * MS_PER_S <= inference["deadline_ms"]
    ):
        raise ConfigError(
            f"{origin}: config key 'inference.stall_restart_s' ({inference['stall_restart_s']} s) must "
            f"be longer than inference.deadline_ms ({inference['deadline_ms']} ms)"
        )
    if config["live"]["mode"] not in LIVE_MODES:
        raise ConfigError(f"{origin}: live.mode must be one of {LIVE_MODES}, got {config['live']['mode']!r}")
    return config


def load_config(path: str | Path | None) -> dict:
    if path is None:
        return build_config()
    path = Path(path)
    data = read_yaml_mapping(path, "config file", allow_empty=True)
    try:
        return build_config(data, str(path))
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from exc


def merge(config: dict, overrides: dict[str, dict[str, Any]]) -> dict:
    """Apply CLI overrides (None values are ignored)."""
    config = copy.deepcopy(config)
    for section, values in overrides.items():
        for key, value in values.items():
            if value is not None:
                if key not in DEFAULTS[section]:
                    raise ConfigError(f"config key '{section}.{key}' is unknown")
                config[section][key] = value
    return config


def resolve_model(config: dict) -> Path:
    model = config["inference"]["model"]
    if model is None:
        if DEFAULT_MODEL.is_file():
            return DEFAULT_MODEL
        raise ConfigError(f"no --model given and the shipped default {DEFAULT_MODEL} is missing")
    path = Path(model)
    if not path.is_file():
        raise InputError(f"{path}: model file not found")
    return path
