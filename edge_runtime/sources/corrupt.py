"""Corrupt-input counting shared by every source: skip a bad frame with a counted warning, fail on a run.

A glitchy input (a torn packet, a truncated file) loses a frame and says so; a broken one (too many
corrupt frames in a row) stops with an InputError naming the input and the frame.
"""

from __future__ import annotations

import logging

from edge_runtime.errors import InputError
from edge_runtime.live_stats import EVENTS

log = logging.getLogger("sonomap.sources")

WARN_EVERY_N_SKIPS = 100  # after the first few, one warning per 100 corrupt frames
FIRST_SKIP_WARNINGS = 5
MAX_CONSECUTIVE_CORRUPT = 30  # one second of video at 30 fps


class CorruptCounter:
    """Skips corrupt frames of one input with a counted warning (the first few, then every
    100th; ``EVENTS["corrupt_input"]``). After ``max_consecutive`` in a row the input is
    broken rather than glitchy: InputError naming it and the frame."""

    def __init__(self, name: str, max_consecutive: int = MAX_CONSECUTIVE_CORRUPT):
        self.name = name
        self.max_consecutive = max_consecutive
        self.skipped = 0
        self.consecutive = 0

    def skip(self, where: str, reason: str) -> None:
        self.skipped += 1
        self.consecutive += 1
        EVENTS.inc("corrupt_input")
        if self.consecutive > self.max_consecutive:
            raise InputError(f"{self.name}: {self.consecutive} corrupt frames in a row at {where} ({reason})")
        if self.skipped <= FIRST_SKIP_WARNINGS or self.skipped % WARN_EVERY_N_SKIPS == 0:
            log.warning(
                "%s: skipped corrupt %s (%s); %d skipped so far", self.name, where, reason, self.skipped
            )

    def ok(self) -> None:
        self.consecutive = 0
