"""Value rules of the training config: every key's type and range, checked before any use.

Input: the merged config dict (defaults filled) and its file name. Output: nothing, or a
``ConfigError`` naming the file and the key, e.g. ``config key 'train.epochs' must be an integer
>= 1, got 'abc'``: a bad value never reaches ``int()`` deep inside training as a traceback.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import NamedTuple

from edge_runtime.errors import ConfigError

ARCH_NAMES = (
    "fcn_resnet101",
    "fcn_resnet50",
    "deeplabv3_resnet101",
    "deeplabv3_resnet50",
    "deeplabv3_mobilenet_v3_large",
    "lraspp_mobilenet_v3_large",
    "unet_small",
)
SELECT_METRICS = ("dice_pos_mean", "dice_pooled", "dice_mean")
OPTIMIZERS = ("adamw", "sgd")
LOSSES = ("ce", "weighted_ce", "ce_dice", "focal_dice")
MIN_INPUT_SIDE = 16
MAX_INPUT_SIDE = 8192  # beyond any ultrasound frame; stops a typo allocating gigabytes
MAX_EPOCHS = 100_000
MAX_CLASSES = 256  # masks are uint8
SHOWN_CHARS = 60  # a bad value is quoted in the error up to this length
Check = Callable[[object], bool]
# YAML 1.1 (PyYAML) reads 1e-3 as text: it wants a dot (1.0e-3). Such text is taken as the number.
SCIENTIFIC = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


class Rule(NamedTuple):
    check: Check
    want: str
    numeric: bool = False  # scientific-notation text is read as a number first


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def integer(lo: int, hi: int | None = None) -> Rule:
    want = f"an integer >= {lo}" + ("" if hi is None else f" and <= {hi}")
    return Rule(lambda v: _is_int(v) and v >= lo and (hi is None or v <= hi), want)


def number(lo: float, hi: float | None = None, open_lo: bool = False) -> Rule:
    want = f"a number {'>' if open_lo else '>='} {lo}" + ("" if hi is None else f" and <= {hi}")
    return Rule(
        lambda v: _is_num(v) and (v > lo if open_lo else v >= lo) and (hi is None or v <= hi), want, True
    )


def choice(options: tuple) -> Rule:
    return Rule(lambda v: isinstance(v, (str, bool)) and v in options, f"one of {list(options)}")


def number_or_auto(lo: float, open_lo: bool) -> Rule:
    check, want, _ = number(lo, open_lo=open_lo)
    return Rule(lambda v: v == "auto" or check(v), f"{want} or 'auto'", True)


def pair(lo: float) -> Rule:
    return Rule(
        lambda v: (
            isinstance(v, list) and len(v) == 2 and all(_is_num(x) and x >= lo for x in v) and v[0] <= v[1]
        ),
        f"a range [low, high] of numbers >= {lo} with low <= high",
        True,
    )


BOOL = Rule(lambda v: isinstance(v, bool), "true or false")
PROB = number(0.0, 1.0)
NAME = Rule(lambda v: isinstance(v, str) and bool(v.strip()), "a non-empty text")

RULES: dict[str, Rule] = {
    "name": NAME,
    "model.arch": choice(ARCH_NAMES),
    "model.num_classes": integer(2, MAX_CLASSES),
    "model.aux": BOOL,
    "model.pretrained_backbone": BOOL,
    "model.width": Rule(
        lambda v: v is None or (_is_int(v) and 1 <= v <= 1024), "an integer in [1, 1024] or null"
    ),
    "data.input_height": integer(MIN_INPUT_SIDE, MAX_INPUT_SIDE),
    "data.input_width": integer(MIN_INPUT_SIDE, MAX_INPUT_SIDE),
    "data.mean": number_or_auto(0.0, open_lo=False),
    "data.std": number_or_auto(0.0, open_lo=True),
    "data.num_workers": integer(0, 256),
    "augment.enabled": BOOL,
    "augment.hflip": PROB,
    "augment.vflip": PROB,
    "augment.speckle_p": PROB,
    "augment.blur_p": PROB,
    "augment.rotate_deg": number(0.0, 180.0),
    "augment.scale": pair(0.01),
    "augment.gain": pair(0.0),
    "augment.contrast": pair(0.0),
    "augment.gamma": pair(0.01),
    "augment.blur_sigma": pair(0.0),
    "augment.translate": number(0.0, 1.0),
    "augment.speckle_sigma": number(0.0),
    "train.epochs": integer(1, MAX_EPOCHS),
    "train.batch_size": integer(1, 65536),
    "train.optimizer": choice(OPTIMIZERS),
    "train.lr": number(0.0, open_lo=True),
    "train.momentum": number(0.0, 1.0),
    "train.weight_decay": number(0.0),
    "train.warmup_iters": integer(0),
    "train.poly_power": number(0.0),
    "train.loss": choice(LOSSES),
    "train.class_weights": Rule(
        lambda v: isinstance(v, list) and bool(v) and all(_is_num(x) and x >= 0 for x in v),
        "a list of numbers >= 0, one per class",
        True,
    ),
    "train.dice_weight": number(0.0),
    "train.focal_gamma": number(0.0),
    "train.aux_weight": number(0.0),
    "train.aux_lr_mult": number(0.0, open_lo=True),
    "train.grad_clip": number(0.0),
    "train.amp": BOOL,
    "train.amp_cpu_bf16": Rule(lambda v: isinstance(v, bool) or v == "auto", "true, false or 'auto'"),
    "train.channels_last": BOOL,
    "train.seed": integer(0, 2**32 - 1),
    "train.select_metric": choice(SELECT_METRICS),
    "train.val_every": integer(1),
    "eval.threshold": Rule(lambda v: _is_num(v) and 0.0 < v < 1.0, "a number in (0, 1)", True),
}


def _scientific(value):
    if isinstance(value, str) and SCIENTIFIC.fullmatch(value.strip()):
        return float(value)
    if isinstance(value, list):
        return [_scientific(v) for v in value]
    return value


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "..."


def check_values(cfg: dict, origin: str) -> None:
    """Raise ConfigError for the first key whose value breaks its rule (file and key named).
    Numeric keys given as scientific-notation text (``1e-3``) are replaced by the number."""
    for key, (ok, want, numeric) in RULES.items():
        section, _, name = key.rpartition(".")
        node = cfg[section] if section else cfg
        if numeric:
            node[name] = _scientific(node[name])
        value = node[name]
        if not ok(value):
            raise ConfigError(f"{origin}: config key '{key}' must be {want}, got {_shown(value)}")
    weights, classes = cfg["train"]["class_weights"], cfg["model"]["num_classes"]
    if len(weights) != classes:
        raise ConfigError(
            f"{origin}: config key 'train.class_weights' must have one weight per class "
            f"(model.num_classes = {classes}), got {len(weights)}"
        )
