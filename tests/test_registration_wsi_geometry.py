"""A slide's geometry as the file states it, through the real readers and the real `sonomap register`:
a tiled macro image (the glass slide with its label, here a patient's name) that OpenSlide's
generic-tiff driver lists among the pyramid levels is never read as the slide; a file whose pixels are
not square (x and y resolution apart) is refused in one line by every reader, an earlier output kept;
the real fixtures' pyramids keep every level."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import tifffile
import yaml
from cli import sonomap

from edge_runtime.errors import InputError
from registration.sim.simulate import simulate_cases
from registration.wsi import open_slide
from registration.wsi_write import pyramid_from_array, write_slide

FIXTURES = __import__("pathlib").Path(__file__).parent / "data" / "wsi-fixtures"
SLIDE_MPP = 4.0  # simulate_cases' default level-0 scale: registration (8 µm/px) reads level 0 shrunk 2x
DOWNSAMPLES = (1, 4, 16)  # Aperio-like steps: no level at 8 µm/px, so a macro "level" between 1 and 4 wins
MACRO_WIDTH_SHARE = 0.6  # the macro's width against level 0's: a "downsample" of 1.7, i.e. 6.7 µm/px
GLASS_ASPECT = 3  # a 75 x 25 mm glass slide
TILE = 256
PATIENT = "DOE, JANE 1970-01-01"


@pytest.fixture(scope="module")
def case_4um(busi_sample, tmp_path_factory):
    """One simulated case whose slide is at 4 µm/px (seed 11): (its folder, level 0 as RGB)."""
    out = tmp_path_factory.mktemp("geometry")
    made = simulate_cases(busi_sample / "images", busi_sample / "masks", out, 1, seed=11)
    folder = out / made["cases"][0]["case_id"]
    with tifffile.TiffFile(folder / "core.ome.tif") as tif:
        return folder, tif.series[0].levels[0].asarray()


def _case_with_slide(case_4um, tmp_path, slide_name: str, reader: str):
    """A copy of the case whose pathology.wsi is ``slide_name`` (written by the caller) read by ``reader``."""
    folder = tmp_path / "case"
    shutil.copytree(case_4um[0], folder)
    spec = yaml.safe_load((folder / "case.yaml").read_text())
    spec["pathology"].update(wsi=slide_name, reader=reader)
    (folder / "case.yaml").write_text(yaml.safe_dump(spec))
    return folder


def _macro(width: int) -> np.ndarray:
    """A glass slide's macro picture: grey glass with the label's text."""
    img = np.full((width // GLASS_ASPECT, width, 3), 200, np.uint8)
    cv2.putText(img, PATIENT, (20, img.shape[0] // 2), cv2.FONT_HERSHEY_SIMPLEX, 2, (0, 0, 0), 6)
    return img


def _generic_with_macro(path, level0: np.ndarray) -> tuple[int, int]:
    """A generic tiled pyramid (resolution tags) with a tiled macro image appended; the macro's (h, w)."""
    write_slide(
        path,
        level0.shape[:2],
        SLIDE_MPP,
        pyramid_from_array(level0, DOWNSAMPLES),
        DOWNSAMPLES,
        "jpeg",
        "generic",
    )
    macro = _macro(int(level0.shape[1] * MACRO_WIDTH_SHARE))
    with tifffile.TiffWriter(str(path), append=True, bigtiff=True) as tw:
        tw.write(
            macro, tile=(TILE, TILE), photometric="rgb", compression="jpeg", subfiletype=9, metadata=None
        )
    return macro.shape[:2]


def test_a_macro_image_listed_as_a_level_is_never_read_as_the_slide(case_4um, tmp_path):
    folder, level0 = case_4um
    macro_shape = _generic_with_macro(tmp_path / "slide.tif", level0)
    case = _case_with_slide(case_4um, tmp_path, "slide.tif", "openslide")
    shutil.move(tmp_path / "slide.tif", case / "slide.tif")
    with open_slide(case / "slide.tif", reader="openslide") as slide:  # the premise: OpenSlide lists it
        assert tuple(macro_shape) in slide.src.level_shapes
    sonomap("register", case / "case.yaml", "--out", tmp_path / "out")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["slide"]["reader"] == "openslide"
    assert report["slide"]["level_shape"] == list(level0.shape[:2])  # level 0, shrunk: never the macro
    notes = [w for w in report["warnings"] if "not a reduced copy of level 0" in w]
    assert len(notes) == 1 and notes[0].startswith("pathology.wsi: level 1 ("), report["warnings"]
    assert str(tmp_path) not in json.dumps(report)


@pytest.mark.parametrize("reader", ["tifffile", "openslide"])
def test_the_real_fixture_pyramids_keep_every_level(reader):
    with open_slide(FIXTURES / "boxes.tiff", mpp=1.0, reader=reader) as slide:
        assert slide.levels == list(range(len(slide.src.level_shapes))) and len(slide.levels) == 4
        assert slide.level_notes == []


def _write_anisotropic(path, level0: np.ndarray, mpp_y: float, layout: str) -> None:
    """level0 as a tiled pyramid whose file says SLIDE_MPP across and ``mpp_y`` down."""
    h, w = level0.shape[:2]
    with tifffile.TiffWriter(str(path), bigtiff=True, ome=layout == "ome") as tw:
        for k, ds in enumerate(DOWNSAMPLES[:2]):
            img = level0 if ds == 1 else cv2.resize(level0, (w // ds, h // ds), interpolation=cv2.INTER_AREA)
            kw = {"subfiletype": 0 if k == 0 else 1, "metadata": None}
            if layout == "ome":
                kw = {"metadata": {"axes": "YXS", "PhysicalSizeX": SLIDE_MPP, "PhysicalSizeY": mpp_y}}
                if k:
                    continue  # one level is enough for the scale
            res = (1e4 / (SLIDE_MPP * ds), 1e4 / (mpp_y * ds))
            tw.write(
                img,
                tile=(TILE, TILE),
                photometric="rgb",
                compression="zlib",
                resolution=res,
                resolutionunit="CENTIMETER",
                **kw,
            )


@pytest.mark.parametrize("layout", ["generic", "ome"])
def test_non_square_pixels_are_refused_by_every_reader(case_4um, tmp_path, layout):
    path = tmp_path / "slide.tif"
    _write_anisotropic(path, case_4um[1][:512, :1024], 2 * SLIDE_MPP, layout)
    readers = ["auto", "tifffile"] + (["openslide"] if layout == "generic" else [])
    for reader in readers:
        with pytest.raises(InputError) as err:
            open_slide(path, reader=reader)
        assert str(err.value).startswith(
            f"{path}: non-square pixels: the file says 4.0000 µm/px across and 8.0000 µm/px down"
        ), (reader, str(err.value))
    _write_anisotropic(path, case_4um[1][:512, :1024], SLIDE_MPP * 1.01, layout)  # within 2 %: square
    with open_slide(path) as slide:
        assert slide.mpp0 == pytest.approx(SLIDE_MPP)


def test_register_refuses_a_non_square_slide_and_keeps_the_earlier_output(case_4um, tmp_path):
    case = _case_with_slide(case_4um, tmp_path, "core.ome.tif", "auto")
    out = tmp_path / "out"
    sonomap("register", case / "case.yaml", "--out", out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    _write_anisotropic(case / "core.ome.tif", case_4um[1], 2 * SLIDE_MPP, "generic")
    res = sonomap("register", case / "case.yaml", "--out", out, check=False)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "non-square pixels" in lines[0] and "Traceback" not in res.stderr, res.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
