"""Inputs a site meets, made with PyAV, OpenCV and pydicom (no mocks): a file with two video streams,
a portrait recording (display matrix), frames far too large for the cart, a PNG whose header declares
30000x30000, a DICOM with NumberOfFrames 0, a DICOM whose codec no plugin decodes, and one whose
header declares frames too large."""

from __future__ import annotations

import copy
import logging
import struct
import zlib

import av
import cv2
import numpy as np
import pytest

from edge_runtime.errors import InputError
from edge_runtime.sources.opener import open_source

pydicom = pytest.importorskip("pydicom")
from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian  # noqa: E402

BRIGHT = 200


def _write(path, streams, frames=3, rotation=None, codec="libx264", pix_fmt="yuv420p"):
    """A video at ``path`` with one stream per ``(width, height, image)`` of ``streams``."""
    with av.open(str(path), "w") as out:
        made = []
        for width, height, image in streams:
            stream = out.add_stream(codec, rate=30)
            stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
            if rotation is not None:
                stream.set_display_rotation(rotation)
            made.append((stream, image))
        for _ in range(frames):
            for stream, image in made:
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                    out.mux(packet)
        for stream, _ in made:
            for packet in stream.encode():
                out.mux(packet)


def _frames(source):
    return [frame.image for frame in source]


def test_a_file_with_two_video_streams_replays_the_larger_one(tmp_path):
    thumb = np.zeros((32, 32, 3), np.uint8)
    screen = np.full((64, 96, 3), BRIGHT, np.uint8)
    path = tmp_path / "two.mkv"
    _write(path, [(32, 32, thumb), (96, 64, screen)])
    images = _frames(open_source(str(path)))
    assert len(images) == 3
    assert images[0].shape[:2] == (64, 96) and images[0].mean() > BRIGHT - 10


def test_a_rotated_recording_is_turned_upright_as_players_show_it(tmp_path):
    image = np.zeros((32, 64, 3), np.uint8)
    image[:, :8] = 255  # a bright band along the left edge
    path = tmp_path / "portrait.mp4"
    _write(path, [(64, 32, image)], rotation=90)  # shown turned 90 degrees counter-clockwise
    first = _frames(open_source(str(path)))[0]
    assert first.shape[:2] == (64, 32)
    assert first[-8:].mean() > BRIGHT and first[:8].mean() < 50  # the left edge is now the bottom


def test_a_video_with_huge_frames_is_refused_from_its_header(tmp_path):
    path = tmp_path / "huge.avi"
    _write(
        path, [(4200, 4200, np.zeros((4200, 4200, 3), np.uint8))], frames=1, codec="mjpeg", pix_fmt="yuvj420p"
    )
    with pytest.raises(InputError, match=r"huge\.avi: frame 0 is 4200x4200, larger than the maximum"):
        open_source(str(path))


def _png_header_only(width, height) -> bytes:
    """A PNG signature and IHDR chunk declaring ``width`` x ``height``, 8-bit gray, and no pixels."""
    body = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    )


def test_a_png_declaring_a_huge_image_stops_the_folder_before_it_is_decoded(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.full((40, 60, 3), BRIGHT, np.uint8))
    (folder / "z.png").write_bytes(_png_header_only(30000, 30000))
    source = iter(open_source(str(folder)))
    assert next(source).image.shape[:2] == (40, 60)
    with pytest.raises(InputError, match=r"z\.png: frame 1 is 30000x30000, larger than the maximum"):
        next(source)


@pytest.fixture
def one_frame_dicom():
    """pydicom's ultrasound cine as one uncompressed RGB frame."""
    ds = pydicom.dcmread(get_testdata_file("examples_ybr_color.dcm"))
    one = copy.deepcopy(ds)
    one.PhotometricInterpretation = "RGB"
    one.NumberOfFrames = 1
    one.PixelData = ds.pixel_array[0].tobytes()
    one["PixelData"].VR = "OB"
    one.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return one


def test_a_dicom_with_no_frames_says_so(tmp_path, one_frame_dicom):
    one_frame_dicom.NumberOfFrames = 0
    one_frame_dicom.PixelData = b""
    path = tmp_path / "empty.dcm"
    one_frame_dicom.save_as(path, enforce_file_format=True)
    with pytest.raises(InputError, match=r"empty\.dcm: holds no image \(NumberOfFrames is 0\)"):
        open_source(str(path))


def test_a_dicom_declaring_huge_frames_is_refused_before_decoding(tmp_path, one_frame_dicom):
    one_frame_dicom.Rows, one_frame_dicom.Columns = 8000, 8000
    path = tmp_path / "huge.dcm"
    one_frame_dicom.save_as(path, enforce_file_format=True)
    with pytest.raises(InputError, match=r"huge\.dcm: frame 0 is 8000x8000, larger than the maximum"):
        open_source(str(path))


def test_an_undecodable_dicom_is_one_line_without_a_library_traceback(caplog):
    path = get_testdata_file("JPGExtended.dcm")  # 12-bit JPEG Extended: no installed plugin decodes it
    with caplog.at_level(logging.INFO), pytest.raises(InputError) as raised:
        open_source(path)
    assert "cannot decode the DICOM pixel data" in str(raised.value)
    assert "\n" not in str(raised.value)
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
