"""The training config as typed structs: every key's type, range and default, checked before any use.

Sections ``model``, ``data``, ``augment``, ``train``, ``eval`` plus a top-level ``name``. The field
defaults here are the only training defaults (``configs/*.yaml`` are recipes that override some;
a test loads each). A bad value is a one-line ``ConfigError`` naming the file and the key, e.g.
``config key 'train.epochs' must be an integer >= 1 and <= 100000, got 'abc'``: it never reaches
``int()`` deep inside training as a traceback.
"""

# no `from __future__ import annotations`: the annotations are the checked types, read as objects
import argparse
from typing import Any, Literal

from edge_runtime import cli_args
from edge_runtime.typed_config import Rule, Section, described, number
from edge_runtime.typed_struct import field

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
SCHEDULES = ("poly", "cosine")
MIN_INPUT_SIDE = 16
MAX_INPUT_SIDE = 8192  # beyond any ultrasound frame; stops a typo allocating gigabytes
MAX_EPOCHS = 100_000
# Tissue and cancer: the dataset's labels, the masks, the manifest's classes and the overlay are
# binary end to end, so a model with more outputs would train but be refused by evaluate and export.
NUM_CLASSES = 2
MAX_WIDTH = 1024
MAX_WORKERS = 256
MAX_BATCH = 65536
MAX_SEED = 2**32 - 1
MAX_ROTATION_DEG = 180.0
RANGE_ENDS = 2
# Smallest data.std: the input is divided by it in float32; below this a uint8 image's
# normalised values overflow or (1e-300 rounds to 0) divide by zero, and every loss is NaN.
MIN_STD = 1.0e-6
# Largest learning rate (train.lr, pretrain --lr). The recipes use 3e-4 (fine-tuning) to 0.02 (SGD on
# 8 GPUs), published segmentation recipes stay below 0.1; a value over 1 is a typo or a unit slip, and
# beyond float32's range (3.4e38) torch refuses it with a traceback after the data has been loaded.
MAX_LR = 1.0
# Largest train.aux_lr_mult (the auxiliary head's lr over train.lr): torchvision's segmentation
# reference uses 10; beyond 100 is a typo, and the head's updates diverge as an lr over MAX_LR would.
MAX_LR_MULT = 100.0


def lr_argument(text: str) -> float:
    """argparse type of ``pretrain --lr``: a learning rate a config's ``train.lr`` would take."""
    value = cli_args.positive_float(text)
    if value > MAX_LR:
        raise argparse.ArgumentTypeError(f"must be a learning rate > 0 and <= {MAX_LR:g}, got {text}")
    return value


def integer(lo: int, hi: int | None = None) -> Any:
    want = f"an integer >= {lo}" + ("" if hi is None else f" and <= {hi}")
    return number(want, integer=True, ge=lo, **({} if hi is None else {"le": hi}))


def real(lo: float, hi: float | None = None, open_lo: bool = False) -> Any:
    want = f"a number {'>' if open_lo else '>='} {lo}" + ("" if hi is None else f" and <= {hi}")
    low = {"gt": lo} if open_lo else {"ge": lo}
    return number(want, **low, **({} if hi is None else {"le": hi}))


def choice(options: tuple) -> Any:
    return described(Literal[options], f"one of {list(options)}")


def real_or_auto(lo: float, open_lo: bool) -> Any:
    want = f"a number {'>' if open_lo else '>='} {lo} or 'auto'"
    low = {"gt": lo} if open_lo else {"ge": lo}
    return described(number(want, **low) | Literal["auto"], want)


def pair(lo: float) -> Any:
    """A range [low, high] of numbers >= lo with low <= high."""
    bound = number("", ge=lo)
    return described(
        list[bound],
        f"a range [low, high] of numbers >= {lo} with low <= high",
        Rule(lambda v: len(v) == RANGE_ENDS and v[0] <= v[1]),
    )


FLAG = described(bool, "true or false")
PROB = real(0.0, 1.0)


class ModelConfig(Section):
    arch: choice(ARCH_NAMES) = "lraspp_mobilenet_v3_large"
    num_classes: number(
        f"{NUM_CLASSES} (tissue and cancer: labels, masks and manifests are binary)",
        integer=True,
        ge=NUM_CLASSES,
        le=NUM_CLASSES,
    ) = NUM_CLASSES
    aux: FLAG = False
    pretrained_backbone: FLAG = False  # True: torchvision downloads ImageNet weights (needs network)
    width: described(  # base channel count of the 'unet_*' archs (ignored by torchvision archs)
        number("", integer=True, ge=1, le=MAX_WIDTH) | None, f"an integer in [1, {MAX_WIDTH}] or null"
    ) = 16


