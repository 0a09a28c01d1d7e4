"""`sonomap live` refuses a recording path that exists and is not a regular file (a device such as
/dev/null, a FIFO) with one line naming the option and the path, instead of recording beside it
under a new name (`/dev/null-1`); an existing regular recording is still kept and a new name taken.
Two recorders moved off kept recordings never land on one name, a synthetic screen beyond the
frame limits is refused, and a typed scale the source overrides is said. Real files: a FIFO made
with os.mkfifo, the system's /dev/null and /dev/full."""

from __future__ import annotations

import json
import os
from pathlib import Path

import av
import pytest
import yaml
from cli import sonomap

from edge_runtime.errors import InputError
from edge_runtime.sinks.recordings import session_path

DEV_NULL, DEV_FULL = Path("/dev/null"), Path("/dev/full")
needs_devices = pytest.mark.skipif(not DEV_FULL.exists(), reason="needs /dev/null and /dev/full (Linux)")
NOT_REGULAR = "exists and is not a regular file"


def live(*args) -> object:
    return sonomap("live", "--source", "synthetic", "--headless", "--duration", "0.5", *args, check=False)


def refused(result, *words: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("sonomap live: error: "), result.stderr[-2000:]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_live_record_into_a_fifo_is_refused_and_nothing_written(tmp_path):
    fifo = tmp_path / "rec.mp4"
    os.mkfifo(fifo)
    refused(live("--record", fifo), f"--record {fifo}: {NOT_REGULAR}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.mp4"]  # no rec-1.mp4 beside it


@needs_devices
@pytest.mark.parametrize("device", [DEV_NULL, DEV_FULL])
@pytest.mark.parametrize("option", ["--record", "--record-raw"])
def test_live_record_on_a_device_is_refused_and_nothing_goes_into_dev(device, option):
    before = set(os.listdir("/dev"))
    refused(live(option, device), f"{option} {device}: {NOT_REGULAR}")
    assert set(os.listdir("/dev")) - before == set()  # no /dev/null-1


@needs_devices
def test_a_config_recording_on_a_device_names_the_config_key(tmp_path):
    config = tmp_path / "runtime.yaml"
    config.write_text(yaml.safe_dump({"sinks": {"video": str(DEV_NULL)}}))
    refused(live("--config", config), f"sinks.video {DEV_NULL}: {NOT_REGULAR}")


def test_session_path_refuses_a_fifo_in_live_mode_and_keeps_a_regular_recording(tmp_path):
    fifo = tmp_path / "live.mp4"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match=f"{fifo}: {NOT_REGULAR}"):
        session_path(fifo, keep_existing=True)
    assert session_path(fifo, keep_existing=False) == fifo  # replay writes where it is told
    kept = tmp_path / "kept.mp4"
    kept.write_bytes(b"an earlier recording")
    assert session_path(kept, keep_existing=True) == tmp_path / "kept-1.mp4"  # by design: kept, new name


def test_two_recorders_moved_off_a_kept_recording_never_share_a_name(tmp_path):
    # --record lx.mp4 is taken, so the overlay moves to lx-1.mp4, the name --record-raw asked for:
    # before, both wrote that one file and neither recording could be decoded
    kept = tmp_path / "lx.mp4"
    kept.write_bytes(b"an earlier recording")
    summary = tmp_path / "s.json"
    result = live("--record", kept, "--record-raw", tmp_path / "lx-1.mp4", "--summary", summary)
    assert result.returncode == 0, result.stderr[-2000:]
    outputs = json.loads(summary.read_text())["outputs"]
    assert outputs == {"video": str(tmp_path / "lx-1.mp4"), "raw": str(tmp_path / "lx-1-1.mp4")}
    assert kept.read_bytes() == b"an earlier recording"
    for path in outputs.values():
        with av.open(path) as container:  # each a whole recording of its own
            assert sum(1 for _ in container.decode(video=0)) > 0


def test_a_synthetic_screen_beyond_the_frame_limits_is_refused(tmp_path):
    refused(live("--width", 9000, "--height", 100), "--width/--height) 9000x100: larger than the maximum")


def test_a_second_live_session_keeps_the_first_sessions_summary(tmp_path):
    summary = tmp_path / "s.json"
    live("--summary", summary)
    first = summary.read_text()
    assert live("--summary", summary).returncode == 0
    assert summary.read_text() == first  # a restarted service's summary goes beside it
    assert json.loads((tmp_path / "s-1.json").read_text())["frames"] > 0


def test_a_typed_scale_the_source_overrides_is_said_not_dropped_unseen(tmp_path):
    # the synthetic source carries its own scale (as a DICOM cine or OpenIGTLink does), which wins
    result = live("--mm-per-pixel", 0.1)
    assert result.returncode == 0, result.stderr[-2000:]
    said = [line for line in result.stderr.splitlines() if "--mm-per-pixel) 0.1 ignored" in line]
    assert len(said) == 1 and "the source gives its own scale, 0.047619 mm/px" in said[0], result.stderr[
        -2000:
    ]
