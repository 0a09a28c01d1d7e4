"""Model builders shared by training and export.

Every model takes the output of :func:`edge_runtime.preprocess.preprocess` batched,
i.e. float32 ``[N, 1, H, W]``, and returns logits ``[N, C, H, W]`` (``C`` classes) in
eval mode. In train mode with ``aux=True`` it returns ``{"out": ..., "aux": ...}``.
Grayscale is repeated to 3 channels inside the model, so ImageNet backbone weights
load unchanged.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from edge_runtime.errors import ConfigError
from training.unet import unet_small

# Architectures a config may name. Values: (builder, supports aux head); a builder named by a string
# is that function of torchvision.models.segmentation.
ARCHS = {
    "fcn_resnet101": ("fcn_resnet101", True),
    "fcn_resnet50": ("fcn_resnet50", True),
    "deeplabv3_resnet101": ("deeplabv3_resnet101", True),
    "deeplabv3_resnet50": ("deeplabv3_resnet50", True),
    "deeplabv3_mobilenet_v3_large": ("deeplabv3_mobilenet_v3_large", True),
    "lraspp_mobilenet_v3_large": ("lraspp_mobilenet_v3_large", False),
    "unet_small": (unet_small, True),  # the fast CPU profile (training/unet.py); aux: deep supervision
}
# Archs whose builder takes a ``width`` (base channel count) argument.
WIDTH_ARCHS = ("unet_small",)
RGB_CHANNELS = 3
SHOWN_MISSING = 3  # backbone tensor names quoted when --backbone-weights lacks some
BATCH_COUNTER = "num_batches_tracked"  # a BatchNorm buffer that ImageNet files may leave out


class GraySegmenter(nn.Module):
    """Wrap a torchvision segmentation model: gray in, logits tensor out."""

    def __init__(self, net: nn.Module, aux: bool):
        super().__init__()
        self.net = net
        self.aux = aux

    def forward(self, x: torch.Tensor):
        # ImageNet-style backbones want 3 channels; models declaring in_channels=1 take gray as is.
        if getattr(self.net, "in_channels", RGB_CHANNELS) == RGB_CHANNELS:
            x = x.expand(-1, RGB_CHANNELS, -1, -1)
        out = self.net(x)
        if self.training and self.aux and "aux" in out:
            return {"out": out["out"], "aux": out["aux"]}
        return out["out"]


def build_model(
    arch: str,
    num_classes: int,
    aux: bool = False,
    backbone_weights: str | Path | None = None,
    pretrained_backbone: bool = False,
    width: int | None = None,
) -> GraySegmenter:
    """Build ``arch`` with ``num_classes`` outputs.

    ``backbone_weights`` is a local state-dict file for the backbone (e.g. a ResNet-101
    ImageNet checkpoint); ``pretrained_backbone`` asks torchvision to download ImageNet
    weights (needs network). Neither: random init (``weights=None``). ``width`` sets the
    base channel count of :data:`WIDTH_ARCHS` (ignored by the others).
    """
    if arch not in ARCHS:
        raise ConfigError(f"model 'arch' {arch!r} is not one of {sorted(ARCHS)}")
    builder, has_aux = ARCHS[arch]
    if isinstance(builder, str):
        # deferred: torchvision's import pulls in torch._dynamo (1.5-3 s a process), which every
        # command that only loads, evaluates or exports a unet_small model would pay for nothing
        from torchvision.models import segmentation

        builder = getattr(segmentation, builder)
    kwargs = {"weights": None, "num_classes": num_classes}
    if has_aux:
        kwargs["aux_loss"] = aux
    elif aux:
        raise ConfigError(f"model 'aux' is not available for {arch}")
    if pretrained_backbone:
        kwargs["weights_backbone"] = "DEFAULT"
    else:
        kwargs["weights_backbone"] = None
    if arch in WIDTH_ARCHS:
        if pretrained_backbone:
            raise ConfigError(
                f"model 'pretrained_backbone' is not available for {arch} (no ImageNet weights)"
            )
        kwargs.pop("weights_backbone")
        if width is not None:
            kwargs["width"] = int(width)
    net = builder(**kwargs)
    if backbone_weights:
        if arch in WIDTH_ARCHS:
            raise ConfigError(f"--backbone-weights: {arch} has no separate backbone")
        _load_backbone(net, Path(backbone_weights))
    return GraySegmenter(net, aux=aux)


class LogitEnsemble(nn.Module):
    """Several networks of one input contract as one: the mean of their logits.

    Averaging logits (not probabilities) keeps the output a logit, so temperature, calibration
    curve and threshold fold on top exactly as for a single network, and the export is one graph."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(x) for member in self.members]).mean(dim=0)


ENSEMBLE_ARCH = "ensemble"


def build_from_config(cfg: dict) -> nn.Module:
    """A checkpoint's ``model_config`` -> the untrained module it describes (a single network, or
    an :class:`LogitEnsemble` whose ``members`` are model configs themselves)."""
    if cfg["arch"] == ENSEMBLE_ARCH:
        return LogitEnsemble([build_from_config(member) for member in cfg["members"]])
    return build_model(cfg["arch"], cfg["num_classes"], aux=cfg.get("aux", False), width=cfg.get("width"))


def _load_backbone(net: nn.Module, path: Path) -> None:
    """Load the state-dict file ``path`` into ``net.backbone``. ConfigError naming the file when torch
    cannot read it, it holds no tensors, or they leave any backbone weight out: a run would otherwise
    train part of its backbone from random weights without a word."""
    if not path.is_file():
        raise ConfigError(f"--backbone-weights {path}: file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    # torch raises many types for a bad file (UnpicklingError, RuntimeError, EOFError, ...)
    except Exception as exc:
        raise ConfigError(
            f"--backbone-weights {path}: not a readable torch state dict ({_first_line(exc)})"
        ) from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(
            f"--backbone-weights {path}: holds a {type(state).__name__}, not a state dict of tensors"
        )
    # Classification checkpoints carry an 'fc'/'classifier' head the backbone lacks.
    try:
        missing, unexpected = net.backbone.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a matching name with another shape (a different backbone)
        raise ConfigError(
            f"--backbone-weights {path}: does not fit the {type(net).__name__} backbone ({_first_line(exc)})"
        ) from None
    loaded = len(state) - len(unexpected)
    if loaded == 0:
        raise ConfigError(f"--backbone-weights {path}: no tensor matches the {type(net).__name__} backbone")
    # A file for a smaller backbone of the family (ResNet-50 for a ResNet-101) matches part of it by
    # name and shape; the rest would silently train from random weights. A batch counter is no weight.
    not_loaded = set(missing)
    weights = [k for k in net.backbone.state_dict() if not k.endswith(BATCH_COUNTER)]
    absent = [k for k in weights if k in not_loaded]
    if absent:
        raise ConfigError(
            f"--backbone-weights {path}: does not fit the {type(net).__name__} backbone: lacks {len(absent)} "
            f"of its {len(weights)} tensors (e.g. {', '.join(map(repr, absent[:SHOWN_MISSING]))})"
        )


def _first_line(exc: Exception) -> str:
    """``Type: first line`` of an exception: torch's messages run over many lines."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
