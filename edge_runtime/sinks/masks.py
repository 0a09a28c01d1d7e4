"""``--save-masks DIR``: per frame ``DIR/<index>_mask.png`` (0/255) and the gray ROI frame
``DIR/<index>_frame.png``, written on the sink's own thread; paused below ``sinks.min_free_gb``."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge_runtime.errors import InputError
from edge_runtime.sinks import recordings
from edge_runtime.sinks.threaded import ThreadedWriter

MASK_FOREGROUND = 255


class MaskDumpSink(ThreadedWriter):
    """``--save-masks DIR``: per frame, the mask (0/255 PNG) and the gray ROI it came from."""

    def __init__(self, directory: str | Path, block: bool = True, min_free_gb: float = 0.0):
        self.directory = Path(directory)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # patient images: private
        self.space = recordings.SpaceGuard(self.directory, min_free_gb)
        self.paused, self.paused_frames = False, 0
        super().__init__("masks", block)

    def write(self, index: int, roi_image: np.ndarray, mask: np.ndarray | None) -> None:
        self.submit(index, roi_image, mask)

    def _write_now(self, index: int, roi_image: np.ndarray, mask: np.ndarray | None) -> None:
        if not self.space.ok():  # a PNG per frame fills a disk faster than video: the same guard
            if not self.paused:
                recordings.log_pause(self.name, self.space, "the mask dump so far kept")
            self.paused, self.paused_frames = True, self.paused_frames + 1
            return
        self.paused = False
        cv2.imwrite(str(self.directory / f"{index:06d}_frame.png"), roi_image)
        if mask is not None:
            out = np.where(mask > 0, MASK_FOREGROUND, 0).astype(np.uint8)
            if not cv2.imwrite(str(self.directory / f"{index:06d}_mask.png"), out):
                raise InputError(f"{self.directory}: cannot write mask PNG")
