"""`sonomap` subcommands of the training stage (registered through the sonomap.commands entry point).

prepare-busi, train, evaluate (incl. --compare), concordance, calibrate, upgrade-checkpoint and bench-train. Heavy imports happen
inside the handlers so that `sonomap --help` stays fast.
"""

from __future__ import annotations

import json
import logging
import os

# Light: imagehash is imported only when hashing starts.
from edge_runtime.near_duplicates import DHASH_MAX, PHASH_MAX
from training.concordance import cli as concordance_cli

# GNU OpenMP threads spin while waiting; on a small CPU shared with other processes the
# spinning threads steal the cores the work needs (measured here: 0.8 vs 3.0 images/s on
# 2 contended cores). PASSIVE makes waiting threads sleep. Must be set before torch loads.
OMP_WAIT_ENV = "OMP_WAIT_POLICY"
TRAIN_LOGGER = "sonomap.train"  # training.train's logger (its epoch lines)


def _passive_openmp() -> None:
    os.environ.setdefault(OMP_WAIT_ENV, "PASSIVE")


def _prepare_busi(args) -> int:
    from training.busi import prepare_busi

    counts = prepare_busi(
        args.busi,
        args.out,
        seed=args.seed,
        dedup=not args.no_dedup,
        phash_max=args.phash_max,
        dhash_max=args.dhash_max,
    )
    for split in ("train", "val", "test"):
        print(f"{split}: {counts.get(split, {})}")
    print(
        f"{counts['duplicate_pairs']} near-duplicate pairs, {counts['groups']} cases; left out (duplicates "
        f"with both labels): {', '.join(counts['excluded']) or 'none'} (see {args.out}/duplicates.csv, "
        f"duplicates.png, excluded.csv)"
    )
    print(f"dataset written to {args.out}")
    return 0


def _train(args) -> int:
    _passive_openmp()
    # Epoch lines are progress (INFO), not warnings; the train command shows them without --verbose.
    logging.getLogger(TRAIN_LOGGER).setLevel(logging.INFO)
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
    if result.get("best") is not None:
        print(json.dumps(result["best"]))
    print(f"best checkpoint: {args.out}/best.pt (manifest best.pt.yaml), resume state: {args.out}/last.pt")
    return 0


def _evaluate(args) -> int:
    _passive_openmp()
    from training.evaluate import compare, evaluate

    if args.compare:
        table = compare(
            args.compare[0],
            args.compare[1],
            args.data,
            args.split,
            args.out,
            seed=args.seed,
            device=args.device,
        )
        print(table)
    else:
        if not args.checkpoint:
            from edge_runtime.errors import ConfigError

            raise ConfigError("give --checkpoint CK (or --compare CK_A CK_B)")
        summary = evaluate(args.checkpoint, args.data, args.split, args.out, device=args.device)
        print(
            f"dice (mean over images with cancer) {summary['dice_pos_mean']:.4f}, "
            f"dice (pooled) {summary['dice_pooled']:.4f}, pixel accuracy (pooled) "
            f"{summary['pixel_accuracy_pooled']:.4f}, recall (pooled) {summary['recall_pooled']:.4f}"
        )
        print(
            f"images without cancer with any false cancer pixel: {summary['n_negative_with_fp']} of "
            f"{summary['n_negative']}; calibration (T {summary['temperature']:.4f}): pixel ECE "
            f"{summary['ece_pixel']:.4f}, Brier {summary['brier_pixel']:.4f}; image ECE (max) "
            f"{summary['ece_image_max']:.4f}"
            + (
                f"; uncalibrated pixel ECE {summary['uncalibrated_ece_pixel']:.4f}"
                if "uncalibrated_ece_pixel" in summary
                else ""
            )
        )
    print(f"report written to {args.out}/report.md")
    return 0


