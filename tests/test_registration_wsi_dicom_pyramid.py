"""A DICOM WSI pyramid (VL Whole Slide Microscopy, TILED_FULL, JPEG frames, one file per level) written here
from OpenSlide's DICOM fixture as a template: OpenSlide finds the whole series from any one file, the level
that suits the working scale is read, and the scale comes from PixelSpacing."""

from __future__ import annotations

import copy

import cv2
import numpy as np
import pytest
from slide_samples import expected_level, tissue_like

from edge_runtime.errors import InputError
from registration.wsi import read_slide

pydicom = pytest.importorskip("pydicom")
TEMPLATE = __import__("pathlib").Path(__file__).parent / "data" / "wsi-fixtures" / "boxes_0.dcm"
TILE = 256
MPP0 = 0.5
DOWNSAMPLES = (1, 4, 16)
JPEG_QUALITY = 90


def write_dicom_pyramid(folder, img: np.ndarray, corrupt: tuple[int, int] | None = None) -> list:
    """One DICOM file per level, frames row-major; ``corrupt`` = (level, frame) gets a broken JPEG."""
    from pydicom.encaps import encapsulate
    from pydicom.uid import generate_uid

    template = pydicom.dcmread(str(TEMPLATE))
    series = generate_uid()
    paths = []
    for k, ds in enumerate(DOWNSAMPLES):
        lv = expected_level(img, ds) if ds > 1 else img
        h, w = lv.shape[:2]
        frames = []
        for y in range(0, h, TILE):
            for x in range(0, w, TILE):
                tile = np.full((TILE, TILE, 3), 255, np.uint8)
                part = lv[y : y + TILE, x : x + TILE]
                tile[: part.shape[0], : part.shape[1]] = part
                ok, buf = cv2.imencode(
                    ".jpg", cv2.cvtColor(tile, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
                )
                frames.append(buf.tobytes())
        if corrupt is not None and corrupt[0] == k:
            frames[corrupt[1]] = b"\xff\xd8" + b"\x00" * 64
        d = copy.deepcopy(template)
        uid = generate_uid()
        d.SOPInstanceUID = d.file_meta.MediaStorageSOPInstanceUID = uid
        d.SeriesInstanceUID = series
        d.ImageType = [
            "ORIGINAL" if k == 0 else "DERIVED",
            "PRIMARY",
            "VOLUME",
            "NONE" if k == 0 else "RESAMPLED",
        ]
        # the frames' type says what the image's does (PS3.3 C.8.12.4.1.1); the template's says NONE
        frame_type = d.SharedFunctionalGroupsSequence[0].WholeSlideMicroscopyImageFrameTypeSequence[0]
        frame_type.FrameType = list(d.ImageType)
        d.PhotometricInterpretation = "YBR_FULL_422"
        d.Rows = d.Columns = TILE
        d.TotalPixelMatrixColumns, d.TotalPixelMatrixRows = w, h
        d.NumberOfFrames = len(frames)
        spacing = MPP0 * ds / 1000.0
        d.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing = [spacing, spacing]
        d.ImagedVolumeWidth, d.ImagedVolumeHeight = w * spacing, h * spacing
        d.InstanceNumber = k + 1
        d.PixelData = encapsulate(frames)
        d["PixelData"].VR = "OB"
        d["PixelData"].is_undefined_length = True
        path = folder / f"level{k}.dcm"
        d.save_as(str(path), enforce_file_format=True)
        paths.append(path)
    return paths


def test_dicom_pyramid_reads_the_suitable_level_with_pixel_spacing(tmp_path):
    img = tissue_like()
    paths = write_dicom_pyramid(tmp_path, img)
    for path in (paths[0], paths[2]):  # any file of the series opens the whole pyramid
        lv = read_slide(path, None, 8.0)
        assert (lv.reader, lv.vendor, lv.level, lv.level0_shape) == ("openslide", "dicom", 2, (512, 2048))
        assert lv.mpp == pytest.approx(8.0) and lv.mpp_source == "openslide.mpp-x (dicom)"
        diff = np.abs(lv.rgb.astype(int) - expected_level(img, 16).astype(int))
        assert lv.rgb.shape == (32, 128, 3) and np.median(diff) <= 4
    assert read_slide(paths[1], None, 2.0).level == 1


def test_a_corrupt_dicom_frame_names_the_file_and_level(tmp_path):
    paths = write_dicom_pyramid(tmp_path, tissue_like(), corrupt=(2, 0))
    with pytest.raises(InputError) as err:
        read_slide(paths[0], None, 8.0)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(
        f"{paths[0]}: level 2 (128x32 px) cannot be read by openslide: corrupt"
    )
    assert read_slide(paths[0], None, 2.0).level == 1  # the other levels still read
