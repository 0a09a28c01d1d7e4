"""``sonomap upgrade-checkpoint FILE --trust-checkpoint``: an older-format checkpoint, rewritten once.

A checkpoint that holds Python objects besides tensors and plain values (an older sonomap format,
or one from elsewhere) is refused by :func:`training.checkpoint.read_checkpoint`, since unpickling
it could run code. For a file whose origin the user vouches for, this reads it with full
unpickling, once, and writes it back as tensors and plain values (:mod:`training.checkpoint_save`),
re-signing the manifest beside it for the new bytes.

Inputs: the trusted checkpoint (and its ``.yaml`` manifest, if any). Outputs: the rewritten
checkpoint. Files: ``FILE`` rewritten in place with the original kept as ``FILE.orig``, or ``--out``
(and its manifest). A ``--out`` that cannot be written (a folder on a read-only file system or without
write permission, a file where a folder should be) is one ConfigError naming ``--out`` and the
reason, before the checkpoint is read.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import tempfile
from pathlib import Path

from edge_runtime.atomic import same_file
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.manifest import load_manifest, manifest_path, save_manifest
from training.checkpoint import read_checkpoint
from training.checkpoint_save import numpy_rng_plain, plain, save_checkpoint
from training.output_checks import refuse_manifest_clash

log = logging.getLogger("sonomap.checkpoint")
BACKUP_SUFFIX = ".orig"
OUT_FLAG = "--out"


def upgrade_command(checkpoint: str | Path, out: str | Path | None, trusted: bool) -> str:
    """What ``sonomap upgrade-checkpoint`` does and prints: nothing for a checkpoint that already
    loads weights-only (the safe read comes first, so no file is unpickled needlessly); else, when
    ``trusted``, the upgrade (:func:`upgrade_checkpoint`); else a ConfigError saying why it needs
    ``--trust-checkpoint``. A file that is no checkpoint at all is its own one-line InputError."""
    check_target(Path(checkpoint), Path(out) if out else None)  # --out named before the file is read
    if already_weights_only(checkpoint):
        return f"{checkpoint}: already a weights-only checkpoint; nothing to convert, nothing written"
    if not trusted:
        raise ConfigError(
            f"{checkpoint}: converting it unpickles the file, which can run any code in it; "
            "add --trust-checkpoint only if you know where it came from"
        )
    target = upgrade_checkpoint(checkpoint, out)
    in_place = not out or same_file(out, checkpoint)
    return f"{target}: weights-only checkpoint written" + (
        f" (original kept as {target}.orig)" if in_place else ""
    )


def already_weights_only(path: str | Path) -> bool:
    """True when ``path`` loads weights-only; False when it holds Python objects besides tensors and
    plain values (what an upgrade converts). Any other problem (missing, corrupt, an exported model)
    raises its InputError from :func:`training.checkpoint.read_checkpoint`."""
    try:
        read_checkpoint(path)
    except InputError as exc:
        if isinstance(exc.__cause__, pickle.UnpicklingError):
            return False
        raise
    return True


def upgrade_checkpoint(path: str | Path, out: str | Path | None = None) -> Path:
    """Rewrite a trusted older-format checkpoint as tensors and plain values (readable weights-only).

    In place by default, keeping the original as ``FILE.orig``; the manifest beside it follows.
    An ``out`` that is a manifest, or whose manifest would land on ``path``, is refused first."""
    path = Path(path)
    target = Path(out) if out else path
    check_target(path, Path(out) if out else None)
    payload = read_checkpoint(path, trust=True)
    rng = payload.get("rng")
    if isinstance(rng, dict) and "numpy" in rng:
        rng["numpy"] = numpy_rng_plain(rng["numpy"])
    try:
        payload = plain(payload)
    except TypeError as exc:
        raise InputError(f"{path}: cannot be converted to a weights-only checkpoint ({exc})") from exc
    # the manifest beside it is checked against the old file's sha256, then re-signed for the new one
    manifest = load_manifest(path) if manifest_path(path).is_file() else None
    if same_file(target, path):  # any spelling of the same file (relative, absolute, a link) is in place
        backup = path.with_name(path.name + BACKUP_SUFFIX)
        if backup.exists():
            raise InputError(f"{backup}: exists already; move it away or give --out")
        shutil.copy2(path, backup)
    save_checkpoint(payload, target)
    if manifest is not None:
        save_manifest(manifest, target)
    log.warning("%s: rewritten weights-only as %s (trusted by the user)", path, target)
    return target


def check_target(path: Path, out: Path | None) -> None:
    """ConfigError naming ``--out`` when the upgrade of ``path`` cannot be written there (``out``, or
    ``path`` itself in place): a manifest in the way, or a place that cannot be written."""
    refuse_manifest_clash(path, out or path)
    if out:  # in place, the backup copy names FILE.orig and the reason itself
        check_out_writable(out)


def check_out_writable(out: Path) -> None:
    """Raise ConfigError ``--out OUT: REASON`` unless a checkpoint and its manifest can be created at
    ``out``. Input: the ``--out`` path. Output: none; a temp file is made and removed in the nearest
    existing folder above ``out``, so the reason is the operating system's own (read-only file
    system, permission denied), not a guess from the permission bits, which root bypasses."""
    if out.is_dir():
        raise ConfigError(f"{OUT_FLAG} {out}: is a folder; give a file name")
    if out.exists() and not out.is_file():
        raise ConfigError(f"{OUT_FLAG} {out}: is a device, pipe or socket, not a file; give a file name")
    above = out.parent
    while not above.exists() and not above.is_symlink() and above != above.parent:  # the root exists
        above = above.parent
    if not above.is_dir():
        what = "a file, not a folder" if above.exists() else "a broken symbolic link"
        raise ConfigError(f"{OUT_FLAG} {out}: cannot be written: {above} is {what}")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".probe", dir=above)
    except OSError as exc:
        raise ConfigError(f"{OUT_FLAG} {out}: cannot be written in {above}: {exc.strerror or exc}") from exc
    os.close(fd)
    os.unlink(probe)
