"""Sample frames for parity/selfcheck: the source checkout's, else those packaged with the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_runtime.errors import InputError
from export import samples

PACKAGED_COUNT = 4


def test_source_checkout_sample_comes_first():
    assert samples.default_frames_dir() == samples.DEFAULT_FRAMES


def test_installed_cart_falls_back_to_packaged_frames(tmp_path: Path):
    missing = tmp_path / "no-source-tree"
    folder = samples.default_frames_dir((missing, samples.PACKAGED_FRAMES))
    assert folder == samples.PACKAGED_FRAMES
    frames = samples.load_frames(folder)
    assert len(frames) == PACKAGED_COUNT
    assert {path.stem.split("_")[0] for path in folder.glob("*.png")} == {"malignant", "benign"}
    assert [frame_id.split()[0] for frame_id, _ in frames] == ["#0", "#1", "#2", "#3"]  # ids: no file names
    for _, gray in frames:
        assert gray.dtype == np.uint8 and gray.ndim == 2 and min(gray.shape) > 100


def test_no_frames_anywhere_is_a_clear_error(tmp_path: Path):
    with pytest.raises(InputError, match="pass --frames DIR"):
        samples.default_frames_dir((tmp_path / "a", tmp_path / "b"))
