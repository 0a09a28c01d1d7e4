"""Segmentation losses with ``ignore_index`` 255 (unknown pixels never count).

- ``ce``: cross-entropy;
- ``weighted_ce``: cross-entropy with ``train.class_weights`` (class imbalance: cancer is rare);
- ``ce_dice``: weighted cross-entropy + ``dice_weight`` x soft Dice of the cancer class,
  pooled over the batch (a batch without cancer pixels still gets a false-positive penalty);
- ``focal_dice``: focal loss (Lin et al. 2017; ``focal_gamma``, class weights as alpha) +
  ``dice_weight`` x the same soft Dice: easy background pixels count less, hard boundary and
  look-alike pixels more (the usual remedy on small ultrasound sets).
Any kind adds ``image_weight`` x an image-level "contains cancer" term when that weight is > 0:
binary cross-entropy between the mean cancer-minus-tissue logit of each image's ``image_topk``
most suspicious pixels and whether the image has any cancer pixel. Pixel losses barely notice a
small false blob on a benign image; this term is as large for that blob as for a missed lesion.
Aux head (FCN/DeepLabV3 ``aux=True``): total = loss(out) + ``aux_weight`` x loss(aux), as in
torchvision's reference recipe.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.config_schema import TrainConfig
from training.data import CANCER, IGNORE_INDEX

DICE_SMOOTH = 1.0  # keeps the soft Dice finite and smooth on batches without cancer
LOGIT_FLOOR = 50.0  # ignored pixels are masked to the float minimum; never let them reach the mean


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, cls: int = CANCER) -> torch.Tensor:
    prob = logits.float().softmax(dim=1)[:, cls]
    valid = (target != IGNORE_INDEX).float()
    truth = (target == cls).float()
    inter = (prob * truth * valid).sum()
    denom = (prob * valid).sum() + truth.sum()
    return 1.0 - (2.0 * inter + DICE_SMOOTH) / (denom + DICE_SMOOTH)


def image_presence_loss(logits: torch.Tensor, target: torch.Tensor, topk: float) -> torch.Tensor:
    """BCE of each image's top-``topk`` (fraction of pixels) mean cancer logit margin vs "has cancer"."""
    margin = (logits[:, CANCER] - logits[:, 1 - CANCER]).float().flatten(1)
    valid = (target != IGNORE_INDEX).flatten(1)
    margin = margin.masked_fill(~valid, torch.finfo(margin.dtype).min)
    k = max(1, int(round(topk * margin.shape[1])))
    score = margin.topk(k, dim=1).values.clamp(min=-LOGIT_FLOOR).mean(dim=1)
    present = (target == CANCER).flatten(1).any(dim=1).float()
    return F.binary_cross_entropy_with_logits(score, present)


class SegLoss(nn.Module):
    def __init__(
        self,
        kind: str,
        class_weights: list[float] | None = None,
        dice_weight: float = 1.0,
        aux_weight: float = 0.5,
        focal_gamma: float = 2.0,
        image_weight: float = 0.0,
        image_topk: float = 0.002,
    ):
        super().__init__()
        self.kind, self.dice_weight, self.aux_weight = kind, dice_weight, aux_weight
        self.focal_gamma = focal_gamma
        self.image_weight, self.image_topk = image_weight, image_topk
        weights = torch.tensor(class_weights, dtype=torch.float32) if class_weights and kind != "ce" else None
        self.register_buffer("weight", weights, persistent=False)

    def focal(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits.float(), dim=1)
        valid = target != IGNORE_INDEX
        safe = torch.where(valid, target, torch.zeros_like(target)).unsqueeze(1)
        logp_t = logp.gather(1, safe).squeeze(1)
        loss = -((1.0 - logp_t.exp()) ** self.focal_gamma) * logp_t
        if self.weight is not None:
            loss = loss * self.weight.to(loss.device)[safe.squeeze(1)]
        return (loss * valid).sum() / valid.sum().clamp(min=1)

    def cross_entropy(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean (weighted) cross-entropy over the labelled pixels; 0 for a batch without any, which
        the dataset contract allows (all 255) and where F.cross_entropy's mean is 0/0 = NaN."""
        per_pixel = F.cross_entropy(
            logits.float(), target, weight=self.weight, ignore_index=IGNORE_INDEX, reduction="none"
        )
        valid = target != IGNORE_INDEX
        if self.weight is None:
            norm = valid.sum()
        else:
            safe = torch.where(valid, target, torch.zeros_like(target))
            norm = (self.weight.to(per_pixel.device)[safe] * valid).sum()
        # the sum stays in the graph (gradient 0), so every rank's backward sees the same parameters
        return per_pixel.sum() / norm.clamp(min=torch.finfo(per_pixel.dtype).tiny)

    def single(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.kind == "focal_dice":
            loss = self.focal(logits, target) + self.dice_weight * soft_dice_loss(logits, target)
        else:
            loss = self.cross_entropy(logits, target)
            if self.kind == "ce_dice":
                loss = loss + self.dice_weight * soft_dice_loss(logits, target)
        if self.image_weight > 0:
            loss = loss + self.image_weight * image_presence_loss(logits, target, self.image_topk)
        return loss

    def forward(self, output, target: torch.Tensor) -> torch.Tensor:
        if isinstance(output, dict):
            return self.single(output["out"], target) + self.aux_weight * self.single(output["aux"], target)
        return self.single(output, target)


def build_loss(train_cfg: TrainConfig) -> SegLoss:
    return SegLoss(
        train_cfg.loss,
        train_cfg.class_weights,
        train_cfg.dice_weight,
        train_cfg.aux_weight,
        train_cfg.focal_gamma,
        train_cfg.image_weight,
        train_cfg.image_topk,
    )
