"""Near-duplicate images -> one case, so that no scan sits in two splits.

Shared by registration (``register-batch --dedup``) and training (``prepare-busi``): it lives on
edge_runtime's ground floor because both stages may import that, and neither may import the other's
dataset code. The runtime itself never imports it.

Public ultrasound sets repeat themselves: the same scan saved twice, consecutive frames of one
lesion, one image filed under two labels. Two images are near-duplicates when either of two
perceptual hashes from ``imagehash`` (64-bit each, on the 8-bit gray image that OpenCV reads) is close:

- DCT hash (``phash``) Hamming distance <= :data:`PHASH_MAX`, or
- gradient hash (``dhash``) Hamming distance <= :data:`DHASH_MAX`.

The thresholds were set on the full BUSI subset by looking at every pair found (contact sheet
written by ``training.dedup_sheet.write_contact_sheet``): all pairs at or under them are the
same scan or the same lesion seconds apart; the first pairs above them are different lesions.
Grouping is transitive (union-find): frames A~B and B~C make one group {A, B, C}.

Inputs: image ids -> PNG paths. Outputs: :class:`DuplicatePair` list and groups (id -> group id,
the group's first id in sorted order).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from edge_runtime.image_files import read_image

if TYPE_CHECKING:
    import imagehash

PHASH_MAX = 12  # of 64 bits; the closest different-lesion pairs in BUSI are at 14
DHASH_MAX = 10  # of 64 bits; the closest different-lesion pairs in BUSI are at 11


@dataclass(frozen=True)
class DuplicatePair:
    a: str
    b: str
    phash: int
    dhash: int


def read_gray(path: Path) -> np.ndarray:
    """The image at ``path`` as 8-bit gray, as ``cv2.imread(IMREAD_GRAYSCALE)`` reads it: the picture
    prepare-busi writes and the contact sheet shows (a 16-bit image scaled to 8 bits, where Pillow's
    ``convert("L")`` clips it to black and white). Decoded from the file's bytes, as OpenCV's imread
    fails on a path that is not UTF-8. UnreadableImage (an InputError) naming ``path`` otherwise."""
    return read_image(path, cv2.IMREAD_GRAYSCALE)


def image_hashes(paths: dict[str, Path]) -> dict[str, tuple[imagehash.ImageHash, imagehash.ImageHash]]:
    """id -> (phash, dhash) of the image as :func:`read_gray` reads it."""
    # Deferred: imagehash and Pillow are dataset-preparation extras, not runtime dependencies.
    import imagehash
    from PIL import Image

    out = {}
    for sid, path in paths.items():
        gray = Image.fromarray(read_gray(Path(path)))
        out[sid] = (imagehash.phash(gray), imagehash.dhash(gray))
    return out


def find_duplicates(
    paths: dict[str, Path], phash_max: int = PHASH_MAX, dhash_max: int = DHASH_MAX
) -> list[DuplicatePair]:
    """All near-duplicate pairs among the images (every pair compared: fine for thousands)."""
    hashes = image_hashes(paths)
    pairs = []
    for a, b in combinations(sorted(hashes), 2):
        dp = int(hashes[a][0] - hashes[b][0])
        dd = int(hashes[a][1] - hashes[b][1])
        if dp <= phash_max or dd <= dhash_max:
            pairs.append(DuplicatePair(a, b, dp, dd))
    return pairs


def group_ids(ids: list[str], pairs: list[DuplicatePair]) -> dict[str, str]:
    """Union-find over the pairs: id -> group id (the smallest id of its group).

    By hand (a dozen lines): scipy's connected_components would do the grouping, but scipy is not
    a dependency of every stage that calls this, and the group names would still need mapping."""
    parent = {i: i for i in ids}

    def root(i: str) -> str:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for p in pairs:
        ra, rb = root(p.a), root(p.b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {i: root(i) for i in ids}


def conflicting_groups(groups: dict[str, str], labels: dict[str, str]) -> dict[str, list[str]]:
    """Groups whose images carry more than one label: group id -> its ids (sorted)."""
    members: dict[str, list[str]] = {}
    for sid, g in groups.items():
        members.setdefault(g, []).append(sid)
    return {g: sorted(ids) for g, ids in sorted(members.items()) if len({labels[i] for i in ids}) > 1}


def group_splits(
    split_of: dict[str, str], groups: dict[str, str], order: tuple[str, ...] = ("train", "val", "test")
) -> dict[str, str]:
    """Image split -> group split: a group goes to the earliest split (in ``order``) any member has.

    Why the earliest: an image split made before grouping then loses test images only, never
    gains any, so a model trained on that earlier split has seen none of the grouped test set
    and can be re-measured on it. Returns group id -> split.
    """
    out: dict[str, str] = {}
    for sid, g in groups.items():
        if sid in split_of and (g not in out or order.index(split_of[sid]) < order.index(out[g])):
            out[g] = split_of[sid]
    return out


def merge_cases(case_of: dict[str, str], groups: dict[str, str]) -> dict[str, str]:
    """Cases (e.g. patients) joined by a near-duplicate image become one case.

    case_of: image id -> case id; groups: image id -> duplicate group. Returns image id ->
    merged case id ("P1+P7" when patients P1 and P7 share a near-duplicate image).
    """
    cases = sorted(set(case_of.values()))
    links = [
        DuplicatePair(case_of[a], case_of[b], 0, 0)
        for a, b in ((sid, groups[sid]) for sid in case_of)
        if case_of[a] != case_of[b]
    ]
    joined = group_ids(cases, links)
    members: dict[str, list[str]] = {}
    for c in cases:
        members.setdefault(joined[c], []).append(c)
    name = {root: "+".join(sorted(cs)) for root, cs in members.items()}
    return {sid: name[joined[c]] for sid, c in case_of.items()}


def merge_near_duplicate_cases(paths: dict[str, Path], case_of: dict[str, str]) -> dict[str, str]:
    """For datasets with patient ids (register-batch): image id -> case id, where cases (patients)
    that share a near-duplicate image are merged into one, so the split keeps them together."""
    return merge_cases(case_of, group_ids(sorted(paths), find_duplicates(paths)))
