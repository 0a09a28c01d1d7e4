"""One ROI chooser, several threads: its choices stay whole.

Live, the capture thread chooses the ROI of every frame before blanking it (the de-identified source),
the display thread chooses for frames that come without one (de-identification off) and forgets the
ROI on a re-plugged device, and a config reload (in the inference thread) hands the chooser a new
config and forgets. A reload whose forget landed while a choice was under way used to be lost: the
choice, made with the old config, was stored after the forget, and the new ``roi.rect`` waited for the
next size change. Real scanner screens from make-clip's simulator, real detection; the one hook below
only holds a real choice open so that the reload is sure to land inside it.
"""

from __future__ import annotations

import random
import threading
import time

from test_roi_privacy_detect import screen

from edge_runtime import roi as rois
from edge_runtime.config import build_config
from edge_runtime.frames import Frame
from edge_runtime.pipeline import roi_chooser

RECT = [40, 30, 400, 280]  # a configured rect that fits every screen below
SIZES = ((640, 360), (320, 180))
WAIT_S = 10.0  # a thread that takes longer has hung
HAMMER_S = 1.5  # how long the threads hammer the chooser
ROUNDS_MIN = 20  # reconfigurations the hammer must see at least (else the machine was too slow to tell)
MAX_PAUSE_S = 0.003  # between reconfigurations: about one detection of a 640x360 screen


def frame(image, index: int = 1) -> Frame:
    """A fresh frame of ``image`` (no ROI chosen yet); the pixels are shared, never written."""
    return Frame(index, image, 0.0, None, {})


def expected_rois() -> dict[tuple, list[int]]:
    """(H, W) -> the ROI one thread alone detects on that screen."""
    out = {}
    for size in SIZES:
        image, _ = screen(size=size)
        roi = roi_chooser.RoiChooser(build_config({})).choose(frame(image))
        assert not roi.undecided, (size, roi)
        out[image.shape[:2]] = roi.as_list()
    return out


def test_a_reload_during_a_choice_is_not_lost(monkeypatch):
    """The reload's forget waits for the choice under way, so the next frame uses the new rect."""
    image, _ = screen()
    chooser = roi_chooser.RoiChooser(build_config({}))
    auto = chooser.choose(frame(image, 0))
    assert not auto.undecided and auto.as_list() != RECT

    entered, release = threading.Event(), threading.Event()
    real = rois.resolve_roi

    def held(*args, **kwargs):  # the real choice, held open until the reload is under way
        entered.set()
        release.wait(WAIT_S)
        return real(*args, **kwargs)

    monkeypatch.setattr(rois, "resolve_roi", held)
    chooser.forget()  # e.g. a re-plugged device: the next frame chooses again (auto)
    choosing = threading.Thread(target=chooser.choose, args=(frame(image, 1),))
    choosing.start()
    assert entered.wait(WAIT_S)
    chooser.config = build_config({"roi": {"rect": RECT}})  # what FrameStages.reconfigure does
    reloading = threading.Thread(target=chooser.forget)
    reloading.start()
    reloading.join(0.2)  # a forget that does not wait returns at once: it would be lost
    release.set()
    choosing.join(WAIT_S)
    reloading.join(WAIT_S)
    assert not choosing.is_alive() and not reloading.is_alive()
    assert chooser.choose(frame(image, 2)).as_list() == RECT


def run_threads(targets, errors: list) -> None:
    def guarded(target):
        try:
            target()
        except Exception as exc:  # reported by the test, with the thread's own error
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HAMMER_S + WAIT_S)
    assert not any(t.is_alive() for t in threads), "a thread hung"


def test_reloads_hammered_between_two_choosing_threads_always_take_effect():
    """Two threads choose for frames of one screen while a third reloads (auto <-> a rect) and forgets.
    Every choice is the auto ROI or the rect; every choice made wholly after a reload's forget and
    before the next reload is the reloaded config's ROI; no frame goes undecided, nothing raises."""
    image, _ = screen()
    auto = expected_rois()[image.shape[:2]]
    configs = [build_config({}), build_config({"roi": {"rect": RECT}})]
    wanted = [auto, RECT]
    chooser = roi_chooser.RoiChooser(configs[0])
    chooser.choose(frame(image, 0))
    state = {"epoch": 0}  # even: config epoch // 2 % 2 in force and forgotten; odd: a reload under way
    stop, errors, stale, rounds = threading.Event(), [], [], [0]

    def choose_frames():
        while not stop.is_set():
            before = state["epoch"]
            roi = chooser.choose(frame(image))
            after = state["epoch"]
            if roi.as_list() not in wanted or roi.undecided:
                errors.append(f"ROI {roi} is neither the auto ROI {auto} nor the rect {RECT}")
            elif before == after and before % 2 == 0 and roi.as_list() != wanted[before // 2 % 2]:
                stale.append((before, roi.as_list()))

    def reload():
        rng = random.Random(0)
        deadline = time.monotonic() + HAMMER_S
        while time.monotonic() < deadline:
            state["epoch"] += 1
            chooser.config = configs[(state["epoch"] + 1) // 2 % 2]
            chooser.forget()
            state["epoch"] += 1
            rounds[0] += 1
            time.sleep(rng.uniform(0, MAX_PAUSE_S))
        stop.set()

    run_threads([choose_frames, choose_frames, reload], errors)
    assert stale == [], f"{len(stale)} choices kept the config of before a reload, e.g. {stale[:3]}"
    assert errors == [], errors[:3]
    assert rounds[0] >= ROUNDS_MIN
    assert chooser.undecided_frames == 0


def test_each_frame_gets_the_roi_of_its_own_size_under_threads():
    """Two threads choose for screens of two sizes (every choice chooses again: the size changed), a
    third forgets: each frame gets the ROI detected for its own size, never the other's, and the
    state left behind is one choice. A guard more than a reproduction: under CPython's GIL no thread
    switch falls between the reads such a mix needs, so it held before the lock too."""
    expected = expected_rois()
    images = [screen(size=size)[0] for size in SIZES]
    chooser = roi_chooser.RoiChooser(build_config({}))
    stop, errors, counts = threading.Event(), [], [0, 0]

    def choose_frames(slot: int):
        image = images[slot]
        while not stop.is_set():
            roi = chooser.choose(frame(image))
            counts[slot] += 1
            if roi.as_list() != expected[image.shape[:2]] or roi.undecided:
                errors.append(f"a {image.shape[1]}x{image.shape[0]} frame got {roi}")

    def forget():
        deadline = time.monotonic() + HAMMER_S
        while time.monotonic() < deadline:
            chooser.forget()
            time.sleep(MAX_PAUSE_S / 3)
        stop.set()

    run_threads([lambda: choose_frames(0), lambda: choose_frames(1), forget], errors)
    assert errors == [], errors[:3]
    assert min(counts) > 0
    assert chooser.undecided_frames == 0
    if chooser.shape is not None:
        assert chooser.roi.as_list() == expected[chooser.shape]
