"""A compressed DICOM cine cut short keeps its whole frames whatever the layout of its encapsulated
pixel data: with a Basic Offset Table, without one, two fragments a frame with or without one, an
Extended Offset Table. pydicom's 30-frame JPEG cine is encapsulated again in each layout by pydicom,
saved, and cut: inside a frame's data, inside an item's header, exactly where a frame begins, and
between the fragments of a frame, the last listed one included. Every frame before the cut decodes as
in the whole file; the frame at the cut is an error naming it and the frames the file holds; a file
cut inside its first frame holds none. Frames that cannot be located without an offset table (RLE
frames in two fragments each) are an error saying so, not a decoding failure of frame 0."""

from __future__ import annotations

import numpy as np
import pytest

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


def _rle_cine(frames: int = 4) -> tuple:
    """The first ``frames`` of pydicom's cine, RLE compressed by pydicom: (the dataset, each frame's data)."""
    ds = pydicom.dcmread(get_testdata_file("examples_ybr_color.dcm"))
    ds.decompress()
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // int(ds.NumberOfFrames) * frames]
    ds.NumberOfFrames = frames
    ds.compress(RLELossless)
    return ds, list(generate_frames(ds.PixelData, number_of_frames=frames))


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
