"""systemd units, the install script and the sysusers/tmpfiles snippets, checked by systemd's
own tools (systemd-analyze verify, systemd-sysusers, systemd-tmpfiles) in temp roots.

CI needs the `systemd` Debian package for systemd-analyze (tests skip without it).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from configparser import ConfigParser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UNITS = ("sonomap.service", "sonomap-headless.service")
INSTALLED_EXE = "/opt/sonomap/venv/bin/sonomap"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze not installed (apt-get install systemd)"
)
needs_sysusers_as_root = pytest.mark.skipif(
    shutil.which("systemd-sysusers") is None or os.geteuid() != 0,
    reason="needs systemd-sysusers and root (chown in the temp root)",
)
CONFIG_DIR_MODE, CONFIG_MODE = 0o750, 0o640  # the config may hold an rtsp://user:password@ URL
NOBODY = 65534  # a user and group outside the service's


def unit_options(name: str) -> dict[str, list[str]]:
    """KEY -> all its values in [Service] (systemd allows repeated keys)."""
    parser = ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str
    values: dict[str, list[str]] = {}
    section = None
    for line in (REPO / "systemd" / name).read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif line and not line.startswith("#") and section == "Service":
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


def verify_copy(tmp_path: Path, name: str, dropin: Path | None = None) -> subprocess.CompletedProcess:
    """verify checks that ExecStart exists: point it at this checkout's sonomap."""
    exe = Path(sys.executable).with_name("sonomap")
    text = (REPO / "systemd" / name).read_text().replace(INSTALLED_EXE, str(exe))
    (tmp_path / name).write_text(text)
    if dropin is not None:
        (tmp_path / f"{name}.d").mkdir()
        shutil.copy(dropin, tmp_path / f"{name}.d" / dropin.name)
    return subprocess.run(
        [ANALYZE, "verify", str(tmp_path / name)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "notice"},
    )


@needs_analyze
@pytest.mark.parametrize("name", UNITS)
def test_units_pass_systemd_analyze_verify(tmp_path, name):
    res = verify_copy(tmp_path, name)
    assert res.returncode == 0 and res.stderr.strip() == "", res.stderr


@needs_analyze
def test_jetson_dropin_passes_verify(tmp_path):
    res = verify_copy(tmp_path, "sonomap.service", REPO / "systemd" / "jetson" / "jetson.conf")
    assert res.returncode == 0 and res.stderr.strip() == "", res.stderr


@needs_analyze
def test_verify_catches_a_broken_unit(tmp_path):
    """The verify test can fail: a typo'd key and a missing binary are reported."""
    bad = (REPO / "systemd" / "sonomap.service").read_text().replace("WatchdogSec=", "WatchdogSecs=")
    (tmp_path / "sonomap.service").write_text(bad)
    res = subprocess.run(
        [ANALYZE, "verify", str(tmp_path / "sonomap.service")], capture_output=True, text=True, timeout=60
    )
    assert "WatchdogSecs" in res.stderr and res.returncode != 0


@pytest.mark.parametrize("name", UNITS)
def test_unit_requirements(name):
    o = unit_options(name)
    one = {k: v[-1] for k, v in o.items()}
    assert one["Type"] == "notify" and one["NotifyAccess"] == "main"
    assert int(one["WatchdogSec"]) > 0 and one["Restart"] == "on-failure"
    assert one["User"] == "sonomap" and set(one["SupplementaryGroups"].split()) == {"video", "render"}
    assert one["Group"] == "sonomap"  # the group that may read /etc/sonomap/config.yaml
    assert one["StateDirectory"] == "sonomap" and one["CacheDirectory"] == "sonomap"
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp"):
        assert one[key] == "yes", key
    assert one["ProtectSystem"] == "strict" and one["DevicePolicy"] == "closed"
    allowed = " ".join(o["DeviceAllow"])
    for dev in ("char-video4linux", "char-nvidia*", "/dev/nvmap", "/dev/nvhost-ctrl", "char-drm"):
        assert dev in allowed, dev
    assert one["ExecStart"].startswith(INSTALLED_EXE + " live --config /etc/sonomap/config.yaml")
    assert ("--headless" in one["ExecStart"]) == (name == "sonomap-headless.service")
    env = " ".join(o["Environment"])
    assert (
        "MALLOC_ARENA_MAX=2" in env and "MALLOC_MMAP_THRESHOLD_=" in env
    )  # flat RSS (docs/measurements.md: soak)


