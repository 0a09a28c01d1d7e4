"""A manifest's input size is bounded where it is loaded: a side of 100000 pixels (a typo) is one
line naming the manifest file and the key, from the loader and from the commands that read one
(export), never an export that would exhaust memory when the runtime allocates its frames."""

from __future__ import annotations

import pytest
import yaml
from cli import sonomap
from export_fixtures import tiny_manifest

from edge_runtime.errors import ConfigError
from edge_runtime.manifest import load_manifest, manifest_path
from edge_runtime.manifest_schema import MAX_INPUT_SIDE
from export.shapes import MAX_SIDE
from training.checkpoint_save import save_checkpoint
from training.models import build_model

ARCH, WIDTH, SIZE = "unet_small", 4, 32
HUGE = 100_000


def checkpoint_with_input(folder, key: str, value: int):
    model = build_model(ARCH, 2, width=WIDTH)
    payload = {"model": model.state_dict(), "model_config": {"arch": ARCH, "num_classes": 2, "width": WIDTH}}
    ck = save_checkpoint(payload, folder / "best.pt", tiny_manifest(ARCH, SIZE))
    yaml_path = manifest_path(ck)
    data = yaml.safe_load(yaml_path.read_text())
    data["input"][key] = value  # the checkpoint's sha256 stays right: only the size is wrong
    yaml_path.write_text(yaml.safe_dump(data, sort_keys=False))
    return ck


def test_the_bound_is_the_export_shape_flags_bound():
    assert MAX_INPUT_SIDE == MAX_SIDE


@pytest.mark.parametrize("key", ["height", "width"])
def test_an_input_side_over_the_bound_names_the_file_and_the_key(tmp_path, key):
    ck = checkpoint_with_input(tmp_path, key, HUGE)
    with pytest.raises(ConfigError) as caught:
        load_manifest(ck)
    message = str(caught.value)
    assert message.startswith(f"{manifest_path(ck)}: ") and f"'input.{key}' is {HUGE}" in message
    assert str(MAX_INPUT_SIDE) in message and "\n" not in message


def test_export_refuses_the_manifest_in_one_line_and_writes_nothing(tmp_path):
    ck = checkpoint_with_input(tmp_path, "height", HUGE)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = sonomap("export", "onnx", "--checkpoint", ck, "--out", tmp_path / "model.onnx", check=False)
    err = result.stderr.strip()
    assert result.returncode == 2 and "\n" not in err and "Traceback" not in err, err
    assert f"{manifest_path(ck)}: manifest key 'input.height' is {HUGE}" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_the_bound_itself_loads(tmp_path):
    ck = checkpoint_with_input(tmp_path, "width", MAX_INPUT_SIDE)
    assert load_manifest(ck).input_width == MAX_INPUT_SIDE
