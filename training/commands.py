"""`sonomap` subcommands of the training stage (registered through the sonomap.commands entry point).

prepare-busi, pretrain, train, evaluate (incl. --compare), concordance, calibrate, crossval, upgrade-checkpoint
and bench-train (evaluate and calibrate: :mod:`training.evaluation_cli`; concordance:
:mod:`training.concordance.cli`; crossval: :mod:`training.crossval_cli`).
Heavy imports happen inside the handlers so that `sonomap --help` stays fast.
"""

from __future__ import annotations

import logging
from pathlib import Path

# Light: imagehash is imported only when hashing starts.
from edge_runtime import cli_args
from edge_runtime.atomic import check_not_read, check_output_file
from edge_runtime.jsonfile import atomic_write_json
from edge_runtime.near_duplicates import DHASH_MAX, PHASH_MAX
from edge_runtime.stop_signals import sigterm_as_interrupt, sigterm_stops
from training import crossval_cli, evaluation_cli
from training.busi import HASH_BITS
from training.busi_split import IMAGE, SPLIT_UNITS
from training.concordance import cli as concordance_cli
from training.config_schema import MAX_LR, lr_argument
from training.openmp import passive_openmp
from training.same_lesion import SHIPPED_LIST

NO_LIST = "none"  # prepare-busi --same-lesion none: the hashes alone
TRAIN_LOGGER = "sonomap.train"  # training.train's logger (its epoch lines)


def _prepare_busi(args) -> int:
    from training.busi import DUPLICATES_PNG, prepare_busi

    counts = prepare_busi(
        args.busi,
        args.out,
        seed=args.seed,
        dedup=not args.no_dedup,
        phash_max=args.phash_max,
        dhash_max=args.dhash_max,
        same_lesion=None if args.same_lesion == NO_LIST else Path(args.same_lesion),
        split_unit=args.split_unit,
    )
    for split in ("train", "val", "test"):
        print(f"{split}: {counts.get(split, {})}")
    print(
        f"{counts['duplicate_pairs']} near-duplicate pairs and {counts['same_lesion_pairs']} listed "
        f"same-lesion pairs, {counts['groups']} cases, split by {counts['split_unit']}; left out (duplicates "
        f"with both labels): {', '.join(counts['excluded']) or 'none'} (see {args.out}/duplicates.csv, "
        # the contact sheet exists only when there are pairs to show
        + (f"{DUPLICATES_PNG}, " if (Path(args.out) / DUPLICATES_PNG).is_file() else "")
        + "excluded.csv)"
    )
    print(f"dataset written to {args.out}")
    return 0


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

    with sigterm_as_interrupt():
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

    with sigterm_as_interrupt():
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


def _upgrade_checkpoint(args) -> int:
    from training.checkpoint_upgrade import upgrade_command

    print(upgrade_command(args.checkpoint, args.out, args.trust_checkpoint))
    return 0


def _bench_train(args) -> int:
    passive_openmp()
    from training.bench import bench_train

    if args.json:  # written at the end: a path that cannot be written fails now, not after the benchmark
        check_output_file(args.json, "--json")
        check_not_read(args.json, "--json", {"--config": args.config, "--data": args.data})
    result = bench_train(args.config, args.data, args.iters, args.warmup, args.device, args.rounds)
    if args.json:
        atomic_write_json(args.json, result)
    for variant in ("reference", "sonomap"):
        r = result[variant]
        print(
            f"{variant:9s}: {r['images_per_s']:.2f} images/s, peak memory {r['peak_mib']:.0f} MiB "
            f"(median of {args.rounds} rounds)"
        )
    print(
        f"ratio sonomap/reference: throughput {result['throughput_ratio']:.2f}x, "
        f"peak memory {result['peak_memory_ratio']:.2f}x"
    )
    return 0


