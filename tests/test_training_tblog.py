"""Training's TensorBoard scalars (tensorboardX), read back by TensorBoard's own reader."""

from __future__ import annotations

import pytest

from training.tblog import EventWriter

accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator",
    reason="the tensorboard package (dev extra) reads the event files back",
)


def _scalars(logdir, tag):
    ea = accumulator.EventAccumulator(str(logdir))
    ea.Reload()
    return [(e.step, e.value) for e in ea.Scalars(tag)]


def test_tensorboard_reads_the_scalars(tmp_path):
    w = EventWriter(tmp_path)
    w.add_scalars({"train_loss": 1.5, "val_dice": 0.25}, step=0)
    w.add_scalars({"train_loss": 0.75, "val_dice": 0.5}, step=1)
    w.close()
    assert _scalars(tmp_path, "train_loss") == [(0, 1.5), (1, 0.75)]
    assert _scalars(tmp_path, "val_dice") == [(0, 0.25), (1, 0.5)]


def test_each_epoch_is_on_disk_before_close(tmp_path):
    """A run that crashes keeps every epoch it logged: add_scalars flushes."""
    w = EventWriter(tmp_path)
    w.add_scalars({"train_loss": 2.0}, step=0)
    w.add_scalars({"train_loss": 1.0}, step=1)
    assert _scalars(tmp_path, "train_loss") == [(0, 2.0), (1, 1.0)]
    w.close()
