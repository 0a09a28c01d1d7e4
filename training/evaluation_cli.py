"""``sonomap evaluate`` and ``sonomap calibrate``: the parsers and handlers (registered by
training/commands.py).

evaluate: a checkpoint (or two, compared) on a split -> the report; calibrate: temperature, an
isotonic calibration curve or the mask filter fitted on the validation split -> the checkpoint's
manifest. Heavy imports happen inside the handlers so that ``sonomap --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

from edge_runtime import cli_args
from edge_runtime.errors import ConfigError
from edge_runtime.jsonfile import read_json
from edge_runtime.manifest import manifest_path
from edge_runtime.stop_signals import sigterm_stops
from training.mask_filter_fit import fit_mask_filter
from training.openmp import passive_openmp
from training.report_text import figure_text, interval_text


def _evaluate(args) -> int:
    passive_openmp()
    from training.evaluate import compare, evaluate  # deferred: torch, after passive_openmp()

    if args.compare and args.checkpoint:  # one of them would be dropped without a word
        raise ConfigError("give --checkpoint CK or --compare CK_A CK_B, not both")
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
        # named as report.md names them, by file name and digest: a folder above may be the patient's
        label_a, label_b = (_compared_label(args.out, part) for part in ("A", "B"))
        print(f"A = {label_a}, B = {label_b}, on split {args.split}:")
        print(table)
    else:
        if not args.checkpoint:
            raise ConfigError("give --checkpoint CK (or --compare CK_A CK_B)")
        summary = evaluate(
            args.checkpoint, args.data, args.split, args.out, device=args.device, seed=args.seed
        )
        print(
            f"dice (mean over images with cancer) {figure_text(summary['dice_pos_mean'])} "
            f"[95 % CI {interval_text(summary, 'dice_pos_mean', 3, ', ')}], "
            f"dice (pooled) {figure_text(summary['dice_pooled'])} "
            f"[{interval_text(summary, 'dice_pooled', 3, ', ')}], pixel accuracy (pooled) "
            f"{figure_text(summary['pixel_accuracy_pooled'])}, recall (pooled) {figure_text(summary['recall_pooled'])}"
        )
        print(
            f"images without cancer with any false cancer pixel: {summary['n_negative_with_fp']} of "
            f"{summary['n_negative']} [{interval_text(summary, 'benign_fp_share', 3, ', ')}]"
            + (
                f" ({summary['n_unlabelled']} image(s) with no labelled pixel left out)"
                if summary.get("n_unlabelled")
                else ""
            )
            + "; "
            f"calibration (T {summary['temperature']:.4f}): pixel ECE "
            f"{figure_text(summary['ece_pixel'])} [{interval_text(summary, 'ece_pixel', 3, ', ')}], Brier "
            f"{figure_text(summary['brier_pixel'])}; image ECE (max) "
            f"{figure_text(summary['ece_image_max'])}"
            + (
                f"; uncalibrated pixel ECE {figure_text(summary['uncalibrated_ece_pixel'])}"
                if "uncalibrated_ece_pixel" in summary
                else ""
            )
        )
    print(f"report written to {args.out}/report.md")
    return 0


def _compared_label(out, part: str) -> str:
    """Model PART ("A" or "B") of the comparison written to OUT, as its report.md names it."""
    from training.compare_report import checkpoint_label  # deferred: scipy

    return checkpoint_label(read_json(Path(out) / part / "summary.json"))


def _manifest_name(args) -> str:
    """The file name of the manifest calibrate wrote beside ``--checkpoint``: stdout names files as
    the manifests and reports do, without the folders above them (they may be named after a patient)."""
    return f"{manifest_path(Path(args.checkpoint)).name} beside --checkpoint"


def _fit_mask_filter(args) -> int:
    r = fit_mask_filter(args.checkpoint, args.data, args.split, args.device)
    before, after = r["before"], r["after"]
    print(
        f"mask filter: {r['filter']} (best of {r['candidates']} on split {args.split}); per-image score "
        f"{before['score']:.4f} -> {after['score']:.4f}, malignant Dice mean "
        f"{before['dice_malignant_mean']:.4f} -> {after['dice_malignant_mean']:.4f}, images without cancer "
        f"with false pixels {before['negatives_with_fp']} -> {after['negatives_with_fp']} of {after['negatives']}"
    )
    print(f"written to {_manifest_name(args)} (mask_filter); the runtime and evaluate apply it")
    return 0


def _calibrate(args) -> int:
    passive_openmp()
    if args.method == "mask-filter":
        return _fit_mask_filter(args)
    from training.temperature import calibrate_checkpoint  # deferred: torch, after passive_openmp()

    r = calibrate_checkpoint(args.checkpoint, args.data, args.split, args.device, args.method)
    if args.method == "curve":
        print(
            f"calibration curve ({r['knots']} knots) fitted on {r['pixels']} decision-band pixels of split "
            f"{args.split} (NLL {r['nll_before']:.4f} -> {r['nll_after']:.4f}); pixel ECE "
            f"{r['ece_pixel_before']:.4f} -> {r['ece_pixel_after']:.4f}, image ECE (max) "
            f"{r['ece_image_max_before']:.4f} -> {r['ece_image_max_after']:.4f}; threshold "
            f"{r['threshold_before']} -> {r['threshold']:.4f} (the mask stays where the cancer logit wins, "
            "up to boundary pixels the resize moves)"
        )
        print(
            f"written to {_manifest_name(args)} (calibration_curve, threshold); export folds it into the graph"
        )
    else:
        print(
            f"temperature {r['temperature']:.4f} fitted on {r['pixels']} decision-band pixels of split "
            f"{args.split} (NLL {r['nll_before']:.4f} -> {r['nll_after']:.4f}); pixel ECE "
            f"{r['ece_pixel_before']:.4f} -> {r['ece_pixel_after']:.4f}, image ECE (max) "
            f"{r['ece_image_max_before']:.4f} -> {r['ece_image_max_after']:.4f}; threshold {r['threshold']} "
            f"kept{_kept_note(r['threshold'])}"
        )
        print(f"written to {_manifest_name(args)} (temperature); export folds it into the graph")
    if r["mask_filter_removed"]:
        print(
            f"mask filter removed ({r['mask_filter_removed']}, and its record extra.mask_filter_fit): it was "
            "fitted on the previous probabilities; run `sonomap calibrate --method mask-filter` again"
        )
    return 0


def _kept_note(threshold: float) -> str:
    """What keeping ``threshold`` means for the mask: nothing at logit parity (0.5), else a warning."""
    from training.isotonic import LOGIT_PARITY_THRESHOLD  # deferred: scipy and torch, as the command's

    if threshold == LOGIT_PARITY_THRESHOLD:
        return " (the same mask: p >= 0.5 where the cancer logit wins, whatever T)"
    return (
        " as a probability: unlike 0.5 its mask moves with the temperature; check it on validation "
        "(sonomap evaluate) or train with eval.threshold 0.5"
    )


def add_evaluate_parser(sub) -> None:
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
    p.add_argument(
        "--out",
        required=True,
        help="report directory to write: new, empty or an earlier report (replaced once the new one is "
        "complete); never a training run's folder",
    )
    p.add_argument(
        "--seed",
        type=cli_args.seed,
        default=0,
        help="seed of the case bootstraps (the 95 %% intervals, --compare's CIs)",
    )
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    # SIGTERM (`timeout`, a batch scheduler) stops evaluate as Ctrl-C does, so the hidden folder the
    # report is staged in is removed and the CLI says `stopped by SIGTERM`, not a silent 143
    p.set_defaults(func=sigterm_stops(_evaluate))


def add_calibrate_parser(sub) -> None:
    p = sub.add_parser(
        "calibrate",
        help="fit temperature scaling, a calibration curve or the mask filter on the validation split",
        description="Fit the calibration of the cancer probability on validation pixels within 25 px "
        "of the cancer truth or the predicted mask, and write it into CK.yaml. --method temperature: "
        "one T (logits / T before the softmax) by minimising the NLL; the threshold 0.5 keeps its "
        "mask up to boundary pixels. --method curve: an isotonic (non-decreasing, piecewise-linear) map from the logit "
        "margin to the probability, for models one T cannot calibrate; the threshold becomes the "
        "curve's value at logit parity, so the mask stays where the cancer logit wins (the bilinear resize "
        "to the image can move a boundary pixel). `export` folds either into the "
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
    # SIGTERM stops calibrate as Ctrl-C does: the manifest's hidden temp file is removed and the
    # manifest stays as it was, and the CLI says `stopped by SIGTERM`, not a silent 143
    p.set_defaults(func=sigterm_stops(_calibrate))
