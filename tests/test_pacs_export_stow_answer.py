"""`sonomap cases export --dicomweb URL` against a DICOMweb server on a real loopback socket whose
STOW-RS answer confirms less than was sent: a login page answered with 200, an empty 200, a 204, or
a Referenced SOP Sequence without every instance. Each case fails naming how many instances the
server confirmed; a server that confirms every instance it received has the case sent."""

from __future__ import annotations

import json
import threading
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO

import numpy as np
import pydicom
import pytest
import yaml
from captured_cases import write_captured_case
from pacs_cases import FALLBACK_ID, export

pytest.importorskip("highdicom", reason="highdicom not installed (pacs extra)")
pytest.importorskip("dicomweb_client.api", reason="dicomweb-client not installed (pacs extra)")

SENT = 2  # the pre-fire image and its segmentation
LOGIN_PAGE = b"<html><body><form action='/login'>Sign in</form></body></html>"
REFERENCED = "00081199"  # ReferencedSOPSequence
REFERENCED_UID = "00081155"  # ReferencedSOPInstanceUID


def _instance_uids(content_type: str, body: bytes) -> list[str]:
    """The SOPInstanceUID of each DICOM part of a STOW-RS multipart/related body."""
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    return [
        str(pydicom.dcmread(BytesIO(part.get_payload(decode=True))).SOPInstanceUID)
        for part in message.iter_parts()
    ]


def _server(mode: str) -> ThreadingHTTPServer:
    class Stow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            uids = _instance_uids(self.headers["Content-Type"], body)
            if mode == "204":
                self.send_response(204)
                self.end_headers()
                return
            if mode in ("some", "all"):
                kept = uids if mode == "all" else uids[:1]
                items = [{REFERENCED_UID: {"vr": "UI", "Value": [u]}} for u in kept]
                answer, kind = (
                    json.dumps({REFERENCED: {"vr": "SQ", "Value": items}}).encode(),
                    "application/dicom+json",
                )
            else:
                answer, kind = (
                    (LOGIN_PAGE, "text/html; charset=utf-8") if mode == "login" else (b"", "text/plain")
                )
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args) -> None:  # quiet test output
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Stow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _one_case(tmp_path):
    folder = write_captured_case(
        tmp_path / "cases" / "20260101T100000Z-1", np.zeros((120, 200), bool), study_id=FALLBACK_ID
    )
    case = yaml.safe_load((folder / "case.yaml").read_text())
    case["capture"]["pre_fire"] = {"frame": 3, "image": "prefire.png", "utc": "2026-01-01T10:00:00Z"}
    (folder / "case.yaml").write_text(yaml.safe_dump(case))
    return folder


@pytest.mark.parametrize(
    ("mode", "confirmed", "why"),
    [
        ("login", 0, "no STOW-RS response (is --dicomweb the DICOMweb root? a login page answers 200 too)"),
        ("empty", 0, "no STOW-RS response"),
        ("204", 0, "no STOW-RS response"),
        ("some", 1, "not confirmed: "),
    ],
)
def test_a_store_the_server_does_not_confirm_fails_the_case(tmp_path, mode, confirmed, why):
    folder = _one_case(tmp_path)
    server = _server(mode)
    try:
        out = export(
            folder.parent, "--dicomweb", f"http://127.0.0.1:{server.server_port}/dicom-web", "--timeout", 10
        )
    finally:
        server.shutdown()
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stdout + out.stderr
    line = (
        f"{folder.name}  FAILED: upload failed: the server confirmed {confirmed} of {SENT} instance(s): {why}"
    )
    assert line in out.stdout, out.stdout
    assert "0 of 1 case(s) exported, 1 failed" in out.stdout


def test_a_store_the_server_confirms_is_sent(tmp_path):
    folder = _one_case(tmp_path)
    server = _server("all")
    try:
        out = export(
            folder.parent, "--dicomweb", f"http://127.0.0.1:{server.server_port}/dicom-web", "--timeout", 10
        )
    finally:
        server.shutdown()
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{folder.name}  {FALLBACK_ID}  sent {SENT} instance(s)" in out.stdout