class DataConfig(Section):
    input_height: integer(MIN_INPUT_SIDE, MAX_INPUT_SIDE) = 256
    input_width: integer(MIN_INPUT_SIDE, MAX_INPUT_SIDE) = 256
    # shorthand: N (square) or [height, width]; replaces the two above when loading
    input_size: described(int | list[int] | None, "an integer or [height, width]") = None
    mean: real_or_auto(0.0, open_lo=False) = 0.5  # after scaling uint8 to [0, 1]; auto: train split's
    std: real_or_auto(MIN_STD, open_lo=False) = 0.25
    num_workers: integer(0, MAX_WORKERS) = 0


class AugmentConfig(Section):
    enabled: FLAG = True
    hflip: PROB = 0.5
    vflip: PROB = 0.0  # probes are not flipped top/bottom: skin line is always at the top
    rotate_deg: real(0.0, MAX_ROTATION_DEG) = 10.0
    scale: pair(0.01) = field(default_factory=lambda: [0.85, 1.2])
    translate: real(0.0, 1.0) = 0.08  # fraction of the output size
    gain: pair(0.0) = field(default_factory=lambda: [0.75, 1.3])
    contrast: pair(0.0) = field(default_factory=lambda: [0.75, 1.3])
    gamma: pair(0.01) = field(default_factory=lambda: [0.75, 1.35])
    speckle_sigma: real(0.0) = 0.12  # multiplicative noise std (speckle-like)
    speckle_p: PROB = 0.5
    blur_sigma: pair(0.0) = field(default_factory=lambda: [0.0, 1.2])
    blur_p: PROB = 0.3


class TrainConfig(Section):
    epochs: integer(1, MAX_EPOCHS) = 40
    batch_size: integer(1, MAX_BATCH) = 8
    optimizer: choice(OPTIMIZERS) = "adamw"
    lr: real(0.0, MAX_LR, open_lo=True) = 1.0e-3
    momentum: real(0.0, 1.0) = 0.9
    weight_decay: real(0.0) = 1.0e-4
    warmup_iters: integer(0) = 50
    poly_power: real(0.0) = 0.9
    loss: choice(LOSSES) = "ce_dice"
    class_weights: described(
        list[number("", ge=0)],
        "a list of numbers >= 0, one per class, not all 0",
        # all zero: every pixel weighs 0 and the weighted mean is 0/0, a NaN loss
        Rule(lambda v: bool(v) and sum(v) > 0),
    ) = field(default_factory=lambda: [1.0, 1.0])
    dice_weight: real(0.0) = 1.0
    focal_gamma: real(0.0) = 2.0  # focal_dice only: (1 - p_true)^gamma down-weights easy pixels
    image_weight: real(0.0) = 0.0  # image-level "contains cancer" loss weight (0: off), training.losses
    image_topk: real(0.0, 1.0, open_lo=True) = 0.002  # fraction of pixels whose mean margin scores an image
    schedule: choice(SCHEDULES) = "poly"  # poly | cosine (`cycles` warm restarts over the budget)
    cycles: integer(1, MAX_EPOCHS) = 1
    aux_weight: real(0.0) = 0.5
    aux_lr_mult: real(0.0, MAX_LR_MULT, open_lo=True) = 10.0
    grad_clip: real(0.0) = 1.0  # max global grad norm; 0 disables
    ema_decay: number("a number >= 0 and < 1", ge=0.0, lt=1.0) = 0.0  # weight average, training.ema (0: off)
    amp: FLAG = True  # CUDA: float16 autocast + GradScaler
    # CPU: bfloat16 autocast; auto = on only where the CPU has native bf16
    amp_cpu_bf16: described(bool | Literal["auto"], "true, false or 'auto'") = False
    channels_last: FLAG = True  # only used on CUDA
    seed: integer(0, MAX_SEED) = 0
    select_metric: choice(SELECT_METRICS) = "dice_pos_mean"
    val_every: integer(1) = 1


class EvalConfig(Section):
    threshold: number("a number in (0, 1)", gt=0.0, lt=1.0) = 0.5


class TrainingConfig(Section):
    name: described(str, "a non-empty text", Rule(lambda v: bool(v.strip()))) = "sonomap-model"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
