"""The one PNG writer (edge_runtime.atomic.atomic_write_png): the bytes cv2.imwrite would write, and a
failure is one error naming the target file, with the old file kept and no temp file left."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from file_size_limit import python_with_file_size_limit

from edge_runtime.atomic import atomic_write_png
from edge_runtime.errors import InputError

FILE_SIZE_LIMIT = 100  # bytes: less than the noise image's PNG


def noise(shape=(64, 64)) -> np.ndarray:
    return (np.random.default_rng(0).random(shape) * 255).astype(np.uint8)


def test_writes_what_imwrite_writes(tmp_path: Path):
    image = noise((32, 48, 3))
    cv2.imwrite(str(tmp_path / "imwrite.png"), image)
    assert atomic_write_png(tmp_path / "sub" / "atomic.png", image) == tmp_path / "sub" / "atomic.png"
    assert (tmp_path / "sub" / "atomic.png").read_bytes() == (tmp_path / "imwrite.png").read_bytes()
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["atomic.png"]


@pytest.mark.parametrize("image", [None, np.zeros((0, 0), np.uint8), np.zeros((4, 4, 2), np.uint8)])
def test_an_array_that_cannot_be_encoded_is_an_input_error_naming_the_file(tmp_path: Path, image):
    target = tmp_path / "label.png"
    target.write_bytes(b"old")
    with pytest.raises(InputError, match=f"^{re.escape(str(target))}: PNG encoding failed") as caught:
        atomic_write_png(target, image)
    assert "\n" not in str(caught.value)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["label.png"]


def test_a_folder_in_the_way_is_an_os_error_naming_the_file(tmp_path: Path):
    target = tmp_path / "label.png"
    target.mkdir()
    with pytest.raises(IsADirectoryError) as caught:
        atomic_write_png(target, noise())
    assert caught.value.filename == str(target)


def test_a_failed_write_names_the_file_not_the_temp_file(tmp_path: Path):
    target = tmp_path / "label.png"
    code = (
        "import sys, numpy as np\n"
        "from edge_runtime.atomic import atomic_write_png\n"
        "image = (np.random.default_rng(0).random((64, 64)) * 255).astype(np.uint8)\n"
        "try:\n"
        f"    atomic_write_png({str(target)!r}, image)\n"
        "except OSError as exc:\n"
        "    print(exc.filename)\n"
    )
    out = python_with_file_size_limit(FILE_SIZE_LIMIT, "-c", code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(target)
    assert list(tmp_path.iterdir()) == []
