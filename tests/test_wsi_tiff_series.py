"""The tifffile reader takes the file's largest image series as the slide, its levels largest first: a
small macro image stored first as a series of its own is never read as the slide, and a pyramid whose
levels are listed smallest first still has its full-resolution level as level 0. An OME file's scale is
its slide image's own, not the macro's listed before it."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from registration.wsi import read_slide
from registration.wsi_mpp import ome_mpp, ome_pixels
from registration.wsi_tiff import CannotOpen, TiffSlide

H, W = 1024, 2048
TILE = (256, 256)
MACRO = np.full((100, 300, 3), 200, np.uint8)  # a 3:1 glass slide image, uniform: told apart at a glance


def pattern() -> np.ndarray:
    """Level 0: a pattern whose every 2x2 subsample differs from its full resolution."""
    y, x = np.mgrid[0:H, 0:W]
    return np.stack([x % 256, y % 256, (x + y) % 7 * 30], axis=2).astype(np.uint8)


def write_macro_then_subifd_pyramid(path):
    img = pattern()
    with tifffile.TiffWriter(path) as tw:
        tw.write(MACRO, photometric="rgb")
        tw.write(img, tile=TILE, subifds=1, photometric="rgb")
        tw.write(img[::2, ::2], tile=TILE, subfiletype=1, photometric="rgb")
    return img


def write_macro_then_ifd_pyramid(path):
    img = pattern()
    with tifffile.TiffWriter(path) as tw:  # no tifffile description: series as a scanner's file gives them
        tw.write(MACRO, photometric="rgb", metadata=None)
        tw.write(img, tile=TILE, photometric="rgb", metadata=None)
        tw.write(img[::2, ::2], tile=TILE, subfiletype=1, photometric="rgb", metadata=None)
    return img


def write_smallest_first_ome(path):
    img = pattern()
    with tifffile.TiffWriter(path, ome=True) as tw:  # the reduced level first, level 0 in its SubIFD
        tw.write(img[::2, ::2], tile=TILE, subifds=1, photometric="rgb", metadata={"axes": "YXS"})
        tw.write(img, tile=TILE, subfiletype=1, photometric="rgb")
    return img


@pytest.mark.parametrize(
    "write,name",  # the IFD pyramid not as .ome.tif: tifffile would write each of its pages as an OME image
    [
        (write_macro_then_subifd_pyramid, "slide.tif"),
        (write_macro_then_ifd_pyramid, "slide.tif"),
        (write_smallest_first_ome, "slide.ome.tif"),
    ],
)
def test_the_largest_series_is_the_slide_and_its_largest_level_is_level_0(tmp_path, write, name):
    path = tmp_path / name
    img = write(path)
    with tifffile.TiffFile(path) as tif:  # the files hold what the test claims
        levels = [[lv.shape[:2] for lv in s.levels] for s in tif.series]
        assert levels[0][0] != (H, W) and (H, W) in {shape for series in levels for shape in series}
    slide = TiffSlide(path)
    try:
        assert slide.level_shapes == [(H, W), (H // 2, W // 2)] and slide.downsamples == [1.0, 2.0]
        assert np.array_equal(slide.read_region(0, 0, 0, W, H), img)
        assert np.array_equal(slide.read_region(1, 0, 0, W // 2, H // 2), img[::2, ::2])
    finally:
        slide.close()


def test_a_macro_first_file_registers_the_pyramid(tmp_path):
    path = tmp_path / "macro_first.tif"
    img = write_macro_then_subifd_pyramid(path)
    lv = read_slide(path, 0.5, 1.0, "tifffile")
    assert (lv.reader, lv.level0_shape, lv.level, lv.shrink) == ("tifffile", (H, W), 1, 1)
    assert np.array_equal(lv.rgb, img[::2, ::2])


def test_the_scale_comes_from_the_slides_level_0_not_the_macro_first_page(tmp_path):
    path = tmp_path / "macro_first.tif"
    img = pattern()
    um_per_cm = 10_000
    with tifffile.TiffWriter(path) as tw:  # the macro at 40 µm/px, the pyramid at 0.5 µm/px, both in its tags
        tw.write(
            MACRO,
            photometric="rgb",
            metadata=None,
            resolution=(um_per_cm / 40, um_per_cm / 40),
            resolutionunit="CENTIMETER",
        )
        tw.write(
            img,
            tile=TILE,
            photometric="rgb",
            metadata=None,
            resolution=(um_per_cm / 0.5, um_per_cm / 0.5),
            resolutionunit="CENTIMETER",
        )
        tw.write(img[::2, ::2], tile=TILE, subfiletype=1, photometric="rgb", metadata=None)
    slide = TiffSlide(path)
    try:
        assert slide.mpp_found == pytest.approx(0.5) and slide.mpp_source == "TIFF resolution tags"
    finally:
        slide.close()


@pytest.mark.parametrize("dtype", [np.float32, bool])
def test_a_sample_type_this_reader_cannot_show_is_refused_when_opened(tmp_path, dtype):
    """Refused at open (the next reader is then tried), not called corrupt tile data at the first read."""
    path = tmp_path / "odd.tif"
    tifffile.imwrite(path, np.zeros((512, 512), dtype), tile=TILE)
    with pytest.raises(CannotOpen, match=r"unsupported sample type (float32|bool)"):
        TiffSlide(path)


def test_an_ome_file_opening_with_its_macro_takes_the_slides_own_scale(tmp_path):
    # OME lists one <Image> per series, each with its own PhysicalSize: the macro's (a photograph of the
    # whole glass, tens of µm per pixel) must not become the slide's
    path = tmp_path / "macro_first.ome.tif"
    img = pattern()
    with tifffile.TiffWriter(path, ome=True) as tw:
        tw.write(
            MACRO, photometric="rgb", metadata={"axes": "YXS", "PhysicalSizeX": 30.0, "PhysicalSizeY": 30.0}
        )
        tw.write(
            img,
            tile=TILE,
            subifds=1,
            photometric="rgb",
            metadata={"axes": "YXS", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.25, "PhysicalSizeXUnit": "µm"},
        )
        tw.write(img[::2, ::2], tile=TILE, subfiletype=1, photometric="rgb")
    with tifffile.TiffFile(path) as tif:  # the file holds what the test claims: the macro's scale first
        assert tif.ome_metadata.index('PhysicalSizeX="30.0"') < tif.ome_metadata.index('PhysicalSizeX="0.5"')
    slide = TiffSlide(path)
    try:
        assert slide.level_shapes[0] == (H, W)
        assert (slide.mpp_found, slide.mpp_y_found, slide.mpp_source) == (0.5, 0.25, "OME PhysicalSizeX")
    finally:
        slide.close()


def test_ome_units_are_read_whatever_the_attribute_order():
    ome = (
        '<OME><Image ID="Image:0"><Pixels PhysicalSizeX="20" SizeX="300" SizeY="100"/></Image>'
        '<Image ID="Image:1"><ome:Pixels PhysicalSizeXUnit="nm" SizeY="1024" PhysicalSizeX="500" '
        'SizeX="2048" PhysicalSizeY="0.0005" PhysicalSizeYUnit="mm"/></Image></OME>'
    )
    tag = ome_pixels(ome, H, W)
    assert (ome_mpp(tag, "X"), ome_mpp(tag, "Y")) == (pytest.approx(0.5), pytest.approx(0.5))
    assert ome_pixels(ome, 7, 7) == ""  # two images, neither the slide's size: no scale taken


@pytest.mark.parametrize(("tags_px_per_cm", "contradicts"), [(40000.0, True), (20000.0, False)])
def test_an_ome_scale_its_resolution_tags_contradict_is_read_and_named(tmp_path, tags_px_per_cm, contradicts):
    """OME PhysicalSizeX says 0.5 µm/px; the same page's resolution tags say 0.25 (40000 px/cm): the
    OME value is read, and the slide's warnings (report.json) name both. Tags that agree (20000 px/cm)
    add no warning."""
    path = tmp_path / "two_scales.ome.tif"
    img = pattern()
    with tifffile.TiffWriter(path, ome=True) as tw:
        tw.write(
            img,
            tile=TILE,
            photometric="rgb",
            resolution=(tags_px_per_cm, tags_px_per_cm),
            resolutionunit="CENTIMETER",
            metadata={"axes": "YXS", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5},
        )
    level = read_slide(path, None, 1.0, "tifffile")
    assert level.mpp_source == "OME PhysicalSizeX"
    named = [w for w in level.warnings if "contradicts itself" in w]
    if contradicts:
        assert len(named) == 1 and "0.5000 µm/px" in named[0] and "0.2500 µm/px" in named[0], level.warnings
        assert str(tmp_path) not in named[0]
    else:
        assert not named, level.warnings
