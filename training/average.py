"""Average the weights of several checkpoints of one model into one (a "model soup" / SWA).

Why: snapshots of one fine-tuning run (the ``cycleK.pt`` files of a cosine warm-restart schedule)
lie in one basin; their weight average often generalises better than any of them, and unlike an
ensemble it costs nothing at inference: one network, one pass. BatchNorm statistics of an average
are not the average of the statistics, so they are measured again on the training images (eval
preprocessing, no augmentation), as ``torch.optim.swa_utils.update_bn`` does.

Usage: ``python -m training.average --data DATASET --out OUT/best.pt CK1 CK2 [...]``. Inputs:
checkpoints with the same ``model_config`` and normalisation, the dataset whose train split
re-estimates BatchNorm. Output: ``OUT/best.pt`` + manifest (the first checkpoint's, with
``source.averaged_from`` naming each input by file name and sha256, never by path: the manifest
travels with the model, and a folder above a checkpoint may be named after a patient).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch.optim.swa_utils import update_bn
from torch.utils.data import DataLoader

from edge_runtime.case_split import CASES_CSV
from edge_runtime.errors import ConfigError, InputError, SonomapError
from edge_runtime.manifest import sha256_file
from training.checkpoint import load_model_and_config, read_checkpoint
from training.checkpoint_save import save_checkpoint
from training.data import read_cases, select_split
from training.dataset import SegDataset
from training.output_checks import refuse_existing
from training.run_setup import pooled_batchnorms

BN_BATCH = 8


class _Images:
    """Yields only the input tensors of a (x, y, index) loader, as update_bn expects."""

    def __init__(self, loader):
        self.loader = loader

    def __iter__(self):
        for x, _y, _idx in self.loader:
            yield x


def average_checkpoints(checkpoints: list[str | Path], data: str | Path, out: str | Path) -> Path:
    if len(checkpoints) < 2:
        raise ConfigError("give at least two checkpoints to average")
    refuse_existing(out, what="a trained run's best.pt, or an input")  # before any input is read
    model, manifest, model_config = load_model_and_config(checkpoints[0])
    states = [model.state_dict()]  # the first checkpoint's weights, as loaded
    for ck in checkpoints[1:]:
        state = read_checkpoint(ck)
        if state.get("model_config") != model_config:
            raise ConfigError(f"{ck}: model_config differs from {checkpoints[0]}'s")
        states.append(state["model"])
    averaged = {}
    for key, value in states[0].items():
        if value.is_floating_point():
            averaged[key] = torch.stack([s[key] for s in states]).mean(dim=0)
        else:
            averaged[key] = value  # e.g. BatchNorm's num_batches_tracked
    model.load_state_dict(averaged)
    size = (manifest.input_height, manifest.input_width)
    train = SegDataset(select_split(read_cases(data), "train", data), size, manifest.mean, manifest.std, None)
    # update_bn runs in training mode, where a BatchNorm after a global pooling (DeepLabV3's ASPP)
    # cannot normalise a batch of one sample: a lone last sample is left out (the others measure)
    lone = len(train) % BN_BATCH == 1
    if lone and len(train) == 1:
        layers = pooled_batchnorms(model, size, next(model.parameters()).device)
        if layers:
            raise InputError(
                f"{Path(data) / CASES_CSV}: split 'train' has 1 image, and BatchNorm layer {layers[0]} of "
                f"{model_config['arch']} cannot be re-estimated on one sample; give a dataset with more train images"
            )
    update_bn(
        _Images(DataLoader(train, batch_size=BN_BATCH, shuffle=False, drop_last=lone and len(train) > 1)),
        model,
    )
    model.eval()
    averaged_from = [{"checkpoint": Path(c).name, "sha256": sha256_file(c)} for c in checkpoints]
    derived = manifest.derive(source={**manifest.source, "averaged_from": averaged_from})
    return save_checkpoint(
        {"model": model.state_dict(), "model_config": model_config, "manifest": derived.to_dict()},
        out,
        derived,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.average", description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--data", required=True, help="dataset whose train split re-estimates BatchNorm")
    parser.add_argument("--out", required=True, help="output checkpoint (best.pt)")
    args = parser.parse_args(argv)
    try:
        print(average_checkpoints(args.checkpoints, args.data, args.out))
    except SonomapError as exc:  # a bad input: one line naming the file, no traceback
        parser.exit(2, f"error: {exc}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
