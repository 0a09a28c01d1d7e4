"""What the test_live_safety_* tests share: a scanner screen whose content tells a stub backend what
to answer, a live source playing such screens, an observer keeping what each frame showed, and checks
on the rendered pixels (was a mask drawn, which AI badge is shown). No tests here."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from runtime_model import dark_onnx

from edge_runtime.backends.base import Backend
from edge_runtime.config import build_config
from edge_runtime.frames import Frame, Observer, Prediction, Source
from edge_runtime.manifest import load_manifest
from edge_runtime.pipeline.deidentify import ROI_META_KEY
from edge_runtime.render.hudrow import AI_BADGE_BGR
from edge_runtime.render.overlay import BANNER_PX

SIZE = (360, 640)  # (H, W) of the scanner screen
RECT = (100, 60, 400, 240)  # x, y, w, h of the ultrasound image (roi.rect in config())
FPS = 30
MARK_PX = 8  # the top-left patch of the image tells the stub what the frame shows
CANCER_MARK, FAULT_MARK, CLEAR_MARK = 255, 128, 0
CANCER, CLEAR = 0.95, 0.05  # the stub's probability: cancer everywhere, or nothing
DIM_MEAN = 80.0  # below it the gray ROI is a dimmed copy (the speckle averages about 120)
LEGEND_ROWS = 40  # the legend's band at the bottom of the ROI
BADGE_MIN_PX = 200  # a badge has more pixels of its state's colour than this


def by_mark(gray: np.ndarray) -> bool:
    """Cancer on a CANCER_MARK image, a fault on a FAULT_MARK one, nothing elsewhere."""
    mark = float(gray[:MARK_PX, :MARK_PX].mean())
    if mark == FAULT_MARK:
        raise RuntimeError("injected fault")
    return mark == CANCER_MARK


def dim_only(gray: np.ndarray) -> bool:
    """Cancer on a dimmed copy only (the scanner never sends one)."""
    return float(gray.mean()) < DIM_MEAN


def everywhere(gray: np.ndarray) -> bool:
    return True


class Stub(Backend):
    """Cancer everywhere on the images ``rule`` says, nothing elsewhere; ``delay_s`` per call. Keeps the
    mean of each image it was given."""

    name = "stub"

    def __init__(self, rule: Callable[[np.ndarray], bool] = by_mark, delay_s: float = 0.0):
        super().__init__(dark_onnx(), load_manifest(dark_onnx()))
        self.rule, self.delay_s, self.means = rule, delay_s, []

    def describe(self):
        return {"backend": "stub", "device": "cpu"}

    def infer(self, gray):
        self.means.append(float(gray.mean()))
        time.sleep(self.delay_s)
        prob = np.full(gray.shape, CANCER if self.rule(gray) else CLEAR, np.float32)
        return Prediction((prob > 0.5).astype(np.uint8), prob, self.delay_s * 1000)


def screen(index: int, mark: int, size=SIZE, rect=RECT) -> np.ndarray:
    """A dark screen with speckle in ``rect``, its top-left patch set to ``mark``."""
    image = np.full((*size, 3), 4, np.uint8)
    x, y, w, h = rect
    image[y : y + h, x : x + w] = np.random.default_rng(index).integers(60, 180, (h, w, 1), dtype=np.uint8)
    image[y : y + MARK_PX, x : x + MARK_PX] = mark
    return image


class Scanner(Source):
    """A live source: ``frames`` screens at FPS, frame i marked ``mark(i)`` (or ``mark``; ``image(i)``:
    another picture), frozen for ``freeze_s`` after frame ``freeze_after`` (a read that does not
    return). ``before``: frame index -> what happens just before it is captured (an operator's key)."""

    live, fps = True, FPS

    def __init__(
        self,
        frames: int,
        mark: int | Callable[[int], int] = CLEAR_MARK,
        freeze_after: int = -1,
        freeze_s: float = 0.0,
        before: dict[int, Callable[[], None]] | None = None,
        image: Callable[[int], np.ndarray] | None = None,
    ):
        self.frames, self.mark, self.freeze_after, self.freeze_s = frames, mark, freeze_after, freeze_s
        self.before, self.image = before or {}, image

    def picture(self, i: int) -> np.ndarray:
        if self.image is not None:
            return self.image(i)
        return screen(i, self.mark(i) if callable(self.mark) else self.mark)

    def __iter__(self):
        for i in range(self.frames):
            if i in self.before:
                self.before[i]()
            yield Frame(i, self.picture(i), time.monotonic())
            time.sleep(self.freeze_s if i == self.freeze_after else 1 / FPS)


class Collect(Observer):
    """What each rendered frame showed: (frame, the prediction drawn, the image, the AI state)."""

    def __init__(self):
        self.items = []

    def on_frame(self, frame, prediction, rendered, stats):
        self.items.append((frame, prediction, rendered.copy(), stats["ai"]))

    def close(self):
        pass


def config(**sections):
    """A live config with RECT as roi.rect (no detection involved) and no time limit."""
    data = {
        "source": {"input": "synthetic", "fps": FPS},
        "inference": {"model": str(dark_onnx())},
        "roi": {"rect": ",".join(map(str, RECT))},
        "live": {"duration_s": None},
    }
    for key, value in sections.items():
        data.setdefault(key, {}).update(value)
    return build_config(data)


def interior(frame: Frame, image: np.ndarray) -> np.ndarray:
    """The frame's ROI below two banners and above the legend: where a mask shows."""
    roi = frame.meta[ROI_META_KEY]
    return image[roi.y + 2 * BANNER_PX : roi.y + roi.h - LEGEND_ROWS, roi.x : roi.x + roi.w]


def mask_drawn(frame: Frame, rendered: np.ndarray) -> bool:
    """Whether anything was painted over the frame's ultrasound."""
    return not np.array_equal(interior(frame, rendered), interior(frame, frame.image))


def mark_of(frame: Frame) -> int:
    roi = frame.meta[ROI_META_KEY]
    return int(frame.image[roi.y, roi.x, 0])


def badge(rendered: np.ndarray) -> str | None:
    """The state whose badge colour the frame shows (None: no badge)."""
    counts = {s: int(np.all(rendered == bgr, axis=2).sum()) for s, bgr in AI_BADGE_BGR.items()}
    state = max(counts, key=counts.get)
    return state if counts[state] > BADGE_MIN_PX else None
