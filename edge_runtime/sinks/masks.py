"""``--save-masks DIR``: per frame ``DIR/<index>_mask.png`` (0/255) and the gray ROI frame
``DIR/<index>_frame.png``, written on the sink's own thread; paused below ``sinks.min_free_gb``.
A frame is written with its own mask or with none: a frame without one (the AI gave no answer, or was
off) removes a ``<index>_mask.png`` already in the folder (an earlier run's, as a replay writes over
its outputs), so the folder never pairs this frame with a finding that is not its own.
Both go through :func:`edge_runtime.atomic.atomic_write_png`: a PNG that cannot be written (disk full,
a file size limit) raises an error naming it, and this sink stops as a failed recorder
(:mod:`edge_runtime.sinks.threaded`) instead of losing frames without a word."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_runtime.atomic import atomic_write_png
from edge_runtime.sinks import recordings
from edge_runtime.sinks.threaded import ThreadedWriter

MASK_FOREGROUND = 255


class MaskDumpSink(ThreadedWriter):
    """``--save-masks DIR``: per frame, the mask (0/255 PNG) and the gray ROI it came from.
    ``resume`` False (replay): a pause for disk space is final, and a failed recording at close."""

    def __init__(
        self, directory: str | Path, block: bool = True, min_free_gb: float = 0.0, resume: bool = True
    ):
        self.directory = Path(directory)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # patient images: private
        space = recordings.SpaceGuard(self.directory, min_free_gb)
        super().__init__("masks", block, resume=resume, space=space)

    def write(self, index: int, roi_image: np.ndarray, mask: np.ndarray | None) -> None:
        self.submit(index, roi_image, mask)

    def _write_now(self, index: int, roi_image: np.ndarray, mask: np.ndarray | None) -> None:
        # a PNG per frame fills a disk faster than video: the same guard
        if (self.paused and not self.resume) or not self.space.ok():
            if not self.paused:
                recordings.log_pause(self.name, self.space, "the mask dump so far kept", self.resume)
            self.paused, self.paused_frames = True, self.paused_frames + 1
            return
        self.paused = False
        atomic_write_png(self.directory / f"{index:06d}_frame.png", roi_image)
        mask_path = self.directory / f"{index:06d}_mask.png"
        if mask is not None:
            out = np.where(mask > 0, MASK_FOREGROUND, 0).astype(np.uint8)
            atomic_write_png(mask_path, out)
        else:  # an earlier run's mask of this index beside this frame would read as its finding
            mask_path.unlink(missing_ok=True)
        self.frames += 1
