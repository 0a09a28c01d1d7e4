"""Slide readers on tiled pyramids written here: JPEG / JPEG 2000 / LZW tiles, Aperio / generic / OME layouts,
tifffile and OpenSlide, reader choice, corrupt tiles, and level 0 never decoded when a coarser level serves."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from slide_samples import corrupt_tiles, expected_level, tissue_like

from edge_runtime.errors import InputError
from registration.wsi import open_slide, read_slide
from registration.wsi_write import pyramid_from_array, write_slide

MPP0 = 0.5
DOWNSAMPLES = (1, 4, 16)


def write(tmp_path, compression="jpeg", layout="aperio", img=None):
    img = tissue_like() if img is None else img
    path = tmp_path / f"{layout}_{compression}.{'svs' if layout == 'aperio' else 'tif'}"
    write_slide(
        path, img.shape[:2], MPP0, pyramid_from_array(img, DOWNSAMPLES), DOWNSAMPLES, compression, layout
    )
    return path, img


@pytest.mark.parametrize("compression,tol", [("jpeg", 12), ("jpeg2000", 8), ("lzw", 0)])
@pytest.mark.parametrize("layout", ["aperio", "generic", "ome"])
def test_tifffile_reads_every_compression_and_layout(tmp_path, compression, tol, layout):
    path, img = write(tmp_path, compression, layout)
    lv = read_slide(path, None, 8.0, "tifffile")
    assert (lv.reader, lv.level, lv.shrink) == ("tifffile", 2, 1)
    assert lv.mpp == pytest.approx(8.0) and lv.level0_shape == (512, 2048)
    diff = np.abs(lv.rgb.astype(int) - expected_level(img, 16).astype(int))
    assert np.median(diff) <= tol / 3 and np.percentile(diff, 99) <= 3 * tol + 1


@pytest.mark.parametrize("compression", ["jpeg", "lzw"])
@pytest.mark.parametrize("layout", ["aperio", "generic"])
def test_openslide_and_tifffile_give_the_same_pixels(tmp_path, compression, layout):
    path, _ = write(tmp_path, compression, layout)
    a = read_slide(path, None, 2.0, "tifffile")
    b = read_slide(path, None, 2.0, "openslide")
    assert b.reader == "openslide" and b.vendor == ("aperio" if layout == "aperio" else "generic-tiff")
    assert (a.level, a.shrink, a.rgb.shape) == (b.level, b.shrink, b.rgb.shape) == (1, 1, (128, 512, 3))
    assert a.mpp == pytest.approx(b.mpp) and np.abs(a.rgb.astype(int) - b.rgb.astype(int)).max() <= 2


def test_auto_picks_openslide_for_scanner_formats_and_tifffile_for_generic(tmp_path):
    svs, _ = write(tmp_path, "jpeg", "aperio")
    lv = read_slide(svs, None, 8.0)
    assert (lv.reader, lv.vendor, lv.mpp_source) == ("openslide", "aperio", "openslide.mpp-x (aperio)")
    ome, _ = write(tmp_path, "jpeg", "ome")
    lv = read_slide(ome, None, 8.0)
    assert (lv.reader, lv.vendor, lv.level) == ("tifffile", "ome-tiff", 2)


def test_auto_falls_back_when_the_first_reader_cannot_open(tmp_path):
    # JPEG 2000 (compression 34712) in an Aperio layout: OpenSlide refuses the generic code, tifffile reads it
    svs, _ = write(tmp_path, "jpeg2000", "aperio")
    lv = read_slide(svs, None, 8.0)
    assert lv.reader == "tifffile" and lv.vendor == "aperio"
    assert len(lv.tried) == 1 and lv.tried[0].startswith("openslide: ") and "34712" in lv.tried[0]
    assert lv.describe()["readers_not_used"] == lv.tried


def test_level_zero_is_never_decoded_when_a_coarser_level_serves(tmp_path):
    path, _ = write(tmp_path, "jpeg", "aperio")
    with tifffile.TiffFile(str(path)) as tif:
        n0 = len(tif.pages[0].dataoffsets)
    corrupt_tiles(path, 0, range(n0))  # every level-0 tile is now undecodable
    for reader in ("tifffile", "openslide"):
        lv = read_slide(path, None, 8.0, reader)
        assert lv.level == 2 and lv.rgb.shape == (32, 128, 3)
        lv = read_slide(path, None, 12.0, reader)  # between levels: the finer level resized, not level 0
        assert (
            lv.level == 2
            and lv.shrink == pytest.approx(1.5, rel=0.02)
            and lv.mpp == pytest.approx(12, rel=0.02)
        )
        lv = read_slide(path, None, 8.5, reader)  # within 10 % of the target: used as it is
        assert lv.level == 2 and lv.shrink == 1 and lv.rgb.shape == (32, 128, 3)
        with pytest.raises(
            InputError, match=rf"{path.name}: level 0 \(2048x512 px\) cannot be read by {reader}"
        ):
            read_slide(path, None, 0.5, reader)


# (OpenSlide does not open generic JPEG 2000 TIFF tiles at all: see the fallback test)
@pytest.mark.parametrize(
    "reader,compression", [("tifffile", "jpeg"), ("tifffile", "jpeg2000"), ("openslide", "jpeg")]
)
def test_a_corrupt_tile_gives_one_line_naming_file_and_level(tmp_path, compression, reader):
    path, _ = write(tmp_path, compression, "aperio")
    corrupt_tiles(path, 3, [0])  # IFD 3 = level 2 (IFD 1 is the thumbnail)
    with pytest.raises(InputError) as err:
        read_slide(path, None, 8.0, reader)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(
        f"{path}: level 2 (128x32 px) cannot be read by {reader}: corrupt"
    )


@pytest.mark.parametrize("reader", ["tifffile", "openslide"])
def test_read_box_reads_only_the_tiles_it_needs(tmp_path, reader):
    path, img = write(tmp_path, "lzw", "generic")
    corrupt_tiles(path, 0, [0])  # level-0 tile at the top-left corner
    with open_slide(path, reader=reader) as slide:
        lv = slide.read_box((1024, 100, 1500, 400), 0.5)
        assert lv.level == 0 and lv.origin == (1024.0, 100.0) and lv.rgb.shape == (300, 476, 3)
        assert np.array_equal(lv.rgb, img[100:400, 1024:1500])
        with pytest.raises(InputError, match="level 0"):
            slide.read_box((0, 0, 300, 300), 0.5)
        coarse = slide.read_box((0, 0, 300, 300), 8.0)  # the same corner from level 2 reads fine
        assert coarse.level == 2 and coarse.rgb.shape == (19, 19, 3)


def test_a_huge_single_level_is_streamed_in_bands_not_held_whole(tmp_path):
    img = np.repeat(tissue_like(256, 1024), 4, axis=0)  # 1024 x 1024 level 0, no pyramid
    path = tmp_path / "flat.tif"
    tifffile.imwrite(
        str(path),
        img,
        photometric="rgb",
        tile=(256, 256),
        compression="jpeg",
        resolution=(1e4 / MPP0, 1e4 / MPP0),
        resolutionunit="CENTIMETER",
    )
    lv = read_slide(path, None, 8.0)
    assert (lv.level, lv.shrink, lv.rgb.shape) == (0, 16, (64, 64, 3)) and "streamed tile by tile" in lv.note


def test_unknown_reader_name_is_refused(tmp_path):
    path, _ = write(tmp_path, "lzw", "generic")
    with pytest.raises(InputError, match="unknown slide reader 'vips'"):
        read_slide(path, None, 8.0, "vips")
