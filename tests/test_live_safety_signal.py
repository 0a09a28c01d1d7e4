"""Live NO SIGNAL, as the operator sees it: sonomap's own NO SIGNAL screens (a frozen source, a device
re-plugged) carry an explicit ``AI OFF no signal`` badge, are never sent to the AI nor searched for an
ROI, and nothing of the AI from before the gap (a pending answer, the smoothed mask) reaches the
frames after it. A stub backend answers by the frame's content, so a drawn mask says which image it
came from (:mod:`test_live_safety_support`)."""

from __future__ import annotations

import numpy as np
from runtime_model import dark_onnx
from test_live_safety_support import (
    CANCER,
    CANCER_MARK,
    CLEAR,
    CLEAR_MARK,
    DIM_MEAN,
    RECT,
    SIZE,
    Collect,
    Scanner,
    Stub,
    badge,
    config,
    dim_only,
    interior,
    mark_of,
    mask_drawn,
)

from edge_runtime.config_schema import OverlayConfig
from edge_runtime.errors import InputError
from edge_runtime.frames import Source
from edge_runtime.manifest import load_manifest
from edge_runtime.pipeline.deidentify import ROI_META_KEY
from edge_runtime.pipeline.graph import Pipeline
from edge_runtime.render.overlay import BANNER_BGR, BANNER_PX, Overlay
from edge_runtime.sources.reconnect import ResilientSource

WHOLE_SCREEN = (0, 0, SIZE[1], SIZE[0])


def banner_colours(rendered: np.ndarray, box) -> list[tuple[int, ...]]:
    """The colours of the first two banner rows at the top of ``box`` (x, y, w, h)."""
    x, y, w, _ = box
    return [tuple(int(v) for v in rendered[y + row * BANNER_PX + 3, x + w - 4]) for row in (0, 1)]


def assert_no_signal_frame(item, boxes=(RECT,)) -> None:
    """AI OFF, saying no signal, in the badge too; no mask; no ROI looked for on sonomap's own screen;
    only the NO SIGNAL banner (no operator's-choice AI OFF banner under it) at the top of one of
    ``boxes``."""
    frame, prediction, rendered, ai = item
    assert (ai["state"], ai["detail"]) == ("OFF", "no signal")
    assert badge(rendered) == "OFF" and prediction is None
    assert ROI_META_KEY not in frame.meta
    shown = [banner_colours(rendered, box) for box in boxes]
    assert any(
        first == BANNER_BGR["warning"] and second not in BANNER_BGR.values() for first, second in shown
    )


def test_a_frozen_source_shows_no_signal_over_the_last_frame_and_the_ai_never_gets_it():
    stub = Stub(dim_only)
    collect = Collect()
    # 4.5 s frozen: the display makes two NO SIGNAL frames (after 2 s and 4 s without a frame)
    source = Scanner(50, freeze_after=29, freeze_s=4.5)
    Pipeline(config(), observers=[collect], source=source, backend=stub).run()
    assert min(stub.means) > DIM_MEAN, "the AI was given the dimmed NO SIGNAL image"
    items = collect.items
    gap = [i for i, (f, _, _, _) in enumerate(items) if f.index < 0]
    assert len(gap) >= 2 and gap == list(range(gap[0], gap[0] + len(gap)))
    last_real = items[gap[0] - 1][0]
    for i in gap:
        assert_no_signal_frame(items[i])
        # the last frame shown, dimmed once: not darker at each NO SIGNAL frame
        assert np.array_equal(interior(last_real, items[i][2]), interior(last_real, last_real.image // 3))
    after = items[gap[-1] + 1 :]
    assert len(after) >= 10
    assert after[0][3]["state"] == "LOADING", "the first frame after the gap is labelled with an old result"
    for frame, prediction, rendered, _ in items:
        if frame.index >= 0:
            assert not mask_drawn(frame, rendered), f"frame {frame.index}: the NO SIGNAL image's mask"
        assert prediction is None or prediction.frame.index >= 0
    assert any(ai["state"] == "ON" for _, _, _, ai in after)


class Replugged:
    """Opens of a capture device: absent at start-up, then a session marked CANCER, then one marked
    CLEAR (the next patient's image), then gone."""

    def __init__(self):
        self.opens = 0

    def __call__(self) -> Source:
        self.opens += 1
        if self.opens == 1 or self.opens >= 4:  # gone for good: no third session however slow the run
            raise InputError("/dev/video0: capture device not found")
        return Scanner(30, CANCER_MARK if self.opens == 2 else CLEAR_MARK)


def test_reconnect_no_signal_says_ai_off_and_the_new_session_gets_nothing_of_the_old_one():
    collect = Collect()
    source = ResilientSource(Replugged(), "capture device /dev/video0", initial_backoff_s=0.3, size=SIZE)
    config_ = config(overlay={"ema": 0.3}, live={"duration_s": 3.5})
    Pipeline(config_, observers=[collect], source=source, backend=Stub()).run()
    assert collect.items[0][0].meta.get("no_signal"), "no NO SIGNAL at start-up"
    sessions: list[list] = []
    for item in collect.items:
        frame = item[0]
        if frame.meta.get("no_signal"):
            # before any image: the whole screen, or the ROI of the image coming (chosen by the capture
            # thread meanwhile); then the ROI the device had
            assert_no_signal_frame(item, (RECT,) if sessions else (WHOLE_SCREEN, RECT))
            continue
        if frame.meta.get("session_start"):
            sessions.append([])
            assert item[3]["state"] == "LOADING", "a new session's first frame is labelled with an old result"
        sessions[-1].append(item)
    assert len(sessions) == 2
    first, second = sessions
    assert {mark_of(f) for f, _, _, _ in first} == {CANCER_MARK}
    assert any(mask_drawn(f, img) for f, _, img, _ in first)  # so the check below can fail
    assert {mark_of(f) for f, _, _, _ in second} == {CLEAR_MARK}
    for frame, _, rendered, _ in second:
        assert not mask_drawn(frame, rendered), f"frame {frame.index}: the previous session's mask"
    assert any(ai["state"] == "ON" for _, _, _, ai in second)


def test_overlay_reset_smoothing_forgets_the_previous_image():
    overlay = Overlay.from_config(load_manifest(dark_onnx()), OverlayConfig(ema=0.3))
    cancer, clear = np.full((20, 30), CANCER, np.float32), np.full((20, 30), CLEAR, np.float32)
    overlay.smooth((cancer > 0.5).astype(np.uint8), cancer)
    assert overlay.smooth((clear > 0.5).astype(np.uint8), clear).any()  # smoothed: still cancer
    overlay.reset_smoothing()
    assert not overlay.smooth((clear > 0.5).astype(np.uint8), clear).any()
