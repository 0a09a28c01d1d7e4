"""Model builders: gray in, logits out at any size; local backbone weights load; bad options fail."""

from __future__ import annotations

import pytest
import torch
from torchvision.models import resnet50

from edge_runtime.errors import ConfigError
from training.models import build_model


@pytest.mark.parametrize("hw", [(64, 64), (50, 70)])
def test_unet_small_any_size(hw):
    model = build_model("unet_small", 2, width=4).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, *hw))
    assert out.shape == (2, 2, *hw)


def test_aux_head_in_train_mode_only():
    model = build_model("fcn_resnet50", 2, aux=True)
    x = torch.randn(2, 1, 32, 32)
    out = model.train()(x)
    assert set(out) == {"out", "aux"} and out["aux"].shape == (2, 2, 32, 32)
    with torch.no_grad():
        assert model.eval()(x).shape == (2, 2, 32, 32)


def test_backbone_weights_from_local_file(tmp_path):
    torch.manual_seed(0)
    reference = resnet50(weights=None)
    path = tmp_path / "resnet50.pth"
    torch.save(reference.state_dict(), path)  # an ImageNet-style classification checkpoint (with fc)
    model = build_model("deeplabv3_resnet50", 2, backbone_weights=path)
    torch.testing.assert_close(model.net.backbone.layer4[2].conv3.weight, reference.layer4[2].conv3.weight)
    torch.testing.assert_close(model.net.backbone.conv1.weight, reference.conv1.weight)


def test_bad_model_options():
    with pytest.raises(ConfigError, match="'arch' 'nope'"):
        build_model("nope", 2)
    with pytest.raises(ConfigError, match="'aux' is not available"):
        build_model("lraspp_mobilenet_v3_large", 2, aux=True)
    with pytest.raises(ConfigError, match="backbone-weights .*missing.pth: file not found"):
        build_model("fcn_resnet50", 2, backbone_weights="missing.pth")
