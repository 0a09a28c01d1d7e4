"""A replayed recording's biopsy captures carry the recording's own time when the file gives it with
its offset from UTC (an MP4's creation_time, a DICOM cine's acquisition or content time with
TimezoneOffsetFromUTC), so `cases export` files the core under the procedure's day; a file without
one keeps this machine's clock, and case.yaml says which (``utc_from``). Real files: the procedure
clip remuxed by PyAV with a creation time, pydicom's own ultrasound cine with an offset added."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import av
import pydicom
import pytest
import yaml
from cli import sonomap
from pacs_cases import capture
from procedure_clip import shared_procedure_clip
from pydicom.data import get_testdata_file

from edge_runtime.recorded_time import (
    META_KEY,
    RECORDING,
    THIS_MACHINE,
    container_start,
    dicom_start,
    frame_time,
)
from edge_runtime.sources.dicom_cine import DicomCineSource

RECORDED = "2025-06-14T07:05:30.000000Z"  # a procedure on another day than any test run
RECORDED_AT = datetime(2025, 6, 14, 7, 5, 30, tzinfo=timezone.utc)
PTS_TOLERANCE_S = 0.002  # case.yaml's utc is written in milliseconds


def remux(src: Path, dst: Path, creation_time: str | None) -> Path:
    """``src``'s video packets copied into ``dst`` (no re-encoding), with ``creation_time`` set."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        if creation_time is not None:
            out.metadata["creation_time"] = creation_time
        video = inp.streams.video[0]
        stream = out.add_stream_from_template(video)
        for packet in inp.demux(video):
            if packet.dts is None:  # the flush packet at the end
                continue
            packet.stream = stream
            out.mux(packet)
    return dst


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-06-14T07:05:30.000000Z", RECORDED_AT),
        ("2025-06-14T09:05:30+02:00", RECORDED_AT),
        ("1904-01-01T00:00:00.000000Z", None),  # the MP4 epoch: an encoder's "unknown"
        ("1970-01-01T00:00:00.000000Z", None),
        ("2025-06-14T07:05:30", None),  # no offset: local to somewhere
        ("2099-01-01T00:00:00Z", None),  # a clock set decades ahead
        ("yesterday", None),
        (None, None),
    ],
)
def test_a_containers_creation_time_is_used_only_with_its_offset_and_when_plausible(value, expected):
    meta = container_start({} if value is None else {"creation_time": value})
    assert meta == ({} if expected is None else {META_KEY: expected.timestamp()})


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"AcquisitionDateTime": "20250614090530.250000+0200"}, RECORDED_AT + timedelta(seconds=0.25)),
        ({"ContentDate": "20250614", "ContentTime": "020530", "TimezoneOffsetFromUTC": "-0500"}, RECORDED_AT),
        (
            {"AcquisitionDate": "20250614", "AcquisitionTime": "070530", "TimezoneOffsetFromUTC": "+0000"},
            RECORDED_AT,
        ),
        ({"ContentDate": "20250614", "ContentTime": "070530"}, None),  # no offset
        (
            {"ContentDate": "20250614", "ContentTime": "0705", "TimezoneOffsetFromUTC": "+0000"},
            None,
        ),  # minutes only
        (
            {"ContentDate": "20250231", "ContentTime": "070530", "TimezoneOffsetFromUTC": "+0000"},
            None,
        ),  # no such day
        (
            {"ContentDate": "20250614", "ContentTime": "070530", "TimezoneOffsetFromUTC": "+2500"},
            None,
        ),  # no such zone
        ({"AcquisitionDateTime": "99991231235959-1400"}, None),  # past the calendar's end once in UTC
        ({"AcquisitionDateTime": "20990101000000+0000"}, None),  # a device clock decades ahead
    ],
)
def test_a_dicom_time_is_used_only_with_its_offset(tags, expected):
    ds = pydicom.Dataset()
    for key, value in tags.items():
        setattr(ds, key, value)
    assert dicom_start(ds) == ({} if expected is None else {META_KEY: expected.timestamp()})


