"""Training config: a YAML file with sections ``model``, ``data``, ``augment``, ``train``, ``eval``.

Input: a YAML path. Output: a nested dict with every key filled from :data:`DEFAULTS`.
Unknown sections or keys raise :class:`ConfigError` naming the file and the key, so a
typo never silently falls back to a default.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import yaml

from edge_runtime.errors import ConfigError
from edge_runtime.yamlfile import read_yaml_mapping
from training.config_schema import check_values

DEFAULTS: dict[str, Any] = {
    "name": "sonomap-model",
    "model": {
        "arch": "lraspp_mobilenet_v3_large",
        "num_classes": 2,
        "aux": False,
        "pretrained_backbone": False,  # True: torchvision downloads ImageNet weights (needs network)
        "width": 16,  # base channel count of the 'unet_*' archs (ignored by torchvision archs)
    },
    "data": {
        "input_height": 256,
        "input_width": 256,
        "input_size": None,  # shorthand: N (square) or [height, width]; overrides the two above
        "mean": 0.5,  # after scaling uint8 to [0, 1]; "auto" = measured on the train split
        "std": 0.25,
        "num_workers": 0,
    },
    "augment": {
        "enabled": True,
        "hflip": 0.5,
        "vflip": 0.0,  # probes are not flipped top/bottom: skin line is always at the top
        "rotate_deg": 10.0,
        "scale": [0.85, 1.2],
        "translate": 0.08,  # fraction of the output size
        "gain": [0.75, 1.3],
        "contrast": [0.75, 1.3],
        "gamma": [0.75, 1.35],
        "speckle_sigma": 0.12,  # multiplicative noise std (speckle-like)
        "speckle_p": 0.5,
        "blur_sigma": [0.0, 1.2],
        "blur_p": 0.3,
    },
    "train": {
        "epochs": 40,
        "batch_size": 8,
        "optimizer": "adamw",  # adamw | sgd
        "lr": 1.0e-3,
        "momentum": 0.9,
        "weight_decay": 1.0e-4,
        "warmup_iters": 50,
        "poly_power": 0.9,
        "loss": "ce_dice",  # ce | weighted_ce | ce_dice | focal_dice
        "class_weights": [1.0, 1.0],
        "dice_weight": 1.0,
        "focal_gamma": 2.0,  # focal_dice only: (1 - p_true)^gamma down-weights easy pixels
        "aux_weight": 0.5,
        "aux_lr_mult": 10.0,
        "grad_clip": 1.0,  # max global grad norm; 0 disables
        "amp": True,  # CUDA: float16 autocast + GradScaler
        "amp_cpu_bf16": False,  # CPU: bfloat16 autocast; true | false | auto (on only where the CPU has native bf16)
        "channels_last": True,  # only used on CUDA
        "seed": 0,
        "select_metric": "dice_pos_mean",  # dice_pos_mean | dice_pooled | dice_mean
        "val_every": 1,
    },
    "eval": {
        "threshold": 0.5,
    },
}


def _merge(base: dict, override: dict, origin: str, prefix: str = "") -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        where = f"{prefix}{key}"
        if key not in base:
            raise ConfigError(f"{origin}: unknown key '{where}' (known: {', '.join(sorted(base))})")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{origin}: config key '{where}' must be a mapping, got {value!r}")
            out[key] = _merge(base[key], value, origin, where + ".")
        else:
            out[key] = value
    return out


def _apply_input_size(data: dict, origin: str) -> None:
    size = data.pop("input_size", None)
    if size is None:
        return
    hw = [size, size] if isinstance(size, int) else list(size) if isinstance(size, (list, tuple)) else []
    if len(hw) != 2 or not all(isinstance(v, int) for v in hw):
        raise ConfigError(
            f"{origin}: config key 'data.input_size' must be an integer or [height, width], got {size!r}"
        )
    data["input_height"], data["input_width"] = hw


def validate(cfg: dict, origin: str) -> dict:
    """Check every value's type and range (resolving ``data.input_size``); returns ``cfg``."""
    _apply_input_size(cfg["data"], origin)
    check_values(cfg, origin)
    return cfg


def load_config(path: str | Path) -> dict:
    """YAML file -> full config dict (defaults filled, unknown keys rejected)."""
    data = read_yaml_mapping(path, "config file", allow_empty=True)
    return validate(_merge(DEFAULTS, data, str(path)), str(path))


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


def config_hash(cfg: dict) -> str:
    """Stable sha256 of the effective config (for the manifest's ``source``)."""
    return hashlib.sha256(yaml.safe_dump(cfg, sort_keys=True).encode()).hexdigest()
