"""``sonomap prepare-busi``: the parser and handler (registered by training/commands.py).

The BUSI release (images/, masks/, index.csv) -> the dataset layout, near-duplicates joined into
one case (:mod:`training.busi`). imagehash is imported only when hashing starts, so that
``sonomap --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

from edge_runtime import cli_args
from edge_runtime.near_duplicates import DHASH_MAX, PHASH_MAX
from edge_runtime.stop_signals import sigterm_stops
from training.busi import DUPLICATES_PNG, HASH_BITS, prepare_busi
from training.busi_split import IMAGE, SPLIT_UNITS
from training.same_lesion import SHIPPED_LIST

NO_LIST = "none"  # prepare-busi --same-lesion none: the hashes alone


def _prepare_busi(args) -> int:
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


def add_prepare_busi_parser(sub) -> None:
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
