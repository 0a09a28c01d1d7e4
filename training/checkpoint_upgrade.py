"""``sonomap upgrade-checkpoint FILE --trust-checkpoint``: an older-format checkpoint, rewritten once.

A checkpoint that holds Python objects besides tensors and plain values (an older sonomap format,
or one from elsewhere) is refused by :func:`training.checkpoint.read_checkpoint`, since unpickling
it could run code. For a file whose origin the user vouches for, this reads it with full
unpickling, once, and writes it back as tensors and plain values (:mod:`training.checkpoint_save`),
re-signing the manifest beside it for the new bytes.

The file's bytes are read once (:func:`training.checkpoint.checkpoint_bytes`, after the checks made
before torch reads anything): the weights-only load, the trusted load, the manifest's sha256 check and
the backup all use those bytes.

Inputs: the trusted checkpoint (and its ``.yaml`` manifest, if any). Outputs: the rewritten
checkpoint. Files: ``FILE`` rewritten in place with the original kept as ``FILE.orig``, or ``--out``
(and its manifest). Nothing is written over: a ``FILE.orig`` left by an earlier upgrade, or an
existing ``--out`` (or its manifest), is one line naming it. A ``--out`` that cannot be written (a
folder on a read-only file system or without write permission, a file where a folder should be) is
one ConfigError naming ``--out`` and the reason, before the checkpoint is read. An in-place upgrade
that fails or is stopped before the new checkpoint replaces ``FILE`` removes its ``FILE.orig`` again
(``FILE`` is still the original), so the rerun is not refused.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import shutil
from pathlib import Path

from edge_runtime.atomic import check_creatable, same_file
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.manifest import FORMAT_BY_SUFFIX, Manifest, check_sha256, load_manifest, manifest_path
from training.checkpoint import checkpoint_bytes, read_checkpoint
from training.checkpoint_save import numpy_rng_plain, plain, save_checkpoint
from training.output_checks import refuse_existing, refuse_manifest_clash

log = logging.getLogger("sonomap.checkpoint")
BACKUP_SUFFIX = ".orig"
OUT_FLAG = "--out"


def upgrade_command(checkpoint: str | Path, out: str | Path | None, trusted: bool) -> str:
    """What ``sonomap upgrade-checkpoint`` does and prints: nothing for a checkpoint that already
    loads weights-only (the safe read comes first, so no file is unpickled needlessly); else, when
    ``trusted``, the upgrade (:func:`upgrade_checkpoint`); else a ConfigError saying why it needs
    ``--trust-checkpoint``. A file that is no checkpoint at all is its own one-line InputError."""
    path = Path(checkpoint)
    check_target(path, Path(out) if out else None)  # --out named before the file is read
    data = checkpoint_bytes(path)
    if already_weights_only(path, data):
        return f"{checkpoint}: already a weights-only checkpoint; nothing to convert, nothing written"
    if not trusted:
        raise ConfigError(
            f"{checkpoint}: converting it unpickles the file, which can run any code in it; "
            "add --trust-checkpoint only if you know where it came from"
        )
    target = Path(out) if out else path
    in_place = same_file(target, path)  # any spelling of the same file (relative, absolute, a link)
    upgrade_checkpoint(path, target, data, in_place)
    return f"{target}: weights-only checkpoint written" + (
        f" (original kept as {backup_path(path)})" if in_place else ""
    )


def already_weights_only(path: Path, data: bytes) -> bool:
    """True when ``data`` (the bytes of ``path``) loads weights-only; False when it holds Python
    objects besides tensors and plain values (what an upgrade converts). Any other problem (corrupt,
    not sonomap's dict) raises its InputError from :func:`training.checkpoint.read_checkpoint`."""
    try:
        read_checkpoint(path, data=data)
    except InputError as exc:
        if isinstance(exc.__cause__, pickle.UnpicklingError):
            return False
        raise
    return True


def upgrade_checkpoint(path: Path, target: Path, data: bytes, in_place: bool) -> None:
    """Rewrite a trusted older-format checkpoint (``path``, whose bytes ``data`` are) as tensors and
    plain values (readable weights-only) at ``target``: ``path`` itself when ``in_place``, keeping the
    original as ``FILE.orig`` (refused when an earlier upgrade's ``FILE.orig`` is there: it is never
    written over); the manifest beside it follows. ``target`` was checked by :func:`check_target`."""
    if in_place:
        refuse_backup_clash(path)  # before the file is unpickled
    payload = read_checkpoint(path, trust=True, data=data)
    rng = payload.get("rng")
    if isinstance(rng, dict) and "numpy" in rng:
        rng["numpy"] = numpy_rng_plain(rng["numpy"])
    try:
        payload = plain(payload)
    except TypeError as exc:
        raise InputError(f"{path}: cannot be converted to a weights-only checkpoint ({exc})") from exc
    # the manifest beside it is checked against the old file's sha256, then re-signed for the new one
    manifest = checked_manifest(path, data) if manifest_path(path).is_file() else None
    if in_place:
        original = os.stat(path)
        write_backup(path, data)  # removes its own file when stopped: nothing runs between it and the try
    try:
        save_checkpoint(payload, target, manifest)  # the checkpoint and its manifest renamed back to back
    except BaseException:  # a full disk, Ctrl-C, SIGTERM: the error goes on, after the backup is judged
        if in_place and not _replaced(path, original):
            # FILE is still the original: its backup is a mere copy, which a rerun would refuse to write over
            backup_path(path).unlink(missing_ok=True)
        raise
    log.warning("%s: rewritten weights-only as %s (trusted by the user)", path, target)


def _replaced(path: Path, original: os.stat_result) -> bool:
    """Whether ``path`` is no longer the file ``original`` describes (the new checkpoint was renamed
    over it: an atomic write gives a new inode), or is gone."""
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return True
    return (now.st_dev, now.st_ino) != (original.st_dev, original.st_ino)


def backup_path(path: Path) -> Path:
    return path.with_name(path.name + BACKUP_SUFFIX)


def refuse_backup_clash(path: Path) -> None:
    """InputError naming ``FILE.orig`` when an earlier upgrade's backup (or anything else) is there:
    it may be the only copy of the original, so it is neither replaced nor renumbered."""
    backup = backup_path(path)
    if backup.exists() or backup.is_symlink():
        raise InputError(
            f"{backup}: exists already, perhaps the original kept by an earlier upgrade; it is not "
            f"written over: move it away, or give {OUT_FLAG} NEW.pt"
        )


def write_backup(path: Path, data: bytes) -> None:
    """``FILE.orig``: the very bytes that were converted, created exclusively (never over a file that
    appeared meanwhile) and flushed to disk before the original is replaced. A backup that cannot be
    written whole (a full disk), or whose writing is stopped (Ctrl-C, SIGTERM), is removed again, and
    the original is left as it was."""
    backup = backup_path(path)
    try:
        file = open(backup, "xb")
    except FileExistsError:
        refuse_backup_clash(path)
        raise
    try:
        with file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        shutil.copystat(path, backup)  # the original's times and mode, as a copy would keep them
    except OSError as exc:
        backup.unlink(missing_ok=True)
        raise OSError(
            exc.errno, f"{exc.strerror or exc} (writing the backup; {path} is unchanged)", str(backup)
        ) from exc
    except BaseException:  # stopped: the original was never replaced, and a backup left would block the rerun
        backup.unlink(missing_ok=True)
        raise


def checked_manifest(path: Path, data: bytes) -> Manifest:
    """The manifest beside ``path``, checked against the sha256 of ``data`` (the bytes converted)."""
    manifest = load_manifest(path, verify_hash=False)
    check_sha256(manifest, path, hashlib.sha256(data).hexdigest())
    return manifest


def check_target(path: Path, out: Path | None) -> None:
    """ConfigError naming ``--out`` when the upgrade of ``path`` cannot be written there (``out``, or
    ``path`` itself in place): a manifest in the way, an existing file (:func:`refuse_existing_out`), or a
    place that cannot be written."""
    refuse_manifest_clash(path, out or path)
    if out:  # in place, the backup copy names FILE.orig and the reason itself
        check_out_writable(out)
        if not same_file(out, path):
            refuse_existing_out(out)


def refuse_existing_out(out: Path) -> None:
    """:func:`training.output_checks.refuse_existing`, naming an earlier upgrade's ``FILE.orig`` as what
    it may be: the only copy of the original."""
    what = ""
    if out.name.endswith(BACKUP_SUFFIX) and len(out.name) > len(BACKUP_SUFFIX):
        what = f"an in-place upgrade's backup of {out.name[: -len(BACKUP_SUFFIX)]}, perhaps its only original"
    refuse_existing(out, OUT_FLAG, what)


def check_out_writable(out: Path) -> None:
    """Raise ConfigError ``--out OUT: REASON`` unless a checkpoint and its manifest can be created at
    ``out``. Input: the ``--out`` path. Output: none; :func:`edge_runtime.atomic.check_creatable`
    makes and removes a file in the nearest existing folder above ``out``, so the reason is the
    operating system's own (read-only file system), not a guess from permission bits root bypasses."""
    if out.is_dir():
        raise ConfigError(f"{OUT_FLAG} {out}: is a folder; give a file name")
    named = FORMAT_BY_SUFFIX.get(out.suffix.lower(), "checkpoint")  # the loaders pick a format by suffix
    if named != "checkpoint":  # a checkpoint named .onnx gets a manifest no loader accepts
        raise ConfigError(
            f"{OUT_FLAG} {out}: {out.suffix} names {named} models, not checkpoints; give a name such as NEW.pt"
        )
    if out.exists() and not out.is_file():
        raise ConfigError(f"{OUT_FLAG} {out}: is a device, pipe or socket, not a file; give a file name")
    check_creatable(out, OUT_FLAG)
