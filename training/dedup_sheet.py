"""Contact sheet of near-duplicate pairs (PNG), for checking the hash threshold by eye.

One tile per pair: the two images side by side at a fixed tile size, their ids on top and the
two hash distances below. Inputs: pairs from :func:`edge_runtime.near_duplicates.find_duplicates` and
id -> PNG path. Output: one PNG (nothing written when there are no pairs).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge_runtime.atomic import atomic_path
from edge_runtime.near_duplicates import read_gray

TILE_W, TILE_H = 240, 200  # each image of a pair; enough to recognise a scan
COLUMNS = 3  # pairs per row
TEXT_BGR = (0, 255, 255)
DIST_BGR = (0, 255, 0)
FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_SCALE = 0.45
TEXT_PAD = 14


def _tile(path: Path, sid: str) -> np.ndarray:
    """One image of a pair, resized and captioned; InputError naming ``path`` when it cannot be read."""
    gray = read_gray(Path(path))
    tile = cv2.cvtColor(cv2.resize(gray, (TILE_W, TILE_H), interpolation=cv2.INTER_AREA), cv2.COLOR_GRAY2BGR)
    cv2.putText(tile, sid, (3, TEXT_PAD), FONT, FONT_SCALE, TEXT_BGR, 1, cv2.LINE_AA)
    return tile


def write_contact_sheet(
    pairs, paths: dict[str, Path], out: str | Path, labels: dict[str, str] | None = None
) -> Path | None:
    """Render every pair; returns the PNG path, or None when there are no pairs."""
    if not pairs:
        return None
    tiles = []
    for p in pairs:
        pair = np.hstack([_tile(paths[p.a], p.a), _tile(paths[p.b], p.b)])
        note = f"phash {p.phash}  dhash {p.dhash}"
        if labels and labels[p.a] != labels[p.b]:
            note += "  LABEL CONFLICT"
        cv2.putText(pair, note, (3, TILE_H - 6), FONT, FONT_SCALE, DIST_BGR, 1, cv2.LINE_AA)
        tiles.append(pair)
    while len(tiles) % COLUMNS:
        tiles.append(np.zeros_like(tiles[0]))
    sheet = np.vstack([np.hstack(tiles[i : i + COLUMNS]) for i in range(0, len(tiles), COLUMNS)])
    out = Path(out)
    ok, png = cv2.imencode(".png", sheet)
    if not ok:
        raise OSError(f"{out}: could not encode the contact sheet")
    with atomic_path(out) as tmp:
        tmp.write_bytes(png.tobytes())
    return out
