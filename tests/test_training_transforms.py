"""Augmentation keeps image and label aligned, stays grayscale, and ends in the runtime's preprocess."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_runtime.preprocess import preprocess
from training.config_schema import AugmentConfig
from training.data import IGNORE_INDEX
from training.transforms import make_example

SIZE = (96, 128)
MEAN, STD = 0.3, 0.2


@pytest.fixture()
def real_pair(busi_sample):
    gray = cv2.imread(str(busi_sample / "images" / "malignant_002.png"), cv2.IMREAD_GRAYSCALE)
    mask = cv2.imread(str(busi_sample / "masks" / "malignant_002.png"), cv2.IMREAD_GRAYSCALE)
    return gray, (mask > 0).astype(np.uint8)


def test_without_augmentation_input_is_exactly_the_runtime_preprocess(real_pair):
    gray, label = real_pair
    x, y = make_example(gray, label, SIZE, MEAN, STD)
    np.testing.assert_array_equal(x, preprocess(gray, *SIZE, MEAN, STD))
    assert x.shape == (1, *SIZE) and x.dtype == np.float32
    np.testing.assert_array_equal(y, cv2.resize(label, SIZE[::-1], interpolation=cv2.INTER_NEAREST))


def test_geometry_moves_label_with_image():
    # a synthetic image whose bright square *is* the label: after any warp they must coincide
    gray = np.zeros((300, 400), np.uint8)
    gray[100:200, 150:260] = 200
    label = (gray > 0).astype(np.uint8)
    aug = AugmentConfig(
        gain=[1, 1],
        contrast=[1, 1],
        gamma=[1, 1],
        speckle_p=0.0,
        blur_p=0.0,
        rotate_deg=15.0,
        hflip=0.5,
    )
    for seed in range(10):
        x, y = make_example(gray, label, SIZE, 0.0, 1.0, np.random.default_rng(seed), aug)
        bright = x[0] > 0.5
        valid = y != IGNORE_INDEX
        agree = np.mean(bright[valid] == (y[valid] == 1))
        assert agree > 0.98, (seed, agree)


def test_intensity_augmentation_changes_values_but_not_labels(real_pair):
    gray, label = real_pair
    aug = AugmentConfig()
    x1, y1 = make_example(gray, label, SIZE, MEAN, STD, np.random.default_rng(1), aug)
    x2, y2 = make_example(gray, label, SIZE, MEAN, STD, np.random.default_rng(1), aug)
    np.testing.assert_array_equal(x1, x2)  # seeded: reproducible
    x3, _ = make_example(gray, label, SIZE, MEAN, STD, np.random.default_rng(2), aug)
    assert not np.array_equal(x1, x3)
    assert x1.shape == (1, *SIZE)  # one channel: never colour
    assert set(np.unique(y1)) <= {0, 1, IGNORE_INDEX}
