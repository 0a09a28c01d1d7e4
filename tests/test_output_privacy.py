"""File names that identify the patient never leave the process: not in the cases `--cases` writes,
not in what `register` and `register-batch` write, not in the sources' log lines. And a bad `--http`
port is a one-line error.

Input files are named the way hospital exports often name them, after the patient
(``Doe_Jane_MRN778899.dcm``), while their headers carry no patient data: the name is the only thing
that identifies the patient, so nothing can be redacted on the way out and only keeping the name
out of every output passes. Everything runs through the real command (`tests/cli.py`) or the real
sources, on real files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import struct
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import yaml
from cli import sonomap
from procedure_clip import PROCEDURE, write_procedure_clip

from edge_runtime.biopsy.case_writer import public_source
from edge_runtime.cli import EXIT_USER_ERROR
from edge_runtime.sources.opener import open_source
from registration.sim.biopsy_core import CoreParams
from registration.sim.simulate import SimParams, simulate_cases

PATIENT_STEM = "Doe_Jane_MRN778899"
IDENTIFIERS = ("Doe", "Jane", "778899")  # each part of the name on its own
US_STORAGE = "1.2.840.10008.5.1.4.1.1.3.1"  # Ultrasound Multi-frame Image Storage
CINE_FPS = 30
CM_UNITS = 3  # DICOM PhysicalUnits code for cm
MM_PER_CM = 10.0
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_PIXEL_CHUNKS = (b"IDAT",)  # compressed pixels: any 3 bytes may occur there by chance
SEQUENCE_FRAMES, SEQUENCE_SHAPE = 3, (6, 7)  # frames, (height, width)


# --- helpers -------------------------------------------------------------------------------------


def write_gray_dicom(path: Path, frames: list[np.ndarray], mm_per_pixel: float) -> Path:
    """A real DICOM ultrasound file (pydicom): 8-bit gray frames at 30 fps, one region calibrated in
    cm over the whole image, and no patient data in its header."""
    pytest.importorskip("pydicom")
    # deferred: pydicom is the optional [dicom] extra (skipped above when it is missing)
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = US_STORAGE, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = US_STORAGE, meta.MediaStorageSOPInstanceUID, "US"
    ds.Rows, ds.Columns = frames[0].shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.NumberOfFrames, ds.CineRate = len(frames), CINE_FPS
    ds.PixelData = np.stack(frames).astype(np.uint8).tobytes()
    region = Dataset()
    region.RegionSpatialFormat, region.RegionDataType, region.RegionFlags = 1, 1, 0
    region.RegionLocationMinX0, region.RegionLocationMinY0 = 0, 0
    region.RegionLocationMaxX1, region.RegionLocationMaxY1 = ds.Columns - 1, ds.Rows - 1
    region.PhysicalUnitsXDirection = region.PhysicalUnitsYDirection = CM_UNITS
    region.PhysicalDeltaX = region.PhysicalDeltaY = mm_per_pixel / MM_PER_CM
    ds.SequenceOfUltrasoundRegions = Sequence([region])
    ds.save_as(str(path), enforce_file_format=True)
    return path


def png_metadata(data: bytes) -> bytes:
    """Every chunk of a PNG but its pixel data (text chunks, where a name could be written)."""
    out, at = [], len(PNG_SIGNATURE)
    while at < len(data):
        (length,), kind = struct.unpack(">I", data[at : at + 4]), data[at + 4 : at + 8]
        if kind not in PNG_PIXEL_CHUNKS:
            out.append(kind + data[at + 8 : at + 8 + length])
        at += 12 + length  # length, type, data, CRC
    return b"".join(out)


def assert_nothing_identifies(root: Path, *texts: str) -> None:
    """No part of the patient's file name in any name or content under ``root`` (a PNG's pixel data
    aside), nor in ``texts`` (the command's stdout and stderr)."""
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files, f"nothing written under {root}"
    for path in root.rglob("*"):
        name = str(path.relative_to(root))
        data = path.read_bytes() if path.is_file() else b""
        if data.startswith(PNG_SIGNATURE):
            data = png_metadata(data)
        for part in IDENTIFIERS:
            assert part.lower() not in name.lower(), name
            assert part.lower().encode() not in data.lower(), f"{name} holds {part!r}"
    for text in texts:
        for part in IDENTIFIERS:
            assert part.lower() not in text.lower(), text[-2000:]


# --- (a) captured cases ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def patient_cine(tmp_path_factory) -> tuple[Path, dict]:
    """The synthetic procedure (one needle fire) as a DICOM cine of the ultrasound area, saved under
    the patient's name: (file, clip info)."""
    folder = tmp_path_factory.mktemp("cine")
    info = write_procedure_clip(folder / "procedure.mp4", procedure=PROCEDURE[:1])
    x, y, w, h = info["roi"]
    with av.open(info["clip"]) as clip:
        frames = [
            cv2.cvtColor(vf.to_ndarray(format="bgr24")[y : y + h, x : x + w], cv2.COLOR_BGR2GRAY)
            for vf in clip.decode(clip.streams.video[0])
        ]
    return write_gray_dicom(folder / f"{PATIENT_STEM}.dcm", frames, info["mm_per_pixel"]), info


def test_a_captured_case_records_the_kind_of_source_never_its_file_name(patient_cine, tmp_path):
    path, info = patient_cine
    cases = tmp_path / "cases"
    _, _, w, h = info["roi"]
    res = sonomap(
        "replay", path, "--roi", f"0,0,{w},{h}", "--mm-per-pixel", info["mm_per_pixel"], "--cases", cases
    )
    folders = sorted(p for p in cases.iterdir() if not p.name.startswith("."))  # not the numbering lock
    assert len(folders) == len(info["fires"]) == 1
    case = yaml.safe_load((folders[0] / "case.yaml").read_text())
    assert case["capture"]["source"] == "DICOM cine" == open_source(str(path)).name
    assert_nothing_identifies(cases, res.stdout, res.stderr)


def test_capture_log_lines_name_no_cases_folder_named_after_the_patient(patient_cine, tmp_path):
    """A video file carries no name to redact, and the operator typed a cases folder named after the
    patient: the log lines (the journal, under the service) name a case by its own folder, the
    capture's time and number, and the cases folder as ``--cases``."""
    _, info = patient_cine
    cases = tmp_path / PATIENT_STEM / "cases"
    x, y, w, h = info["roi"]
    res = sonomap(
        "replay",
        info["clip"],
        "--roi",
        f"{x},{y},{w},{h}",
        "--mm-per-pixel",
        info["mm_per_pixel"],
        "--cases",
        cases,
    )
    (folder,) = [p for p in cases.iterdir() if not p.name.startswith(".")]
    assert f"biopsy 1 captured (fire): {folder.name} in --cases" in res.stderr, res.stderr
    for part in IDENTIFIERS:
        assert part.lower() not in res.stderr.lower(), res.stderr[-2000:]


@pytest.mark.parametrize(
    "given,recorded",
    [
        (f"/data/{PATIENT_STEM}/clip.mp4", "video file"),
        (f"/data/{PATIENT_STEM}.dcm", "DICOM cine"),
        (f"{PATIENT_STEM}.seq.nrrd", "Slicer sequence"),
        (f"{PATIENT_STEM}.igs.mha", "PLUS sequence"),
        (f"{PATIENT_STEM}.png", "image file"),
        ("/dev/video2", "capture device /dev/video2"),
        ("0", "capture device /dev/video0"),
        (f"rtsp://admin:secret@10.0.0.5:554/live?patient={PATIENT_STEM}", "rtsp://10.0.0.5:554/live"),
    ],
)
def test_every_kind_of_source_is_recorded_without_a_name(given, recorded):
    assert public_source(given) == recorded


def test_an_image_folder_is_recorded_as_one(tmp_path):
    folder = tmp_path / PATIENT_STEM
    folder.mkdir()
    assert public_source(str(folder)) == "image folder"


# --- (b) registration --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def patient_case(busi_sample, tmp_path_factory) -> Path:
    """A simulated case in a folder named after the patient, its ultrasound a DICOM named after the
    patient, and an empty annotation file (so a warning names that file). Returns the cases folder."""
    work = tmp_path_factory.mktemp("sim")
    made = simulate_cases(
        busi_sample / "images",
        busi_sample / "masks",
        work,
        1,
        seed=11,
        params=SimParams(core=CoreParams(mpp=8.0)),
    )
    cases = tmp_path_factory.mktemp("cases")
    folder = cases / PATIENT_STEM
    shutil.move(str(work / made["cases"][0]["case_id"]), str(folder))
    case = yaml.safe_load((folder / "case.yaml").read_text())
    us = cv2.imread(str(folder / "us.png"), cv2.IMREAD_GRAYSCALE)
    write_gray_dicom(folder / f"{PATIENT_STEM}.dcm", [us], case["ultrasound"].pop("mm_per_pixel"))
    (folder / "us.png").unlink()
    case["ultrasound"]["image"] = f"{PATIENT_STEM}.dcm"
    (folder / "empty.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    case["pathology"]["annotations"] = "empty.geojson"
    (folder / "case.yaml").write_text(yaml.safe_dump(case, sort_keys=False))
    return cases


def test_register_records_inputs_by_content_never_by_name(patient_case, tmp_path):
    folder = patient_case / PATIENT_STEM
    out = tmp_path / "out"
    res = sonomap("register", folder / "case.yaml", "--out", out)
    report = json.loads((out / "report.json").read_text())
    dicom = (folder / f"{PATIENT_STEM}.dcm").read_bytes()
    assert report["ultrasound"]["file"] == {
        "format": "dicom",
        "sha256": hashlib.sha256(dicom).hexdigest(),
        "bytes": len(dicom),
    }
    assert report["ultrasound"]["dataset_image"]["format"] == "raster"
    wsi = (folder / "core.ome.tif").read_bytes()
    assert report["slide"]["file"] == {"sha256": hashlib.sha256(wsi).hexdigest(), "bytes": len(wsi)}
    assert report["case_file"]["sha256"] == hashlib.sha256((folder / "case.yaml").read_bytes()).hexdigest()
    # the empty annotation's warning names the file by its case.yaml key, in the report and on stdout
    assert any(w.startswith("pathology.annotations: empty annotation file") for w in report["warnings"])
    assert "warning: pathology.annotations: empty annotation file" in res.stdout
    assert_nothing_identifies(out, res.stdout, res.stderr)


def test_register_batch_writes_no_input_name_into_the_dataset(patient_case, tmp_path):
    dataset = tmp_path / "dataset"
    res = sonomap("register-batch", patient_case, "--out", dataset, "--no-progress")
    assert json.loads((dataset / "batch_report.json").read_text())["registered"] == 1
    assert_nothing_identifies(dataset, res.stdout, res.stderr)


# --- (c) sources' log lines ------------------------------------------------------------------------


def write_plus_sequence(path: Path, frames: np.ndarray) -> Path:
    """A minimal PLUS MetaImage sequence (uncompressed, data in the file)."""
    n, height, width = frames.shape
    header = [
        "ObjectType = Image",
        "NDims = 3",
        "BinaryData = True",
        "CompressedData = False",
        f"DimSize = {width} {height} {n}",
        "ElementSpacing = 0.2 0.2 1",
        "ElementType = MET_UCHAR",
        "Kinds = domain domain list",
        "UltrasoundImageOrientation = MF",
        *(f"Seq_Frame{i:04d}_Timestamp = {i / CINE_FPS:.4f}" for i in range(n)),
        "ElementDataFile = LOCAL",
    ]
    path.write_bytes(("\n".join(header) + "\n").encode() + frames.tobytes())
    return path


def test_sequence_sources_log_their_kind_never_their_path(tmp_path, caplog):
    nrrd = pytest.importorskip("nrrd")
    pytest.importorskip("SimpleITK")
    frames = np.random.default_rng(0).integers(0, 256, (SEQUENCE_FRAMES, *SEQUENCE_SHAPE), dtype=np.uint8)
    slicer = tmp_path / PATIENT_STEM / f"{PATIENT_STEM}.seq.nrrd"
    slicer.parent.mkdir()
    header = {"kinds": ["domain", "domain", "domain", "list"], "encoding": "raw"}
    nrrd.write(str(slicer), frames.reshape(SEQUENCE_FRAMES, 1, *SEQUENCE_SHAPE), header, index_order="C")
    plus = write_plus_sequence(tmp_path / PATIENT_STEM / f"{PATIENT_STEM}.igs.mha", frames)
    caplog.set_level(logging.INFO, logger="sonomap.sources")
    opened = [open_source(str(slicer)), open_source(str(plus))]
    height, width = SEQUENCE_SHAPE
    assert f"Slicer sequence: {SEQUENCE_FRAMES} frame(s) of {width}x{height}" in caplog.text
    assert f"PLUS sequence: {SEQUENCE_FRAMES} frame(s) of {width}x{height}" in caplog.text
    assert str(tmp_path) not in caplog.text
    assert not any(part.lower() in caplog.text.lower() for part in IDENTIFIERS), caplog.text
    # a case captured from them records the same kind as the source calls itself
    assert [public_source(str(slicer)), public_source(str(plus))] == [s.name for s in opened]


# --- (d) --http ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["127.0.0.1:99999", "127.0.0.1:65536"])
def test_an_http_port_out_of_range_is_a_one_line_error(address):
    res = sonomap("live", "--source", "synthetic", "--headless", "--http", address, check=False)
    assert res.returncode == EXIT_USER_ERROR, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "--http" in lines[0] and "0-65535" in lines[0], res.stderr[-2000:]
