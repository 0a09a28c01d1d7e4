"""`sonomap` subcommands of the training stage (registered through the sonomap.commands entry point).

prepare-busi, train, pretrain, evaluate (incl. --compare), concordance, calibrate, crossval, upgrade-checkpoint
and bench-train. This module registers them all and holds the last two; the others' parsers and
handlers are :mod:`training.busi_cli` (prepare-busi), :mod:`training.train_cli` (train, pretrain),
:mod:`training.evaluation_cli` (evaluate, calibrate), :mod:`training.concordance.cli` and
:mod:`training.crossval_cli`. Heavy imports happen inside the handlers so that `sonomap --help` stays fast.
"""

from __future__ import annotations

from edge_runtime import cli_args
from edge_runtime.atomic import check_not_read, check_output_file
from edge_runtime.jsonfile import atomic_write_json
from edge_runtime.stop_signals import sigterm_stops
from training import busi_cli, crossval_cli, evaluation_cli, train_cli
from training.concordance import cli as concordance_cli
from training.openmp import passive_openmp


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
    busi_cli.add_prepare_busi_parser(sub)
    train_cli.add_train_parsers(sub)
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
    p.set_defaults(func=sigterm_stops(_upgrade_checkpoint))

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
    p.set_defaults(func=sigterm_stops(_bench_train))
