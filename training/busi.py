"""`sonomap prepare-busi`: the BUSI release (images/, masks/, index.csv) -> the dataset layout.

Labels: malignant lesion pixels = 1 (cancer); benign masses and all other pixels = 0
(:mod:`training.busi_release`, which reads the release). BUSI has no patient ids, so near-duplicate
images (same scan, or frames seconds apart; see :mod:`edge_runtime.near_duplicates`) are grouped into
one case first. A group whose images carry both labels is left out (its images are written nowhere).
The groups are split into train, val and test by :mod:`training.busi_split` (by image or by group,
:data:`training.busi_split.SPLIT_UNITS`), which refuses an empty split and a split lacking a label
the kept images hold. Besides images/, labels/ and cases.csv (case_id = the group's first id),
DATASET/ gets ``duplicates.csv`` (every pair found, with both hash distances and ``found_by``: the
hashes, or the list of same-lesion pairs found by eye, :mod:`training.same_lesion`), ``excluded.csv``
(id, label, group, reason) and ``duplicates.png`` (a contact sheet of the pairs, to check by eye).
DATASET and the BUSI folder must be apart (neither inside the other), so the release's own images
are never written over.

Nothing is written until every input is checked: each id of index.csv is one plain file name
(:func:`training.busi_release.read_busi_index`), every kept image and mask is read and their sizes
compared, and every image of a pair (left-out ones too) is read as the contact sheet reads it.
``cases.csv`` is the commit point: an earlier one is removed before the first image is written and
the new one written last (atomically), so a run that fails halfway (a full disk) over an earlier
dataset leaves a folder that no command loads, never old cases.csv rows over new labels.

DATASET may be new, empty or a dataset prepare-busi wrote: a folder holding only what it writes (the
names of :data:`OWN_NAMES`; hidden files aside), with a cases.csv only beside a duplicates.csv of its
own (its header). Anything else (a register-batch dataset, a training run, a folder holding any other
file) is refused before anything is read or written: the run would delete that folder's cases.csv.
"""

from __future__ import annotations

from pathlib import Path

from edge_runtime.atomic import atomic_write_csv, atomic_write_png, check_apart
from edge_runtime.case_split import CASES_CSV, split_cases
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.near_duplicates import (
    DHASH_MAX,
    PHASH_MAX,
    conflicting_groups,
    find_duplicates,
    group_ids,
    read_gray,
)
from training.busi_release import MALIGNANT, read_busi_index, read_busi_pair
from training.busi_split import IMAGE, SPLIT_UNITS, check_labels, check_splits, split_groups
from training.dedup_sheet import write_contact_sheet
from training.same_lesion import SHIPPED_LIST, listed_pairs

HASH, LISTED = "hash", "list"  # duplicates.csv's found_by: the perceptual hashes, or the same-lesion list
HASH_BITS = 64  # imagehash's pHash and dHash: distances run from 0 (same) to 64 (every bit differs)
DUPLICATES_CSV, EXCLUDED_CSV, DUPLICATES_PNG = "duplicates.csv", "excluded.csv", "duplicates.png"
DUPLICATES_COLUMNS = ("id_a", "id_b", "phash", "dhash", "group", "label_a", "label_b", "found_by")
# Everything prepare-busi writes at the top of DATASET: a folder holding anything else is not its own.
OWN_NAMES = frozenset({"images", "labels", CASES_CSV, DUPLICATES_CSV, EXCLUDED_CSV, DUPLICATES_PNG})