def test_frame_time_is_the_recording_plus_pts_else_this_machine():
    assert frame_time({META_KEY: RECORDED_AT.timestamp()}, 1.5) == (
        RECORDED_AT + timedelta(seconds=1.5),
        RECORDING,
    )
    before = datetime.now(timezone.utc)
    when, clock = frame_time({}, 1.5)
    assert clock == THIS_MACHINE and before <= when <= datetime.now(timezone.utc)
    waited = frame_time({}, None, age_s=60.0)[0]  # captured a minute ago: this machine's clock then
    assert before - timedelta(seconds=61) <= waited <= datetime.now(timezone.utc) - timedelta(seconds=59)
    assert frame_time({META_KEY: RECORDED_AT.timestamp()}, None)[1] == THIS_MACHINE  # no pts: no file time
    assert frame_time({META_KEY: RECORDED_AT.timestamp()}, 1e300)[1] == THIS_MACHINE  # a damaged file's pts
    assert frame_time({META_KEY: RECORDED_AT.timestamp()}, float("nan"))[1] == THIS_MACHINE


def test_a_dicom_cines_frames_carry_its_acquisition_time(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("examples_ybr_color.dcm"))  # ContentDate/Time, no offset
    assert DicomCineSource(get_testdata_file("examples_ybr_color.dcm")).recorded == {}
    ds.TimezoneOffsetFromUTC = "+0200"
    path = tmp_path / "cine.dcm"
    ds.save_as(path)
    frames = iter(DicomCineSource(path))
    first, second = next(frames), next(frames)
    start = datetime(2016, 5, 3, 10, 15, 35, tzinfo=timezone.utc)  # 12:15:35 at +02:00
    assert frame_time(first.meta, first.pts) == (start, RECORDING)
    assert frame_time(second.meta, second.pts)[0] == start + timedelta(seconds=second.pts)


def test_a_replayed_mp4_files_its_captures_at_its_own_creation_time(tmp_path):
    info = shared_procedure_clip()
    dated = remux(Path(info["clip"]), tmp_path / "dated.mp4", RECORDED)
    folders = capture({**info, "clip": dated}, tmp_path / "cases")
    assert len(folders) == len(info["fires"])
    for folder in folders:
        assert folder.name.startswith("20250614T0705")  # the case id: the recording's UTC time
        pre = yaml.safe_load((folder / "case.yaml").read_text())["capture"]["pre_fire"]
        utc = datetime.fromisoformat(pre["utc"].replace("Z", "+00:00"))
        assert pre["utc_from"] == RECORDING
        assert abs((utc - RECORDED_AT).total_seconds() - pre["pts_s"]) < PTS_TOLERANCE_S, pre


def test_a_replayed_mp4_without_a_creation_time_keeps_this_machines_clock(tmp_path):
    info = shared_procedure_clip()
    plain = remux(Path(info["clip"]), tmp_path / "plain.mp4", None)
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    folder = capture({**info, "clip": plain}, tmp_path / "cases")[0]
    pre = yaml.safe_load((folder / "case.yaml").read_text())["capture"]["pre_fire"]
    assert pre["utc_from"] == THIS_MACHINE
    assert datetime.fromisoformat(pre["utc"].replace("Z", "+00:00")) >= before


def test_a_live_recording_carries_when_it_started_and_a_replay_output_does_not(tmp_path):
    """A live session's recordings (overlay and raw) carry their first frame's UTC time to the second,
    so replaying the raw recording later with --cases files its biopsies under the procedure's day
    (the test above); a replay's output is a result, not a recording, and carries none."""
    raw, overlay, replayed = tmp_path / "raw.mp4", tmp_path / "overlay.mp4", tmp_path / "replayed.mp4"
    before = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=1)
    sonomap(
        "live",
        "--source",
        "synthetic",
        "--duration",
        1,
        "--headless",
        "--record",
        overlay,
        "--record-raw",
        raw,
    )
    after = datetime.now(timezone.utc) + timedelta(seconds=1)
    for path in (raw, overlay):
        with av.open(str(path)) as c:
            start = container_start(c.metadata)
            last = list(c.decode(c.streams.video[0]))[-1]
        assert start, (path, dict(c.metadata))
        first_at = datetime.fromtimestamp(start[META_KEY], timezone.utc)
        assert before <= first_at <= after
        assert before <= frame_time(start, last.time)[0] <= after  # every frame within the session
    sonomap("replay", raw, "--out", replayed, "--roi", "full")
    with av.open(str(replayed)) as c:
        assert "creation_time" not in c.metadata and container_start(c.metadata) == {}
