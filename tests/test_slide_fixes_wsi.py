"""Damaged slides on OpenSlide's real fixtures (vendored under tests/data/wsi-fixtures): a truncated or
byte-damaged SVS is one line naming the file and tifffile's reason (never a traceback, nothing on stderr);
tifffile's log lines about a file it can still read become warnings; a DICOM WSI series without its
full-resolution file is refused; a thumbnail in a folder whose name is not UTF-8 is read."""

from __future__ import annotations

import logging
import os
import struct
import subprocess
import sys

import cv2
import numpy as np
import pytest
from slide_samples import tissue_like

from edge_runtime.errors import InputError
from registration.wsi import read_slide

FIXTURES = __import__("pathlib").Path(__file__).parent / "data" / "wsi-fixtures"
SVS_MPP = 0.499
TRUNCATED_SVS_BYTES = 1767  # inside page 3's tag list: tifffile raises while listing the SVS series
SVS_LEVEL0_IFD = 280  # small.svs: the first IFD (level 0) starts here
TIFF_SHORT = 3
BOXES_TRUNCATED_BYTES = 7496  # boxes.tiff cut inside the ICC profile of its last level: pixels intact
NOT_UTF8 = os.fsdecode(b"c\xff")  # a folder name in Latin-1, as a USB stick from another system has
CHILD_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def fx():
    # vendored with the repository (tests/data/wsi-fixtures): missing is a broken checkout, not a skip
    assert (FIXTURES / "small.svs").is_file(), f"OpenSlide fixtures missing from {FIXTURES}"
    return FIXTURES


def _ifd_entry(data: bytes, ifd: int, code: int) -> int:
    """Offset of tag ``code``'s 12-byte entry in the little-endian IFD at ``ifd``."""
    (count,) = struct.unpack_from("<H", data, ifd)
    for i in range(count):
        at = ifd + 2 + 12 * i
        if struct.unpack_from("<H", data, at)[0] == code:
            return at
    raise AssertionError(f"tag {code} not in the IFD at {ifd}")


def _damaged_svs(fx, tmp_path, code: int, field: str, value: int):
    """small.svs with one field of one level-0 tag changed: 'count' (4 bytes) or 'value' (a SHORT)."""
    data = bytearray((fx / "small.svs").read_bytes())
    at = _ifd_entry(data, SVS_LEVEL0_IFD, code)
    if field == "count":
        struct.pack_into("<I", data, at + 4, value)
    else:
        assert struct.unpack_from("<H", data, at + 2)[0] == TIFF_SHORT
        struct.pack_into("<H", data, at + 8, value)
    path = tmp_path / "core.svs"
    path.write_bytes(bytes(data))
    return path


def _refusal(path, reader, capsys, mpp=None) -> str:
    with pytest.raises(InputError) as err:
        read_slide(path, mpp, 8.0, reader)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{path}: ")
    assert capsys.readouterr().err == ""  # tifffile's own log lines are in the message, not on stderr
    return msg


@pytest.mark.parametrize("reader", ["auto", "tifffile"])
def test_a_truncated_svs_is_one_line_with_tifffiles_reason(fx, tmp_path, reader, capsys):
    path = tmp_path / "core.svs"
    path.write_bytes((fx / "small.svs").read_bytes()[:TRUNCATED_SVS_BYTES])
    msg = _refusal(path, reader, capsys, SVS_MPP)
    assert "unreadable WSI: no slide reader opens it (tifffile: TiffFileError: corrupted IFD structure" in msg
    assert "suspicious number of tags" in msg  # what tifffile logged, not only what it raised


@pytest.mark.parametrize("reader", ["auto", "tifffile"])
def test_a_level_of_width_zero_is_refused(fx, tmp_path, reader, capsys):
    image_width = 256
    path = _damaged_svs(fx, tmp_path, image_width, "value", 0)
    assert "tifffile: level 0 is 0x16 px (a damaged size tag)" in _refusal(path, reader, capsys, SVS_MPP)


