"""`sonomap simulate-procedure` and `sonomap simulate-pathology`: a biopsy procedure with known truth,
and the lab's answer for the cores a replay of it captured (docs/biopsy-loop.md).

Heavy imports happen inside the handlers so that `sonomap --help` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_runtime import cli_args
from edge_runtime.errors import SonomapError
from edge_runtime.manifest import SHA_SHOWN
from edge_runtime.stop_signals import sigterm_stops
from registration.wsi_mpp import MAX_PLAUSIBLE_MPP, MIN_PLAUSIBLE_MPP, mpp_argument


def _procedure(args) -> int:
    from registration.sim.procedure import truth_paths, write_procedure_clip

    out = Path(args.out)
    if out.suffix.lower() != ".mp4":
        raise SonomapError(f"{out}: the clip is written as H.264 MP4; name it *.mp4")
    out.parent.mkdir(parents=True, exist_ok=True)
    info = write_procedure_clip(out, seed=args.seed, image=args.image, truth=True)
    truth_json, lesion = truth_paths(out)
    print(
        f"{out}: {info['frames']} frames, {len(info['fires'])} needle fires, "
        f"image sha256 {info['image_sha256'][:SHA_SHOWN]} "
        f"({'malignant: the lesion is cancer' if info['cancer'] else 'benign: no cancer'}); truth in "
        f"{truth_json.name} and {lesion.name}"
    )
    print(
        f"replay it with: --roi {','.join(map(str, info['roi']))} --mm-per-pixel {info['mm_per_pixel']:.10g}"
    )
    return 0


def _pathology(args) -> int:
    from registration.sim.pathology import simulate_pathology

    s = simulate_pathology(args.cases, args.truth, args.seed, args.patient_id, args.wsi_mpp)
    for c in s["filled"]:
        print(
            f"{c['case']}: slide + annotation simulated; truth: cancer {100 * c['truth_cancer_fraction']:.1f}% "
            f"of the core's band, shrinkage {c['shrinkage']:.3f}"
        )
    print(f"filled {len(s['filled'])} case(s); {len(s['already_filled'])} already had a slide")
    return 0


def register(sub) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "simulate-procedure",
        help="write a synthetic biopsy procedure clip (two needle fires) with its lesion truth",
        formatter_class=fmt,
        description="Write OUT.mp4: a real BUSI image on a simulated scanner screen, still probe, two core\n"
        "needles advanced, held and fired (22 mm throw), plus OUT.truth.json (frames, true tips) and\n"
        "OUT.lesion.png (the image's lesion in ROI pixels; empty for a benign image). It prints the\n"
        "simulated screen's ROI and scale (`replay it with: --roi X,Y,W,H --mm-per-pixel MM`); replay\n"
        "the clip with those options, `sonomap replay OUT.mp4 --roi X,Y,W,H --mm-per-pixel MM --cases DIR`\n"
        "(fires are detected only with the scale, in that ROI), and fill the captured cases with\n"
        "`sonomap simulate-pathology DIR --truth OUT.truth.json`.",
    )
    p.add_argument("out", help="clip to write (*.mp4)")
    p.add_argument(
        "--image",
        default=None,
        help="BUSI-layout image (images/X.png with masks/X.png; default: the bundled malignant sample)",
    )
    p.add_argument("--seed", type=cli_args.seed, default=3, help="noise and placement seed (default 3)")
    p.set_defaults(func=sigterm_stops(_procedure))

    p = sub.add_parser(
        "simulate-pathology",
        help="simulate the slide and annotation of each captured biopsy of a simulated procedure",
        formatter_class=fmt,
        description="For each case under CASES still waiting for its slide (captured by `sonomap replay\n"
        "CLIP --cases CASES`), simulate the core its fire cut along the true tract, through the clip's\n"
        "lesion truth: slide.ome.tif, slide.geojson, pathology_truth.json, and case.yaml's pathology\n"
        "section filled in as a lab would.",
    )
    p.add_argument("cases", help="folder of captured cases")
    p.add_argument("--truth", required=True, help="CLIP.truth.json written by simulate-procedure")
    p.add_argument("--seed", type=cli_args.seed, default=0, help="core simulation seed (default 0)")
    p.add_argument(
        "--patient-id",
        default=None,
        help="pseudonymous patient id the lab records (pathology.patient_id); groups the cores in one split",
    )
    p.add_argument(
        "--wsi-mpp",
        type=mpp_argument,
        default=4.0,
        help=f"microns per slide pixel, {MIN_PLAUSIBLE_MPP:g}-{MAX_PLAUSIBLE_MPP:g} (default 4)",
    )
    p.set_defaults(func=sigterm_stops(_pathology))