def register(sub) -> None:
    """Add this stage's subcommands to the top-level parser's subparsers."""
    p = sub.add_parser(
        "prepare-busi",
        help="convert the BUSI release into the dataset layout",
        description="BUSI (images/, masks/, index.csv) -> DATASET/images, labels (malignant lesion = 1 cancer, else 0), "
        "cases.csv (split seeded, stratified by label: --split-unit). Near-duplicate images (perceptual hash) form one "
        "case; duplicates with both labels are left out (DATASET/excluded.csv).",
    )
    p.add_argument("--busi", required=True, help="BUSI directory with images/, masks/, index.csv")
    p.add_argument("--out", required=True, help="dataset directory to write (apart from --busi)")
    p.add_argument("--seed", type=cli_args.seed, default=0, help="split seed (default 0)")
    p.add_argument(
        "--phash-max",
        type=cli_args.int_in_range(0, HASH_BITS),
        default=PHASH_MAX,
        help=f"near-duplicate when the DCT hash distance (0..{HASH_BITS} bits) is <= this "
        f"(default {PHASH_MAX})",
    )
    p.add_argument(
        "--dhash-max",
        type=cli_args.int_in_range(0, HASH_BITS),
        default=DHASH_MAX,
        help=f"... or the gradient hash distance (0..{HASH_BITS}) is <= this (default {DHASH_MAX})",
    )
    p.add_argument(
        "--same-lesion",
        metavar="CSV",
        default=str(SHIPPED_LIST),
        help="same-lesion pairs found by eye (id_a,id_b,note), each joined into one case like a "
        f"near-duplicate (default: the shipped BUSI list; '{NO_LIST}': the hashes alone)",
    )
    p.add_argument(
        "--no-dedup",
        action="store_true",
        help="one case per image, no duplicate check (a leaky per-image split; for comparisons only)",
    )
    p.add_argument(
        "--split-unit",
        choices=SPLIT_UNITS,
        default=IMAGE,
        help="image (default): images drawn 70/20/10, then each case moved whole into the earliest split "
        "of its images (smaller val/test); group: the cases drawn 70/20/10 (for sets of many frames per lesion)",
    )
    p.set_defaults(func=sigterm_stops(_prepare_busi))

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
    p.set_defaults(func=_train)

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
    p.set_defaults(func=_pretrain)

    evaluation_cli.add_evaluate_parser(sub)
    concordance_cli.add_parser(sub)
    evaluation_cli.add_calibrate_parser(sub)
    crossval_cli.add_crossval_parser(sub)

    p = sub.add_parser(
        "upgrade-checkpoint",
        help="rewrite a trusted older checkpoint in the weights-only format",
        description="Checkpoints are read weights-only (tensors and plain values; loading never runs "
        "code). An older or foreign file that needs full unpickling is refused; if you "
        "trust its origin, this rewrites it once in the safe format.",
    )
    p.add_argument("checkpoint", help="checkpoint file (best.pt / last.pt)")
    p.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="confirm you trust the file: unpickling it can run any code it carries",
    )
    p.add_argument(
        "--out",
        default=None,
        help="write here instead of in place (a new file: an existing one is refused; in place keeps FILE.orig)",
    )
    p.set_defaults(func=_upgrade_checkpoint)

    p = sub.add_parser(
        "bench-train",
        help="training throughput vs the torchvision reference loop",
        description="Images/s and peak memory of sonomap's training step vs a torchvision "
        "references/segmentation-style loop, same model, data and machine.",
    )
    p.add_argument("--config", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--iters", type=cli_args.at_least(1), default=10, help="timed iterations per round")
    p.add_argument("--warmup", type=cli_args.at_least(0), default=2, help="untimed iterations first")
    p.add_argument(
        "--rounds",
        type=cli_args.at_least(1),
        default=3,
        help="alternating rounds per variant (median reported)",
    )
    p.add_argument("--json", default=None, help="also write the full result as JSON")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.set_defaults(func=_bench_train)
