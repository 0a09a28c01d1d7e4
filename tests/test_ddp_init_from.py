"""`sonomap train --init-from` under torchrun (2 CPU processes, gloo) from a checkpoint whose BatchNorm
layers are folded, as training.recover rebuilds them from an exported graph: every rank ends with the
same weights. Each rank's train loader holds its own shard of the images, so BatchNorm statistics
measured per rank would differ, and DDP, which synchronises gradients only, would keep them apart."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import yaml

from training.checkpoint_save import save_checkpoint
from training.models import build_model

WORLD = 2
ARCH, WIDTH = "unet_small", 4
CFG = {
    "name": "ddp-init-from",
    "model": {"arch": ARCH, "width": WIDTH},
    "data": {"input_height": 48, "input_width": 48},
    "train": {"epochs": 1, "batch_size": 4, "warmup_iters": 1},
}
TORCHRUN_TIMEOUT_S = 300
# Run by torchrun on each rank: the real training run, keeping a reference to the model it starts
# from --init-from, whose weights each rank saves once the run is over.
DRIVER = """
import os, sys
import torch
import training.train as train

kept = {}
load = train.load_initial_weights

def keep(model, *args):
    kept["model"] = model
    load(model, *args)

train.load_initial_weights = keep
config, data, out, init_from, ranks = sys.argv[1:]
train.run(config, data, out, init_from=init_from, show_progress=False, device="cpu")
params = {name: p.detach().clone() for name, p in kept["model"].named_parameters()}
torch.save(params, os.path.join(ranks, f"rank{os.environ['RANK']}.pt"))
"""


def _folded_checkpoint(path) -> None:
    """A checkpoint as training.recover writes one: every BatchNorm the identity plus a bias."""
    torch.manual_seed(1)
    model = build_model(ARCH, 2, width=WIDTH)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.zero_()
                module.running_var.fill_(1.0 - module.eps)
                module.weight.fill_(1.0)
                module.bias.copy_(torch.randn_like(module.bias) * 0.1)
    config = {"arch": ARCH, "num_classes": 2, "aux": False, "width": WIDTH}
    save_checkpoint({"model": model.state_dict(), "model_config": config}, path)


@pytest.mark.slow
def test_torchrun_init_from_a_folded_checkpoint_leaves_every_rank_with_the_same_weights(
    tmp_path, busi_dataset
):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(CFG))
    folded = tmp_path / "folded.pt"
    _folded_checkpoint(folded)
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    ranks = tmp_path / "ranks"
    ranks.mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD}"]
    cmd += [str(driver), str(cfg), str(busi_dataset), str(tmp_path / "run"), str(folded), str(ranks)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=TORCHRUN_TIMEOUT_S, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    first, second = (torch.load(ranks / f"rank{r}.pt", weights_only=True) for r in range(WORLD))
    assert first.keys() == second.keys()
    differing = [name for name in first if not torch.equal(first[name], second[name])]
    assert not differing, f"{len(differing)} tensors differ between the ranks, e.g. {differing[:3]}"
    # the folded layers were re-standardised (weight = measured input spread), not left at 1
    assert not torch.all(first["net.stem.0.1.weight"] == 1)
