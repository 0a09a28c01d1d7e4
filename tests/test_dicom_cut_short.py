"""A DICOM file cut short inside its pixel data (a copy stopped half-way) reads back from pydicom as
an empty dataset when its pixel data is compressed, so its identifiers were never registered and the
error named the file unredacted (`Sorensen_Ingrid.dcm: cannot decode ... no 'Pixel Data'`). The header
is read first: the error says the file is cut short, and names the file with the patient's name
redacted, in replay (through the real CLI) and in registration's ultrasound reader alike. The frames
before the cut, compressed or not, are played, as a video cut short plays up to its cut."""

from __future__ import annotations

import json
from pathlib import Path

import av
import pytest
from cli import sonomap

from edge_runtime import privacy
from edge_runtime.errors import InputError
from registration.ultrasound import load_ultrasound

pydicom = pytest.importorskip("pydicom")
PATIENT = {"PatientName": "Sorensen^Ingrid", "PatientID": "PID-90210-77"}
NAME_PARTS = ("Sorensen", "Ingrid", "90210")
KEPT_FRACTION = 0.6  # of the bytes: the copy stops inside the pixel data
CUT_SHORT = ": the file is cut short: its pixel data holds "


@pytest.fixture()
def cut_cine(tmp_path) -> Path:
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("examples_ybr_color.dcm"))
    for key, value in PATIENT.items():
        setattr(ds, key, value)
    whole = tmp_path / "whole.dcm"
    ds.save_as(str(whole))
    data = whole.read_bytes()
    path = tmp_path / "Sorensen_Ingrid_PID-90210-77.dcm"
    path.write_bytes(data[: int(len(data) * KEPT_FRACTION)])
    assert len(pydicom.dcmread(path)) == 0  # what made the error unredacted: nothing read, nothing registered
    return path


def test_replay_of_a_cut_short_cine_says_so_and_names_no_identifier(cut_cine, tmp_path):
    out = tmp_path / "o.mp4"
    res = sonomap("replay", cut_cine, "--out", out, check=False)
    assert res.returncode == 2, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("sonomap replay: error: ") and CUT_SHORT in last, last
    for part in NAME_PARTS:
        assert part not in res.stderr and part not in res.stdout, res.stderr
    assert out.exists()  # the frames before the cut


def test_registration_reads_the_header_first_and_says_the_file_is_cut_short(cut_cine):
    last_frame = int(pydicom.dcmread(cut_cine, stop_before_pixels=True).NumberOfFrames) - 1
    with pytest.raises(InputError, match=CUT_SHORT) as err:
        load_ultrasound(cut_cine, frame=last_frame)  # past the cut
    shown = privacy.redact(str(err.value))  # as every error and log line is shown
    for part in NAME_PARTS:
        assert part not in shown, shown


def test_an_uncompressed_cine_cut_short_plays_its_whole_frames_then_names_the_cut(tmp_path):
    """Uncompressed pixel data cut half-way: pydicom would refuse every frame (it checks the whole
    length first). The frames that are there are played and written; the first missing one ends the
    replay in one line naming it, as a video cut short ends at its cut."""
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("examples_ybr_color.dcm"))
    ds.decompress()  # native (uncompressed) pixel data: each frame at a fixed offset
    frame_bytes = len(ds.PixelData) // int(ds.NumberOfFrames)
    whole = tmp_path / "whole.dcm"
    ds.save_as(str(whole))
    data = whole.read_bytes()
    cut = tmp_path / "cut.dcm"
    kept_frames = 14
    missing = (int(ds.NumberOfFrames) - kept_frames) * frame_bytes - frame_bytes // 2  # half a frame after 14
    cut.write_bytes(data[: len(data) - missing])
    out, summary = tmp_path / "o.mp4", tmp_path / "s.json"
    res = sonomap("replay", cut, "--out", out, "--summary", summary, check=False)
    assert res.returncode == 2, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert (
        f"frame {kept_frames}: the file is cut short" in last
        and f"{kept_frames} whole frame(s) of the 30" in last
    ), last
    assert json.loads(summary.read_text())["frames"] == kept_frames
    with av.open(str(out)) as clip:
        assert sum(1 for _ in clip.decode(video=0)) == kept_frames


def test_a_compressed_cine_cut_short_plays_its_whole_frames_then_names_the_cut(tmp_path):
    """JPEG pixel data (pydicom's cine, one item of encapsulated data a frame) cut inside frame 14:
    pydicom reads nothing back, as the items never end, and the cine played nothing. The whole frames
    before the cut are played and written; frame 14 ends the replay in the uncompressed cut's line."""
    from pydicom.data import get_testdata_file
    from pydicom.encaps import get_frame

    ds = pydicom.dcmread(get_testdata_file("examples_ybr_color.dcm"))
    assert ds.file_meta.TransferSyntaxUID.is_encapsulated
    declared = int(ds.NumberOfFrames)
    whole = tmp_path / "whole.dcm"
    ds.save_as(str(whole))
    data = whole.read_bytes()
    kept_frames = 14
    frame = get_frame(ds.PixelData, kept_frames, number_of_frames=declared)
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: data.index(frame) + len(frame) // 2])  # half of frame 14's JPEG data
    assert len(pydicom.dcmread(cut)) == 0  # pydicom alone reads no frame of it
    out, summary = tmp_path / "o.mp4", tmp_path / "s.json"
    res = sonomap("replay", cut, "--out", out, "--summary", summary, check=False)
    assert res.returncode == 2, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert (
        f"cut.dcm frame {kept_frames}: the file is cut short" in last
        and f"{kept_frames} whole frame(s) of the {declared}" in last
    ), last
    assert json.loads(summary.read_text())["frames"] == kept_frames
    with av.open(str(out)) as clip:
        assert sum(1 for _ in clip.decode(video=0)) == kept_frames
