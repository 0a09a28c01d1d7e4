"""`sonomap` subcommands of the export stage (registered through the sonomap.commands entry point).

``sonomap export onnx|torchscript|tensorrt`` and ``sonomap selfcheck``.
Every export target refuses an ``--out`` that is its ``--checkpoint`` (the trained model).
Heavy imports happen inside the handlers so that `sonomap --help` stays fast.
"""

from __future__ import annotations

import argparse

from edge_runtime import cli_args
from edge_runtime.stop_signals import sigterm_stops
from edge_runtime.tensorrt.cache import check_cache_dir
from edge_runtime.tensorrt.engines import DEFAULT_WORKSPACE_MB, MAX_WORKSPACE_MB, MIN_WORKSPACE_MB
from export.shapes import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_HW,
    DEFAULT_MIN_HW,
    DEFAULT_OPT_HW,
    MAX_BATCH,
    MAX_SIDE,
)

DEFAULT_PARITY_FRAMES = 8
DEFAULT_TS_PARITY_FRAMES = 4
DEFAULT_SELFCHECK_FRAMES = 10


def _hw(hw: tuple[int, int]) -> str:
    return f"{hw[0]}x{hw[1]}"


def register(sub) -> None:
    """Add this stage's subcommands to the top-level parser's subparsers."""
    p = sub.add_parser(
        "export",
        help="export a checkpoint to ONNX / TorchScript / TensorRT",
        description="Export a trained checkpoint for the runtime. Preprocessing (resize, "
        "normalise) and postprocessing (softmax, threshold, resize back) are folded into the "
        "model: uint8 frame [N,1,H,W] in, prob float32 and mask uint8 out.",
    )
    targets = p.add_subparsers(dest="target", metavar="TARGET", required=True)
    _add_onnx(targets)
    _add_torchscript(targets)
    _add_tensorrt(targets)
    _add_selfcheck(sub)


def _add_shape_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("input shape")
    g.add_argument("--roi", metavar="HxW", help="fixed ROI size (default: dynamic height/width)")
    g.add_argument("--min-hw", metavar="HxW", help=f"smallest dynamic ROI (default {_hw(DEFAULT_MIN_HW)})")
    g.add_argument(
        "--opt-hw",
        metavar="HxW",
        help=f"typical ROI, what TensorRT tunes for (default {_hw(DEFAULT_OPT_HW)})",
    )
    g.add_argument(
        "--max-hw",
        metavar="HxW",
        help=f"largest dynamic ROI (default {_hw(DEFAULT_MAX_HW)}; each side at most {MAX_SIDE})",
    )
    g.add_argument("--dynamic-batch", action="store_true", help="make the batch dimension dynamic")
    g.add_argument(
        "--max-batch",
        type=cli_args.int_in_range(1, MAX_BATCH),
        default=None,  # None: not given; refused without --dynamic-batch instead of being dropped
        help=f"largest batch, with --dynamic-batch only (default {DEFAULT_MAX_BATCH}, at most {MAX_BATCH})",
    )


def _add_parity_args(p: argparse.ArgumentParser, frames_help: str, default_frames: int) -> None:
    """--frames DIR and --parity-frames N: the real frames an export is checked on."""
    p.add_argument("--frames", type=cli_args.path, help=frames_help)
    p.add_argument(
        "--parity-frames",
        type=cli_args.at_least(1),
        default=default_frames,
        help=f"how many frames to compare (default {default_frames})",
    )


def _add_onnx(targets) -> None:
    p = targets.add_parser(
        "onnx",
        help="checkpoint -> ONNX + manifest + MODEL.parity.json",
        description="Export CK to ONNX (opset 17) with its manifest, then compare ONNX "
        "Runtime with torch FP32 on real frames and write MODEL.parity.json beside the model. "
        "Exit 1 when mask agreement is below 99.9% (FP16: 99.5%), 4 when a written graph fails the "
        "TensorRT compatibility lint (export/trt_lint.py).",
    )
    p.add_argument(
        "--checkpoint", required=True, help="checkpoint written by 'sonomap train' (CK.yaml beside it)"
    )
    p.add_argument("--out", type=cli_args.path, required=True, help="ONNX file to write, e.g. model.onnx")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    _add_shape_args(p)
    p.add_argument("--fp16", action="store_true", help="also write MODEL.fp16.onnx and check it against FP32")
    _add_parity_args(
        p, "folder of real frames for parity (default: vendored BUSI sample)", DEFAULT_PARITY_FRAMES
    )
    # SIGTERM (timeout, systemctl, docker stop) unwinds like Ctrl-C, so the staging folder is deleted
    p.set_defaults(func=sigterm_stops(_run_onnx))