def _fit_mask_filter(args) -> int:
    from training.mask_filter_fit import fit_mask_filter

    r = fit_mask_filter(args.checkpoint, args.data, args.split, args.device)
    before, after = r["before"], r["after"]
    print(
        f"mask filter: {r['filter']} (best of {r['candidates']} on split {args.split}); per-image score "
        f"{before['score']:.4f} -> {after['score']:.4f}, malignant Dice mean "
        f"{before['dice_malignant_mean']:.4f} -> {after['dice_malignant_mean']:.4f}, images without cancer "
        f"with false pixels {before['negatives_with_fp']} -> {after['negatives_with_fp']} of {after['negatives']}"
    )
    print(f"written to {args.checkpoint}.yaml (mask_filter); the runtime and evaluate apply it")
    return 0


def _calibrate(args) -> int:
    _passive_openmp()
    if args.method == "mask-filter":
        return _fit_mask_filter(args)
    from training.temperature import calibrate_checkpoint

    r = calibrate_checkpoint(args.checkpoint, args.data, args.split, args.device, args.method)
    if args.method == "curve":
        print(
            f"calibration curve ({r['knots']} knots) fitted on {r['pixels']} decision-band pixels of split "
            f"{args.split} (NLL {r['nll_before']:.4f} -> {r['nll_after']:.4f}); pixel ECE "
            f"{r['ece_pixel_before']:.4f} -> {r['ece_pixel_after']:.4f}, image ECE (max) "
            f"{r['ece_image_max_before']:.4f} -> {r['ece_image_max_after']:.4f}; threshold "
            f"{r['threshold_before']} -> {r['threshold']:.4f} (same mask: where the cancer logit wins)"
        )
        print(
            f"written to {args.checkpoint}.yaml (calibration_curve, threshold); export folds it into the graph"
        )
        return 0
    print(
        f"temperature {r['temperature']:.4f} fitted on {r['pixels']} decision-band pixels of split {args.split} "
        f"(NLL {r['nll_before']:.4f} -> {r['nll_after']:.4f}); pixel ECE {r['ece_pixel_before']:.4f} -> "
        f"{r['ece_pixel_after']:.4f}, image ECE (max) {r['ece_image_max_before']:.4f} -> "
        f"{r['ece_image_max_after']:.4f}; threshold {r['threshold']} kept"
    )
    print(f"written to {args.checkpoint}.yaml (temperature); export folds it into the graph")
    return 0


def _upgrade_checkpoint(args) -> int:
    from edge_runtime.errors import ConfigError
    from training.checkpoint import upgrade_checkpoint

    if not args.trust_checkpoint:
        raise ConfigError(
            f"{args.checkpoint}: converting it unpickles the file, which can run any code in it; "
            "add --trust-checkpoint only if you know where it came from"
        )
    out = upgrade_checkpoint(args.checkpoint, args.out)
    print(f"{out}: weights-only checkpoint written" + ("" if args.out else f" (original kept as {out}.orig)"))
    return 0


