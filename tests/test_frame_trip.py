"""A frame's trip in replay, traced for real (:mod:`frame_trip`): the stages take it in one direction.

Source -> de-identify -> ROI -> infer -> render -> sinks: the schedule calls the stages, the graph that
built them is not on the way, and no two pipeline files call each other back and forth.
"""

from __future__ import annotations

import pytest
from cli import sonomap
from frame_trip import GRAPH_FILES, ground_floor, live_trip, replay_trip

from edge_runtime.config import DEFAULT_MODEL

CLIP_FRAMES = 12
# Every file the trip enters today (23: the stage files, the observers' calls pipeline/outputs.py, the
# display's rule pipeline/drawn_state.py, capture's frame-size guard, the ROI chooser pipeline/roi_chooser.py, and
# the ground-floor helpers frames, roi, roi_edges, likeness, yuv, stats, aistate and mask_filter,
# docs/architecture.md "A frame's trip"), plus render/hudrow.py on a frame whose HUD text is re-rendered
# (a few times a second, so whether a 12-frame replay enters it depends on the machine's speed); a
# change that adds files to the path has to raise this on purpose.
MAX_FILES = 24
# The route: the files that hand the frame on to a room (the schedule, capture, de-identify, the stage
# runner, the inference guard, the renderer, the writer); a reader follows the frame through these.
# Live's schedule is two of them (its threads in live.py, what a frame is drawn with in live_display.py),
# so a live run that records reaches the budget: 8.
MAX_ROUTE_FILES = 8


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    clip = tmp_path_factory.mktemp("clip") / "clip.mp4"
    sonomap("make-clip", "--out", clip, "--frames", CLIP_FRAMES, "--size", "640x360")
    return clip


@pytest.fixture(scope="module")
def trip(clip, tmp_path_factory):
    return replay_trip(clip, DEFAULT_MODEL, tmp_path_factory.mktemp("trip"))


def test_the_trip_enters_each_stage_and_no_more_files_than_budgeted(trip):
    stages = {
        "sources/capture.py",
        "pipeline/deidentify.py",
        "pipeline/stages.py",
        "backends/onnxruntime.py",
        "render/overlay.py",
        "sinks/mp4.py",
    }
    assert stages <= trip.files, trip.report()
    assert len(trip.files) <= MAX_FILES, trip.report()


def room(path: str) -> str:
    return path.rpartition("/")[0]


def _route_and_leaves(trip):
    floor = ground_floor(trip.files)
    leaves = trip.leaves(floor)
    return trip.files - leaves, leaves - floor


def test_a_reader_follows_the_frame_through_at_most_eight_files(trip):
    route, _ = _route_and_leaves(trip)
    assert len(route) <= MAX_ROUTE_FILES, trip.report()
    assert {"pipeline/replay.py", "sources/capture.py", "render/overlay.py", "sinks/mp4.py"} <= route


def test_every_file_off_the_route_is_a_helper_of_its_callers_room_or_the_ground_floor(trip):
    """A file off the route returns to its caller: the backend under the guard, the mask painter under
    the renderer, the encoder thread under the writer, the corrupt counter under capture. None is
    called from another room, so no stage's work hides off the route."""
    _, room_leaves = _route_and_leaves(trip)
    for leaf in room_leaves:
        callers = {a for (a, b) in trip.hops if b == leaf}
        assert callers and {room(a) for a in callers} == {room(leaf)}, (leaf, callers, trip.report())


def test_the_graph_is_not_on_the_frames_way(trip):
    assert trip.crossings == 0, trip.report()
    assert not trip.files & GRAPH_FILES, trip.report()


def test_nothing_calls_back_into_the_schedule(trip):
    assert trip.into_schedules == [], trip.report()


def test_no_pipeline_file_and_another_call_each_other(trip):
    """The stages call the backend, the renderer and the sinks; none of them calls back (the schedule
    runs the backend on its thread and hands the answer to the stages)."""
    pipeline_pairs = [
        (a, b) for a, b in trip.ping_pong if a.startswith("pipeline/") or b.startswith("pipeline/")
    ]
    assert pipeline_pairs == [], trip.report()


def test_the_live_schedule_keeps_the_graph_off_the_frames_way_too(clip):
    trip = live_trip(clip, DEFAULT_MODEL)
    assert len(_route_and_leaves(trip)[0]) <= MAX_ROUTE_FILES, trip.report()
    assert {"pipeline/live.py", "pipeline/live_display.py", "pipeline/stages.py"} <= trip.files, trip.report()
    assert trip.crossings == 0 and not trip.files & GRAPH_FILES, trip.report()
    assert trip.into_schedules == [], trip.report()