def test_a_tag_with_a_wrong_value_count_is_refused(fx, tmp_path, capsys):
    tile_width = 322
    path = _damaged_svs(fx, tmp_path, tile_width, "count", 194)  # one SHORT claimed as 194
    assert "(tifffile: TypeError: " in _refusal(path, "tifffile", capsys, SVS_MPP)


def test_a_damaged_svs_without_its_scale_names_openslides_refusal(fx, tmp_path, capsys):
    # cut after level 0's tags: tifffile still reads level 0, without the Aperio description that has
    # the scale; OpenSlide refuses the file. The missing scale is not the whole story: say both.
    path = tmp_path / "core.svs"
    path.write_bytes((fx / "small.svs").read_bytes()[:500])
    msg = _refusal(path, "auto", capsys)
    assert "missing mpp" in msg and "(read by tifffile; openslide: OpenSlideUnsupportedFormatError" in msg


def test_tifffiles_log_lines_about_a_readable_file_become_warnings(fx, tmp_path, capsys, caplog):
    path = tmp_path / "boxes.tiff"
    path.write_bytes((fx / "boxes.tiff").read_bytes()[:BOXES_TRUNCATED_BYTES])
    ref = read_slide(fx / "boxes.tiff", 1.0, 1.0, "tifffile")
    with caplog.at_level(logging.WARNING):
        lv = read_slide(path, 1.0, 1.0, "tifffile")
    assert np.array_equal(lv.rgb, ref.rgb)
    assert lv.warnings and all(w.startswith(f"{path}: tifffile reported: ") for w in lv.warnings)
    assert any("invalid value offset" in w for w in lv.warnings)
    assert not [r for r in caplog.records if r.name == "tifffile"] and capsys.readouterr().err == ""
    assert read_slide(fx / "boxes.tiff", 1.0, 1.0, "tifffile").warnings == []  # an intact file: none


def test_the_real_dicom_fixture_is_derived_at_full_resolution_and_still_reads(fx):
    pydicom = pytest.importorskip("pydicom")
    assert list(pydicom.dcmread(str(fx / "boxes_0.dcm")).ImageType) == [
        "DERIVED",
        "PRIMARY",
        "VOLUME",
        "NONE",
    ]
    assert read_slide(fx / "boxes_0.dcm", None, SVS_MPP).level0_shape == (16, 16)


def test_a_dicom_series_without_its_full_resolution_file_is_refused(tmp_path):
    pytest.importorskip("pydicom")
    from test_registration_wsi_dicom_pyramid import write_dicom_pyramid

    paths = write_dicom_pyramid(tmp_path, tissue_like())
    assert read_slide(paths[1], None, 8.0).level0_shape == (512, 2048)  # whole: level 0 found from level 1
    paths[0].unlink()
    with pytest.raises(InputError) as err:
        read_slide(paths[1], None, 8.0)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{paths[1]}: the DICOM WSI series lacks its full-resolution")
    assert "(512x128 px) has ImageType RESAMPLED" in msg


def test_a_thumbnail_in_a_folder_not_named_in_utf8_is_read(tmp_path):
    folder = tmp_path / NOT_UTF8
    folder.mkdir()
    thumb = np.zeros((40, 60, 3), np.uint8)
    thumb[:, :, 2] = 200  # red in BGR
    ok, buf = cv2.imencode(".png", thumb)
    (folder / "thumb.png").write_bytes(buf.tobytes())
    # in a child: OpenCV given such a path crashes the interpreter, which would end this test run
    code = (
        "import sys; from registration.wsi import read_slide; lv = read_slide(sys.argv[1], 2.0, 2.0); "
        "print(lv.rgb.shape, lv.rgb[0, 0].tolist())"
    )
    thumb_path = str(folder / "thumb.png")  # the child's argv decodes it back to the same str
    res = subprocess.run(
        [sys.executable, "-c", code, thumb_path], capture_output=True, text=True, timeout=CHILD_TIMEOUT_S
    )
    assert res.returncode == 0, f"exit {res.returncode}: {res.stderr[-2000:]}"
    assert res.stdout.split() == ["(40,", "60,", "3)", "[200,", "0,", "0]"]


