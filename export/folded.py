"""The exported network: a trained segmenter with pre- and postprocessing folded in.

Input: ``frame`` uint8 ``[N, 1, H, W]``, the grayscale ultrasound ROI at its own size.
Outputs: ``prob`` float32 ``[N, 1, H, W]`` (cancer probability) and ``mask`` uint8
``[N, 1, H, W]`` (class ids), both back at the ROI size. Inside, in this order (the same
steps as :func:`edge_runtime.preprocess.preprocess`, so training and runtime agree):
uint8 -> float -> bilinear resize to the manifest's input size -> ``(x/255 - mean)/std``
-> model -> divide by the manifest's temperature -> softmax -> bilinear resize back to ROI size
-> threshold. With two classes only the
cancer channel is resized, its softmax taken as the logistic of the logit difference, or, when the
manifest has a ``calibration_curve``, that curve of the logit difference (:class:`CurveCalibration`).

Folding the steps in lets the runtime move uint8 in and uint8/float out, and lets
TensorRT run the resizes on the GPU instead of OpenCV on the CPU.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from edge_runtime.manifest import Manifest
from training.checkpoint import load_model

UINT8_SCALE = 1.0 / 255.0
TWO_CLASSES = 2


class CurveCalibration(nn.Module):
    """The manifest's piecewise-linear calibration curve as graph ops (same values as
    :func:`edge_runtime.calibration_curve.apply_curve`), written as hinges: with the margin clamped
    to the end knots, p = prob[0] + sum_i c_i relu(margin - knot_i), where c_i is the change of
    slope at knot i. Two 1x1 convolutions carry it (knot shifts, then the weighted sum), so the
    whole curve is Clip -> Conv+Relu -> Conv, which ONNX Runtime fuses and TensorRT and the FP16
    converter handle like the rest of the network. On a 256x256 margin with 2 CPU threads it takes
    about 0.35 ms against the logistic's 0.05 ms (clamping each segment separately, 7 passes over a
    [1, knots, h, w] tensor, cost several ms)."""

    def __init__(self, curve: dict):
        super().__init__()
        knots = torch.tensor(curve["margin"], dtype=torch.float64)
        values = torch.tensor(curve["prob"], dtype=torch.float64)
        slopes = (values[1:] - values[:-1]) / (knots[1:] - knots[:-1])
        hinges = torch.cat([slopes[:1], slopes[1:] - slopes[:-1]])  # one per knot but the last
        segments = hinges.numel()
        self.low, self.high = float(knots[0]), float(knots[-1])
        self.register_buffer("shift_weight", torch.ones(segments, 1, 1, 1))
        self.register_buffer("shift_bias", (-knots[:-1]).float())
        self.register_buffer("mix_weight", hinges.float().reshape(1, segments, 1, 1))
        self.register_buffer("mix_bias", values[:1].float())

    def forward(self, margin: torch.Tensor) -> torch.Tensor:
        z = margin.clamp(self.low, self.high)  # beyond the end knots the curve is flat
        climbed = F.relu(F.conv2d(z, self.shift_weight, self.shift_bias))
        return F.conv2d(climbed, self.mix_weight, self.mix_bias)


class FoldedSegmenter(nn.Module):
    """Wrap an eval-mode GraySegmenter (float [N,1,h,w] -> logits [N,C,h,w])."""

    def __init__(self, model: nn.Module, manifest: Manifest):
        super().__init__()
        self.model = model.eval()
        self.size = (int(manifest.input_height), int(manifest.input_width))
        self.mean = float(manifest.mean)
        self.std = float(manifest.std)
        self.threshold = float(manifest.threshold)
        # Temperature scaling (fitted on validation data): calibrated probabilities on every backend.
        self.temperature = float(manifest.temperature)
        # A calibration curve (two classes) replaces the logistic of the logit difference.
        self.curve = CurveCalibration(manifest.calibration_curve) if manifest.calibration_curve else None
        self.cancer = int(manifest.cancer_index)
        self.num_classes = int(manifest.num_classes)
        # With two classes the non-cancer id is a constant, so no ArgMax is needed.
        others = [c.id for c in manifest.classes if c.id != self.cancer]
        self.other = int(others[0])

    def forward(self, frame: torch.Tensor):
        # The ROI size is read from the float tensor, never from ``frame``: TensorRT accepts a
        # UINT8 network input only when its one consumer is a Cast (see export.trt_lint), so
        # Shape must not read the uint8 tensor.
        x = frame.float()
        height, width = x.shape[-2], x.shape[-1]
        x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        x = (x * UINT8_SCALE - self.mean) / self.std
        logits = self.model(x) / self.temperature
        if self.num_classes == TWO_CLASSES:
            # The softmax of two classes is the logistic of their logit difference, and a bilinear
            # resize acts on each channel alone: so only the cancer probability is computed and
            # resized to the ROI (same values as softmax -> resize -> slice). At ROI size (about a
            # megapixel) that halves the resize and drops a full-size slice and select: about 5 of
            # 23 ms a frame on a CPU.
            margin = logits[:, self.cancer : self.cancer + 1] - logits[:, self.other : self.other + 1]
            prob = self.curve(margin) if self.curve is not None else torch.sigmoid(margin)
            prob = F.interpolate(prob, size=(height, width), mode="bilinear", align_corners=False)
            # Compare, then cast (bool -> float -> uint8; TensorRT takes uint8 only at I/O casts).
            mask = (prob >= self.threshold).float()
            if (self.cancer, self.other) != (1, 0):
                mask = mask * float(self.cancer - self.other) + float(self.other)
            return prob, mask.to(torch.uint8)
        probs = torch.softmax(logits, dim=1)
        probs = F.interpolate(probs, size=(height, width), mode="bilinear", align_corners=False)
        prob = probs[:, self.cancer : self.cancer + 1]
        # Best non-cancer class: zero the cancer channel, then argmax.
        keep = torch.ones(self.num_classes, device=probs.device)
        keep[self.cancer] = 0.0
        fallback = torch.argmax(probs * keep.view(1, -1, 1, 1), dim=1, keepdim=True).float()
        # The mask is computed in float and cast last: TensorRT supports uint8 only at I/O casts.
        mask = torch.where(prob >= self.threshold, torch.full_like(prob, float(self.cancer)), fallback)
        return prob, mask.to(torch.uint8)


def load_folded(checkpoint) -> tuple[FoldedSegmenter, Manifest]:
    """Checkpoint (+ its manifest, which must agree) -> (folded eval model on CPU, manifest)."""
    model, manifest = load_model(checkpoint)
    return FoldedSegmenter(model, manifest).eval(), manifest
