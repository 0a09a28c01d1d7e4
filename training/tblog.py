"""A training run's per-epoch logs: ``RUN/metrics.csv`` and TensorBoard scalars.

:func:`write_history_csv` rewrites ``metrics.csv`` (one row per epoch, atomically) each epoch.
:class:`EventWriter` writes ``RUN/tb/events.out.tfevents.*`` through ``torch.utils.tensorboard``:
one scalar series per metric (``train_loss``, ``val_dice``, ...), one point per epoch. torch's
writer (over the tensorboard package) is used rather than tensorboardX because its ``flush()``
waits for the writer thread's queue to drain, so an epoch is on disk when ``add_scalars``
returns; tensorboardX's ``flush()`` does not wait.
"""

from __future__ import annotations

import csv
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

from edge_runtime.atomic import atomic_path

CSV_FIELDS = (
    "epoch",
    "iteration",
    "lr",
    "train_loss",
    "train_images_per_s",
    "epoch_seconds",
    "elapsed_s",
    "val_dice_pos_mean",
    "val_dice_pooled",
    "val_dice_mean",
    "val_recall_pooled",
    "val_precision_pooled",
    "val_pixel_accuracy_pooled",
    "selected",
    "best",
)


def write_history_csv(path: Path, history: list[dict], fields: tuple[str, ...] = CSV_FIELDS) -> None:
    """One row per epoch, written atomically (a reader never sees half a file)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(history)


class EventWriter:
    """Scalar event file in ``logdir`` (created); each epoch is on disk when add_scalars returns."""

    def __init__(self, logdir: str | Path):
        self.dir = Path(logdir)
        self._writer = SummaryWriter(log_dir=str(self.dir))

    def add_scalars(self, scalars: dict[str, float], step: int) -> None:
        for tag, value in scalars.items():
            self._writer.add_scalar(tag, float(value), global_step=step)
        self._writer.flush()  # a crashed run keeps every epoch already logged

    def close(self) -> None:
        self._writer.close()
