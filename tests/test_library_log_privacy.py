"""What libraries print about the files they read names no file: pydicom's log line and Python
warning about a truncated DICOM given by a relative path or a bare name, and OpenCV's native logger
about an image it cannot open (which writes to stderr past Python's logging). All through the real
`sonomap` command; a file name may be the patient's. The final one-line error names the file the user
gave, with the identifiers its header holds redacted (the header is read before the cut-short pixel
data, so they are registered)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge_runtime.privacy import FILE_PLACEHOLDER, library_file_names

REPO = Path(__file__).resolve().parents[1]
BUSI = REPO / "tests" / "data" / "busi" / "images"
PATIENT = {"PatientName": "Sorensen^Ingrid", "PatientID": "PID-90210-77"}
NAME_PARTS = ("Sorensen", "Ingrid", "90210", "DOE_JANE")
TIMEOUT_S = 120


def run(cwd: Path, *args) -> subprocess.CompletedProcess:
    """``sonomap ARGS`` from ``cwd``, so paths can be given relative or bare, as a user types them."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "edge_runtime.cli", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def assert_named_nowhere(res: subprocess.CompletedProcess, allowed_last_line: bool = False) -> None:
    lines = res.stderr.strip().splitlines()
    checked = lines[:-1] if allowed_last_line else lines
    for part in NAME_PARTS:
        assert part not in res.stdout, res.stdout
        assert not [line for line in checked if part in line], res.stderr


@pytest.fixture()
def truncated_dicom(tmp_path) -> Path:
    """pydicom's YBR cine with a patient's identifiers, named after them, cut short (pydicom warns
    'End of file reached before delimiter ... found in file NAME' while reading it)."""
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("examples_ybr_color.dcm"))
    for key, value in PATIENT.items():
        setattr(ds, key, value)
    folder = tmp_path / "t"
    folder.mkdir()
    path = folder / f"{PATIENT['PatientName']}_{PATIENT['PatientID']}.dcm"
    ds.save_as(str(path))
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size * 2 // 3)
    return path


@pytest.mark.parametrize("relative", [True, False], ids=["folder/name", "bare name"])
def test_pydicom_lines_about_a_truncated_dicom_name_no_file(truncated_dicom, relative):
    cwd = truncated_dicom.parent.parent if relative else truncated_dicom.parent
    given = truncated_dicom.relative_to(cwd)
    res = run(cwd, "replay", given, "--out", cwd / "o.mp4")
    assert res.returncode == 2, res.stderr
    assert "End of file reached" in res.stderr  # the library's reason stays
    assert "UserWarning" in res.stderr and "py.warnings" in res.stderr  # the warning went through logging
    assert FILE_PLACEHOLDER in res.stderr
    # the path is replaced whole, before the name inside it is redacted; a warning is one line
    assert [
        line for line in res.stderr.splitlines() if "End of file reached" in line and "[REDACTED]" in line
    ] == []
    assert "warn_and_log" not in res.stderr  # Python's warning format adds the raising source line
    last = res.stderr.strip().splitlines()[-1]
    shown = (
        str(given).replace(PATIENT["PatientName"], "[REDACTED]").replace(PATIENT["PatientID"], "[REDACTED]")
    )
    assert (
        last.startswith(f"sonomap replay: error: {shown} frame ") and ": the file is cut short: " in last
    ), last
    assert_named_nowhere(res)
    assert (cwd / "o.mp4").exists()  # the frames before the cut


def test_opencv_native_log_names_no_image_of_a_folder(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    shutil.copy(BUSI / "malignant_002.png", folder / "a.png")
    (folder / "DOE_JANE_1970_5.png").symlink_to(tmp_path / "gone.png")  # OpenCV: "can't open/read file"
    res = run(tmp_path, "replay", folder, "--roi", "full", "--out", tmp_path / "o.mp4")
    assert res.returncode == 0, res.stderr
    assert "skipped corrupt image" in res.stderr  # the source reports it, by its place in the folder
    assert "loadsave" not in res.stderr and "imread" not in res.stderr
    assert_named_nowhere(res)


def test_opencv_native_log_is_off_for_every_command(tmp_path):
    """make-clip reads its --image with OpenCV's imread: only the one-line error names the file."""
    image = tmp_path / "DOE_JANE_1970.png"
    image.symlink_to(tmp_path / "gone.png")
    res = run(tmp_path, "make-clip", "--image", image.name, "--out", "c.mp4", "--frames", "2")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sonomap make-clip: error: DOE_JANE_1970.png"), lines
    assert_named_nowhere(res, allowed_last_line=True)


@pytest.mark.parametrize(
    "message, expected",
    [
        ("found in file t/DOE_JANE_1970.dcm", "found in file [file]"),
        ("found in file DOE_JANE_1970.dcm", "found in file [file]"),
        ("found in file DOE_JANE_1970.dcm.", "found in file [file]."),
        ("cannot read /data/DOE_JANE/x.png: bad", "cannot read [file]: bad"),
        ("<TiffFile 'DOE JANE.ome.tif'> raised TiffFileError", "<TiffFile [file]> raised TiffFileError"),
        ("file:///data/DOE_JANE.mp4 failed", "file:[file] failed"),
        # ordinary text stays: versions, ratios, abbreviations, a URL (credentials go elsewhere)
        ("onnxruntime 1.20.1 e.g. 3/4 of 24 fps", "onnxruntime 1.20.1 e.g. 3/4 of 24 fps"),
        ("rtsp://cam:554/live: Connection refused", "rtsp://cam:554/live: Connection refused"),
    ],
)
def test_library_lines_lose_relative_paths_and_bare_file_names(message, expected):
    record = logging.LogRecord("pydicom", logging.WARNING, __file__, 1, message, None, None)
    assert library_file_names(record) and record.getMessage() == expected
    own = logging.LogRecord("sonomap.sources", logging.WARNING, __file__, 1, message, None, None)
    assert library_file_names(own) and own.getMessage() == message  # sonomap's own lines name no file
