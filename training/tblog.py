"""TensorBoard scalar logs for a training run, written by ``torch.utils.tensorboard``.

Writes ``RUN/tb/events.out.tfevents.*``: one scalar series per metric (``train_loss``,
``val_dice``, ...), one point per epoch. torch's writer (over the tensorboard package) is used
rather than tensorboardX because its ``flush()`` waits for the writer thread's queue to drain, so
an epoch is on disk when ``add_scalars`` returns; tensorboardX's ``flush()`` does not wait.
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.tensorboard import SummaryWriter


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
