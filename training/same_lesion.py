"""Same-lesion pairs listed by hand: images of one lesion from views too different for a hash.

BUSI has no patient ids. :mod:`edge_runtime.near_duplicates` groups images that are one scan or
frames seconds apart (perceptual hashes), but two views of one lesion after the probe moved or the
gain changed hash as far apart as two patients do (DCT-hash distances 16-34 of 64 for
the listed pairs, against 14 for the closest different-lesion pair), and no threshold separates them. Those
pairs are found by eye and listed in a CSV file; ``prepare-busi`` joins each listed pair into one
case, as if the hash had found it, so a lesion never sits in two splits.

The shipped list (``training/busi_same_lesion.csv``) comes from looking at every test image of the
seed-0 split next to its BUSI neighbours (ids one and two apart, where BUSI files a patient's
images): it makes the test figures honest, it is not a review of all 30,600 pairs of the set.

Input: the list file (columns ``id_a,id_b,note``; ``note`` says what was seen) and the ids of the
images at hand. Output: :class:`edge_runtime.near_duplicates.DuplicatePair` per listed pair whose
images are both at hand, with their hash distances. A malformed file is an :class:`InputError`
naming the file and line.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from edge_runtime.csv_text import read_csv_text
from edge_runtime.errors import InputError
from edge_runtime.near_duplicates import DuplicatePair, image_hashes

SHIPPED_LIST = Path(__file__).with_name("busi_same_lesion.csv")
COLUMNS = ("id_a", "id_b", "note")


def read_same_lesion(path: Path) -> list[tuple[str, str]]:
    """The listed (id_a, id_b) pairs, in file order."""
    text = read_csv_text(path, ",".join(COLUMNS))
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise InputError(f"{path}: needs the header {','.join(COLUMNS)}")
        rows = list(reader)
    except csv.Error as exc:
        raise InputError(f"{path}: not a valid CSV ({exc})") from None
    pairs = []
    for line, row in enumerate(rows, start=2):
        a, b = (row.get("id_a") or "").strip(), (row.get("id_b") or "").strip()
        if not a or not b or None in row:
            raise InputError(f"{path}:{line}: needs an id_a, an id_b and a note, nothing more")
        if a == b:
            raise InputError(f"{path}:{line}: {a!r} is paired with itself")
        pairs.append((a, b))
    return pairs


def listed_pairs(path: Path, images: dict[str, Path]) -> list[DuplicatePair]:
    """The listed pairs whose two images are in ``images`` (id -> PNG), with their hash distances
    (for the report: they are why a hash could not find them). Pairs of images not at hand are left
    out: the list covers the whole BUSI release, a dataset may hold a subset."""
    pairs = [(a, b) for a, b in read_same_lesion(path) if a in images and b in images]
    hashes = image_hashes({sid: images[sid] for pair in pairs for sid in pair})
    return [
        DuplicatePair(a, b, int(hashes[a][0] - hashes[b][0]), int(hashes[a][1] - hashes[b][1]))
        for a, b in pairs
    ]
