"""Slide files whose tags lie about their own layout: TIFF tile size tags far beyond the image (a tile
is decoded whole: a 64x64 image in 16384x16384 tiles inflates 805 MB per tile), a level stored as one
tile larger than the decoding budget, and a DICOM WSI series whose ImageType has no value 4 (then its
FrameType decides, and when nothing can tell whether the base level is there, the slide is read with a
warning naming the file)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import tifffile
from slide_samples import tissue_like

from edge_runtime.errors import InputError
from registration.wsi import open_slide, read_slide
from registration.wsi_tiff import TILE_ROUNDING

MPP = 0.5  # µm/px written into the TIFFs' resolution tags
TAGS = {"width": 256, "length": 257, "tile_width": 322, "tile_length": 323}
SHORT, LONG = 3, 4  # TIFF field types


def tiled_tiff(path, shape=(64, 64), tile=(64, 64)) -> None:
    img = np.full((*shape, 3), 200, np.uint8)
    tifffile.imwrite(
        path,
        img,
        tile=tile,
        photometric="rgb",
        compression="zlib",
        resolution=(1e4 / MPP, 1e4 / MPP),
        resolutionunit="CENTIMETER",
        metadata=None,
    )


def patch_tags(path, **values) -> None:
    """Overwrite single-value tags of the first IFD in place (``TAGS`` names them)."""
    data = bytearray(path.read_bytes())
    (ifd,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd)
    codes = {TAGS[name]: v for name, v in values.items()}
    for i in range(count):
        at = ifd + 2 + 12 * i
        code, kind, n = struct.unpack_from("<HHI", data, at)
        if code in codes:
            assert n == 1 and kind in (SHORT, LONG)
            struct.pack_into("<H" if kind == SHORT else "<I", data, at + 8, codes.pop(code))
    assert not codes, f"tags not found: {codes}"
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("side", [16384, 32768])
@pytest.mark.parametrize("reader", ["tifffile", "openslide", "auto"])
def test_tiles_far_larger_than_the_image_are_refused_before_decoding(tmp_path, side, reader):
    path = tmp_path / "bomb.tif"
    tiled_tiff(path)
    patch_tags(path, tile_width=side, tile_length=side)
    with pytest.raises(InputError) as err:
        read_slide(path, None, 8.0, reader)
    msg = str(err.value)
    assert msg.startswith(f"{path}: unreadable WSI: no slide reader opens it (") and "\n" not in msg
    refusal = f"level 0 (64x64 px) has tiles of {side}x{side} px, far larger than the level"
    readers = ["tifffile", "openslide"] if reader == "auto" else [reader]
    assert all(f"{name}: {refusal}" in msg for name in readers), msg


def test_tiles_up_to_the_rounded_level_size_still_read(tmp_path):
    path = tmp_path / "big_tiles.tif"
    tiled_tiff(path, (100, 300), (TILE_ROUNDING, TILE_ROUNDING))  # one tile overhanging a small image
    lv = read_slide(path, None, MPP, "tifffile")
    assert lv.rgb.shape == (100, 300, 3) and (lv.rgb == 200).all()
    patch_tags(path, tile_width=TILE_ROUNDING + 16)  # TIFF tiles are multiples of 16: the next size up
    with pytest.raises(InputError, match=f"has tiles of {TILE_ROUNDING + 16}x{TILE_ROUNDING} px, far larger"):
        read_slide(path, None, MPP, "tifffile")


def test_a_level_stored_as_one_tile_beyond_the_budget_is_not_decoded_for_a_small_box(tmp_path):
    path = tmp_path / "one_tile.tif"
    tiled_tiff(path)
    side = 8192  # 67 Mpx in its one tile: over the 64 Mpx budget; a level as big, so no damaged tag
    patch_tags(path, width=side, length=side, tile_width=side, tile_length=side)
    with open_slide(path, reader="tifffile") as slide:
        with pytest.raises(InputError) as err:
            slide.read_box((0, 0, 100, 100), MPP)  # 100 columns: the band check alone lets it through
    msg = str(err.value)
    assert msg.startswith(
        f"{path}: level 0 is stored in tiles (or strips) of 8192x8192 px, too big to decode"
    )
    assert "\n" not in msg


def dicom_series(folder, image_type_values: int, frame_type_values: int, drop_base: bool) -> list:
    """A DICOM WSI pyramid whose ImageType/FrameType keep only their first values (a writer that stops
    at value 3), without its full-resolution file when ``drop_base``."""
    pydicom = pytest.importorskip("pydicom")
    from test_registration_wsi_dicom_pyramid import write_dicom_pyramid

    paths = write_dicom_pyramid(folder, tissue_like())
    for path in paths:
        d = pydicom.dcmread(str(path))
        frame = d.SharedFunctionalGroupsSequence[0].WholeSlideMicroscopyImageFrameTypeSequence[0]
        d.ImageType = list(d.ImageType)[:image_type_values]
        frame.FrameType = list(frame.FrameType)[:frame_type_values]
        d.save_as(str(path))
    if drop_base:
        paths[0].unlink()
    return paths


def test_a_dicom_series_without_its_base_is_refused_by_its_frame_type(tmp_path):
    paths = dicom_series(tmp_path, 3, 4, drop_base=True)
    with pytest.raises(InputError) as err:
        read_slide(paths[1], None, 8.0)
    msg = str(err.value)
    assert (
        msg.startswith(f"{paths[1]}: the DICOM WSI series lacks its full-resolution instance")
        and "\n" not in msg
    )
    assert "(512x128 px) has FrameType RESAMPLED" in msg


@pytest.mark.parametrize("drop_base", [True, False])
def test_a_dicom_series_that_cannot_tell_its_base_is_read_with_a_warning(tmp_path, drop_base):
    paths = dicom_series(tmp_path, 3, 3, drop_base)
    lv = read_slide(paths[1], None, 8.0)
    size = "512x128" if drop_base else "2048x512"
    assert lv.level0_shape == ((128, 512) if drop_base else (512, 2048))
    assert lv.warnings == [
        f"{paths[1]}: the DICOM WSI series' ImageType and FrameType lack value 4 (NONE or RESAMPLED), so its "
        f"largest level ({size} px) cannot be verified as the full-resolution one; if the series' base file "
        "is missing, the annotation lands off by its downsample"
    ]


def test_a_conforming_dicom_series_reads_without_a_warning(tmp_path):
    paths = dicom_series(tmp_path, 4, 4, drop_base=False)
    lv = read_slide(paths[1], None, 8.0)
    assert lv.level0_shape == (512, 2048) and lv.warnings == []
