"""Test helper: a real Orthanc PACS with its DICOMweb plugin, on loopback, for one test module.

Orthanc and the plugin come from the Debian packages ``orthanc`` and ``orthanc-dicomweb`` (the
Makefile's sysdeps). The system service is never used: each fixture starts its own ``Orthanc``
process with a temporary config (a free HTTP port, remote access refused, the DICOM port off, a
temporary storage folder, HTTP basic auth with a random password) and stops it afterwards.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from base64 import b64encode
from dataclasses import dataclass
from pathlib import Path

import pytest
from loopback import free_port

PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
USER = "sonomap"
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 20
LOG_TAIL = 3000


@dataclass
class Orthanc:
    base: str  # http://127.0.0.1:PORT
    user: str
    password: str
    log: Path

    @property
    def dicomweb(self) -> str:
        return f"{self.base}/dicom-web"

    def rest(self, path: str):
        """GET Orthanc's own REST API (JSON)."""
        token = b64encode(f"{self.user}:{self.password}".encode()).decode()
        req = urllib.request.Request(self.base + path, headers={"Authorization": f"Basic {token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())


def orthanc_binary() -> str:
    exe = shutil.which("Orthanc")
    if exe is None:
        pytest.skip("Orthanc not installed (Debian package orthanc; `make sysdeps` installs it)")
    if not PLUGIN.exists():
        pytest.skip(f"orthanc-dicomweb not installed ({PLUGIN} not found; `make sysdeps` installs it)")
    return exe


def start_orthanc(folder: Path):
    """Start Orthanc in ``folder``; yields an :class:`Orthanc`, stops it when the generator closes."""
    exe = orthanc_binary()
    port, password = free_port(), secrets.token_urlsafe(12)
    (folder / "db").mkdir()
    config = {
        "Name": "sonomap-test",
        "StorageDirectory": str(folder / "db"),
        "IndexDirectory": str(folder / "db"),
        "HttpPort": port,
        "RemoteAccessAllowed": False,
        "DicomServerEnabled": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {USER: password},
        "Plugins": [str(PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    (folder / "orthanc.json").write_text(json.dumps(config))
    log = folder / "orthanc.log"
    with log.open("w") as out:
        proc = subprocess.Popen([exe, str(folder / "orthanc.json")], stdout=out, stderr=subprocess.STDOUT)
    server = Orthanc(f"http://127.0.0.1:{port}", USER, password, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert proc.poll() is None, f"Orthanc exited: {log.read_text()[-LOG_TAIL:]}"
            try:
                if server.rest("/plugins") and "dicom-web" in server.rest("/plugins"):
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert time.monotonic() < deadline, f"Orthanc did not start: {log.read_text()[-LOG_TAIL:]}"
            time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
