"""Soak: the real replay pipeline loops a clip with the service observers and a recording;
RSS after warm-up must stay flat (< 2% growth). The 10-minute figure comes from
`sonomap soak --minutes 10` (docs/operations.md); this test runs the same code for 30 s, unpaced so the
pipeline reaches its steady state (stat windows full) within the first third."""

from __future__ import annotations

import pytest
from runtime_model import dark_onnx

from edge_runtime.tools.soak import DEFAULT_MAX_GROWTH
from edge_runtime.tools.soak_run import CLIP_FRAMES, growth, run_soak

MIB = 1024 * 1024
SOAK_MINUTES = 0.5
WARMUP = 0.35
WINDOW_FRACTION = 0.25  # each RSS window (post-warm-up and last) is a quarter of the run
# Not a speed floor (unpaced, it runs ~100 fps here): the RSS windows only say something if the
# pipeline worked through them, so the looped clip must have been played at least once per
# window-length of the run on average (4 passes: 360 frames, 8 fps), its re-open inside the windows.
MIN_FRAMES = round(1 / WINDOW_FRACTION) * CLIP_FRAMES


def test_growth_compares_post_warmup_and_last_windows():
    samples = [
        (t, (100 + (50 if t < 10 else 0) + t // 50) * MIB) for t in range(100)
    ]  # warm-up spike ignored
    g = growth(samples, 100)
    assert g["baseline_mib"] == 100 and g["final_mib"] == 101 and g["growth"] == pytest.approx(0.01)
    assert growth([], 100)["growth"] is None


@pytest.mark.slow
def test_soak_replay_loop_rss_flat():
    report = run_soak(
        SOAK_MINUTES,
        model=str(dark_onnx()),
        realtime=False,
        record=True,
        sample_s=0.5,
        warmup=WARMUP,
        window_fraction=WINDOW_FRACTION,
    )
    assert report["frames"] >= MIN_FRAMES, report["frames"]
    assert report["errors"] == 0 and report["sink_errors"] == 0
    assert report["growth"] is not None and report["growth"] < DEFAULT_MAX_GROWTH, report
