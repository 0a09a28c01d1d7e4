"""`sonomap` subcommands of the registration stage (registered through the sonomap.commands entry point).

Heavy imports happen inside the handlers so that `sonomap --help` stays fast.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from edge_runtime import cli_args
from edge_runtime.atomic import check_apart
from edge_runtime.errors import SonomapError
from edge_runtime.stop_signals import sigterm_stops
from registration.case import CASE_EXAMPLE
from registration.cases import cli as cases_cli
from registration.sim import commands as sim_commands
from registration.wsi_mpp import MAX_PLAUSIBLE_MPP, MIN_PLAUSIBLE_MPP, mpp_argument

EXIT_SOME_FAILED = 1
# bench-slides: a level 0 narrower than 8 tiles is no scanner's slide, and the simulated core
# squeezed into it reaches slide scales register refuses
MIN_BENCH_WIDTH = 2048
# and wider than about 5 cm of glass at 0.25 µm/px is none either; a typo'd width would ask tifffile
# for billions of tiles' offsets before writing one
MAX_BENCH_WIDTH = 200_000
SIM_CASE = re.compile(r"sim_([0-9]{4,})")  # simulate-biopsy's case folders: sim_0000, sim_0001, ...


def check_sim_folders(args, out_flag: str) -> None:
    """ConfigError before anything is simulated: --masks that is --images (each image would be its own
    lesion mask), and an output folder (``out_flag``: --out, --work) that is a file, or is, lies
    inside or contains --images or --masks, whose files it would be mixed with."""
    images, masks = Path(args.images).resolve(), Path(args.masks).resolve()
    if images == masks:
        raise SonomapError(f"--masks {args.masks}: is --images {args.images}; give the lesion masks' folder")
    out = getattr(args, out_flag.removeprefix("--"))
    if out is None:  # the benchmarks' temp folder
        return
    if Path(out).exists() and not Path(out).is_dir():
        raise SonomapError(f"{out_flag} {out}: is a file, not a folder; give a folder")
    for flag in ("--images", "--masks"):
        check_apart(getattr(args, flag[2:]), out, flag, out_flag)


def refuse_stale_cases(out: str | Path, n: int) -> None:
    """SonomapError when ``out`` holds simulated cases (``sim_NNNN``) that a run of ``n`` cases would
    not write over, left by an earlier, larger run: register-batch would take them with this run's,
    truth from two runs mixed. Nothing is deleted: the user decides."""
    out = Path(out)
    if not out.is_dir():
        return
    stale = sorted(
        p.name
        for p in out.iterdir()
        if (m := SIM_CASE.fullmatch(p.name)) is not None and int(m.group(1)) >= n
    )
    if stale:
        raise SonomapError(
            f"--out {out}: holds {len(stale)} simulated case(s) of an earlier, larger run ({stale[0]}, ...) "
            f"that --n {n} would not replace, and register-batch would take them with this run's: give a "
            "new --out, or remove them"
        )


def _simulate(args) -> int:
    from registration.sim.biopsy_core import CoreParams
    from registration.sim.cases_out import check_cases_out
    from registration.sim.simulate import SimParams, simulate_cases, summary_lines

    check_sim_folders(args, "--out")
    check_cases_out(args.out)  # never among real cases, a dataset or a run: only its own earlier cases
    refuse_stale_cases(args.out, args.n)
    lab = None
    if args.lab:
        from registration.sim.lab import LabParams

        lab = LabParams()
    params = SimParams(core=CoreParams(mpp=args.wsi_mpp, lab=lab))
    summary = simulate_cases(args.images, args.masks, args.out, args.n, args.seed, params)
    print("\n".join(summary_lines(summary)))
    return 0


def _register(args) -> int:
    if args.example:
        print(CASE_EXAMPLE, end="")
        return 0
    if args.case is None or args.out is None:
        raise SonomapError("give CASE.yaml and --out DIR (or --example to print a full case.yaml)")
    from registration.pipeline import register_case

    rep = register_case(args.case, args.out)
    lab = rep["label"]
    print(
        f"{rep['case_id']}: label.png, qa.png, report.json in {args.out} | cancer {100 * lab['cancer_fraction']:.1f}% "
        f"of known, known {100 * lab['known_fraction']:.1f}% of band, quality {rep['quality']['score']:.2f} "
        f"(weakest: {rep['quality']['weakest']}), {len(rep['warnings'])} warning(s)"
    )
    sl = rep["slide"]
    print(f"  slide: read by {sl['reader']} ({sl['format']}), level {sl['level']} at {sl['level_mpp']} µm/px")
    for w in rep["warnings"]:
        print(f"  warning: {w}")
    return 0


def _register_batch(args) -> int:
    from registration.batch import register_batch
    from registration.batch_summary import summary_lines
    from registration.cases.status import find_case_files

    if args.min_quality is not None and not 0.0 <= args.min_quality <= 1.0:
        raise SonomapError(f"--min-quality {args.min_quality}: must be between 0 and 1")
    check_apart(args.cases, args.out, "CASES_DIR")  # the dataset's files never land among the cases
    if Path(args.cases).is_dir() and not find_case_files(Path(args.cases)):
        # a day with no biopsy captured: as `sonomap cases` says, nothing to do (a nightly job succeeds)
        print(f"0 case(s) under {args.cases}: nothing to register; {args.out} not touched")
        return 0
    s = register_batch(
        args.cases,
        args.out,
        seed=args.seed,
        progress=not args.no_progress,
        min_quality=args.min_quality,
        dedup=args.dedup,
    )
    print("\n".join(summary_lines(s, args.out)))
    # cases waiting for pathology are not failures: a batch of only those succeeds with nothing to do
    nothing = s["registered"] + s["skipped_done"] + s["held_for_review"] == 0
    if nothing and (s["failed"] or not s["pending"]):
        raise SonomapError(f"{args.cases}: no case could be registered (see {args.out}/batch_report.json)")
    return EXIT_SOME_FAILED if (s["failed"] and args.strict) else 0


def _bench(args) -> int:
    from registration.sim.bench import run_bench

    check_sim_folders(args, "--work")
    run_bench(args.images, args.masks, args.n, args.seed, args.work, timing=not args.no_timing, lab=args.lab)
    return 0


def _bench_slides(args) -> int:
    from registration.sim.bench_slides import run_slide_bench

    check_sim_folders(args, "--work")
    run_slide_bench(args.images, args.masks, args.width, args.repeats, args.seed, args.work)
    return 0


def _add_bench_inputs(p: argparse.ArgumentParser, work_help: str) -> None:
    """The benchmarks' inputs: real images + masks to simulate cases from, a seed, a work folder."""
    p.add_argument("--images", required=True, help="folder of 8-bit ultrasound images")
    p.add_argument("--masks", required=True, help="folder of lesion masks (same stems, 0/255)")
    p.add_argument("--seed", type=cli_args.seed, default=1, help="simulation seed (default 1)")
    p.add_argument("--work", default=None, help=work_help)


