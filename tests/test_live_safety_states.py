"""Live 'latest': a mask is drawn only under ``AI ON``, only on the image it was computed for, and a
mask smoothed on one image never shows on another. What the operator sees is checked on the rendered
pixels and the AI state of every frame, with a stub backend that answers by the frame's content
(:mod:`test_live_safety_support`)."""

from __future__ import annotations

import threading
import time

import numpy as np
import yaml
from test_live_safety_support import (
    CANCER_MARK,
    CLEAR_MARK,
    FAULT_MARK,
    FPS,
    MARK_PX,
    RECT,
    SIZE,
    Collect,
    Scanner,
    Stub,
    badge,
    config,
    everywhere,
    mark_of,
    mask_drawn,
    screen,
)

from edge_runtime.aistate import AiStatus
from edge_runtime.frames import Frame, Source
from edge_runtime.pipeline.deidentify import ROI_META_KEY
from edge_runtime.pipeline.graph import Pipeline
from edge_runtime.render.overlay import Overlay
from edge_runtime.roi import Roi

WAITING = ("LOADING", "waiting for a result")  # the state of a frame with no result of its own image yet


def assert_mask_only_under_ai_on(items, cancer_everywhere: bool = True) -> None:
    """Every frame: its badge is its state, and a mask is drawn only under AI ON. ``cancer_everywhere``
    (what the backend finds on every frame): AI ON with an age only where a mask is drawn."""
    for frame, _, rendered, ai in items:
        assert badge(rendered) == ai["state"]
        drawn = mask_drawn(frame, rendered)
        assert ai["state"] == "ON" or not drawn, f"frame {frame.index}: mask under AI {ai['state']}"
        if cancer_everywhere:
            assert drawn or ai["state"] != "ON" or not ai["detail"], f"frame {frame.index}: AI ON, no mask"


