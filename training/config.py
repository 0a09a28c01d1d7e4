"""Training config: a YAML file with sections ``model``, ``data``, ``augment``, ``train``, ``eval``.

Input: a YAML path. Output: a :class:`TrainingConfig` (training/config_schema.py) with every key
filled from its defaults, read as attributes (``cfg.train.epochs``). Unknown sections or keys and
bad values raise :class:`ConfigError` naming the file and the key, so a typo never silently falls
back to a default.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import yaml

from edge_runtime.errors import ConfigError
from edge_runtime.typed_config import Wording, as_dict, convert, leaf_types, section_types, shown
from edge_runtime.typed_struct import fields
from edge_runtime.yamlfile import read_yaml_mapping
from training.config_schema import TrainingConfig

# YAML 1.1 (PyYAML) reads 1e-3 as text: it wants a dot (1.0e-3). Such text is taken as the number.
SCIENTIFIC = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")
HEIGHT_WIDTH = 2


class TrainingWording(Wording):
    """The training config's message shapes."""

    def unknown(self, origin: str, key: str, known: list[str]) -> str:
        return f"{origin}: unknown key '{key}' (known: {', '.join(known)})"

    def not_mapping(self, origin: str, key: str, value: Any) -> str:
        return f"{origin}: config key '{key}' must be a mapping, got {shown(value)}"


WORDING = TrainingWording()


def _scientific(value):
    if isinstance(value, str) and SCIENTIFIC.fullmatch(value.strip()):
        return float(value)
    if isinstance(value, list):
        return [_scientific(v) for v in value]
    return value


def _numbers_from_text(data: dict) -> dict:
    """Scientific-notation text (``lr: 1e-3``) in the number fields becomes the number."""
    out = dict(data)
    for section, struct in ((None, TrainingConfig), *section_types(TrainingConfig).items()):
        node = out if section is None else out.get(section)
        if not isinstance(node, dict):
            continue
        node = dict(node)
        for info in fields(struct):
            if info.name in node and float in leaf_types(info.type):
                node[info.name] = _scientific(node[info.name])
        if section is None:
            out.update(node)  # the top level comes first, before any section is replaced
        else:
            out[section] = node
    return out


def _apply_input_size(cfg: TrainingConfig, origin: str) -> None:
    size = cfg.data.input_size
    if size is None:
        return
    hw = [size, size] if isinstance(size, int) else list(size)
    if len(hw) != HEIGHT_WIDTH:
        raise ConfigError(
            f"{origin}: config key 'data.input_size' must be an integer or [height, width], got {size!r}"
        )
    cfg.data.input_height, cfg.data.input_width = hw
    cfg.data.input_size = None


def validate(data: dict, origin: str) -> TrainingConfig:
    """A mapping -> a checked :class:`TrainingConfig` (``data.input_size`` resolved)."""
    data = _numbers_from_text(data)
    cfg = convert(data, TrainingConfig, origin, WORDING)
    if cfg.data.input_size is not None:
        _apply_input_size(cfg, origin)
        cfg = convert(as_dict(cfg), TrainingConfig, origin, WORDING)
    weights, classes = cfg.train.class_weights, cfg.model.num_classes
    if len(weights) != classes:
        raise ConfigError(
            f"{origin}: config key 'train.class_weights' must have one weight per class "
            f"(model.num_classes = {classes}), got {len(weights)}"
        )
    return cfg


def load_config(path: str | Path) -> TrainingConfig:
    """YAML file -> full config (defaults filled, unknown keys rejected). An empty file is refused: a
    copy cut short would otherwise train the defaults' model silently (``{}`` asks for them)."""
    data = read_yaml_mapping(path, "config file")
    return validate(data, str(path))


def effective_dict(cfg: TrainingConfig) -> dict[str, Any]:
    """The config as plain data (checkpoints, hashes): every key, ``data.input_size`` resolved away."""
    out = as_dict(cfg)
    out["data"].pop("input_size", None)
    return out


CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of native bfloat16 arithmetic
CPUINFO = Path("/proc/cpuinfo")


def cpu_has_native_bf16() -> bool:
    """True on x86 CPUs with AVX512-BF16 or AMX: there bf16 autocast is faster than fp32;
    elsewhere it is emulated and slower, so ``amp_cpu_bf16: auto`` stays in fp32."""
    try:
        flags = CPUINFO.read_text()
    except OSError:
        return False
    return any(flag in flags for flag in CPU_BF16_FLAGS)


def use_cpu_bf16(setting) -> bool:
    """Resolve ``train.amp_cpu_bf16`` (true | false | auto) for this machine."""
    return cpu_has_native_bf16() if setting == "auto" else bool(setting)


def config_hash(cfg: TrainingConfig) -> str:
    """Stable sha256 of the effective config (for the manifest's ``source``)."""
    return hashlib.sha256(yaml.safe_dump(effective_dict(cfg), sort_keys=True).encode()).hexdigest()


def model_config(cfg: TrainingConfig) -> dict:
    """The ``model_config`` a checkpoint stores: what :func:`training.models.build_from_config` rebuilds."""
    mc = cfg.model
    return {"arch": mc.arch, "num_classes": int(mc.num_classes), "aux": bool(mc.aux), "width": mc.width}
