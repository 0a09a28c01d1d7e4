"""A checkpoint and its manifest are replaced as a pair (training.checkpoint_save.save_checkpoint): a new
best.pt whose manifest cannot be written on a real full disk (a file size limit) leaves the earlier
pair as it was and loadable, and a stop (SIGINT, SIGTERM) while the two are renamed acts only once
both are in place."""

from __future__ import annotations

import os
import signal
import time

import pytest
import torch
from export_fixtures import tiny_manifest
from file_size_limit import python_with_file_size_limit

from edge_runtime.manifest import manifest_path
from edge_runtime.stop_signals import signals_held, sigterm_as_interrupt
from training.checkpoint import load_model
from training.checkpoint_save import save_checkpoint
from training.models import build_model

ARCH, WIDTH, SIZE = "unet_small", 4, 32
MODEL_CONFIG = {"arch": ARCH, "num_classes": 2, "aux": False, "width": WIDTH}
MANIFEST_OVER_LIMIT = 4  # the new manifest's note, in checkpoint sizes: past the limit of two
SIGNAL_WAIT_S = 0.05  # long enough for a handler left in place to raise inside the block


def test_a_manifest_that_cannot_be_written_keeps_the_earlier_pair_loadable(tmp_path):
    torch.manual_seed(0)
    earlier = build_model(ARCH, 2, width=WIDTH).state_dict()
    manifest = tiny_manifest(ARCH, SIZE)
    path = tmp_path / "best.pt"
    payload = {"model": earlier, "model_config": MODEL_CONFIG, "manifest": manifest.to_dict()}
    save_checkpoint(payload, path, manifest)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    size = path.stat().st_size
    # A better epoch whose manifest is larger than the checkpoint (a long note): under a file size
    # limit between the two, the new best.pt is written whole and the manifest's write fails.
    code = f"""
from edge_runtime.manifest import load_manifest
from training.checkpoint import read_checkpoint
from training.checkpoint_save import save_checkpoint
payload = read_checkpoint({str(path)!r})
payload["model"] = {{k: v + 0.01 if v.is_floating_point() else v for k, v in payload["model"].items()}}
manifest = load_manifest({str(path)!r})
manifest.extra = {{"note": "x" * {MANIFEST_OVER_LIMIT * size}}}
save_checkpoint(payload, {str(path)!r}, manifest)
"""
    result = python_with_file_size_limit(2 * size, "-c", code)
    assert result.returncode != 0
    assert f"File too large: '{manifest_path(path)}'" in result.stderr, result.stderr[-2000:]
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # and no temp file left
    model, loaded = load_model(path)  # the manifest's sha256 still matches best.pt
    assert loaded.name == manifest.name
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, earlier[key]), key


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_while_the_pair_is_renamed_acts_once_the_block_is_done(signum):
    """A process started in the background inherits SIGINT ignored (make under nohup, CI runners):
    the test sets Python's own Ctrl-C handler, as an interactive `sonomap train` has it."""
    done = []
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _stop_during_the_renames(signum, done)
    finally:
        signal.signal(signal.SIGINT, inherited)


def _stop_during_the_renames(signum, done: list) -> None:
    with sigterm_as_interrupt(), pytest.raises(KeyboardInterrupt):
        with signals_held():
            os.kill(os.getpid(), signum)
            time.sleep(SIGNAL_WAIT_S)
            done.append("both renamed")
    assert done == ["both renamed"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers are restored
