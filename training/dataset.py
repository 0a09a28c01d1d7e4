"""torch Dataset over one split of the dataset layout.

Images and labels are read and validated once (a few hundred ultrasound images fit in
memory easily), so an epoch costs only augmentation and the model. Each item's
augmentation RNG is seeded from (seed, epoch, index): the stream does not depend on
worker count or order, which makes ``--resume`` reproduce an uninterrupted run.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from training.config_schema import AugmentConfig
from training.data import Sample, read_pair
from training.transforms import make_example


class SegDataset(Dataset):
    """Items: (input float32 [1,h,w], label int64 [h,w], index)."""

    def __init__(
        self,
        samples: list[Sample],
        size: tuple[int, int],
        mean: float,
        std: float,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        pairs: list[tuple[np.ndarray, np.ndarray]] | None = None,
    ):
        self.samples = samples
        # PAIRS: the samples' (gray, label) already read and validated, in order (not read again)
        self.pairs = pairs if pairs is not None else [read_pair(s) for s in samples]
        self.size, self.mean, self.std = size, mean, std
        self.augment, self.seed, self.epoch = augment, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        gray, label = self.pairs[index]
        rng = None
        if self.augment is not None and self.augment.enabled:
            rng = np.random.default_rng((self.seed, self.epoch, index))
        x, y = make_example(gray, label, self.size, self.mean, self.std, rng, self.augment)
        return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64)), index
