"""Rebuild a training checkpoint of a ``unet_small`` model from its exported folded ONNX file.

Why: the shipped default model's original checkpoint was not kept, only ``model.onnx``. To fit a
temperature for it and re-export it with a newer exporter, its weights are read back from the
ONNX file. The exporter fused each BatchNorm into the convolution before it (eval mode, constant
folding), so every ``Conv`` in the graph carries the fused weight and bias. They map one to one, in
graph order, onto the model's ``Conv2d`` layers in definition order; each BatchNorm becomes the
identity plus the fused bias (running mean 0, running variance 1 - eps, weight 1, bias = the fused
bias), which reproduces the graph exactly in eval mode.

Usage: ``python -m training.recover MODEL.onnx OUT/best.pt [--overwrite]``; an existing OUT (or its
manifest) is refused without ``--overwrite``, and every user error is one line, exit status 2.
Inputs: the ONNX file and its manifest (``extra.model_config``; checked against the graph's model
contract, :mod:`edge_runtime.model_contract`, as the runtime checks it). Outputs: ``best.pt`` +
``best.pt.yaml`` (format checkpoint, ``source.recovered_from_onnx_sha256``). Only ``unet_small`` is
supported (its layer order is known to match); other architectures are a one-line error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import onnx
import torch
from onnx import numpy_helper

from edge_runtime.errors import EXIT_USER_ERROR, ConfigError, InputError, SonomapError, os_error_text
from edge_runtime.manifest import load_manifest, manifest_path
from edge_runtime.model_contract import check_model_file
from training.checkpoint_save import save_checkpoint
from training.models import build_model

SUPPORTED = "unet_small"
PROG = "python -m training.recover"

CALIBRATION_SCOPE = "/curve/"  # node-name prefix of the folded calibration curve


def _conv_layers(model: torch.nn.Module) -> list[tuple[torch.nn.Conv2d, torch.nn.BatchNorm2d | None]]:
    mods = list(model.modules())
    out = []
    for i, mod in enumerate(mods):
        if isinstance(mod, torch.nn.Conv2d):
            nxt = mods[i + 1] if i + 1 < len(mods) else None
            out.append((mod, nxt if isinstance(nxt, torch.nn.BatchNorm2d) else None))
    return out


def recover_checkpoint(onnx_path: str | Path, out: str | Path, overwrite: bool = False) -> Path:
    """MODEL.onnx -> OUT (+ its manifest). An existing OUT or manifest is refused unless ``overwrite``:
    OUT is typically a run's best.pt, which its last.pt, metrics and summary describe."""
    onnx_path, out = Path(onnx_path), Path(out)
    if not onnx_path.is_file():
        raise InputError(f"{onnx_path}: ONNX model not found")
    for existing in (out, manifest_path(out)):
        if existing.exists() and not overwrite:
            raise ConfigError(f"{existing}: exists already; give a new OUT, or add --overwrite to replace it")
    manifest = load_manifest(onnx_path)
    # the checkpoint takes its classes, threshold, calibration and mean/std from this manifest: it
    # must describe the graph the weights come from, as the runtime demands before serving it
    check_model_file(onnx_path, manifest)
    cfg = dict(manifest.extra.get("model_config") or {})
    if cfg.get("arch") != SUPPORTED:
        raise ConfigError(
            f"{onnx_path}: recovery supports arch {SUPPORTED!r} only, manifest says {cfg.get('arch')!r}"
        )
    graph = onnx.load(str(onnx_path)).graph
    weights = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    # The folded calibration curve (export/folded.py) adds 1x1 Convs under its own scope; they are
    # not the network's, and the manifest carries the curve itself.
    convs = [n for n in graph.node if n.op_type == "Conv" and not n.name.startswith(CALIBRATION_SCOPE)]
    model = build_model(cfg["arch"], int(cfg["num_classes"]), width=int(cfg["width"]))
    layers = _conv_layers(model)
    if len(layers) != len(convs):
        raise ConfigError(f"{onnx_path}: {len(convs)} Conv nodes but the model has {len(layers)} conv layers")
    with torch.no_grad():
        for node, (conv, bn) in zip(convs, layers, strict=False):
            w = torch.from_numpy(weights[node.input[1]].copy())
            b = torch.from_numpy(weights[node.input[2]].copy())
            if tuple(w.shape) != tuple(conv.weight.shape):
                raise ConfigError(
                    f"{onnx_path}: {node.name} weight {tuple(w.shape)} != {tuple(conv.weight.shape)}"
                )
            conv.weight.copy_(w)
            if bn is None:
                conv.bias.copy_(b)
            else:
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
                bn.weight.fill_(1.0)
                bn.bias.copy_(b)
    model.eval()
    ck_manifest = manifest.derive(
        format="checkpoint",
        io={},
        preprocessing_in_graph=False,
        source={**manifest.source, "recovered_from_onnx_sha256": manifest.sha256},
    )
    model_config = {
        "arch": cfg["arch"],
        "num_classes": int(cfg["num_classes"]),
        "aux": False,
        "width": int(cfg["width"]),
    }
    return save_checkpoint(
        {"model": model.state_dict(), "model_config": model_config, "manifest": ck_manifest.to_dict()},
        out,
        ck_manifest,
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m training.recover MODEL.onnx OUT/best.pt [--overwrite]``: a user's error is one line
    on stderr and exit status 2, as with ``sonomap``."""
    parser = argparse.ArgumentParser(prog=PROG, description="Rebuild a unet_small checkpoint from its ONNX")
    parser.add_argument("onnx", help="the exported folded MODEL.onnx (its manifest beside it)")
    parser.add_argument("out", help="the checkpoint to write, e.g. OUT/best.pt (never an existing one)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT and its manifest if they exist")
    args = parser.parse_args(argv)
    try:
        print(recover_checkpoint(args.onnx, args.out, overwrite=args.overwrite))
    except SonomapError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:
        print(f"{PROG}: error: {os_error_text(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
