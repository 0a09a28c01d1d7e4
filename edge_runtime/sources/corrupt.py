"""Corrupt-input counting shared by every source: skip a bad frame with a counted warning, fail on a run.

A glitchy input (a torn packet, a truncated file) loses a frame and says so; a broken one (too many
corrupt frames in a row) stops with an InputError naming the input and the frame. The warnings name
the input by its kind (``video file``, ``image folder``): a log line goes to the journal, and a file
name may carry the patient's name. The error names the file, for whoever gave its path.
"""

from __future__ import annotations

import logging

from edge_runtime.errors import InputError
from edge_runtime.live_stats import EVENTS

log = logging.getLogger("sonomap.sources")

WARN_EVERY_N_SKIPS = 100  # after the first few, one warning per 100 corrupt frames
FIRST_SKIP_WARNINGS = 5
MAX_CONSECUTIVE_CORRUPT = 30  # one second of video at 30 fps
CORRUPT_INPUT = "corrupt_input"  # the EVENTS counter of skipped corrupt frames


def check_whole(origin: str, read: int, declared: int, packets: int) -> None:
    """InputError when a file's ``packets`` end before the ``declared`` frame count its header gives
    (MP4/QuickTime, a packet a frame: exact; 0: none declared): the file is cut short or damaged, and
    every frame after the cut is lost, not the one corrupt frame the counter may have said. A packet
    garbled in place (``read`` short, every packet there) is a glitch the counter reports."""
    if 0 < packets < declared:
        raise InputError(
            f"{origin}: the file is cut short or damaged: {read} of the {declared} frames it declares "
            f"could be read (frame {read} on are lost)"
        )


class CorruptCounter:
    """Skips corrupt frames of one input with a counted warning (the first few, then every
    100th; ``EVENTS["corrupt_input"]``). After ``max_consecutive`` in a row the input is
    broken rather than glitchy: InputError naming it and the frame.

    ``name``: the input as the error names it (its path, a stream URL without credentials);
    ``label``: the input as the warnings name it, its kind (default: ``name``)."""

    def __init__(self, name: str, label: str | None = None, max_consecutive: int = MAX_CONSECUTIVE_CORRUPT):
        self.name = name
        self.label = name if label is None else label
        self.max_consecutive = max_consecutive
        self.skipped = 0
        self.consecutive = 0

    def skip(self, where: str, reason: str, file: str | None = None) -> None:
        """Count a corrupt frame at ``where`` (no file name: it is logged); ``file``: the file that
        held it, when not the input itself (an image in a folder), named in the error only."""
        self.skipped += 1
        self.consecutive += 1
        EVENTS.inc(CORRUPT_INPUT)
        if self.consecutive > self.max_consecutive:
            last = f"; the last: {file}" if file else ""
            raise InputError(
                f"{self.name}: {self.consecutive} corrupt frames in a row at {where} ({reason}{last})"
            )
        if self.skipped <= FIRST_SKIP_WARNINGS or self.skipped % WARN_EVERY_N_SKIPS == 0:
            log.warning(
                "%s: skipped corrupt %s (%s); %d skipped so far", self.label, where, reason, self.skipped
            )

    def ok(self) -> None:
        self.consecutive = 0