GLASS_16, TISSUE_16 = 60000, 30000  # 16-bit samples: 92 % and 46 % of full scale
TILE = 512


def test_a_16_bit_slide_keeps_one_scale_across_its_tiles(tmp_path):
    """Glass in one tile, uniform tissue in the next: scaled by its own maximum, each tile turned
    white (the tissue read as glass, with a seam between them)."""
    import tifffile

    path = tmp_path / "slide16.tif"
    image = np.full((TILE, 2 * TILE, 3), GLASS_16, np.uint16)
    image[:, TILE:] = TISSUE_16
    mpp = 8.0
    tifffile.imwrite(
        path,
        image,
        tile=(TILE, TILE),
        photometric="rgb",
        resolution=(1e4 / mpp, 1e4 / mpp),
        resolutionunit="CENTIMETER",
    )
    slide = read_slide(path, None, mpp, "tifffile")
    assert slide.rgb.shape == (TILE, 2 * TILE, 3)
    assert slide.rgb[10, 10].tolist() == [round(GLASS_16 * 255 / 65535)] * 3
    assert slide.rgb[10, TILE + 10].tolist() == [round(TISSUE_16 * 255 / 65535)] * 3


@pytest.mark.parametrize("reader", ["tifffile", "openslide"])
def test_unscanned_transparent_areas_read_as_white_glass_with_either_reader(tmp_path, reader):
    import tifffile

    path = tmp_path / "rgba.tif"
    image = np.zeros((TILE, TILE, 4), np.uint8)
    image[:, : TILE // 2] = (240, 235, 240, 255)  # scanned
    # right half: not scanned, transparent (its colour samples are 0, as scanners leave them)
    mpp = 8.0
    tifffile.imwrite(
        path, image, tile=(256, 256), photometric="rgb", extrasamples=[2],
        resolution=(1e4 / mpp, 1e4 / mpp), resolutionunit="CENTIMETER",
    )  # fmt: skip
    slide = read_slide(path, None, mpp, reader)
    assert slide.rgb[10, 10].tolist() == [240, 235, 240]
    assert slide.rgb[10, TILE - 10].tolist() == [255, 255, 255]


def test_library_lines_about_an_unreadable_slide_reach_stderr_only_at_info(tmp_path, simulated_case):
    """Outside the sonomap command (no log filters), tifffile's lines quote the file's name, a patient's:
    by default nothing but the error itself comes of an unreadable slide; at INFO the lines are there."""
    slide = tmp_path / "DOE_JANE_1970.ome.tif"  # cut inside its tiles: tifffile logs, then the read fails
    slide.write_bytes((simulated_case / "core.ome.tif").read_bytes()[:20000])
    code = (
        "import logging, sys\n"
        "if sys.argv[2] == 'info': logging.basicConfig(level=logging.INFO)\n"
        "from edge_runtime.errors import InputError\n"
        "from registration.wsi import read_slide\n"
        "try:\n    read_slide(sys.argv[1], None, 8.0, 'tifffile')\n"
        "except InputError as exc:\n    print(exc)\n"
    )
    runs = {
        level: subprocess.run(
            [sys.executable, "-c", code, str(slide), level],
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_S,
        )
        for level in ("default", "info")
    }
    assert "cannot be read by tifffile" in runs["default"].stdout and runs["default"].returncode == 0
    assert runs["default"].stderr == ""  # was: three tifffile lines, each quoting 'DOE_JANE_1970.ome.tif'
    assert "INFO:tifffile:" in runs["info"].stderr and "corrupted tag list" in runs["info"].stderr
