"""WSI reading: mpp sources, pyramid level choice, streamed flat TIFFs, thumbnails, unreadable files."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from file_size_limit import python_with_file_size_limit

from edge_runtime.errors import InputError
from registration.sim.slide import SlideLayout, write_pyramid
from registration.wsi import read_slide

FULL_DISK_BYTES = 64 * 1024  # the slide's level 0 alone is larger


def pink_strip(h=64, w=512):
    img = np.full((h, w, 3), 244, np.uint8)
    img[h // 4 : 3 * h // 4, w // 8 : 7 * w // 8] = (228, 160, 200)
    return img


def test_svs_description_mpp(tmp_path):
    p = tmp_path / "a.tif"
    tifffile.imwrite(
        str(p),
        pink_strip(),
        photometric="rgb",
        description="Aperio Image Library v12.0.5\n512x64 -> 512x64 |AppMag = 20|MPP = 0.4990",
    )
    lv = read_slide(p, None, 0.5)
    assert lv.mpp == pytest.approx(0.499) and lv.rgb.shape == (64, 512, 3)
    assert lv.mpp_source == "Aperio ImageDescription MPP"


def test_resolution_tags_cm_and_implausible_inch(tmp_path):
    p = tmp_path / "cm.tif"
    tifffile.imwrite(
        str(p), pink_strip(), photometric="rgb", resolution=(2500.0, 2500.0), resolutionunit="CENTIMETER"
    )
    lv = read_slide(p, None, 4.0)
    assert (
        lv.mpp == pytest.approx(4.0)
        and lv.rgb.shape == (64, 512, 3)
        and lv.mpp_source == "TIFF resolution tags"
    )
    # a stripped (untiled) level 2x finer than needed is shrunk too: the registration works at one scale
    lv = read_slide(p, None, 8.0)
    assert lv.mpp == pytest.approx(8.0) and lv.rgb.shape == (32, 256, 3) and lv.shrink == 2
    q = tmp_path / "inch.tif"  # 72 dpi default = 352 µm/px: a screen resolution, not a slide scale
    tifffile.imwrite(str(q), pink_strip(), photometric="rgb", resolution=(72.0, 72.0), resolutionunit="INCH")
    with pytest.raises(InputError, match="missing mpp"):
        read_slide(q, None, 8.0)
    assert read_slide(q, 4.0, 4.0).mpp == 4.0
    r = tmp_path / "cm72.tif"  # the same screen default written in centimetres (OpenSlide's own boxes.tiff)
    tifffile.imwrite(
        str(r), pink_strip(), photometric="rgb", resolution=(28.35, 28.35), resolutionunit="CENTIMETER"
    )
    with pytest.raises(InputError, match=r"missing mpp .*352.7 µm/px is not a slide scale"):
        read_slide(r, None, 8.0)


def test_pyramid_level_choice_reads_the_coarsest_fine_enough_level(tmp_path):
    layout = SlideLayout(
        width=2048,
        height=256,
        mpp=1.0,
        tissue=[np.array([[100.0, 60.0], [1900.0, 60.0], [1900.0, 200.0], [100.0, 200.0]])],
        cancer=[],
    )
    shapes = write_pyramid(layout, tmp_path / "p.ome.tif")
    assert len(shapes) >= 3
    lv = read_slide(tmp_path / "p.ome.tif", None, 4.0)
    assert lv.level == 2 and lv.mpp == pytest.approx(4.0) and lv.rgb.shape[:2] == shapes[2]
    assert read_slide(tmp_path / "p.ome.tif", None, 0.5).level == 0


def test_a_simulated_slide_that_cannot_be_written_whole_leaves_no_file(tmp_path):
    """A full disk (a real file size limit, 64 KiB) while simulate-pathology writes the slide left a
    truncated slide.ome.tif in the case folder, which register then read as the lab's; now it is written
    under a temp name and renamed once whole, and the error names the slide."""
    slide, earlier = tmp_path / "slide.ome.tif", b"an earlier slide"
    slide.write_bytes(earlier)
    code = (
        "import numpy as np, sys\n"
        "from pathlib import Path\n"
        "from registration.sim.slide import SlideLayout, write_pyramid\n"
        "tissue = [np.array([[100.0, 60.0], [1900.0, 60.0], [1900.0, 200.0], [100.0, 200.0]])]\n"
        "layout = SlideLayout(width=2048, height=256, mpp=1.0, tissue=tissue, cancer=[])\n"
        "try:\n"
        "    write_pyramid(layout, Path(sys.argv[1]))\n"
        "except OSError as exc:\n"
        "    print(exc.filename)\n"
    )
    out = python_with_file_size_limit(FULL_DISK_BYTES, "-c", code, slide)
    assert out.returncode == 0 and out.stdout.strip() == str(slide), out.stderr[-2000:]
    assert slide.read_bytes() == earlier and sorted(tmp_path.iterdir()) == [slide]


def test_flat_tiled_tiff_is_streamed_and_shrunk(tmp_path):
    big = np.repeat(np.repeat(pink_strip(64, 512), 4, axis=0), 4, axis=1)  # 256 x 2048 at 2 µm
    p = tmp_path / "flat.tif"
    tifffile.imwrite(
        str(p),
        big,
        photometric="rgb",
        tile=(128, 128),
        resolution=(5000.0, 5000.0),
        resolutionunit="CENTIMETER",
        compression="zlib",
    )
    lv = read_slide(p, None, 8.0)
    assert lv.mpp == pytest.approx(8.0) and lv.downsample == 4 and lv.rgb.shape == (64, 512, 3)
    assert "streamed tile by tile" in lv.note
    assert np.abs(lv.rgb.astype(int) - pink_strip(64, 512)).max() <= 1


def test_unreadable_and_thumbnail(tmp_path):
    bad = tmp_path / "bad.svs"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(
        InputError,
        match="bad.svs: unreadable WSI: no slide reader opens it "
        r"\(tifffile: .*; openslide: .*\)",
    ):
        read_slide(bad, 1.0)
    import cv2

    cv2.imwrite(str(tmp_path / "t.png"), pink_strip())
    lv = read_slide(tmp_path / "t.png", 16.0)
    assert lv.mpp == 16.0 and lv.reader == "opencv" and lv.rgb.shape == (64, 512, 3)