def check_own_folder(out: Path) -> None:
    """Refuse (ConfigError naming --out) an OUT that prepare-busi did not make: it may be new, empty
    or hold only :data:`OWN_NAMES`, with a cases.csv only beside prepare-busi's duplicates.csv (a
    run that stopped after removing cases.csv left no index to lose). Reads only."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file; give a dataset folder")
    if not out.is_dir():
        return
    names = {p.name for p in out.iterdir() if not p.name.startswith(".")}  # hidden: temp files, .DS_Store
    foreign = sorted(names - OWN_NAMES)
    if foreign:
        raise ConfigError(
            f"--out {out}: holds {foreign[0]}, which prepare-busi does not write, so the folder is not a "
            "prepare-busi dataset and is left alone; give a new or empty folder"
        )
    if CASES_CSV in names and not _own_duplicates_csv(out / DUPLICATES_CSV):
        raise ConfigError(
            f"--out {out}: its {CASES_CSV} was not written by prepare-busi (no {DUPLICATES_CSV} of "
            "prepare-busi beside it), so the folder is left alone; give a new or empty folder"
        )


def _own_duplicates_csv(path: Path) -> bool:
    """True when ``path`` is a file whose first line is the header prepare-busi writes."""
    try:
        with open(path, "rb") as fh:
            first = fh.readline(len(",".join(DUPLICATES_COLUMNS)) + len("\r\n"))
    except OSError:  # absent, a folder, unreadable: not prepare-busi's
        return False
    return first.rstrip(b"\r\n") == ",".join(DUPLICATES_COLUMNS).encode()


def prepare_busi(
    busi: str | Path,
    out: str | Path,
    seed: int = 0,
    dedup: bool = True,
    phash_max: int = PHASH_MAX,
    dhash_max: int = DHASH_MAX,
    same_lesion: Path | None = SHIPPED_LIST,
    split_unit: str = IMAGE,
) -> dict:
    """Write DATASET/images, labels, cases.csv (+ duplicate files); returns split counts.

    ``dedup=False`` restores one case per image (the leaky split, kept for comparisons).
    ``same_lesion``: a list of same-lesion pairs found by eye (:mod:`training.same_lesion`), joined
    like the pairs the hashes find; None: the hashes alone. ``split_unit``: see :data:`SPLIT_UNITS`.
    Counts: split -> label -> images, plus ``excluded`` (label conflicts), ``groups`` and ``split_unit``.
    """
    busi, out = Path(busi), Path(out)
    if split_unit not in SPLIT_UNITS:
        raise ConfigError(f"--split-unit {split_unit!r}: one of {', '.join(SPLIT_UNITS)}")
    for flag, value in (("--phash-max", phash_max), ("--dhash-max", dhash_max)):
        if not 0 <= value <= HASH_BITS:
            raise ConfigError(f"{flag} {value}: a distance between {HASH_BITS}-bit hashes, 0..{HASH_BITS}")
    check_apart(busi, out, "--busi")  # the release's images/ and masks/ are never written over
    check_own_folder(out)  # before anything is read: the run deletes cases.csv there
    rows = read_busi_index(busi)
    labels = {r["id"]: r["label"] for r in rows}
    paths = {r["id"]: busi / "images" / f"{r['id']}.png" for r in rows}
    for path in paths.values():
        if not path.is_file():
            raise InputError(f"{path}: missing or unreadable")
    pairs = find_duplicates(paths, phash_max, dhash_max) if dedup else []
    found = {(p.a, p.b) for p in pairs}
    listed = [] if not dedup or same_lesion is None else listed_pairs(Path(same_lesion), paths)
    listed = [p for p in listed if tuple(sorted((p.a, p.b))) not in found]  # the hash found it too
    pairs += listed
    groups = group_ids(list(labels), pairs)
    conflicts = conflicting_groups(groups, labels)
    excluded = {sid for ids in conflicts.values() for sid in ids}
    kept = [r for r in rows if r["id"] not in excluded]
    case_of = {r["id"]: groups[r["id"]] for r in kept}
    # The per-image split (seeded, stratified by label): the splits a set this size fills, and with
    # split_unit "image" the split each group is moved from
    image_split = split_cases([r["id"] for r in rows], seed, strata=labels)
    split = split_groups(image_split, case_of, labels, seed, split_unit)
    filled = {split[case_of[r["id"]]] for r in kept}
    check_splits(busi, set(image_split.values()) - filled, len(rows), len(excluded), len(split), split_unit)
    check_labels(busi, split, case_of, labels, split_unit)
    # Every pair is read and checked before anything is written (read again to write: holding a whole
    # release's images would cost hundreds of MB), so a bad mask leaves an earlier dataset untouched.
    for row in kept:
        read_busi_pair(busi, paths[row["id"]], row["id"], row["label"] == MALIGNANT)
    # the contact sheet shows every pair, left-out images too: each is read as the sheet reads it
    for sid in sorted({sid for p in pairs for sid in (p.a, p.b)} - set(case_of)):
        read_gray(paths[sid])
    # cases.csv is the commit point: gone while images and labels are replaced, written last
    (out / CASES_CSV).unlink(missing_ok=True)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    for row in kept:
        sid = row["id"]
        gray, label = read_busi_pair(busi, paths[sid], sid, row["label"] == MALIGNANT)
        atomic_write_png(out / "images" / f"{sid}.png", gray)  # PNG is lossless: same pixels, 8-bit gray
        atomic_write_png(out / "labels" / f"{sid}.png", label)
    atomic_write_csv(
        out / DUPLICATES_CSV,
        DUPLICATES_COLUMNS,
        (
            [
                p.a,
                p.b,
                p.phash,
                p.dhash,
                groups[p.a],
                labels[p.a],
                labels[p.b],
                LISTED if p in listed else HASH,
            ]
            for p in pairs
        ),
    )
    atomic_write_csv(
        out / EXCLUDED_CSV,
        ["id", "label", "group", "reason"],
        (
            [sid, labels[sid], g, "near-duplicates carry both labels"]
            for g, ids in conflicts.items()
            for sid in ids
        ),
    )
    (out / DUPLICATES_PNG).unlink(missing_ok=True)
    write_contact_sheet(pairs, paths, out / DUPLICATES_PNG, labels)
    atomic_write_csv(  # last: the dataset loads only once everything above is written
        out / CASES_CSV,
        ["id", "case_id", "split"],
        ([r["id"], case_of[r["id"]], split[case_of[r["id"]]]] for r in kept),
    )
    counts: dict = {}
    for row in kept:
        counts.setdefault(split[case_of[row["id"]]], {}).setdefault(row["label"], 0)
        counts[split[case_of[row["id"]]]][row["label"]] += 1
    counts["excluded"] = sorted(excluded)
    counts["groups"] = len(set(case_of.values()))
    counts["split_unit"] = split_unit
    counts["duplicate_pairs"] = len(pairs) - len(listed)
    counts["same_lesion_pairs"] = len(listed)
    return counts
