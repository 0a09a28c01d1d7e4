"""A compressed DICOM cine cut short keeps its whole frames whatever the layout of its encapsulated
pixel data: with a Basic Offset Table, without one, two fragments a frame with or without one, an
Extended Offset Table. pydicom's 30-frame JPEG cine is encapsulated again in each layout by pydicom,
saved, and cut: inside a frame's data, inside an item's header, exactly where a frame begins, and
between the fragments of a frame, the last listed one included. Every frame before the cut decodes as
in the whole file; the frame at the cut is an error naming it and the frames the file holds; a file
cut inside its first frame holds none. Frames that cannot be located without an offset table (RLE
frames in two fragments each) are an error saying so, not a decoding failure of frame 0. A whole file
whose offset table lists fewer frames than it declares is not cut short: its frames are found without
the table and play, and what cannot be found is an error saying the file is malformed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli import sonomap

from edge_runtime.dicom_pixels import dicom_pixels, read_dicom
from edge_runtime.errors import InputError

pydicom = pytest.importorskip("pydicom")
from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.encaps import encapsulate, encapsulate_extended, fragment_frame, generate_frames  # noqa: E402
from pydicom.uid import RLELossless  # noqa: E402

KEPT = 11  # the frames before the cut
ITEM_HEADER = 8  # an item's tag and length
LAYOUTS = (
    "basic offsets",
    "no offsets",
    "two fragments a frame",
    "two fragments a frame, no offsets",
    "extended offsets",
)


def _cine(tmp_path, layout: str):
    """pydicom's JPEG cine in ``layout``, saved whole: (its path, each frame's fragments)."""
    ds = pydicom.dcmread(get_testdata_file("examples_ybr_color.dcm"))
    declared = int(ds.NumberOfFrames)
    frames = list(generate_frames(ds.PixelData, number_of_frames=declared))
    per_frame = 2 if layout.startswith("two fragments a frame") else 1
    if layout == "extended offsets":
        ds.PixelData, ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths = encapsulate_extended(frames)
    else:
        ds.PixelData = encapsulate(
            frames, fragments_per_frame=per_frame, has_bot=not layout.endswith("no offsets")
        )
    path = tmp_path / "whole.dcm"
    ds.save_as(str(path))
    return path, [list(fragment_frame(frame, per_frame)) for frame in frames]


def _cut(data: bytes, fragments: list[list[bytes]], index: int, where: str) -> bytes:
    """``data`` cut at frame ``index`` (whose fragments are ``fragments[index]``): ``where`` in it."""
    found = 0
    for frame in fragments[: index + 1]:  # in order: a frame may repeat the one before byte for byte
        found = data.index(frame[0], found + 1)
    item = found - ITEM_HEADER
    first = fragments[index][0]
    at = {
        "inside its data": item + ITEM_HEADER + len(first) // 2,
        "inside an item header": item + ITEM_HEADER // 2,
        "where it begins": item,
        "between its fragments": item + ITEM_HEADER + len(first),
    }[where]
    return data[:at]


CUTS = [
    (layout, where)
    for layout in LAYOUTS
    for where in ("inside its data", "inside an item header", "where it begins")
] + [(layout, "between its fragments") for layout in LAYOUTS if layout.startswith("two fragments a frame")]


@pytest.mark.parametrize(("layout", "where"), CUTS)
def test_the_frames_before_the_cut_decode_as_in_the_whole_file(tmp_path, layout, where):
    path, fragments = _cine(tmp_path, layout)
    whole = read_dicom(path, "whole.dcm")
    declared = int(whole.NumberOfFrames)
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(_cut(path.read_bytes(), fragments, KEPT, where))
    assert len(pydicom.dcmread(cut)) == 0  # what pydicom alone reads of it
    ds = read_dicom(cut, "cut.dcm")
    for i in range(KEPT):
        assert np.array_equal(
            dicom_pixels(ds, f"cut.dcm frame {i}", i), dicom_pixels(whole, "whole.dcm", i)
        ), i
    expected = f"cut.dcm frame {KEPT}: the file is cut short: its pixel data holds {KEPT} whole frame\\(s\\) of the {declared}"
    with pytest.raises(InputError, match=expected):
        dicom_pixels(ds, f"cut.dcm frame {KEPT}", KEPT)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_file_cut_inside_its_first_frame_holds_no_whole_frame(tmp_path, layout):
    path, fragments = _cine(tmp_path, layout)
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(_cut(path.read_bytes(), fragments, 0, "inside its data"))
    with pytest.raises(
        InputError,
        match=r"cut\.dcm: the file is cut short: its pixel data holds 0 whole frame\(s\) of the 30",
    ):
        read_dicom(cut, "cut.dcm")


@pytest.mark.parametrize("layout", ["two fragments a frame", "two fragments a frame, no offsets"])
def test_a_cut_between_the_fragments_of_the_last_frame_leaves_that_frame_out(tmp_path, layout):
    """The last frame has no next offset to end at: cut after its first fragment it is not whole, though
    every item before the cut is, since no sequence delimiter (or end-of-image marker) follows it."""
    path, fragments = _cine(tmp_path, layout)
    whole = read_dicom(path, "whole.dcm")
    last = int(whole.NumberOfFrames) - 1
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(_cut(path.read_bytes(), fragments, last, "between its fragments"))
    ds = read_dicom(cut, "cut.dcm")
    assert np.array_equal(
        dicom_pixels(ds, f"cut.dcm frame {last - 1}", last - 1), dicom_pixels(whole, "whole.dcm", last - 1)
    )
    with pytest.raises(
        InputError, match=rf"cut\.dcm frame {last}: the file is cut short: its pixel data holds {last} whole"
    ):
        dicom_pixels(ds, f"cut.dcm frame {last}", last)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_file_cut_just_before_its_sequence_delimiter_plays_every_frame(tmp_path, layout):
    """Every fragment is there, only the delimiter is missing: the last frame ends an image, so it is
    whole (with an offset table too, where nothing follows its last offset to end it)."""
    path, _fragments = _cine(tmp_path, layout)
    whole = read_dicom(path, "whole.dcm")
    last = int(whole.NumberOfFrames) - 1
    data = path.read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: data.rindex(b"\xfe\xff\xdd\xe0")])  # the sequence delimiter's tag (FFFE,E0DD)
    ds = read_dicom(cut, "cut.dcm")
    assert np.array_equal(
        dicom_pixels(ds, f"cut.dcm frame {last}", last), dicom_pixels(whole, "whole.dcm", last)
    )


def _rle_cine(frames: int = 4) -> tuple:
    """The first ``frames`` of pydicom's cine, RLE compressed by pydicom: (the dataset, each frame's data)."""
    ds = pydicom.dcmread(get_testdata_file("examples_ybr_color.dcm"))
    ds.decompress()
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // int(ds.NumberOfFrames) * frames]
    ds.NumberOfFrames = frames
    ds.compress(RLELossless)
    return ds, list(generate_frames(ds.PixelData, number_of_frames=frames))


def test_an_rle_cine_with_a_table_cut_just_before_its_sequence_delimiter_plays_every_frame(tmp_path):
    """RLE has no end-of-image marker, but each of its frames is one fragment (PS3.5 A.4.2): the last
    listed frame's one fragment is there whole, so that frame is whole, as it is in the same file
    without an offset table."""
    ds, frames = _rle_cine()
    ds.PixelData = encapsulate(frames, has_bot=True)
    path = tmp_path / "whole.dcm"
    ds.save_as(str(path))
    whole = read_dicom(path, "whole.dcm")
    data = path.read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: data.rindex(b"\xfe\xff\xdd\xe0")])  # the sequence delimiter's tag (FFFE,E0DD)
    got = read_dicom(cut, "cut.dcm")
    for i in range(len(frames)):
        assert np.array_equal(
            dicom_pixels(got, f"cut.dcm frame {i}", i), dicom_pixels(whole, "whole.dcm", i)
        ), i


def test_a_cut_file_whose_frames_cannot_be_located_without_a_table_says_so(tmp_path):
    """RLE frames carry no marker that begins a frame: in two fragments each without an offset table,
    the fragments before the cut outnumber the frames, so which belong together cannot be told."""
    ds, frames = _rle_cine()
    ds.PixelData = encapsulate(frames, fragments_per_frame=2, has_bot=False)
    path = tmp_path / "whole.dcm"
    ds.save_as(str(path))
    cut = tmp_path / "cut.dcm"
    pieces = [list(fragment_frame(frame, 2)) for frame in frames]
    cut.write_bytes(_cut(path.read_bytes(), pieces, 3, "between its fragments"))  # 7 fragments of 4 frames
    with pytest.raises(
        InputError,
        match=r"cut\.dcm: its frames cannot be located \(the file is cut short\): its Basic Offset Table is empty, "
        r"and its 7 fragment\(s\) are not one a frame of the 4 it declares",
    ):
        read_dicom(cut, "cut.dcm")


def _short_table(value: bytes, listed: int) -> bytes:
    """The encapsulated ``value`` with its Basic Offset Table cut to its first ``listed`` offsets."""
    length = int.from_bytes(value[4:ITEM_HEADER], "little")
    offsets = value[ITEM_HEADER : ITEM_HEADER + length]
    return (
        value[:4] + (listed * 4).to_bytes(4, "little") + offsets[: listed * 4] + value[ITEM_HEADER + length :]
    )


@pytest.mark.parametrize("per_frame", [1, 2])
def test_a_whole_file_whose_table_lists_too_few_frames_plays_them_all(tmp_path, per_frame):
    """Not cut short: every item is there, and the sequence ends. The frames past the table's last are
    found by their JPEG markers, and each decodes as in the well-formed file."""
    path, _ = _cine(tmp_path, "two fragments a frame" if per_frame == 2 else "basic offsets")
    whole = read_dicom(path, "whole.dcm")
    declared = int(whole.NumberOfFrames)
    whole.PixelData = _short_table(whole.PixelData, 20)
    short = tmp_path / "short_table.dcm"
    whole.save_as(str(short))
    ds = read_dicom(short, "short_table.dcm")
    good = read_dicom(path, "whole.dcm")
    for i in range(declared):
        assert np.array_equal(
            dicom_pixels(ds, f"short_table.dcm frame {i}", i), dicom_pixels(good, "whole.dcm", i)
        ), i


def test_a_whole_file_declaring_more_frames_than_it_holds_plays_them_and_is_not_called_cut_short(tmp_path):
    """NumberOfFrames one more than the frames its offset table lists and its data holds: every item is
    there, so the frame past them is an error saying what is wrong, not that the file is cut short."""
    path, _ = _cine(tmp_path, "two fragments a frame")
    ds = pydicom.dcmread(path)
    held = int(ds.NumberOfFrames)
    ds.NumberOfFrames = held + 1
    more = tmp_path / "more.dcm"
    ds.save_as(str(more))
    got, good = read_dicom(more, "more.dcm"), read_dicom(path, "whole.dcm")
    for i in range(held):
        assert np.array_equal(
            dicom_pixels(got, f"more.dcm frame {i}", i), dicom_pixels(good, "whole.dcm", i)
        ), i
    with pytest.raises(
        InputError,
        match=rf"more\.dcm frame {held}: the pixel data holds {held} frame\(s\) of the {held + 1} the file declares, "
        "though the file is not cut short",
    ):
        dicom_pixels(got, f"more.dcm frame {held}", held)


def test_a_whole_file_whose_table_lists_too_few_frames_that_cannot_be_located_is_malformed(tmp_path):
    ds, frames = _rle_cine()
    ds.PixelData = _short_table(encapsulate(frames, fragments_per_frame=2, has_bot=True), 2)
    path = tmp_path / "short_table.dcm"
    ds.save_as(str(path))
    with pytest.raises(
        InputError,
        match=r"short_table\.dcm: its frames cannot be located \(the file is malformed, not cut short\): "
        r"its Basic Offset Table lists 2 of them, and its 8 fragment\(s\) are not one a frame of the 4",
    ):
        read_dicom(path, "short_table.dcm")


def test_replay_of_a_whole_file_whose_table_lists_too_few_frames_plays_every_frame(tmp_path):
    """Through the real CLI: not one line saying the file is cut short, and every declared frame written."""
    path, _ = _cine(tmp_path, "two fragments a frame")
    ds = pydicom.dcmread(path)
    ds.PixelData = _short_table(ds.PixelData, 20)
    short = tmp_path / "short_table.dcm"
    ds.save_as(str(short))
    out, summary = tmp_path / "o.mp4", tmp_path / "s.json"
    res = sonomap("replay", short, "--out", out, "--summary", summary, check=False)
    assert res.returncode == 0, res.stderr
    assert "cut short" not in res.stderr
    assert json.loads(summary.read_text())["frames"] == int(ds.NumberOfFrames)
