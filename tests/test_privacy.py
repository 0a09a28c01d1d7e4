"""De-identified video by default, redacted logs, private recordings, recorder hygiene.

A 1080p scanner screen with a patient line burned in above the image (``sonomap make-clip
--patient-line``) goes through the real ``sonomap replay`` and ``sonomap live`` (served over RTSP with
credentials in the URL); no output may carry the line: its box is blank in the overlay and raw
recordings, the replay output, the mask dumps, the viewer's snapshot and MJPEG stream. A DICOM cine
with identifiers (in its file name too) leaves none in logs, errors or outputs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import yaml
from cli import sonomap
from clips import decode
from loopback import free_port, get_bytes
from rtsp_server import RtspServer
from runtime_model import dark_onnx

from edge_runtime import privacy
from edge_runtime.config import build_config
from edge_runtime.dicom_identifiers import dicom_identifiers
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.frames import Observer
from edge_runtime.roi import Roi, blank_rects
from edge_runtime.sources.reconnect import ResilientSource
from edge_runtime.sources.synthetic import ScreenSimulator, default_image

PATIENT_LINE = "DOE^JANINE  ID MRN-4711-0815  DOB 1970-01-01"
SCREEN_1080P = (1920, 1080)
ROI_1080P = (360, 150, 1200, 840)  # ScreenSimulator's image window at 1080p
DEPTH_SCALE_BOX = [1590, 140, 80, 860]  # the simulated depth scale, right of the image
INITIALS_BOX = [400, 200, 120, 60]  # inside the image: "scanners print initials there"
BLANK_MAX = 16  # blank after H.264/JPEG: black within coding noise
TEXT_MIN = 120  # the burned-in text is drawn at grey level 200
SECRET_USER, SECRET_PASSWORD = "alice", "s3cretpw"
CLIP_FRAMES = 10


def box(image: np.ndarray, b) -> np.ndarray:
    x, y, w, h = b
    return image[y : y + h, x : x + w]


def inner(image: np.ndarray, b, margin: int = 3) -> np.ndarray:
    x, y, w, h = b
    return image[y + margin : y + h - margin, x + margin : x + w - margin]


@pytest.fixture(scope="module")
def patient_clip(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("phi") / "screen.mp4"
    sonomap("make-clip", "--out", out, "--frames", CLIP_FRAMES, "--patient-line", PATIENT_LINE)
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["size"] == list(SCREEN_1080P) and info["roi"] == list(ROI_1080P)
    first = decode(out)[0]
    assert box(first, info["patient_box"]).max() > TEXT_MIN  # the input really carries the line
    return out, info


# --- the blanking itself -------------------------------------------------------------------------


def test_blank_rects_cover_everything_but_roi_and_kept_boxes():
    shape, roi = (100, 200), Roi(50, 20, 100, 60)
    keep, blank = [(160, 10, 20, 80)], [(60, 30, 10, 10), (170, 50, 5, 5)]
    kept = np.ones(shape, bool)
    for x0, y0, x1, y1 in blank_rects(shape, roi, blank, keep):
        kept[y0:y1, x0:x1] = False
    expected = np.zeros(shape, bool)
    expected[20:80, 50:150] = True
    expected[10:90, 160:180] = True
    expected[30:40, 60:70] = False  # a blank box inside the ROI
    expected[50:55, 170:175] = False  # blank wins over keep
    assert np.array_equal(kept, expected)


@pytest.mark.parametrize(
    "section, key",
    [
        ({"blank": [[1, 2, 3]]}, "privacy.blank"),
        ({"keep": [[0, 0, 0, 5]]}, "privacy.keep"),
        ({"keep": "depth scale"}, "privacy.keep"),
        ({"deidentify": "no"}, "privacy.deidentify"),
        ({"blanc": []}, "privacy.blanc"),
    ],
)
def test_privacy_config_errors_name_the_key(section, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as err:
        build_config({"privacy": section})
    assert "\n" not in str(err.value)


def test_sink_config_errors_name_the_key():
    for key, value in (("min_free_gb", -1), ("retention_days", "forever"), ("retention_days", 0)):
        with pytest.raises(ConfigError, match=f"sinks.{key}"):
            build_config({"sinks": {key: value}})


# --- replay through the CLI ----------------------------------------------------------------------


def test_replay_outputs_carry_only_the_ultrasound_area_and_the_hud(patient_clip, tmp_path):
    clip, info = patient_clip
    config = tmp_path / "privacy.yaml"
    config.write_text(yaml.safe_dump({"privacy": {"keep": [DEPTH_SCALE_BOX], "blank": [INITIALS_BOX]}}))
    out, raw, masks = tmp_path / "out.mp4", tmp_path / "raw.mp4", tmp_path / "masks"
    res = sonomap(
        "replay",
        clip,
        "--config",
        config,
        "--model",
        dark_onnx(),
        "--out",
        out,
        "--record-raw",
        raw,
        "--save-masks",
        masks,
        "--summary",
        tmp_path / "s.json",
    )
    assert "privacy.deidentify is false" not in res.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["deidentified"] is True
    source, rendered, recorded = decode(clip), decode(out), decode(raw)
    assert len(rendered) == len(recorded) == CLIP_FRAMES
    x, y, w, h = ROI_1080P
    for frames in (rendered, recorded):
        for frame in frames[::3]:
            assert box(frame, info["patient_box"]).max() <= BLANK_MAX  # the patient line is gone
            assert box(frame, [0, 0, SCREEN_1080P[0], 60]).max() <= BLANK_MAX  # and the rest of the header
            assert inner(frame, INITIALS_BOX).max() <= BLANK_MAX  # blanked inside the image too,
            # with no overlay there (a black box is no tissue); a contour next to it may touch its edge
            assert box(frame, DEPTH_SCALE_BOX).max() > TEXT_MIN  # the kept depth scale stays
    assert box(recorded[4], (x + 200, y + 200, 400, 300)).mean() == pytest.approx(
        box(source[4], (x + 200, y + 200, 400, 300)).mean(), abs=3
    )  # the image itself is intact
    assert box(rendered[4], (x + w - 300, y - 30, 300, 25)).max() > 200  # sonomap's HUD, above the image
    frame_png = cv2.imread(str(sorted(masks.glob("*_frame.png"))[0]))  # mask dumps: the blanked ROI
    (rx, ry, rw, rh), (ix, iy, iw, ih) = summary["roi"], INITIALS_BOX  # auto-detected: within a pixel
    assert (
        frame_png.shape[:2] == (rh, rw)
        and frame_png[iy - ry : iy - ry + ih, ix - rx : ix - rx + iw].max() == 0
    )


def test_opt_out_keeps_the_whole_screen_and_warns_each_start(patient_clip, tmp_path):
    clip, info = patient_clip
    config = tmp_path / "optout.yaml"
    config.write_text(yaml.safe_dump({"privacy": {"deidentify": False}}))
    out = tmp_path / "out.mp4"
    for _ in range(2):
        res = sonomap(
            "replay", clip, "--config", config, "--model", dark_onnx(), "--out", out, "--max-frames", 2
        )
        assert res.stderr.count("privacy.deidentify is false") == 1
    assert box(decode(out)[1], info["patient_box"]).max() > TEXT_MIN


def test_bad_privacy_config_is_a_one_line_cli_error(patient_clip, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("privacy:\n  blank: [[10, 10, 0, 5]]\n")
    res = sonomap("replay", patient_clip[0], "--config", config, check=False)
    assert res.returncode == 2 and "privacy.blank" in res.stderr and len(res.stderr.strip().splitlines()) == 1


# --- live through the CLI: RTSP with credentials, recordings, viewer, snapshot ---------------------


def _first_mjpeg_frame(url: str) -> np.ndarray:
    with urllib.request.urlopen(url, timeout=10) as r:
        length = None
        while True:
            line = r.readline().strip()
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
            elif not line and length:
                return cv2.imdecode(np.frombuffer(r.read(length), np.uint8), cv2.IMREAD_COLOR)


def test_live_outputs_viewer_and_logs_carry_no_patient_line_or_credentials(tmp_path):
    sim = ScreenSimulator(default_image(), patient_line=PATIENT_LINE)
    frames = [sim.frame(i) for i in range(15)]
    port = free_port()
    rec, raw, summary = tmp_path / "rec" / "live.mp4", tmp_path / "rec" / "raw.mp4", tmp_path / "s.json"
    with RtspServer(frames, 15) as url:
        secret_url = url.replace("rtsp://", f"rtsp://{SECRET_USER}:{SECRET_PASSWORD}@")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edge_runtime.cli",
                "-v",
                "live",
                "--source",
                secret_url,
                "--headless",
                "--model",
                str(dark_onnx()),
                "--record",
                str(rec),
                "--record-raw",
                str(raw),
                "--http",
                f"127.0.0.1:{port}",
                "--summary",
                str(summary),
                "--duration",
                "90",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NOTIFY_SOCKET": ""},
        )
        try:
            deadline = time.monotonic() + 60
            while _get_status(f"http://127.0.0.1:{port}/healthz") != 200:
                assert proc.poll() is None and time.monotonic() < deadline, "live never became healthy"
                time.sleep(0.3)
            time.sleep(1.5)
            status, jpeg = get_bytes(f"http://127.0.0.1:{port}/snapshot.jpg")
            assert status == 200
            snapshot = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            streamed = _first_mjpeg_frame(f"http://127.0.0.1:{port}/stream.mjpg")
            texts = [
                get_bytes(f"http://127.0.0.1:{port}{p}")[1].decode()
                for p in ("/metrics", "/stats.json", "/healthz")
            ]
        except BaseException:
            proc.kill()
            raise
    # The stream is gone: NO SIGNAL, and the reconnect attempts against the URL are logged.
    deadline = time.monotonic() + 45
    while get_bytes(f"http://127.0.0.1:{port}/healthz")[1] != b"no signal from capture device\n":
        assert proc.poll() is None and time.monotonic() < deadline, "NO SIGNAL never shown"
        time.sleep(0.3)
    texts.append(get_bytes(f"http://127.0.0.1:{port}/stats.json")[1].decode())
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert "signal lost" in err and "[REDACTED]" in err  # the failing URL was logged, without its secrets
    texts += [out, err, summary.read_text()]
    for text in texts:
        assert SECRET_PASSWORD not in text and SECRET_USER not in text
    for image in (
        snapshot,
        streamed,
        *decode(rec)[2:14:5],
        *decode(raw)[2:14:5],
    ):  # before the stream stopped
        assert image.shape[:2] == (SCREEN_1080P[1], SCREEN_1080P[0])
        assert box(image, sim.patient_box).max() <= BLANK_MAX
        assert box(image, (400, 300, 600, 400)).mean() > 40  # the ultrasound is there
    assert box(snapshot, (ROI_1080P[0] + ROI_1080P[2] - 300, ROI_1080P[1] - 30, 300, 25)).max() > 200  # HUD


def _get_status(url: str) -> int | None:
    try:
        return get_bytes(url, timeout=2)[0]
    except OSError:
        return None


def test_no_signal_screen_and_its_log_line_never_show_stream_credentials():
    url = f"rtsp://{SECRET_USER}:{SECRET_PASSWORD}@127.0.0.1:9/live"

    def refuse():
        raise InputError(f"{url}: unreadable video (Connection refused: '{url}')")

    from edge_runtime.sources.opener import reconnecting_source as for_config

    source = for_config(build_config({"source": {"input": url}}))
    assert SECRET_PASSWORD not in source.name and SECRET_USER not in source.name
    lost = ResilientSource(refuse, source.name, sleep=lambda s: None)
    frame = next(iter(lost))
    assert frame.meta["no_signal"]
    lines = lost.screen_lines(f"Connection refused: '{url}'", 0.5, 0.5)
    assert all(SECRET_PASSWORD not in line and SECRET_USER not in line for line in lines)
    assert "[REDACTED]" in lines[0]


# --- DICOM identifiers ---------------------------------------------------------------------------

PATIENT = {
    "PatientName": "Sorensen^Ingrid",
    "PatientID": "PID-90210-77",
    "PatientBirthDate": "19640229",
    "AccessionNumber": "ACC-5550123",
    "InstitutionName": "Mercy General Hospital",
}


def _identified_dicom(folder: Path, bits: int = 8) -> Path:
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("examples_ybr_color.dcm"))
    for key, value in PATIENT.items():
        setattr(ds, key, value)
    path = folder / f"{PATIENT['PatientName']}_{PATIENT['PatientID']}.dcm"  # file names carry them too
    if bits == 16:  # unsupported by the runtime: an error that names the file
        frames = np.zeros((2, 16, 16), np.uint16)
        ds.NumberOfFrames, ds.Rows, ds.Columns, ds.SamplesPerPixel = 2, 16, 16, 1
        ds.PhotometricInterpretation, ds.BitsAllocated, ds.BitsStored, ds.HighBit = "MONOCHROME2", 16, 16, 15
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
        del ds.PlanarConfiguration
        ds.PixelData = frames.tobytes()
    ds.save_as(str(path))
    return path


def _assert_no_identifiers(texts: list[str]) -> None:
    for value in PATIENT.values():
        for part in value.split("^"):
            assert all(part not in t for t in texts), part


def test_dicom_identifiers_are_redacted_from_logs_errors_and_outputs(tmp_path):
    path = _identified_dicom(tmp_path)
    out = tmp_path / "out"
    res = sonomap(
        "-v",
        "replay",
        path,
        "--model",
        dark_onnx(),
        "--max-frames",
        6,
        "--out",
        out / "o.mp4",
        "--summary",
        out / "s.json",
        "--save-masks",
        out / "masks",
    )
    assert "DICOM cine: 30 frame(s)" in res.stderr  # logged by its kind (the cine has 30 frames)
    assert str(path.name) not in res.stderr
    texts = [res.stdout, res.stderr, (out / "s.json").read_text()]
    with av.open(str(out / "o.mp4")) as c:
        texts.append(json.dumps(dict(c.metadata)) + json.dumps(dict(c.streams.video[0].metadata)))
    texts += [p.name for p in out.rglob("*")]
    _assert_no_identifiers(texts)
    blob = (out / "o.mp4").read_bytes()
    assert not any(part.encode() in blob for v in PATIENT.values() for part in v.split("^"))

    bad = _identified_dicom(tmp_path / "bad", bits=16) if (tmp_path / "bad").mkdir() is None else None
    res = sonomap("replay", bad, "--model", dark_onnx(), "--out", out / "bad.mp4", check=False)
    assert res.returncode == 2 and "unsupported pixel format" in res.stderr and "[REDACTED]" in res.stderr
    _assert_no_identifiers([res.stdout, res.stderr])


def test_register_redacts_the_identifiers_of_the_dicom_it_reads(tmp_path):
    """`sonomap register` reads DICOM too: its one-line error names the file without the identifiers."""
    path = _identified_dicom(tmp_path)
    cv2.imwrite(str(tmp_path / "core.png"), np.zeros((20, 200, 3), np.uint8))
    (tmp_path / "core.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    (tmp_path / "case.yaml").write_text(
        yaml.safe_dump(
            {
                "id": "c1",
                "ultrasound": {"image": path.name},
                "needle": {"tip": [100, 100], "shaft": [50, 50], "gauge": 14},
                "pathology": {
                    "wsi": "core.png",
                    "mpp": 4.0,
                    "annotations": "core.geojson",
                    "cancer_classes": ["Tumor"],
                },
            }
        )
    )
    res = sonomap("register", tmp_path / "case.yaml", "--out", tmp_path / "out", check=False)
    assert res.returncode == 2 and "[REDACTED]" in res.stderr and ".dcm" in res.stderr  # the file, named ...
    _assert_no_identifiers([res.stdout, res.stderr])  # ... without them


# --- predictions and OpenIGTLink images ---------------------------------------------------------


class _Keep(Observer):
    def __init__(self):
        self.seen = []

    def on_frame(self, frame, prediction, rendered, stats):
        self.seen.append((frame, prediction, rendered.copy()))

    def close(self):
        pass


def test_openigtlink_images_carry_nothing_from_blanked_boxes(busi_sample, tmp_path):
    """The labelmap/probability images sent over OpenIGTLink come from the blanked screen: zero outside
    the ROI, and zero in a `blank` box inside it (where the test model, which marks dark pixels, would
    otherwise mark the black box as cancer: checked with the box not blanked)."""
    pytest.importorskip("pyigtl")
    from edge_runtime.igtl import make_igtl_observer
    from edge_runtime.igtl.frame_geometry import geometry
    from edge_runtime.pipeline.graph import Pipeline

    screen = np.zeros((360, 640, 3), np.uint8)
    screen[40:320, 120:520] = cv2.resize(
        cv2.imread(str(sorted((busi_sample / "images").glob("*.png"))[0])), (400, 280)
    )
    cv2.putText(screen, "DOE^JANINE 1970", (10, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (200, 200, 200), 2)
    screen[60:100, 140:200] = 0  # a dark patch inside the image: the test model's "cancer"
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "0.png"), screen)
    masks = {}
    for blank in ([], [[140, 60, 60, 40]]):
        config = build_config(
            {
                "source": {"input": str(folder)},
                "roi": {"rect": [120, 40, 400, 280]},
                "inference": {"model": str(dark_onnx())},
                "privacy": {"blank": blank},
                "overlay": {"hud": False},
            }
        )  # the HUD would sit over the name line here
        keep, igtl = _Keep(), make_igtl_observer(serve="127.0.0.1:0")
        Pipeline(config, observers=[keep, igtl]).run()
        frame, prediction, rendered = keep.seen[0]
        assert rendered[:40].max() == 0  # the name line is blank
        labelmap, prob = igtl.build_messages(
            geometry(frame), frame.image.shape[:2], prediction.roi, prediction.mask, prediction.prob
        )[-2:]
        masks[len(blank)] = labelmap.image.reshape(360, 640), prob.image.reshape(360, 640)
    (open_map, _), (blanked_map, blanked_prob) = masks[0], masks[1]
    assert open_map[60:100, 140:200].mean() > 0.5  # without the box: marked
    assert blanked_map[60:100, 140:200].max() == 0 and blanked_prob[60:100, 140:200].max() == 0
    assert blanked_map[:40].max() == 0 and blanked_map[:, :120].max() == 0  # nothing outside the ROI


def test_the_local_window_gets_the_whole_screen_and_every_output_the_blanked_one(patient_clip):
    """The operator's window (in the room, next to the scanner) never loses part of the screen to a
    tight ROI; recordings, viewer and observers still get the blanked frame. The pipeline's own stages
    on a real frame of the clip (a window needs a display: the CLI window runs in test_runtime_sinks)."""
    from edge_runtime.pipeline import deidentify
    from edge_runtime.pipeline.graph import Pipeline
    from edge_runtime.sources.opener import open_source

    clip, info = patient_clip
    config = build_config(
        {"source": {"input": str(clip)}, "inference": {"model": str(dark_onnx())}, "sinks": {"window": True}}
    )
    pipeline = Pipeline(config)
    stages = pipeline.stages
    source = deidentify.wrap(open_source(str(clip)), config, stages.ensure_roi)
    frame = next(iter(source))
    prediction = stages.infer(stages.cut(frame), frame)
    rendered = stages.render(frame, prediction)
    window = deidentify.window_image(frame, rendered)
    source.close()
    pipeline.close()
    assert box(window, info["patient_box"]).max() > TEXT_MIN  # the window: the whole screen
    assert box(rendered, info["patient_box"]).max() == 0  # everything else: blanked
    assert box(frame.image, info["patient_box"]).max() == 0
    assert not {"screen", "window_image"} & set(frame.meta)  # the raw copy is gone
    x, y, w, h = ROI_1080P
    assert np.array_equal(
        window[y : y + h, x : x + w], rendered[y : y + h, x : x + w]
    )  # same image and overlay


def test_name_parts_and_birth_date_spellings_are_redacted_as_file_names_write_them():
    """A file or folder name writes the DICOM values its own way: DOE_JANE_MARIE, 1970-01-01, LI_WU."""
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "DOE^JANE MARIE", "MRN4711", "19700101"
    assert {"DOE", "JANE", "MARIE", "1970-01-01", "01.01.1970"} <= set(dicom_identifiers(ds))
    privacy.register_dicom(ds)
    text = privacy.redact("dcm/DOE_JANE_MARIE_MRN4711_1970-01-01_16bit.dcm and Jane-Marie.Doe 01.01.1970")
    assert text == "dcm/[REDACTED]_[REDACTED]_[REDACTED]_[REDACTED]_[REDACTED]_16bit.dcm and " + (
        "[REDACTED]-[REDACTED].[REDACTED] [REDACTED]"
    )
    short = Dataset()
    short.PatientName = "WU^LI=山田^太郎"
    privacy.register_dicom(short)
    # 2-letter ASCII parts only as whole words; ideographs wherever they appear
    assert (
        privacy.redact("WU_LI.dcm: split; Wuhan; 山田太郎")
        == "[REDACTED]_[REDACTED].dcm: split; Wuhan; [REDACTED][REDACTED]"
    )
    assert privacy.redact("45 frames") == "45 frames"  # a short value that is no name part stays


@pytest.mark.parametrize(
    "name,file_name",
    [
        ("O'Brien^Mary", "OBrien_Mary.dcm"),
        ("O'Brien^Mary", "OBRIEN^MARY.dcm"),
        ("D\u2019Angelo^Luca", "DAngelo_Luca.dcm"),  # typographic apostrophe
        ("Müller^Jürgen", "Muller_Jurgen.dcm"),
        ("Müller^Jürgen", "MUELLER_JUERGEN.dcm"),
        ("Sørensen^Åse", "Sorensen_Aase.dcm"),
        ("Sørensen^Åse", "soerensen-ase.dcm"),
        ("Groß^José", "GROSS_JOSE.dcm"),
    ],
)
def test_a_name_is_redacted_as_an_ascii_file_name_spells_it(name, file_name):
    """File names drop apostrophes and accents, or write ü as ue: each spelling of each part goes."""
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.PatientName = name
    privacy.register_dicom(ds)
    stem, extension = file_name.rsplit(".", 1)
    redacted = privacy.redact(f"/data/{file_name}")
    separator = next(c for c in stem if not c.isalnum())
    assert redacted == f"/data/{privacy.REDACTED}{separator}{privacy.REDACTED}.{extension}", redacted
