"""install.sh and the HTTP token file: a token file that is empty or only whitespace is replaced with
a fresh random token, 0600; a token with content is kept as it is.

Before, the installer kept any existing /etc/sonomap/http-token. Its first write is a pipeline into the
file, so a run that failed there left the file empty, and every later run kept the empty file: the
service then started without a token (now it refuses to start with one, test_http_token_blank.py).
The installer is run as the package builds run it, staged with --root into a temporary folder.
"""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
INSTALL_S = 60
TOKEN = re.compile(r"[0-9a-f]{64}")  # what install.sh writes: 32 random bytes in hex


def _install(root: Path) -> subprocess.CompletedProcess:
    cmd = ["bash", str(REPO / "systemd" / "install.sh"), "--root", str(root), "--no-venv"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_S)
    assert res.returncode == 0, res.stderr
    return res


@pytest.mark.parametrize("blank", [b"", b"\n", b"  \t\n\n"], ids=["empty", "newline", "whitespace"])
def test_an_empty_token_file_is_replaced(tmp_path, blank):
    root = tmp_path / "root"
    _install(root)
    token = root / "etc" / "sonomap" / "http-token"
    token.write_bytes(blank)  # what a first run that failed while writing the token leaves
    res = _install(root)
    assert TOKEN.fullmatch(token.read_text()), "the empty token file was kept"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert f"replacing the empty {token}" in res.stdout
    assert sorted(p.name for p in token.parent.iterdir()) == ["config.yaml", "http-token", "sonomap.env"]


def test_a_token_with_content_is_kept(tmp_path):
    root = tmp_path / "root"
    _install(root)
    token = root / "etc" / "sonomap" / "http-token"
    token.write_text("site-chosen-token-0123456789abcdef\n")
    _install(root)
    assert token.read_text() == "site-chosen-token-0123456789abcdef\n"
