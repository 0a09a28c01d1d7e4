"""A JPEG 2000 cine whose frames the writer split into fragments keeps its frames apart where no offset
table tells them: its packet data may hold the two bytes of the start-of-codestream marker (FF 4F), and a
fragment that begins there is the middle of a frame, not a new one. pydicom's JPEG 2000 image, repeated
as a three-frame cine of two fragments a frame, the second fragment beginning at such an FF 4F, is
played whole and cut short inside its third frame; the frames before the cut decode as in the whole
file."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.dicom_pixels import dicom_pixels, read_dicom

pydicom = pytest.importorskip("pydicom")
from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.encaps import generate_frames  # noqa: E402

FRAMES = 3
SOC = b"\xff\x4f"  # JPEG 2000's start-of-codestream marker
ITEM_TAG = b"\xfe\xff\x00\xe0"  # (FFFE,E000), little endian


def _item(piece: bytes) -> bytes:
    """An item of encapsulated pixel data holding ``piece`` (of even length)."""
    return ITEM_TAG + len(piece).to_bytes(4, "little") + piece


def _j2k_cine(tmp_path):
    """pydicom's JPEG 2000 image as a cine of FRAMES frames, each in two fragments, the second beginning
    at an FF 4F inside the packet data; no Basic Offset Table. (Its path, the first fragment's bytes.)"""
    ds = pydicom.dcmread(get_testdata_file("examples_jpeg2k.dcm"))
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    split = next(i for i in range(len(SOC), len(frame), 2) if frame.startswith(SOC, i))  # items are even
    fragments = [frame[:split], frame[split:]]
    ds.PixelData = _item(b"") + b"".join(_item(piece) for piece in fragments * FRAMES)  # an empty table first
    ds["PixelData"].is_undefined_length = True
    ds.NumberOfFrames = FRAMES
    path = tmp_path / "whole.dcm"
    ds.save_as(str(path))
    return path, fragments[0]


def test_a_jpeg2000_frame_split_where_its_data_holds_the_start_marker_stays_one_frame(tmp_path):
    path, first = _j2k_cine(tmp_path)
    whole = read_dicom(path, "whole.dcm")
    image = dicom_pixels(whole, "whole.dcm frame 0", 0)
    data = path.read_bytes()
    third = data.index(first, data.index(first, data.index(first) + 1) + 1)
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: third + len(first) // 2])  # inside the third frame's first fragment
    ds = read_dicom(cut, "cut.dcm")
    for i in range(FRAMES - 1):
        assert np.array_equal(dicom_pixels(ds, f"cut.dcm frame {i}", i), image), i


def test_a_whole_jpeg2000_cine_whose_table_lists_one_frame_plays_every_frame(tmp_path):
    """Not cut short: its Basic Offset Table lists the first frame alone, so the frames are found without
    it, by the same markers."""
    path, _first = _j2k_cine(tmp_path)
    ds = pydicom.dcmread(path)
    image = dicom_pixels(read_dicom(path, "whole.dcm"), "whole.dcm frame 0", 0)
    ds.PixelData = _item((0).to_bytes(4, "little")) + ds.PixelData[len(_item(b"")) :]  # lists frame 0 alone
    short = tmp_path / "short_table.dcm"
    ds.save_as(str(short))
    got = read_dicom(short, "short_table.dcm")
    for i in range(FRAMES):
        assert np.array_equal(dicom_pixels(got, f"short_table.dcm frame {i}", i), image), i