def _bench_train(args) -> int:
    _passive_openmp()
    from training.bench import bench_train

    result = bench_train(args.config, args.data, args.iters, args.warmup, args.device, args.rounds)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
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
        description="BUSI (images/, masks/, index.csv) -> DATASET/images, labels (malignant lesion "
        "= 1 cancer, everything else 0), cases.csv split 70/20/10 by case, seeded. "
        "Near-duplicate images (perceptual hash) form one case; duplicates with both "
        "labels are left out (DATASET/excluded.csv).",
    )
    p.add_argument("--busi", required=True, help="BUSI directory with images/, masks/, index.csv")
    p.add_argument("--out", required=True, help="dataset directory to write")
    p.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    p.add_argument(
        "--phash-max",
        type=int,
        default=PHASH_MAX,
        help=f"near-duplicate when the DCT hash distance (of 64 bits) is <= this (default {PHASH_MAX})",
    )
    p.add_argument(
        "--dhash-max",
        type=int,
        default=DHASH_MAX,
        help=f"... or the gradient hash distance is <= this (default {DHASH_MAX})",
    )
    p.add_argument(
        "--no-dedup",
        action="store_true",
        help="one case per image, no duplicate check (a leaky per-image split; for comparisons only)",
    )
    p.set_defaults(func=_prepare_busi)

    p = sub.add_parser(
        "train",
        help="train a segmentation model",
        description="Train on DATASET (images/, labels/, cases.csv) with a config YAML; writes "
        "RUN/best.pt + best.pt.yaml (best validation Dice), RUN/last.pt, RUN/metrics.csv. "
        "For several GPUs/nodes launch with torchrun.",
    )
    p.add_argument("--config", required=True, help="config YAML, e.g. configs/cpu-fast.yaml")
    p.add_argument("--data", required=True, help="dataset directory")
    p.add_argument("--out", required=True, help="run directory to write")
    p.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="time budget; the lr schedule anneals to zero at the budget",
    )
    p.add_argument("--resume", action="store_true", help="continue from RUN/last.pt")
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
        type=int,
        default=None,
        help="end this session after N epochs (e.g. a cluster time slot); continue with --resume",
    )
    p.set_defaults(func=_train)

    p = sub.add_parser(
        "evaluate",
        help="evaluate a checkpoint (or compare two) on a split",
        description="Per-image confusion counts -> metrics.csv, pred/<id>.png, report.md, plots; "
        "calibration (ECE, Brier, reliability.png) over pixels near the truth or the "
        "prediction and per image. "
        "--compare CK_A CK_B adds paired Wilcoxon, paired t-test and case bootstrap CIs.",
    )
    p.add_argument(
        "--checkpoint", help="checkpoint (best.pt) or folded ONNX model (model.onnx), with its manifest"
    )
    p.add_argument("--compare", nargs=2, metavar=("CK_A", "CK_B"), help="compare two checkpoints")
    p.add_argument("--data", required=True, help="dataset directory")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--out", required=True, help="report directory to write")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed for --compare")
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    p.set_defaults(func=_evaluate)

    concordance_cli.add_parser(sub)

    p = sub.add_parser(
        "calibrate",
        help="fit temperature scaling or a calibration curve on the validation split",
        description="Fit the calibration of the cancer probability on validation pixels within 25 px "
        "of the cancer truth or the predicted mask, and write it into CK.yaml. --method temperature: "
        "one T (logits / T before the softmax) by minimising the NLL; the threshold 0.5 keeps its "
        "mask. --method curve: an isotonic (non-decreasing, piecewise-linear) map from the logit "
        "margin to the probability, for models one T cannot calibrate; the threshold becomes the "
        "curve's value at logit parity, so the mask is unchanged. `export` folds either into the "
        "graph so every backend shows calibrated probabilities. --method mask-filter (after the "
        "probability's calibration; CK may also be a folded ONNX file): choose which parts of the "
        "thresholded mask count as a finding (minimum peak probability, minimum part size, largest part "
        "only) by the mean per-image score over the split (Dice with cancer; without: 1 if clean, else 0).",
    )
    p.add_argument(
        "--method",
        default="temperature",
        choices=("temperature", "curve", "mask-filter"),
        help="temperature scaling (default), an isotonic calibration curve, or the mask filter",
    )
    p.add_argument(
        "--checkpoint", required=True, help="checkpoint (best.pt) or, for mask-filter, folded ONNX"
    )
    p.add_argument("--data", required=True, help="dataset directory")
    p.add_argument(
        "--split",
        default="val",
        choices=("train", "val", "test"),
        help="split to fit on (default val; never the test split you report)",
    )
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    p.set_defaults(func=_calibrate)

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
    p.add_argument("--out", default=None, help="write here instead of in place (in place keeps FILE.orig)")
    p.set_defaults(func=_upgrade_checkpoint)

    p = sub.add_parser(
        "bench-train",
        help="training throughput vs the torchvision reference loop",
        description="Images/s and peak memory of sonomap's training step vs a torchvision "
        "references/segmentation-style loop, same model, data and machine.",
    )
    p.add_argument("--config", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--iters", type=int, default=10, help="timed iterations per round")
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations first")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds per variant (median reported)")
    p.add_argument("--json", default=None, help="also write the full result as JSON")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.set_defaults(func=_bench_train)
