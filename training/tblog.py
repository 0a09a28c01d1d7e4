"""TensorBoard scalar logs for a training run, written by tensorboardX.

Writes ``RUN/tb/events.out.tfevents.*``: one scalar series per metric (``train_loss``,
``val_dice``, ...), one point per epoch. tensorboardX is used rather than
``torch.utils.tensorboard`` because it needs only protobuf, not the whole tensorboard package.
"""
from __future__ import annotations

from pathlib import Path

from tensorboardX import SummaryWriter


class EventWriter:
    """Scalar event file in ``logdir`` (created); each epoch is flushed at once."""

    def __init__(self, logdir: str | Path):
        self.dir = Path(logdir)
        self._writer = SummaryWriter(logdir=str(self.dir))

    def add_scalars(self, scalars: dict[str, float], step: int) -> None:
        for tag, value in scalars.items():
            self._writer.add_scalar(tag, float(value), global_step=step)
        self._writer.flush()  # a crashed run keeps every epoch already logged

    def close(self) -> None:
        self._writer.close()
