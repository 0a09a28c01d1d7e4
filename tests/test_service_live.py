"""`sonomap live` as systemd runs it: a real NOTIFY_SOCKET and WATCHDOG_USEC, the HTTP
server, SIGHUP (reload without restart) and SIGTERM (clean stop, recording finalised).
Also: no DICOM patient identifiers in logs, summaries or recordings."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import time
import urllib.request
from pathlib import Path

import av
import numpy as np
import pytest
import yaml
from child_process import reaped
from loopback import SONOMAP, free_port
from prometheus_client.parser import text_string_to_metric_families
from runtime_model import dark_onnx

RELOAD_APPLIED_S = 30
PATIENT = {
    "PatientName": "Doe^Janine",
    "PatientID": "MRN-4711-0815",
    "PatientBirthDate": "19700101",
    "InstitutionName": "St Elsewhere Hospital",
    "AccessionNumber": "ACC99887766",
}


class NotifySocket:
    def __init__(self, path: Path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[dict[str, str]] = []

    def drain(self, timeout: float) -> list[dict[str, str]]:
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(4096).decode()
                self.messages.append(dict(line.split("=", 1) for line in data.split("\n")))
                self.sock.settimeout(0.05)
        except TimeoutError:
            return self.messages

    def wait_for(self, key: str, timeout: float) -> dict[str, str] | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.drain(0.2)
            for m in self.messages:
                if key in m:
                    return m
        return None


def backend_threads(port: int) -> str | None:
    """The inference threads of the backend in use, as /metrics reports it."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    found = [
        s.labels.get("threads")
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "sonomap_backend_info" and s.value == 1
    ]
    return found[0] if found else None


def test_live_under_systemd_notify_watchdog_reload_and_term(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "source": {"input": "synthetic", "fps": 30, "width": 480, "height": 320},
                "inference": {"model": str(dark_onnx())},
                "overlay": {"alpha": 0.4},
            }
        )
    )
    notify = NotifySocket(tmp_path / "notify.sock")
    port = free_port()
    rec = tmp_path / "recordings" / "live.mp4"
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "2000000"}
    proc = subprocess.Popen(
        [
            *SONOMAP,
            "-v",
            "live",
            "--config",
            str(config),
            "--headless",
            "--record",
            str(rec),
            "--http",
            f"127.0.0.1:{port}",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with reaped(proc):
        ready = notify.wait_for("READY", 60)
        assert ready is not None, proc.stderr.read() if proc.poll() is not None else "no READY"
        assert "first frame rendered" in ready["STATUS"]
        first_status = notify.messages[0]
        assert "loading" in first_status.get("STATUS", "") and "READY" not in first_status  # READY came later
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            assert r.status == 200
        assert stat.S_IMODE(rec.parent.stat().st_mode) == 0o700

        time.sleep(2.5)
        notify.drain(0.2)
        assert sum("WATCHDOG" in m for m in notify.messages) >= 2  # every ~1 s while frames flow
        assert any("fps" in m.get("STATUS", "") for m in notify.messages)

        assert backend_threads(port) != "1"
        config.write_text(
            config.read_text()
            .replace("alpha: 0.4", "alpha: 0.7")
            .replace("inference:", "inference:\n  threads: 1")
        )
        proc.send_signal(signal.SIGHUP)
        assert notify.wait_for("STATUS", 5)
        deadline = time.monotonic() + RELOAD_APPLIED_S
        while (
            backend_threads(port) != "1" and time.monotonic() < deadline
        ):  # the applied value, not a log line
            time.sleep(0.2)
        assert backend_threads(port) == "1"
        assert proc.poll() is None  # reloaded, not restarted
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            assert r.status == 200

        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    notify.drain(0.3)
    assert any(m.get("STOPPING") == "1" for m in notify.messages)
    assert any("reloading config" in m.get("STATUS", "") for m in notify.messages)
    with av.open(str(rec)) as c:  # finalised: every fragment decodes
        n = sum(1 for _ in c.decode(video=0))
    assert n > 30


def test_dicom_identifiers_never_reach_logs_or_outputs(tmp_path):
    pytest.importorskip("pydicom")
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"  # US multi-frame
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path = tmp_path / "Doe^Janine_MRN-4711-0815.dcm"  # file names carry identifiers too
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    for key, value in PATIENT.items():
        setattr(ds, key, value)
    frames = np.zeros((6, 96, 128), np.uint8)
    frames[:, 20:70, 30:100] = 120
    ds.Modality, ds.SamplesPerPixel, ds.PhotometricInterpretation = "US", 1, "MONOCHROME2"
    ds.NumberOfFrames, ds.Rows, ds.Columns = 6, 96, 128
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = frames.tobytes()
    ds.save_as(str(path), enforce_file_format=True)

    out = tmp_path / "out"
    res = subprocess.run(
        [
            *SONOMAP,
            "-v",
            "replay",
            str(path),
            "--model",
            str(dark_onnx()),
            "--out",
            str(out / "overlay.mp4"),
            "--summary",
            str(out / "summary.json"),
            "--save-masks",
            str(out / "masks"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert stat.S_IMODE((out / "masks").stat().st_mode) == 0o700
    texts = [res.stdout, res.stderr, (out / "summary.json").read_text()]
    with av.open(str(out / "overlay.mp4")) as c:
        texts.append(json.dumps(dict(c.metadata)) + json.dumps(dict(c.streams.video[0].metadata)))
    texts += [p.name for p in (out / "masks").rglob("*")]
    blob = (out / "overlay.mp4").read_bytes()
    for value in PATIENT.values():
        for part in value.split("^"):
            assert all(part not in t for t in texts), part
            assert part.encode() not in blob, part
