"""`sonomap upgrade-checkpoint --out` that cannot be written is one line naming `--out` and the
reason (a file where a folder should be, a read-only file system), never the hidden temp file, and
it is refused before the checkpoint is read: the source and its manifest stay as they were."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys

import pytest
from export_fixtures import tiny_manifest

from training.checkpoint_save import save_checkpoint
from training.models import build_model

ARCH, WIDTH, SIZE = "unet_small", 4, 32
UNSHARE = shutil.which("unshare")
NAMESPACE = [UNSHARE, "--user", "--map-root-user", "--mount"]  # root in the namespace may mount
READ_ONLY_TMPFS = ["mount", "-t", "tmpfs", "-o", "ro", "tmpfs"]
SONOMAP = [sys.executable, "-m", "edge_runtime.cli"]
RUN_S = 300


def tiny_checkpoint(folder):
    model = build_model(ARCH, 2, width=WIDTH)
    payload = {"model": model.state_dict(), "model_config": {"arch": ARCH, "num_classes": 2, "width": WIDTH}}
    return save_checkpoint(payload, folder / "best.pt", tiny_manifest(ARCH, SIZE))


def one_line_error(result) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr[-2000:])
    err = result.stderr.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def upgrade(source, out, prefix=()) -> subprocess.CompletedProcess:
    command = [*prefix, *SONOMAP, "upgrade-checkpoint", str(source), "--trust-checkpoint", "--out", str(out)]
    return subprocess.run(command, capture_output=True, text=True, timeout=RUN_S)


def tree(folder) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_out_under_a_file_names_out_and_the_file(tmp_path):
    ck = tiny_checkpoint(tmp_path)
    (tmp_path / "afile").write_text("x")
    before = tree(tmp_path)
    err = one_line_error(upgrade(ck, tmp_path / "afile" / "x.pt"))
    assert f"--out {tmp_path / 'afile' / 'x.pt'}" in err and "afile is a file, not a folder" in err, err
    assert tree(tmp_path) == before


def read_only_mount_works(folder) -> bool:
    """A user and mount namespace (no privilege needed where the kernel allows them) with a
    read-only tmpfs over ``folder``: as root, permission bits alone never make a folder unwritable."""
    if UNSHARE is None:
        return False
    probe = subprocess.run([*NAMESPACE, *READ_ONLY_TMPFS, str(folder)], capture_output=True)
    return probe.returncode == 0


def test_out_on_a_read_only_file_system_names_out_and_the_reason(tmp_path):
    ck = tiny_checkpoint(tmp_path)
    ro = tmp_path / "ro"
    ro.mkdir()
    if not read_only_mount_works(ro):
        pytest.skip("no user/mount namespaces here to mount a read-only file system")
    # the command runs inside the namespace, after the read-only mount over ro/
    mount = f'{" ".join(READ_ONLY_TMPFS)} {shlex.quote(str(ro))} && exec "$@"'
    prefix = [*NAMESPACE, "sh", "-c", mount, "sh"]
    for out in (ro / "x.pt", ro / "sub" / "x.pt"):
        err = one_line_error(upgrade(ck, out, prefix))
        assert f"--out {out}: cannot create files in {ro} (Read-only file system)" in err, err
        assert ".tmp" not in err, err
    assert not any(ro.iterdir())
