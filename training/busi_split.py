"""How `sonomap prepare-busi` splits BUSI's near-duplicate groups into train, val and test.

Input: the image ids with their labels (:data:`training.busi_release.MALIGNANT` or ``BENIGN``), the
group of each kept image (near-duplicates joined into one case; see
:mod:`edge_runtime.near_duplicates`), the seed and the unit (:data:`SPLIT_UNITS`). The split is made by
:func:`edge_runtime.case_split.split_cases` (the splitter register-batch uses), seeded, stratified by
malignant/benign: ``image`` (default) draws images 70/20/10 as without grouping, then moves each group
whole into the earliest split (train, val, test) of its members, so val and test end up smaller than
20/10 % (about 19.5/5.3 % of BUSI's images); ``group`` draws the groups themselves 70/20/10. Output:
group id -> split. A split the grouping emptied, and a split lacking a label the kept images hold, are
refused (ConfigError naming the BUSI folder and a fix) before anything is written. Writes nothing.
"""

from __future__ import annotations

from pathlib import Path

from edge_runtime.case_split import MIN_CASES_ALL_SPLITS, SPLITS, split_cases
from edge_runtime.errors import ConfigError
from edge_runtime.near_duplicates import group_splits
from training.busi_release import BENIGN, MALIGNANT

IMAGE, GROUP = "image", "group"
SPLIT_UNITS = (IMAGE, GROUP)  # --split-unit: what split_cases draws (see split_groups)


def check_splits(busi: Path, emptied: set[str], n_images: int, n_out: int, n_cases: int, unit: str) -> None:
    """Refuse, before anything is written, when grouping or leaving out conflicts emptied a split
    the images alone fill: train and evaluate refuse an empty split. With ``image`` a group reaches
    test only when every member drew test, so groups of several frames drain val and test: drawing
    the groups (``group``) fills them, where looser hash limits would only leak. Too few cases (e.g.
    limits so loose that every image is one group) fill no split either way. A set too small for
    every split (1 or 2 images, :func:`edge_runtime.case_split.split_counts`) is split as it is."""
    empty = [name for name in SPLITS if name in emptied]
    if empty:
        fix = "use --split-unit group (whole cases drawn)"
        if unit == GROUP or n_cases < MIN_CASES_ALL_SPLITS:
            fix = f"{n_cases} case(s) after grouping: add images or lower --phash-max/--dhash-max"
        raise ConfigError(
            f"{busi}: split(s) {', '.join(empty)} would be empty ({n_images} images, {n_out} left out "
            f"as near-duplicates with both labels, split by {unit}); {fix}"
        )


def split_groups(image_split: dict, case_of: dict, labels: dict, seed: int, unit: str) -> dict[str, str]:
    """Group id -> split. ``image``: the per-image split with each group moved whole into the
    earliest split of its members, so the test set only loses images and models trained on the
    per-image split can be re-measured on it (published BUSI figures use it). ``group``: the groups
    drawn themselves, stratified by their label (a kept group has one; its id is a member's), as
    register-batch draws patients."""
    if unit == GROUP:
        return split_cases(set(case_of.values()), seed, strata={g: labels[g] for g in case_of.values()})
    return group_splits({sid: image_split[sid] for sid in case_of}, case_of)


def check_labels(busi: Path, split: dict, case_of: dict, labels: dict, unit: str) -> None:
    """Refuse, before anything is written, a non-empty split lacking a label the kept images hold:
    its Dice would say nothing about that label. A set with one label is split as it is."""
    held: dict[str, set[str]] = {}
    for sid, g in case_of.items():
        held.setdefault(split[g], set()).add(labels[sid])
    for name, label in ((n, lb) for n in SPLITS if n in held for lb in (MALIGNANT, BENIGN)):
        n_groups = len({g for sid, g in case_of.items() if labels[sid] == label})
        if n_groups and label not in held[name]:
            fix = "try another --seed" + (" or --split-unit group" if unit == IMAGE else "")
            if n_groups < MIN_CASES_ALL_SPLITS:  # split_counts: fewer cases than this cannot fill every split
                fix = f"add {label} images (its images form {n_groups} case(s), too few for every split)"
            raise ConfigError(f"{busi}: split {name} would hold no {label} image (split by {unit}); {fix}")