class TwoSizes(Source):
    """A live source whose resolution changes mid-stream (a scanner's depth change over OpenIGTLink)."""

    live, fps = True, FPS
    SECOND = (450, 800)  # (H, W) after the change; the image area grows with it

    def __iter__(self):
        x, y, w, h = RECT
        sizes = [(SIZE, RECT), (self.SECOND, (x + 25, y + 15, w + 100, h + 60))]
        for i in range(80):
            size, rect = sizes[i // 40]
            yield Frame(i, screen(i, CANCER_MARK, size, rect), time.monotonic())
            time.sleep(1 / FPS)


def test_a_resolution_change_shows_loading_until_a_result_on_the_new_image():
    collect = Collect()
    slow = Stub(everywhere, delay_s=0.25)  # 4 results a second, as on a small GPU
    Pipeline(config(roi={"rect": "auto"}), observers=[collect], source=TwoSizes(), backend=slow).run()
    items = collect.items
    assert_mask_only_under_ai_on(items)
    for frame, prediction, _, _ in items:
        assert prediction is None or prediction.frame.image.shape == frame.image.shape
    new = [item for item in items if item[0].image.shape[:2] == TwoSizes.SECOND]
    waiting = [ai for _, _, _, ai in new if (ai["state"], ai["detail"]) == WAITING]
    assert waiting and new[0][3]["state"] == "LOADING"
    assert any(ai["state"] == "ON" for _, _, _, ai in new)


class SlowRebuild(Pipeline):
    """A pipeline whose backend takes 1 s to build (a TensorRT engine load on the cart)."""

    def _make_backend(self, inference=None):
        time.sleep(1.0)
        return Stub(everywhere)


def test_a_backend_rebuild_shows_loading_without_the_old_mask(tmp_path):
    path = tmp_path / "runtime.yaml"
    data = {
        "source": {"input": "synthetic", "fps": FPS},
        "inference": {"model": str(Stub().model_path), "threads": 1},
        "roi": {"rect": ",".join(map(str, RECT))},
        "live": {"stale_ms": 3000},  # an old mask does not fade out by itself during the rebuild
    }
    path.write_text(yaml.safe_dump(data))
    collect = Collect()
    pipeline = SlowRebuild(
        config(**data), observers=[collect], config_path=path, source=Scanner(90, CANCER_MARK), backend=Stub()
    )

    def reload():  # SIGHUP after a change that needs a new backend
        data["inference"]["threads"] = 2
        path.write_text(yaml.safe_dump(data))
        pipeline.request_reload()

    threading.Timer(1.0, reload).start()
    pipeline.run()
    items = collect.items
    states = [ai["state"] for _, _, _, ai in items]
    first_on = states.index("ON")
    assert states[first_on:].count("LOADING") >= 10 and states[-1] == "ON"
    assert_mask_only_under_ai_on(items[first_on:])


def test_the_ai_back_from_an_error_starts_its_smoothing_afresh():
    collect = Collect()
    marks = {range(0, 30): CANCER_MARK, range(30, 50): FAULT_MARK, range(50, 100): CLEAR_MARK}
    source = Scanner(100, lambda i: next(m for r, m in marks.items() if i in r))
    inference = {"retry_after_s": 0.05, "retry_max_s": 0.05, "reload_after_errors": 1000}
    config_ = config(overlay={"ema": 0.3}, inference=inference)
    Pipeline(config_, observers=[collect], source=source, backend=Stub()).run()
    items = collect.items
    assert any(mask_drawn(f, img) for f, _, img, _ in items if mark_of(f) == CANCER_MARK)
    assert "ERROR" in [ai["state"] for _, _, _, ai in items]
    assert_mask_only_under_ai_on(items, cancer_everywhere=False)
    clear = [item for item in items if mark_of(item[0]) == CLEAR_MARK]
    for frame, _, rendered, _ in clear:
        assert not mask_drawn(frame, rendered), f"frame {frame.index}: the mask from before the fault"
    assert any(ai["state"] == "ON" for _, _, _, ai in clear)


def test_the_ai_switched_off_and_on_again_shows_nothing_from_before():
    collect = Collect()
    switch = {
        30: lambda: pipeline.stages.ai.set_enabled(False),
        60: lambda: pipeline.stages.ai.set_enabled(True),
    }
    source = Scanner(100, lambda i: CANCER_MARK if i < 40 else CLEAR_MARK, before=switch)  # the 'a' key
    pipeline = Pipeline(config(overlay={"ema": 0.3}), observers=[collect], source=source, backend=Stub())
    pipeline.run()
    items = collect.items
    states = [ai["state"] for _, _, _, ai in items]
    off = [i for i, s in enumerate(states) if s == "OFF"]
    assert off and states[off[-1] + 1] == "LOADING", "switched on, the AI is labelled with an old result"
    assert any(mask_drawn(f, img) for f, _, img, _ in items[: off[0]])
    for frame, _, rendered, ai in items[off[0] :]:
        assert not mask_drawn(frame, rendered), f"frame {frame.index} ({ai['state']}): a mask from before"
    assert states[-1] == "ON"


OLD_RECT, NEW_RECT = (40, 60, 260, 200), (340, 60, 260, 200)  # the same size: a mask of one fits the other


def two_images(i: int) -> np.ndarray:
    """Speckle under both rects; cancer marked in the old one only."""
    image = screen(i, CLEAR_MARK, SIZE, (40, 60, 560, 200))
    x, y = OLD_RECT[:2]
    image[y : y + MARK_PX, x : x + MARK_PX] = CANCER_MARK
    return image


def test_a_new_roi_of_the_same_size_shows_no_mask_of_the_old_one(tmp_path):
    path = tmp_path / "runtime.yaml"
    data = {
        "source": {"input": "synthetic", "fps": FPS},
        "inference": {"model": str(Stub().model_path)},
        "roi": {"rect": ",".join(map(str, OLD_RECT))},
        "overlay": {"ema": 0.3},
    }
    path.write_text(yaml.safe_dump(data))
    collect = Collect()
    source = Scanner(75, image=two_images)
    pipeline = Pipeline(config(**data), observers=[collect], config_path=path, source=source, backend=Stub())

    def reload():  # the operator moves roi.rect onto the other image
        data["roi"]["rect"] = ",".join(map(str, NEW_RECT))
        path.write_text(yaml.safe_dump(data))
        pipeline.request_reload()

    threading.Timer(1.0, reload).start()
    pipeline.run()
    old = [item for item in collect.items if item[0].meta[ROI_META_KEY] == Roi(*OLD_RECT)]
    new = [item for item in collect.items if item[0].meta[ROI_META_KEY] == Roi(*NEW_RECT)]
    assert any(mask_drawn(f, img) for f, _, img, _ in old) and len(new) >= 10
    assert (new[0][3]["state"], new[0][3]["detail"]) == WAITING
    for frame, _, rendered, _ in new:
        assert not mask_drawn(frame, rendered), f"frame {frame.index}: the old ROI's mask"
    assert any(ai["state"] == "ON" for _, _, _, ai in new)


def test_a_style_change_redraws_the_current_mask_in_the_new_style():
    pipeline = Pipeline(config(), backend=Stub())
    stages = pipeline.stages
    frame = Frame(0, screen(0, CANCER_MARK), time.monotonic())
    roi = stages.ensure_roi(frame)
    prediction = stages.infer(stages.cut(frame, roi), frame, roi)
    on = AiStatus("ON")
    as_mask = stages.render(frame, prediction, roi=roi, ai=on)
    heat_config = config(overlay={"style": "heatmap"})
    heat = Overlay.from_config(pipeline.manifest, heat_config.overlay)
    stages.reconfigure(heat_config, heat)
    redrawn = stages.render(frame, prediction, roi=roi, ai=on)  # the same result, drawn again
    expected = Overlay.from_config(pipeline.manifest, heat_config.overlay)
    expected = expected.render(frame.image, roi, expected.smooth(prediction.mask, prediction), ai=on)
    centre = (
        slice(roi.y + roi.h // 3, roi.y + 2 * roi.h // 3),
        slice(roi.x + roi.w // 3, roi.x + 2 * roi.w // 3),
    )
    assert not np.array_equal(as_mask[centre], expected[centre])  # the styles differ there
    assert np.array_equal(redrawn[centre], expected[centre]), "the old style's mask was redrawn"
