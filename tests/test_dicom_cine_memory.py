"""A DICOM cine is decoded a frame at a time, as it is played: a compressed cine of a thousand
frames (33 s at 30 fps, 2.4 GB decoded at 1024x768 RGB) must not be decoded whole before its first
frame is shown. A real JPEG Baseline multi-frame file (frames encoded by OpenCV, encapsulated by
pydicom, decoded by pydicom's own plugins); numpy's allocations measured by tracemalloc."""

from __future__ import annotations

import tracemalloc

import cv2
import numpy as np
import pytest

from edge_runtime.sources.dicom_cine import DicomCineSource

pydicom = pytest.importorskip("pydicom")
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.encaps import encapsulate  # noqa: E402
from pydicom.uid import JPEGBaseline8Bit, generate_uid  # noqa: E402

FRAMES, HEIGHT, WIDTH = 120, 480, 640
DECODED_BYTES = FRAMES * HEIGHT * WIDTH * 3  # 110 MB as RGB
FRAMES_READ = 3
# a frame decoded, converted to BGR and handed on: a few frames' worth, far below the whole cine
PEAK_LIMIT_BYTES = DECODED_BYTES // 8


def _jpeg_cine(path) -> None:
    """A multi-frame JPEG Baseline ultrasound file of FRAMES smooth frames, each frame distinct."""
    ramp = np.linspace(0, 200, WIDTH, dtype=np.uint8)[None, :, None].repeat(HEIGHT, 0).repeat(3, 2)
    frames = []
    for i in range(FRAMES):
        image = ramp.copy()
        cv2.circle(image, (50 + 4 * i, HEIGHT // 2), 30, (255, 255, 255), -1)
        frames.append(cv2.imencode(".jpg", image)[1].tobytes())
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = JPEGBaseline8Bit
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"  # Ultrasound Multi-frame Image Storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.Rows, ds.Columns, ds.NumberOfFrames = HEIGHT, WIDTH, FRAMES
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "YBR_FULL_422", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.CineRate = 30
    ds.PixelData = encapsulate(frames)
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)


def test_a_compressed_cine_is_decoded_a_frame_at_a_time(tmp_path):
    path = tmp_path / "cine.dcm"
    _jpeg_cine(path)
    tracemalloc.start()
    try:
        source = DicomCineSource(path)
        frames = []
        for frame in source:
            frames.append(frame.image[HEIGHT // 2, :, 0].copy())
            if len(frames) == FRAMES_READ:
                break
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < PEAK_LIMIT_BYTES, f"{peak / 1e6:.0f} MB held to show {FRAMES_READ} frames"
    # the frames are the file's, in order: the white disc moves 4 px a frame
    discs = [int(np.flatnonzero(row > 240).mean()) for row in frames]
    assert all(abs(b - a - 4) <= 1 for a, b in zip(discs, discs[1:], strict=False)), discs


def test_every_frame_of_the_cine_plays_once_then_it_ends(tmp_path):
    path = tmp_path / "cine.dcm"
    _jpeg_cine(path)
    frames = list(DicomCineSource(path))
    assert [f.index for f in frames] == list(range(FRAMES))
    assert frames[-1].image.shape == (HEIGHT, WIDTH, 3)
