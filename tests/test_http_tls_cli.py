"""`sonomap live --http ... --tls-cert --tls-key` through the real command: HTTPS with a certificate made
here by `openssl req`, the token only over TLS, and one-line errors for a half-given or misplaced TLS pair."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from loopback import LIVE_START_TIMEOUT_S, SONOMAP, free_port, start_live
from test_http_guard import certificate, client_context, needs_openssl  # noqa: F401 (certificate: a fixture)

REPO = Path(__file__).resolve().parents[1]
TOKEN = "tls-cli-token-0123456789abcdef"


def https_get(url: str, cert) -> int:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(req, timeout=5, context=client_context(cert)) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


@needs_openssl
def test_live_serves_https_with_the_given_certificate(certificate):
    cert, key = certificate
    port = free_port()
    proc = start_live(
        "--token",
        TOKEN,
        "--tls-cert",
        cert,
        "--tls-key",
        key,
        "--duration",
        90,
        port=port,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + LIVE_START_TIMEOUT_S
        code = None
        while time.monotonic() < deadline and code != 200:
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            try:
                code = https_get(f"https://127.0.0.1:{port}/healthz", cert)
            except OSError:
                time.sleep(0.3)
        assert code == 200
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)) as plain:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read()
        assert not isinstance(plain.value, urllib.error.HTTPError), "plain HTTP got an HTTP answer"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert f"https://127.0.0.1:{port}/" in err


@needs_openssl
@pytest.mark.parametrize(
    "flags,message",
    [
        (["--http", "127.0.0.1:0", "--tls-cert", "{cert}"], "--tls-cert and --tls-key go together"),
        (["--tls-cert", "{cert}", "--tls-key", "{key}"], "give --http too"),
        (
            ["--http", "127.0.0.1:0", "--tls-cert", "/nonexistent/cert.pem", "--tls-key", "{key}"],
            "--tls-cert /nonexistent/cert.pem: no such file",
        ),
    ],
)
def test_tls_flag_errors_are_one_line(certificate, flags, message):
    cert, key = certificate
    flags = [f.format(cert=cert, key=key) for f in flags]
    res = subprocess.run(
        [*SONOMAP, "live", "--source", "synthetic", "--headless", "--duration", "1", *flags],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2, res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("sonomap live: error: ") and message in last and "Traceback" not in res.stderr
