"""``sonomap train`` and ``sonomap pretrain``: the parsers and handlers (registered by
training/commands.py).

train: a config and a dataset -> a run folder with checkpoints and metrics (:mod:`training.train`);
pretrain: self-supervised restoration on unlabelled images -> RUN/pretrained.pt
(:mod:`training.pretrain`). Heavy imports (torch) happen inside the handlers so that
``sonomap --help`` stays fast.
"""

from __future__ import annotations

import logging

from edge_runtime import cli_args
from edge_runtime.stop_signals import sigterm_stops
from training.config_schema import MAX_LR, lr_argument
from training.openmp import passive_openmp

TRAIN_LOGGER = "sonomap.train"  # training.train's logger (its epoch lines)


def _training_process() -> None:
    """Set up a process that trains: OpenMP threads that sleep when idle, and epoch lines shown."""
    passive_openmp()
    # Epoch lines are progress (INFO), not warnings; the training commands show them without --verbose.
    logging.getLogger(TRAIN_LOGGER).setLevel(logging.INFO)


def _train(args) -> int:
    _training_process()
    from training.distributed import launched_as_main
    from training.run_summary import result_lines
    from training.train import run

    result = run(
        args.config,
        args.data,
        args.out,
        max_minutes=args.max_minutes,
        resume=args.resume,
        deterministic=args.deterministic,
        backbone_weights=args.backbone_weights,
        device=args.device,
        show_progress=not args.no_progress,
        stop_after_epochs=args.stop_after_epochs,
        init_from=args.init_from,
    )
    if not launched_as_main():  # under torchrun the other ranks' results are partial (they never validate)
        return 0
    for line in result_lines(result, args.out):
        print(line)
    return 0


def _pretrain(args) -> int:
    _training_process()
    from training.pretrain import run

    result = run(
        args.config,
        args.data,
        args.out,
        images=args.images,
        epochs=args.epochs,
        max_minutes=args.max_minutes,
        lr=args.lr,
    )
    print(
        f"{result['epochs_done']} epochs on {result['images']} images, restoration loss "
        f"{result['first_loss']:.5f} -> {result['final_loss']:.5f}; wrote {args.out}/pretrained.pt"
    )
    return 0


def add_train_parsers(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a segmentation model",
        description="Train on DATASET (images/, labels/, cases.csv) with a config YAML; writes "
        "RUN/best.pt + best.pt.yaml (best validation Dice), RUN/last.pt, RUN/metrics.csv. "
        "For several GPUs/nodes launch with torchrun.",
    )
    p.add_argument("--config", required=True, help="config YAML, e.g. configs/cpu-fast.yaml")
    p.add_argument("--data", required=True, help="dataset directory")
    p.add_argument(
        "--out", required=True, help="run directory to write: a new one, or the run to continue with --resume"
    )
    p.add_argument(
        "--max-minutes",
        type=cli_args.minutes,
        default=None,
        help="time budget in minutes (> 0, at most 30 days; default none); the lr schedule anneals to zero at the budget",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue from RUN/last.pt (same config and dataset)"
    )
    p.add_argument("--deterministic", action="store_true", help="use deterministic algorithms")
    p.add_argument(
        "--backbone-weights", default=None, help="local backbone state-dict file (e.g. ImageNet ResNet)"
    )
    p.add_argument(
        "--init-from",
        default=None,
        metavar="CK",
        help="start from this checkpoint's weights (fine-tuning; same model config); ignored with --resume",
    )
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--stop-after-epochs",
        type=cli_args.at_least(1),
        default=None,
        help="end this session after N epochs (e.g. a cluster time slot); continue with --resume",
    )
    p.set_defaults(func=sigterm_stops(_train))

    p = sub.add_parser(
        "pretrain",
        help="self-supervised pretraining on unlabelled images (image restoration)",
        description="Models Genesis restoration pretext on DATASET's train-split images (labels "
        "unused; val and test never read) plus any --images folders; writes RUN/pretrained.pt, the "
        "weights without the segmentation head. Then: sonomap train --init-from RUN/pretrained.pt.",
    )
    p.add_argument("--config", required=True, help="the training config the weights are for")
    p.add_argument("--data", required=True, help="dataset directory (its train split's images)")
    p.add_argument("--out", required=True, help="run directory to write")
    p.add_argument("--images", action="append", default=[], metavar="DIR", help="more unlabelled images")
    p.add_argument("--epochs", type=cli_args.at_least(1), default=200, help="upper bound (default 200)")
    p.add_argument(
        "--max-minutes",
        type=cli_args.minutes,
        default=None,
        help="time budget in minutes (> 0, at most 30 days; default none); lr anneals to zero at it",
    )
    p.add_argument(
        "--lr",
        type=lr_argument,
        default=1e-3,
        help=f"AdamW learning rate, > 0 and <= {MAX_LR:g} (default 1e-3)",
    )
    p.set_defaults(func=sigterm_stops(_pretrain))