def test_install_script_stages_everything(tmp_path):
    root = tmp_path / "root"
    cmd = ["bash", str(REPO / "systemd" / "install.sh"), "--root", str(root), "--no-venv", "--jetson"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    etc = root / "etc" / "sonomap"
    assert (etc / "config.yaml").read_text() == (REPO / "systemd" / "config.yaml").read_text()
    assert stat.S_IMODE(etc.stat().st_mode) == CONFIG_DIR_MODE
    assert stat.S_IMODE((etc / "config.yaml").stat().st_mode) == CONFIG_MODE
    token = etc / "http-token"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600 and len(token.read_text()) == 64
    for unit in UNITS:
        assert (root / "etc/systemd/system" / unit).is_file()
    assert (root / "etc/systemd/system/sonomap.service.d/jetson.conf").is_file()
    assert (root / "usr/lib/sysusers.d/sonomap.conf").is_file()
    assert (root / "etc/xdg/autostart/sonomap-xhost.desktop").is_file()
    assert (root / "opt/sonomap/README.md").is_file()
    assert (root / "opt/sonomap/docs/operations.md").is_file()
    # A second run keeps what the site edited, including its token; it tightens the modes an older
    # install left (a world-readable config in a world-searchable folder).
    (etc / "config.yaml").write_text("# edited on site\n")
    (etc / "config.yaml").chmod(0o644)
    etc.chmod(0o755)
    before = token.read_text()
    assert subprocess.run(cmd, capture_output=True, timeout=60).returncode == 0
    assert (etc / "config.yaml").read_text() == "# edited on site\n" and token.read_text() == before
    assert stat.S_IMODE(etc.stat().st_mode) == CONFIG_DIR_MODE
    assert stat.S_IMODE((etc / "config.yaml").stat().st_mode) == CONFIG_MODE


@pytest.mark.parametrize("name", UNITS)
def test_unit_documentation_points_to_pages_the_installer_copies(tmp_path, name):
    """Every Documentation= file:// URI names a page that install.sh puts under the prefix."""
    unit = ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    unit.optionxform = str
    unit.read_string((REPO / "systemd" / name).read_text())
    uris = unit["Unit"]["Documentation"].split()
    assert any(u.endswith("/docs/operations.md") for u in uris), uris
    root = tmp_path / "root"
    cmd = ["bash", str(REPO / "systemd" / "install.sh"), "--root", str(root), "--no-venv"]
    assert subprocess.run(cmd, capture_output=True, timeout=60).returncode == 0
    for uri in uris:
        assert uri.startswith("file:///opt/sonomap/"), uri
        assert (root / uri.removeprefix("file:///")).is_file(), uri


def test_install_script_rejects_unknown_option(tmp_path):
    res = subprocess.run(
        ["bash", str(REPO / "systemd" / "install.sh"), "--root", str(tmp_path), "--bogus"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 2 and "--bogus" in res.stderr


def create_service_user(root: Path) -> None:
    """The host's users and groups copied into ``root``, plus 'sonomap' as sysusers creates it."""
    (root / "etc").mkdir(exist_ok=True)
    for name in ("passwd", "group", "shadow", "gshadow"):
        if Path("/etc", name).exists():
            shutil.copy(Path("/etc", name), root / "etc" / name)
    subprocess.run(
        ["systemd-sysusers", f"--root={root}", str(REPO / "systemd/sonomap.sysusers.conf")],
        check=True,
        capture_output=True,
        timeout=30,
    )


def read_as(uid: int, gid: int, path: Path) -> subprocess.CompletedProcess:
    """``cat path`` as that user and group only (no supplementary groups): what its permissions allow."""
    return subprocess.run(
        ["cat", str(path)], user=uid, group=gid, extra_groups=[], capture_output=True, text=True, timeout=30
    )


@needs_sysusers_as_root
def test_sysusers_and_tmpfiles_create_user_and_private_dirs(tmp_path):
    create_service_user(tmp_path)
    groups = {
        line.split(":")[0]: line.strip().split(":")[3].split(",")
        for line in (tmp_path / "etc/group").read_text().splitlines()
    }
    assert "sonomap" in groups["video"] and "sonomap" in groups["render"]
    passwd = [
        line for line in (tmp_path / "etc/passwd").read_text().splitlines() if line.startswith("sonomap:")
    ]
    assert passwd and passwd[0].endswith(":/usr/sbin/nologin")
    subprocess.run(
        ["systemd-tmpfiles", f"--root={tmp_path}", "--create", str(REPO / "systemd/sonomap.tmpfiles.conf")],
        check=True,
        capture_output=True,
        timeout=30,
    )
    rec = tmp_path / "var/lib/sonomap/recordings"
    assert stat.S_IMODE(rec.stat().st_mode) == 0o700


def test_shipped_config_is_a_valid_runtime_config():
    from edge_runtime import config as cfg

    config = cfg.load_config(REPO / "systemd" / "config.yaml")
    assert config.source.input == "/dev/video0" and config.sinks.fullscreen is True


@needs_sysusers_as_root
def test_config_is_readable_by_the_service_user_and_no_other():
    """The staged tree, then sysusers and tmpfiles on it as on the cart: /etc/sonomap and its config
    belong to root and the sonomap group, so the service (User=sonomap, Group=sonomap) reads the
    config and another user cannot, not even list the folder."""
    with tempfile.TemporaryDirectory(
        dir="/tmp"
    ) as tmp:  # outside pytest's 0700 folders: others may search it
        root = Path(tmp)
        root.chmod(0o755)
        create_service_user(root)
        cmd = ["bash", str(REPO / "systemd" / "install.sh"), "--root", str(root), "--no-venv", "--headless"]
        assert subprocess.run(cmd, capture_output=True, timeout=60).returncode == 0
        subprocess.run(
            ["systemd-tmpfiles", f"--root={root}", "--create", str(root / "usr/lib/tmpfiles.d/sonomap.conf")],
            check=True,
            capture_output=True,
            timeout=30,
        )
        service = next(
            line.split(":")
            for line in (root / "etc/passwd").read_text().splitlines()
            if line.startswith("sonomap:")
        )
        uid, gid = int(service[2]), int(service[3])
        etc, config = root / "etc/sonomap", root / "etc/sonomap/config.yaml"
        for path, mode in ((etc, CONFIG_DIR_MODE), (config, CONFIG_MODE)):
            info = path.stat()
            assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, gid, mode), path
        as_service = read_as(uid, gid, config)
        assert as_service.returncode == 0 and as_service.stdout == config.read_text(), as_service.stderr
        as_other = read_as(NOBODY, NOBODY, config)
        assert as_other.returncode != 0 and "Permission denied" in as_other.stderr
