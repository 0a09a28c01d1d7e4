"""``sonomap concordance``: the parser and handler (registered by training/commands.py).

Heavy imports happen inside the handler so that ``sonomap --help`` stays fast.
"""

from __future__ import annotations

from edge_runtime import cli_args
from edge_runtime.stop_signals import sigterm_stops

DEFAULT_CORE_THRESHOLD = 0.05  # the model "calls" a core cancer at 5% of its known band
SKIPS_SHOWN = 3  # cases not scored whose reasons the console line gives (report.md lists every one)


def _run(args) -> int:
    from training.concordance.run import concordance

    s = concordance(args.cases, args.dataset, args.out, args.core_threshold, args.seed)
    for name, g in s["models"].items():
        sc, c = g["core_scores"], g["core_counts"]
        print(
            f"model {name}: {g['n_cores']} cores ({g['n_patients']} patients), core counts tp {c['tp']} "
            f"fp {c['fp']} fn {c['fn']} tn {c['tn']}; sensitivity {sc['sensitivity']['value']:.3f}, "
            f"specificity {sc['specificity']['value']:.3f}, AUC {sc['auc']['value']:.3f}; "
            f"Dice along the tract {g['pixel']['dice_mean']:.3f}"
        )
    if s["skipped"]:
        shown = "; ".join(f"{x['case']}: {x['reason']}" for x in s["skipped"][:SKIPS_SHOWN])
        more = f"; {len(s['skipped']) - SKIPS_SHOWN} more" if len(s["skipped"]) > SKIPS_SHOWN else ""
        print(f"not scored: {len(s['skipped'])} case(s): {shown}{more} (report.md lists each)")
    print(f"report written to {args.out}/report.md")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "concordance",
        help="live prediction at each captured biopsy vs the pathology registered onto it",
        description="For each captured biopsy (CASES, from `sonomap live/replay --cases`) registered by "
        "`sonomap register-batch CASES --out DATASET`: Dice, sensitivity and specificity along the "
        "core's band, predicted vs observed cancer fraction, the core-level call vs pathology; over "
        "cores: sensitivity, specificity and AUC with patient-bootstrap CIs, scatter and Bland-Altman "
        "plots, per model version. Writes REPORT/report.md, concordance.json, cores.csv, PNGs.",
    )
    p.add_argument("cases", help="folder of captured cases")
    p.add_argument("--dataset", required=True, help="register-batch output folder (DATASET)")
    p.add_argument("--out", required=True, help="report directory to write")
    p.add_argument(
        "--core-threshold",
        type=float,
        default=DEFAULT_CORE_THRESHOLD,
        help="call a core cancer when the prediction covers this share of its known band (default 0.05)",
    )
    p.add_argument("--seed", type=cli_args.seed, default=0, help="bootstrap seed")
    p.set_defaults(func=sigterm_stops(_run))
