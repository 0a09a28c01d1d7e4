"""Playing a file at its own pace (`replay --realtime`, `live` from a file): the real clock, real
sleeps. Time going backwards (a looping sequence restarting, a recorder's clock reset) starts the
clock again instead of playing the rest unpaced; a long forward gap is skipped, not waited out.
The bounds only fail when pacing is wrong: a loaded machine sleeps longer, never shorter, and the
gap bound is far above any scheduling delay."""

from __future__ import annotations

import time

import numpy as np

from edge_runtime.frames import Frame
from edge_runtime.pipeline.pacing import MAX_GAP_S, Pacer

STEP_S = 0.2
FPS = 1 / STEP_S
IMAGE = np.zeros((2, 2, 3), np.uint8)


def played(pacer: Pacer, times: list[float | None]) -> float:
    """Seconds it takes to pace frames with these pts (None: placed by index)."""
    t0 = time.monotonic()
    for i, pts in enumerate(times):
        pacer.wait(Frame(i, IMAGE, 0.0, pts), FPS)
    return time.monotonic() - t0


def test_time_going_backwards_starts_the_clock_again():
    # two passes of a 3-frame sequence: 2 steps each; measured from the first start, the second pass
    # would be 'late' and play at once (0.4 s in all)
    elapsed = played(Pacer(by_pts=True), [0.0, STEP_S, 2 * STEP_S] * 2)
    assert elapsed >= 4 * STEP_S - 0.05, elapsed


def test_frames_placed_by_index_are_paced_at_the_frame_rate():
    elapsed = played(Pacer(by_pts=False), [None] * 4)
    assert elapsed >= 3 * STEP_S - 0.05, elapsed


def test_a_long_gap_is_skipped_not_waited_out():
    gap = 50 * MAX_GAP_S  # a paused recording
    elapsed = played(Pacer(by_pts=True), [0.0, STEP_S, STEP_S + gap, 2 * STEP_S + gap])
    assert 2 * STEP_S - 0.05 <= elapsed < MAX_GAP_S, elapsed
