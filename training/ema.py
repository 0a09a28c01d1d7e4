"""An exponential moving average of the weights (``train.ema_decay``), validated and saved instead
of the raw weights.

Why: on a small set the validation score of the raw weights jumps from epoch to epoch at the
learning rates that generalise best, so the best epoch is partly luck. The average over the last
~1 / (1 - decay) steps is a smoother, usually better model (Polyak averaging; timm's ModelEmaV2).
Built on ``torch.optim.swa_utils.AveragedModel``; buffers (BatchNorm statistics) are averaged too,
so the averaged model needs no extra BatchNorm pass.
"""

from __future__ import annotations

from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def build_ema(model: nn.Module, decay: float) -> AveragedModel | None:
    """The averaged copy of ``model`` (``decay`` in (0, 1)), or None when ``decay`` is 0 (off)."""
    if decay <= 0:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
