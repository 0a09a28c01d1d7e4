"""Test helper: an observer that logs, per delivered frame, the AI state drawn on it and whether a
prediction came with it (what the safety tests assert frame by frame)."""

from __future__ import annotations

from edge_runtime.frames import Observer


class States(Observer):
    """``seen``: (AI state, prediction given) per delivered frame, in order."""

    def __init__(self):
        self.seen: list[tuple[str, bool]] = []

    def on_frame(self, frame, prediction, rendered, stats):
        self.seen.append((stats["ai"]["state"], prediction is not None))

    def close(self):
        pass