def register(sub) -> None:
    """Add this stage's subcommands to the top-level parser's subparsers."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "simulate-biopsy",
        help="make semi-synthetic biopsy cases with known truth from ultrasound images + masks",
        formatter_class=fmt,
        description="Make semi-synthetic biopsy cases from real ultrasound images with lesion masks (BUSI layout:\n"
        "an index.csv beside the images folder selects the malignant ones). Each case gets a needle\n"
        "tract through the lesion (10-40 deg, 14G/16G, notch 15-22 mm) with its echo drawn in, a bent,\n"
        "fragmented, shrunken core as a pyramidal OME-TIFF, QuPath GeoJSON + ASAP XML annotations,\n"
        "truth.png (lesion within the tract band) and CASES/<case_id>/case.yaml.",
    )
    p.add_argument("--images", required=True, help="folder of 8-bit ultrasound images")
    p.add_argument("--masks", required=True, help="folder of lesion masks (same stems, 0/255)")
    p.add_argument("--out", required=True, help="output CASES folder")
    p.add_argument("--n", type=int, default=10, help="number of cases (default 10)")
    p.add_argument("--seed", type=cli_args.seed, default=0, help="random seed (default 0)")
    p.add_argument(
        "--wsi-mpp",
        type=mpp_argument,
        default=4.0,
        help=f"microns per level-0 pixel of the simulated slides, {MIN_PLAUSIBLE_MPP:g}-{MAX_PLAUSIBLE_MPP:g} "
        "(default 4; larger = smaller files)",
    )
    p.add_argument(
        "--lab",
        action="store_true",
        help="add what a pathology lab does to a core: non-uniform shrinkage, end loss, frayed ends, "
        "fat, stubby fragments, pen marks, dust, bubbles, serial sections, wider bends, "
        "hand-drawn annotations (docs/registration.md lists the ranges)",
    )
    p.set_defaults(func=sigterm_stops(_simulate))

    p = sub.add_parser(
        "register",
        help="register one case's WSI annotation onto its needle-tract ultrasound image",
        formatter_class=fmt,
        description="Map the pathologist's cancer annotation of a biopsy core onto the ultrasound image of its\n"
        "needle tract. Writes OUT/label.png (ultrasound size; 0 tissue, 1 cancer, 255 unknown),\n"
        "OUT/qa.png, OUT/us.png and OUT/report.json (transform, scale, shrinkage, cancer fraction,\n"
        "detected needle, warnings). `sonomap register --example` prints a case.yaml with every key.",
    )
    p.add_argument("case", nargs="?", help="CASE.yaml")
    p.add_argument("--out", help="output folder")
    p.add_argument("--example", action="store_true", help="print a full case.yaml example and exit")
    p.set_defaults(func=sigterm_stops(_register))

    p = sub.add_parser(
        "register-batch",
        help="register every case under a folder into the training dataset layout",
        formatter_class=fmt,
        description="Register CASES_DIR/*/case.yaml into DATASET/images, DATASET/labels and DATASET/cases.csv\n"
        "(id,case_id,split; patients split 70/20/10, seeded). Resumable: cases already done are\n"
        "skipped. A bad case is reported in DATASET/batch_report.json and never stops the batch.\n"
        "Cases still waiting for their slide or annotation (e.g. captured biopsies) are listed as\n"
        "pending with what each lacks; they are not failures and a later run registers them.",
    )
    p.add_argument("cases", help="CASES_DIR")
    p.add_argument("--out", required=True, help="DATASET folder")
    p.add_argument("--seed", type=cli_args.seed, default=0, help="split seed (default 0)")
    p.add_argument("--strict", action="store_true", help="exit 1 when any case failed")
    p.add_argument(
        "--min-quality",
        type=float,
        default=None,
        metavar="Q",
        help="keep cases whose registration quality score (0-1, report.json) is below Q out of the "
        "dataset and list them for review",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--dedup",
        action="store_true",
        help="also join patients whose ultrasound images are near-duplicates (perceptual hash) "
        "into one split group, listed as merged_cases in batch_report.json and printed "
        "(needs imagehash, in the registration extra)",
    )
    p.set_defaults(func=sigterm_stops(_register_batch))

    p = sub.add_parser(
        "bench-registration",
        help="measure registration accuracy and speed on simulated cases",
        formatter_class=fmt,
        description="Simulate N cases from real images + masks, register them and print the target metrics:\n"
        "Dice vs truth over known pixels, along-tract boundary error (mm), known fraction of the band,\n"
        "needle auto-detection pass rate (angle <= 2 deg and tip <= 1 mm), and seconds per case for a\n"
        "WSI whose level 0 is 40k x 3k pixels.",
    )
    _add_bench_inputs(p, "keep the simulated cases here (default: a temp folder)")
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--no-timing", action="store_true", help="skip the 40k x 3k WSI timing case")
    p.add_argument(
        "--lab",
        action="store_true",
        help="simulate with every lab phenomenon (simulate-biopsy --lab) and print the lab targets, "
        "the linear-mapping floor and the per-phenomenon breakdown",
    )
    # SIGTERM as Ctrl-C: the cases are simulated and registered in this thread, and the temp folder
    # (no --work) is removed; --lab's peak-memory `register` child is killed and reaped on the way out
    p.set_defaults(func=sigterm_stops(_bench))

    p = sub.add_parser(
        "bench-slides",
        help="time and peak memory of `sonomap register` on a scanner-sized JPEG slide, per reader",
        formatter_class=fmt,
        description="Simulate one case, re-tile its slide as a JPEG-tiled Aperio SVS whose level 0 is --width px\n"
        "wide (levels 1/4/16/64), then run `sonomap register` on it with each slide reader (tifffile,\n"
        "OpenSlide) --repeats times: seconds per case, peak RSS of the process, read_slide seconds,\n"
        "and agreement of the label with the original slide's.",
    )
    _add_bench_inputs(p, "keep the slide and outputs here (default: a temp folder)")
    p.add_argument(
        "--width",
        type=cli_args.int_in_range(MIN_BENCH_WIDTH, MAX_BENCH_WIDTH),
        default=40000,
        help=f"level-0 width in pixels, {MIN_BENCH_WIDTH}-{MAX_BENCH_WIDTH} (default 40000)",
    )
    p.add_argument("--repeats", type=cli_args.at_least(1), default=3, help="runs per reader (default 3)")
    # SIGTERM keeps its default action: a stop taken here would leave the `sonomap register` child
    # that is being timed running (its wait4 is interrupted and nothing stops it), writing into --work
    # or into the temp folder the stop removes under it
    p.set_defaults(func=_bench_slides)

    sim_commands.register(sub)
    cases_cli.add_parser(sub)
