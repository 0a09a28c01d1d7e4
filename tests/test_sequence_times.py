"""A recorded sequence's frames are timed by one clock: PLUS timestamps when every frame has one, else
Slicer's index values when every frame has a numeric one, else 30 fps. A file that times only some of
its frames no longer mixes a tracker's clock with frame counts (times jumping back and forth); it is
named in one warning. Real files: a PLUS MetaImage as PLUS writes it, a Slicer .seq.nrrd via pynrrd."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import numpy as np
import pytest
from cli import sonomap
from test_sequences import plus_file

from edge_runtime.errors import InputError
from edge_runtime.recorded_time import META_KEY, RECORDING, THIS_MACHINE, frame_time
from edge_runtime.sources.opener import open_source
from edge_runtime.sources.sequence_times import frame_times
from edge_runtime.units import DEFAULT_FPS

PATH, LABEL = "rec.seq.nrrd", "Slicer sequence"


def test_one_clock_for_every_frame(caplog):
    caplog.set_level(logging.WARNING, logger="sonomap.sources")
    plus = {0: "100.0", 1: "100.05", 2: "100.1"}
    assert frame_times(3, plus, ["7", "8", "9"], PATH, LABEL) == [100.0, 100.05, 100.1]
    assert frame_times(3, {}, ["0", "0.1", "0.2"], PATH, LABEL) == [0.0, 0.1, 0.2]
    assert frame_times(3, {}, ["a", "b", "c"], PATH, LABEL) == [0.0, 1 / DEFAULT_FPS, 2 / DEFAULT_FPS]
    assert frame_times(0, {}, [], PATH, LABEL) == []
    assert not caplog.records  # nothing partial so far
    assert frame_times(3, {0: "100.0", 2: "100.1"}, ["0", "0.1", "0.2"], PATH, LABEL) == [0.0, 0.1, 0.2]
    assert "2 of its 3 frames have a Timestamp; timed by its index values" in caplog.text
    caplog.clear()
    assert frame_times(3, {1: "100.05"}, [], PATH, LABEL) == [0.0, 1 / DEFAULT_FPS, 2 / DEFAULT_FPS]
    assert (
        "Slicer sequence: 1 of its 3 frames have a Timestamp; every frame is timed at 30 fps" in caplog.text
    )
    assert PATH not in caplog.text  # a log line names the kind of source, not the file
    with pytest.raises(InputError, match=r"rec\.seq\.nrrd: frame 1: Timestamp 'x' is not a number"):
        frame_times(3, {0: "1", 1: "x"}, [], PATH, LABEL)


def test_a_plus_file_missing_one_timestamp_plays_at_one_rate(tmp_path, caplog):
    pytest.importorskip("SimpleITK", reason="PLUS .mha sequences are read through SimpleITK")
    caplog.set_level(logging.WARNING, logger="sonomap.sources")
    frames = np.random.default_rng(2).integers(0, 256, (4, 6, 7), dtype=np.uint8)
    path = tmp_path / "plus.igs.mha"
    plus_file(path, frames, compressed=False)
    header, _, data = path.read_bytes().partition(b"ElementDataFile = LOCAL\n")
    lines = [line for line in header.decode().splitlines() if not line.startswith("Seq_Frame0002_Timestamp")]
    path.write_bytes(("\n".join(lines) + "\nElementDataFile = LOCAL\n").encode() + data)
    got = list(open_source(str(path)))
    times = {f.meta["sequence_frame"]: f.meta["igtl_timestamp"] for f in got}
    # frame 1 is INVALID in PLUS's file and skipped; the rest on one 30 fps clock, not 100.0, 0.067, 100.15
    assert times == pytest.approx({0: 0.0, 2: 2 / DEFAULT_FPS, 3: 3 / DEFAULT_FPS})
    assert [f.pts for f in got] == sorted(f.pts for f in got)
    assert "3 of its 4 frames have a Timestamp; every frame is timed at 30 fps instead" in caplog.text


def test_a_sequence_timed_since_1970_gives_its_frames_their_recorded_utc_time(tmp_path):
    """sonomap's own .seq.nrrd times its frames in seconds since 1970: replayed (e.g. with --cases) a
    frame's time is the recorded one, not the replay's; PLUS's own clock (100.0 s) gives no date."""
    seq = tmp_path / "session.seq.nrrd"
    before = datetime.now(timezone.utc)
    sonomap("live", "--source", "synthetic", "--duration", 1, "--headless", "--record-sequence", seq)
    after = datetime.now(timezone.utc)
    frames = list(open_source(str(seq)))
    assert len(frames) >= 2, "a second of a 30 fps stream, a few frames on a loaded machine"
    for frame in frames:
        when, clock = frame_time(frame.meta, frame.pts)
        assert clock == RECORDING and before <= when <= after
        assert when.timestamp() == pytest.approx(frame.meta["igtl_timestamp"], abs=1e-3)
    pytest.importorskip("SimpleITK", reason="PLUS .mha sequences are read through SimpleITK")
    plus = tmp_path / "plus.igs.mha"
    plus_file(plus, np.zeros((3, 6, 7), np.uint8), compressed=False)
    first = next(iter(open_source(str(plus))))
    assert META_KEY not in first.meta and frame_time(first.meta, first.pts)[1] == THIS_MACHINE
