"""Model builders: gray in, logits out at any size; local backbone weights load, unless they leave part
of the backbone out; bad options fail."""

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


def test_unet_small_deep_supervision_trains_a_head_the_exported_graph_does_not_have():
    """aux=True adds a coarse decoder head in train mode; eval output and state dict of the main
    network are those of the plain network, so the exported graph and its runtime are unchanged."""
    torch.manual_seed(0)
    model = build_model("unet_small", 2, aux=True, width=4)
    x, y = torch.randn(2, 1, 50, 70), torch.randint(0, 2, (2, 50, 70))
    out = model.train()(x)
    assert set(out) == {"out", "aux"} and out["aux"].shape == out["out"].shape == (2, 2, 50, 70)
    # The aux head's gradient reaches the encoder: a loss on "aux" alone moves the stem.
    torch.nn.functional.cross_entropy(out["aux"], y).backward()
    assert model.net.aux_head.weight.grad.abs().sum() > 0
    assert model.net.stem[0][0].weight.grad.abs().sum() > 0
    plain = build_model("unet_small", 2, width=4).eval()
    missing, unexpected = plain.load_state_dict(model.state_dict(), strict=False)
    assert missing == [] and unexpected == ["net.aux_head.weight", "net.aux_head.bias"]
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), plain(x))


def test_backbone_weights_from_local_file(tmp_path):
    torch.manual_seed(0)
    reference = resnet50(weights=None)
    path = tmp_path / "resnet50.pth"
    torch.save(reference.state_dict(), path)  # an ImageNet-style classification checkpoint (with fc)
    model = build_model("deeplabv3_resnet50", 2, backbone_weights=path)
    torch.testing.assert_close(model.net.backbone.layer4[2].conv3.weight, reference.layer4[2].conv3.weight)
    torch.testing.assert_close(model.net.backbone.conv1.weight, reference.conv1.weight)


def test_backbone_weights_of_a_smaller_backbone_are_refused_naming_the_file_and_what_is_missing(tmp_path):
    """A ResNet-50 state dict matches the first 6 of ResNet-101's 23 layer3 blocks by name and shape;
    an fcn_resnet101 run given it would train the rest of its backbone from random weights."""
    path = tmp_path / "resnet50.pth"
    torch.save(resnet50(weights=None).state_dict(), path)
    with pytest.raises(ConfigError) as exc:
        build_model("fcn_resnet101", 2, backbone_weights=path)
    message = str(exc.value)
    assert message.startswith(f"--backbone-weights {path}: does not fit the FCN backbone: lacks 255 of")
    assert "'layer3.6.conv1.weight'" in message and "\n" not in message


def test_bad_model_options():
    with pytest.raises(ConfigError, match="'arch' 'nope'"):
        build_model("nope", 2)
    with pytest.raises(ConfigError, match="'aux' is not available"):
        build_model("lraspp_mobilenet_v3_large", 2, aux=True)
    with pytest.raises(ConfigError, match="backbone-weights .*missing.pth: file not found"):
        build_model("fcn_resnet50", 2, backbone_weights="missing.pth")
