"""``sonomap crossval``: the parser and handler (registered by training/commands.py).

K-fold cross-validation by case of a training config on a dataset (:mod:`training.crossval`),
then the pooled out-of-fold report (:mod:`training.crossval_report`). Heavy imports happen inside
the handler so that ``sonomap --help`` stays fast.
"""

from __future__ import annotations

from edge_runtime import cli_args
from edge_runtime.stop_signals import sigterm_stops
from training.crossval import crossvalidate
from training.openmp import passive_openmp
from training.report_text import interval_text

DEFAULT_FOLDS = 5


def _crossval(args) -> int:
    passive_openmp()
    # deferred: matplotlib and scipy, which `sonomap --help` (it imports this module) does not need
    from training.crossval_report import write_pooled_report

    left = crossvalidate(
        args.config,
        args.data,
        args.out,
        folds=args.folds,
        seed=args.seed,
        max_minutes=args.max_minutes,
        only_fold=args.fold,
        calibrate=not args.no_calibration,
    )
    if left:
        print(
            f"fold(s) {', '.join(map(str, left))} of {args.folds} still to run; the pooled report is "
            f"written once every fold is evaluated ({args.out}/fold<k>/eval)"
        )
        return 0
    s = write_pooled_report(args.out, args.folds, args.seed)
    served = s["served"]
    print(
        f"{s['n_images']} out-of-fold images ({s['n_positive']} with cancer, {s['ci95_cases']} cases): "
        f"Dice malignant mean {s['dice_pos_mean']:.4f} [{interval_text(s, 'dice_pos_mean', 3, ', ')}], "
        f"pooled {s['dice_pooled']:.4f} [{interval_text(s, 'dice_pooled', 3, ', ')}]; "
        f"without cancer marked {s['n_negative_with_fp']} of {s['n_negative']}; "
        f"band ECE served {served['ece_pixel']:.4f}"
    )
    print(f"report written to {args.out}/report.md")
    return 0


def add_crossval_parser(sub) -> None:
    p = sub.add_parser(
        "crossval",
        help="K-fold cross-validation of a training config by case, pooled out of fold",
        description="Each fold of cases is the test split once, the next fold validates, the rest "
        "train: sonomap train, then (unless --no-calibration) calibrate temperature, curve and mask "
        "filter on validation, then evaluate on the fold. Writes OUT/fold<k>/{data,run,eval} and, "
        "once every fold is evaluated, OUT/summary.json, metrics.csv, reliability.png, report.md "
        "(every image scored once, 95 % intervals over cases). Folds already done are kept.",
    )
    p.add_argument("--config", required=True, help="training config YAML, e.g. configs/cpu-fast.yaml")
    p.add_argument("--data", required=True, help="dataset directory (its split column is not used)")
    p.add_argument("--out", required=True, help="cross-validation folder: new, or one to continue")
    p.add_argument(
        "--folds",
        type=cli_args.at_least(3),
        default=DEFAULT_FOLDS,
        help=f"K (default {DEFAULT_FOLDS}; at least 3)",
    )
    p.add_argument(
        "--fold",
        type=cli_args.at_least(1),
        default=None,
        metavar="K",
        help="run only fold K (1..--folds), e.g. one per process or machine; the last to finish "
        "writes the pooled report",
    )
    p.add_argument(
        "--seed", type=cli_args.seed, default=0, help="seed of the fold assignment and the bootstraps"
    )
    p.add_argument(
        "--max-minutes",
        type=cli_args.minutes,
        default=None,
        help="each fold's training budget in minutes (as sonomap train --max-minutes)",
    )
    p.add_argument(
        "--no-calibration",
        action="store_true",
        help="score each fold's model as trained (threshold 0.5, no temperature, curve or mask filter)",
    )
    p.set_defaults(func=sigterm_stops(_crossval))
