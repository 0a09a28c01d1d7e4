"""OpenSlide's own format fixtures (vendored under tests/data/wsi-fixtures, LGPL-2.1 test data): Aperio SVS,
generic pyramidal TIFF, DICOM WSI over two files, and the broken files, through both readers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_runtime.errors import InputError
from registration.wsi import read_slide

FIXTURES = __import__("pathlib").Path(__file__).parent / "data" / "wsi-fixtures"
SVS_MPP = 0.499  # Aperio "MPP = 0.4990"; the DICOM PixelSpacing is 0.000499 mm


@pytest.fixture(scope="module")
def fx():
    # vendored with the repository (tests/data/wsi-fixtures): missing is a broken checkout, not a skip
    assert (FIXTURES / "small.svs").is_file(), f"OpenSlide fixtures missing from {FIXTURES}"
    return FIXTURES


def test_svs_opens_with_openslide_by_default_and_both_readers_agree(fx):
    auto = read_slide(fx / "small.svs", None, SVS_MPP)
    assert (auto.reader, auto.vendor, auto.level, auto.rgb.shape) == ("openslide", "aperio", 0, (16, 16, 3))
    assert auto.mpp == pytest.approx(SVS_MPP) and auto.mpp_source == "openslide.mpp-x (aperio)"
    tf = read_slide(fx / "small.svs", None, SVS_MPP, "tifffile")
    assert (
        tf.vendor == "aperio"
        and tf.mpp_source == "Aperio ImageDescription MPP"
        and tf.mpp == pytest.approx(SVS_MPP)
    )
    assert np.abs(auto.rgb.astype(int) - tf.rgb.astype(int)).max() <= 2


def test_generic_tiff_pyramid_matches_its_reference_picture(fx):
    ref = cv2.cvtColor(cv2.imread(str(fx / "boxes.png")), cv2.COLOR_BGR2RGB)
    for reader in ("auto", "tifffile", "openslide"):
        lv = read_slide(fx / "boxes.tiff", 1.0, 1.0, reader)
        assert lv.level == 0 and lv.rgb.shape == ref.shape
        assert np.abs(lv.rgb.astype(int) - ref.astype(int)).max() <= 2
        assert lv.mpp_source == "case.yaml pathology.mpp"
    assert read_slide(fx / "boxes.tiff", 1.0, 1.0).reader == "tifffile"
    # its 72-dpi resolution tags are a screen default, not a scale: without pathology.mpp it must say so
    with pytest.raises(InputError, match=r"boxes.tiff: missing mpp .*not a slide scale.*give pathology.mpp"):
        read_slide(fx / "boxes.tiff", None, 8.0)
    lv = read_slide(fx / "boxes.tiff", 1.0, 8.0, "openslide")  # level 3 is 8.1x: too coarse for 8 µm/px
    assert (lv.level, lv.rgb.shape) == (2, (31, 38, 3)) and lv.shrink == pytest.approx(75 / 38)
    lv = read_slide(fx / "boxes.tiff", 1.0, 8.2, "openslide")
    assert (lv.level, lv.shrink, lv.rgb.shape) == (3, 1, (31, 37, 3)) and lv.downsample == pytest.approx(
        300 / 37
    )


def test_dicom_wsi_reads_through_openslide_with_pixel_spacing_as_mpp(fx):
    for name in ("boxes_0.dcm", "boxes_1.dcm"):
        lv = read_slide(fx / name, None, SVS_MPP)
        assert (lv.reader, lv.vendor, lv.rgb.shape) == ("openslide", "dicom", (16, 16, 3))
        assert lv.mpp == pytest.approx(SVS_MPP) and lv.mpp_source == "openslide.mpp-x (dicom)"
        assert lv.tried == [] and lv.rgb.std() > 0  # pixels, not an empty canvas
    with pytest.raises(InputError, match=r"inconsistent scales: pathology.mpp=0.25 but the file says 0.4990"):
        read_slide(fx / "boxes_0.dcm", 0.25, 8.0)


@pytest.mark.parametrize("reader", ["auto", "tifffile", "openslide"])
def test_unreadable_svs_names_the_file_and_level_in_one_line(fx, reader):
    with pytest.raises(InputError) as err:
        read_slide(fx / "unreadable.svs", None, SVS_MPP, reader)
    msg = str(err.value)
    used = "openslide" if reader == "auto" else reader
    assert "\n" not in msg
    assert msg.startswith(f"{fx / 'unreadable.svs'}: level 0 (16x16 px) cannot be read by {used}: corrupt")


def test_unopenable_tiff_lists_why_each_reader_refused(fx):
    with pytest.raises(InputError) as err:
        read_slide(fx / "unopenable.tiff", 1.0, 8.0)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(
        f"{fx / 'unopenable.tiff'}: unreadable WSI: no slide reader opens it"
    )
    assert "tifffile: cannot decode TIFF compression 52479" in msg and "openslide: " in msg