def _add_torchscript(targets) -> None:
    p = targets.add_parser(
        "torchscript",
        help="checkpoint -> TorchScript (for the runtime's torch backend)",
        description="Trace the folded model to TorchScript (format 'torchscript' in the "
        "manifest); the runtime's torch backend loads it without importing training.",
    )
    p.add_argument("--checkpoint", required=True, help="checkpoint written by 'sonomap train'")
    p.add_argument(
        "--out",
        type=cli_args.path,
        required=True,
        help="TorchScript file to write, ending in .ts or .torchscript, e.g. model.ts",
    )
    _add_parity_args(p, "folder of real frames for the torch-vs-TorchScript check", DEFAULT_TS_PARITY_FRAMES)
    p.set_defaults(func=sigterm_stops(_run_torchscript))  # as export onnx: a stop deletes the staging folder


def _add_tensorrt(targets) -> None:
    p = targets.add_parser(
        "tensorrt",
        help="ONNX -> TensorRT engine (cached, on the target GPU)",
        description="Build a TensorRT engine from a folded ONNX model on this machine's "
        "GPU, into the engine cache DIR (keyed by ONNX sha256, GPU, TensorRT version, "
        "precision and shapes). TensorRT 10.x < 10.12 uses the FP16 builder flag on the FP32 "
        "ONNX; >= 10.12 and 11 build a strongly typed network from the FP16 ONNX.",
    )
    p.add_argument("--onnx", help="folded ONNX model (model.onnx, manifest beside it)")
    p.add_argument("--out", type=cli_args.path, required=True, help="engine cache directory")
    p.add_argument("--fp16", action="store_true", help="FP16 engine (default FP32)")
    p.add_argument(
        "--workspace-mb",
        type=cli_args.int_in_range(MIN_WORKSPACE_MB, MAX_WORKSPACE_MB),
        default=DEFAULT_WORKSPACE_MB,
        help=f"builder workspace limit in MiB, {MIN_WORKSPACE_MB} to {MAX_WORKSPACE_MB} "
        f"(default {DEFAULT_WORKSPACE_MB})",
    )
    for flag, what in (("min", "minimum"), ("opt", "optimum"), ("max", "maximum")):
        p.add_argument(
            f"--{flag}",
            dest=f"{flag}_shape",
            metavar="NxCxHxW",
            help=f"profile {what} (default from manifest)",
        )
    p.add_argument(
        "--force",
        action="store_true",
        help="rebuild even when a valid cached engine exists (--via torch-tensorrt: replace DIR/model.ep)",
    )
    p.add_argument(
        "--via",
        choices=("tensorrt", "torch-tensorrt"),
        default="tensorrt",
        help="build with the TensorRT API (default) or Torch-TensorRT dynamo (needs --checkpoint)",
    )
    p.add_argument("--checkpoint", help="checkpoint for --via torch-tensorrt")
    # SIGTERM keeps its default action here and in selfcheck: taken in Python (sigterm_stops) it would
    # wait for the native engine build, which may run for minutes
    p.set_defaults(func=_run_tensorrt)


def _add_selfcheck(sub) -> None:
    p = sub.add_parser(
        "selfcheck",
        help="prove the TensorRT path on this machine (versions, GPU, parity, latency)",
        description="Print versions and the GPU, build or load the TensorRT engine, run it and "
        "ONNX Runtime on sample frames, print mask agreement and latency. Exit 1 on "
        "disagreement, 3 when TensorRT or pycuda is missing, 4 when the model fails the "
        "TensorRT compatibility lint.",
    )
    p.add_argument(
        "--model", type=cli_args.path, help="folded ONNX model (default: the shipped default model)"
    )
    p.add_argument("--frames", type=cli_args.path, help="folder of frames (default: vendored BUSI sample)")
    p.add_argument(
        "--max-frames",
        type=cli_args.at_least(1),
        default=DEFAULT_SELFCHECK_FRAMES,
        help=f"frames to compare (default {DEFAULT_SELFCHECK_FRAMES})",
    )
    p.add_argument(
        "--cache-dir",
        type=cli_args.path,
        help="engine cache directory (default: $CACHE_DIRECTORY/engines under systemd, "
        "else ~/.cache/sonomap/engines)",
    )
    p.add_argument("--fp32", action="store_true", help="build an FP32 engine instead of FP16")
    p.set_defaults(func=_run_selfcheck)  # SIGTERM as is: see export tensorrt


def _run_onnx(args) -> int:
    from export.onnx_command import run_onnx_export

    return run_onnx_export(args)


def _run_torchscript(args) -> int:
    from export.torchscript_export import run_torchscript_export

    return run_torchscript_export(args)


def _run_tensorrt(args) -> int:
    from export.onnx_export import refuse_overwrite
    from export.tensorrt_command import run_tensorrt_export

    check_cache_dir(args.out, "--out")  # a file here (the checkpoint too) is told --out is the cache folder
    if args.checkpoint:  # --via torch-tensorrt: the engine folder must not be the trained checkpoint
        refuse_overwrite(args.checkpoint, args.out)

    return run_tensorrt_export(args)


def _run_selfcheck(args) -> int:
    from export.selfcheck import run_selfcheck

    return run_selfcheck(args)
