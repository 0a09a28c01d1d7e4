"""Test helper: tissue-like slide pictures, their expected pyramid levels, and tile corruption."""

from __future__ import annotations

import cv2
import numpy as np
import tifffile


def tissue_like(h=512, w=2048, seed=0) -> np.ndarray:
    """Glass with a pink core, a purple tumour patch and noise: JPEG sees texture, not flat colour."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 243, np.uint8)
    img[h // 3 : 2 * h // 3, w // 16 : 15 * w // 16] = (228, 160, 200)
    img[h // 3 + 20 : 2 * h // 3 - 20, w // 2 - 200 : w // 2 + 200] = (176, 108, 182)
    return np.clip(img.astype(np.int16) + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)


def corrupt_tiles(path, level_page: int, tiles) -> None:
    """Overwrite the first bytes (the codec header) of some tiles of one IFD."""
    with tifffile.TiffFile(str(path)) as tif:
        page = tif.pages[level_page]
        spans = [(page.dataoffsets[i], page.databytecounts[i]) for i in tiles]
    with open(path, "r+b") as fh:
        for offset, count in spans:
            fh.seek(offset)
            fh.write(b"\x00" * min(count, 64))


def expected_level(img: np.ndarray, ds: int) -> np.ndarray:
    """Pyramid level ``ds`` as an area-averaged copy (what the writers here store)."""
    h, w = img.shape[0] // ds, img.shape[1] // ds
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
