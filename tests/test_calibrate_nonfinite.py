"""`sonomap calibrate` refuses a model whose output is NaN with one line naming the checkpoint and
the image (as `sonomap evaluate` does), and leaves the manifest as it was; ``fit_temperature``
raises on non-finite logits instead of returning an arbitrary T. A real tiny checkpoint with one
weight set to NaN, `sonomap` run in process on the prepared BUSI sample."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from export_fixtures import make_checkpoint

from edge_runtime.cli import EXIT_USER_ERROR
from edge_runtime.cli import main as sonomap
from edge_runtime.errors import InputError
from edge_runtime.manifest import load_manifest
from training.checkpoint import read_checkpoint
from training.checkpoint_save import save_checkpoint
from training.data import read_cases
from training.temperature import LogitMap, fit_temperature


@pytest.fixture(scope="module")
def nan_checkpoint(tmp_path_factory) -> Path:
    """A one-step tiny checkpoint whose first convolution has one NaN weight."""
    folder = tmp_path_factory.mktemp("nan_ck")
    good = make_checkpoint(folder / "good", steps=1)
    state = read_checkpoint(good)
    name = next(k for k, v in state["model"].items() if v.is_floating_point() and v.dim() == 4)
    state["model"][name].view(-1)[0] = math.nan
    return save_checkpoint(state, folder / "broken" / "tiny.pt", load_manifest(good))


@pytest.mark.parametrize("method", ["temperature", "curve"])
def test_calibrate_refuses_a_model_with_nan_output_in_one_line(nan_checkpoint, busi_dataset, capsys, method):
    manifest_file = nan_checkpoint.with_name(nan_checkpoint.name + ".yaml")
    before = manifest_file.read_bytes()
    args = ["calibrate", "--checkpoint", str(nan_checkpoint), "--data", str(busi_dataset), "--method", method]
    code = sonomap(args)
    err = capsys.readouterr().err.strip()
    assert code == EXIT_USER_ERROR, err
    assert "\n" not in err and "Traceback" not in err, err
    first = next(s for s in read_cases(busi_dataset) if s.split == "val")
    assert err.startswith("sonomap calibrate: error: "), err
    assert str(nan_checkpoint) in err and f"id {first.id}" in err and "non-finite" in err, err
    assert manifest_file.read_bytes() == before  # nothing fitted, nothing written


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_fit_temperature_raises_on_non_finite_logits(bad):
    rng = np.random.default_rng(0)
    maps = []
    for i in range(3):
        d = rng.normal(0.0, 3.0, (32, 32)).astype(np.float32)
        label = (d > 0).astype(np.uint8)
        maps.append(LogitMap(f"img{i}", np.stack([np.zeros_like(d), d]), label, np.zeros_like(label)))
    maps[1].logits[1, 5, 5] = bad
    with pytest.raises(ValueError, match="img1: non-finite"):
        fit_temperature(maps, cancer_index=1)


def test_fit_temperature_without_band_pixels_is_an_input_error():
    """A split with no cancer on which the model predicts none has nothing to fit on: an input
    problem the CLI says in one line, not a ValueError traceback."""
    empty = np.zeros((32, 32), np.uint8)
    logits = np.stack([np.full((32, 32), 4.0, np.float32), np.full((32, 32), -4.0, np.float32)])
    with pytest.raises(InputError, match="no decision-band pixels"):
        fit_temperature([LogitMap("img0", logits, empty, np.zeros_like(empty))], cancer_index=1)
