"""A small U-Net for CPU training from scratch (arch ``unet_small``).

Why: torchvision's segmentation models are ImageNet designs; without pretrained
weights on a 2-core CPU they converge slowly. A compact U-Net with BatchNorm learns
lesion shape in minutes. The first conv has stride 2 (full-resolution features cost
the most and lesion boundaries survive a x2 bilinear upsampling of the logits), and
the deepest level uses dilated convs for context. Input [N, 1, H, W] (any size; H and W
are padded internally to a multiple of :data:`STRIDE`), output ``{"out": logits [N, C, H, W]}``.
Exports to ONNX opset 17 (Conv, BatchNorm, ReLU, Resize, Concat, Pad).

Deep supervision (``aux_loss=True``): a 1x1 head on the first decoder level (1/8 of the input)
adds ``"aux"`` logits, upsampled to the input, in train mode only; the loss weighs it by
``train.aux_weight``. It gives the coarse decoder a direct lesion signal, which small sets need
most; the exported (eval) graph does not contain it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LEVELS = 4  # stride-2 stem + 3 pooling steps
STRIDE = 2**LEVELS


def conv_bn(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class Block(nn.Sequential):
    def __init__(self, cin: int, cout: int, dilation: int = 1):
        super().__init__(conv_bn(cin, cout, dilation=dilation), conv_bn(cout, cout, dilation=dilation))


class SmallUNet(nn.Module):
    in_channels = 1  # GraySegmenter feeds the gray plane as is

    def __init__(self, num_classes: int = 2, width: int = 16, aux: bool = False):
        super().__init__()
        w = width
        chans = [w, 2 * w, 4 * w, 8 * w]
        self.stem = nn.Sequential(conv_bn(1, w, stride=2), conv_bn(w, w))
        self.down = nn.ModuleList([Block(chans[i], chans[i + 1]) for i in range(len(chans) - 1)])
        self.context = nn.Sequential(
            conv_bn(chans[-1], chans[-1], dilation=2), conv_bn(chans[-1], chans[-1], dilation=4)
        )
        self.up = nn.ModuleList(
            [Block(chans[i + 1] + chans[i], chans[i]) for i in reversed(range(len(chans) - 1))]
        )
        self.head = nn.Conv2d(w, num_classes, 1)
        # Named aux_head, not aux_classifier: the optimiser's 10x lr for torchvision's aux heads
        # is meant for a pretrained backbone, and this network trains from scratch.
        self.aux_head = nn.Conv2d(chans[-2], num_classes, 1) if aux else None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h, w = x.shape[-2:]
        ph, pw = (-h) % STRIDE, (-w) % STRIDE
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        skips = [self.stem(x)]
        for block in self.down:
            skips.append(block(F.max_pool2d(skips[-1], 2)))
        y = self.context(skips.pop())
        aux = None
        for block in self.up:
            skip = skips.pop()
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = block(torch.cat([y, skip], dim=1))
            if aux is None and self.aux_head is not None and self.training:
                aux = self._full_size(self.aux_head(y), x, h, w)
        out = {"out": self._full_size(self.head(y), x, h, w)}
        if aux is not None:
            out["aux"] = aux
        return out

    @staticmethod
    def _full_size(logits: torch.Tensor, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Logits upsampled to the padded input, then cut to the unpadded ``h`` x ``w``."""
        up = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return up[..., :h, :w]


def unet_small(
    weights=None, num_classes: int = 2, weights_backbone=None, width: int = 16, aux_loss: bool = False
) -> SmallUNet:
    """torchvision-style builder; this model has no pretrained weights (must be None)."""
    return SmallUNet(num_classes=num_classes, width=width, aux=aux_loss)
