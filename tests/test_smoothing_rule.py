"""When the mask's EMA smoothing starts afresh: one rule (edge_runtime.aistate.smoothing_restarts),
followed by live's display memory and by replay alike, so a replay of a session smooths as the cart
showed it."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.aistate import ERROR, LOADING, OFF, ON, STALLED, smoothing_restarts
from edge_runtime.frames import Frame
from edge_runtime.pipeline.live_display import Shown
from edge_runtime.pipeline.replay import SmoothingRestarts
from edge_runtime.roi import Roi

A, B = Roi(10, 20, 300, 200), Roi(10, 20, 300, 201)


@pytest.mark.parametrize(
    ("before", "now", "restarts"),
    [
        ((A, ON), (A, ON), False),
        ((A, ON), (B, ON), True),  # another image
        ((A, ON), (None, OFF), True),  # a screen without an image
        ((None, None), (A, ON), True),  # the first frame
        ((A, ON), (A, STALLED), False),  # a stall voids nothing: its answer is drawn, faded
        ((A, STALLED), (A, ON), True),  # the AI answers again
        ((A, ON), (A, LOADING), True),
        ((A, ON), (A, ERROR), True),
        ((A, ON), (A, OFF), True),
        ((A, LOADING), (A, LOADING), False),
        ((A, ERROR), (A, ON), True),
    ],
)
def test_the_rule(before, now, restarts):
    assert smoothing_restarts(*before, *now) is restarts


class CountingStages:
    """The one FrameStages method both memories call."""

    def __init__(self):
        self.resets = 0

    def reset_smoothing(self) -> None:
        self.resets += 1


def test_live_and_replay_restart_on_the_same_frames():
    steps = [
        (A, ON),
        (A, ON),
        (A, STALLED),
        (A, ON),
        (B, ON),
        (B, LOADING),
        (B, LOADING),
        (B, ON),
        (None, OFF),
    ]
    steps += [(A, ON), (A, ERROR), (A, ON), (A, ON)]
    live_stages, replay_stages = CountingStages(), CountingStages()
    image = np.zeros((4, 4, 3), np.uint8)
    shown = Shown(live_stages, Frame(0, image, 0.0))
    replay = SmoothingRestarts(replay_stages)
    live_at, replay_at = [], []
    for i, (roi, state) in enumerate(steps):
        before = live_stages.resets, replay_stages.resets
        shown.update(Frame(i, image, float(i)), roi, state)
        replay.follow(roi, state)
        live_at += [i] * (live_stages.resets - before[0])
        replay_at += [i] * (replay_stages.resets - before[1])
    assert replay_at == live_at == [0, 3, 4, 5, 7, 8, 9, 10, 11]
