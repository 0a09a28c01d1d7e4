"""A registration install missing a slide package: the other reader takes over, or the error says what to install.
Each check runs in a fresh interpreter where the package cannot be imported (``sys.modules[name] = None``)."""

from __future__ import annotations

import subprocess
import sys

from slide_samples import tissue_like

from registration.wsi_write import pyramid_from_array, write_slide

READ = (
    "import sys; sys.modules[{blocked!r}] = None\n"
    "from edge_runtime.errors import InputError\n"
    "from registration.wsi import read_slide\n"
    "try:\n"
    "    lv = read_slide({path!r}, None, 8.0)\n"
    "    print('OK', lv.reader, lv.level, lv.tried)\n"
    "except InputError as exc:\n"
    "    print('ERR', exc)\n"
)


def read_without(package: str, path) -> str:
    out = subprocess.run(
        [sys.executable, "-c", READ.format(blocked=package, path=str(path))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def write(path, layout):
    img = tissue_like()
    write_slide(path, img.shape[:2], 0.5, pyramid_from_array(img, (1, 4, 16)), (1, 4, 16), "jpeg", layout)
    return path


def test_without_imagecodecs_openslide_reads_jpeg_tiles_and_the_error_says_what_to_install(tmp_path):
    svs = write(tmp_path / "a.svs", "aperio")
    assert read_without("imagecodecs", svs).startswith("OK openslide 2")
    generic = write(tmp_path / "g.tif", "generic")  # tifffile first fails, OpenSlide reads it
    assert read_without("imagecodecs", generic).startswith(
        "OK openslide 2 ['tifffile: cannot decode TIFF compression JPEG (install imagecodecs)']"
    )


def test_without_openslide_tifffile_reads_svs_and_dicom_says_what_to_install(tmp_path):
    svs = write(tmp_path / "a.svs", "aperio")
    assert read_without("openslide", svs).startswith("OK tifffile 2")
    msg = read_without(
        "openslide", __import__("pathlib").Path(__file__).parent / "data" / "wsi-fixtures" / "boxes_0.dcm"
    )
    assert msg.startswith("ERR ") and "unreadable WSI: no slide reader opens it" in msg
    assert "openslide: not installed" in msg and "pip install openslide-bin openslide-python" in msg
