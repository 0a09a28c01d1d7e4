"""Atomic file writes shared by every stage: nothing already written is ever half-replaced.

``atomic_path(path)`` yields a hidden temp file beside ``path``; when the block ends without
an error the temp file is renamed over ``path`` (one rename: readers see the old file or the
new one), otherwise it is deleted and the error propagates. A ``path`` that is a folder, a device,
a pipe or a socket (the rename would replace ``/dev/null`` itself when run as root), or whose parent
is a file, is refused before anything is written. Every OSError of the write names ``path`` (the CLI
prints it as one line ``PATH: REASON``), never the hidden temp file.

``atomic_write_png(path, image)`` is the one PNG writer of the stages: cv2.imencode, then the atomic
byte writer; a failure is one line naming ``path`` (an InputError when the array cannot be encoded,
an OSError when the file cannot be written).

``hidden_file_pattern(path)`` matches the names of those hidden temp files of ``path`` and nothing
else: one is left behind only when its writer died before the rename (a signal whose default action
ends the process, a power cut), and a caller that knows no writer of ``path`` is running (one holding
its lock) may remove it.

``same_file(a, b)`` tells whether two paths name one file (through links too): the commands use
it to refuse an output that would overwrite one of their inputs. ``check_creatable(path, label)``
refuses, before a long run, a new output whose nearest existing folder is a file or not writable;
``check_apart`` an output folder that is, holds or lies in a folder the command reads.
"""

from __future__ import annotations

import csv
import errno
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.errors import ConfigError, InputError
from edge_runtime.stop_signals import signals_held

# An output is first written under a hidden name beside it (``.NAME.<random>.tmp`` here,
# ``.NAME.<pid>.<token>.partial`` for a staged recording): NAME must leave this many bytes of the
# file system's name limit for the rest.
HIDDEN_NAME_EXTRA_BYTES = 48
FILE_MODE = 0o644  # mkstemp creates 0600; outputs are shared with the team and the service user
HIDDEN_SUFFIX = ".tmp"
# mkstemp's random part of a name: 8 characters of a-z, 0-9 and _ (CPython's tempfile)
HIDDEN_RANDOM = r"[a-z0-9_]{8}"


@contextmanager
def atomic_path(path: str | Path, durable: bool = False) -> Iterator[Path]:
    """Yield a temp path to write; rename it to ``path`` on success. ``durable`` also fsyncs
    the file and its directory, so the new file survives a power cut (engine caches)."""
    path = Path(path)
    _check_target(path)
    name: str | None = None
    try:
        # held while the temp file is made and named: a Ctrl-C or SIGTERM (taken as Ctrl-C) raised
        # between its creation and the assignment would leave it behind; raised at the block's end
        # instead, inside this try, so the finally removes it
        with signals_held():
            name = _hidden_file(path)
        tmp = Path(name)
        yield tmp
        os.chmod(tmp, FILE_MODE)
        if durable:
            _fsync(tmp, os.O_RDONLY)
        os.replace(tmp, path)
        if durable:
            _fsync(path.parent, os.O_RDONLY)  # make the rename itself durable
    except OSError as exc:
        # A failed write of the temp file (no space, no permission) names the target instead: the
        # temp file is gone by the time anyone reads the message. Errors about other files pass.
        if exc.errno is None or exc.filename not in (None, name):
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
    finally:
        if name is not None:
            Path(name).unlink(missing_ok=True)


def _hidden_file(path: Path) -> str:
    """A new empty hidden file beside ``path`` (``.NAME.<random>.tmp``), closed; its path. An OSError
    names ``path`` (a read-only file system, no permission)."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=HIDDEN_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
    os.close(fd)
    return name


def hidden_file_pattern(path: str | Path) -> re.Pattern[str]:
    """The names :func:`atomic_path` gives the hidden temp files of ``path`` (``.NAME.<random>.tmp``),
    to ``fullmatch`` against a file name in ``path``'s folder."""
    return re.compile(rf"\.{re.escape(Path(path).name)}\.{HIDDEN_RANDOM}{re.escape(HIDDEN_SUFFIX)}")


def _check_target(path: Path) -> None:
    """Make ``path``'s parent folder; raise an OSError naming ``path`` when it cannot be a file
    (os.replace would otherwise report the temp file, mkdir a parent that merely exists)."""
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file: give a file name", str(path))
    if path.exists() and not path.is_file():
        raise OSError(errno.EINVAL, "is a device, pipe or socket, not a file: give a file name", str(path))
    for parent in (path.parent, *path.parent.parents):
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise NotADirectoryError(
                    errno.ENOTDIR, f"cannot be written: {parent} is a file, not a folder", str(path)
                )
            break
    path.parent.mkdir(parents=True, exist_ok=True)


def check_creatable(path: str | Path, label: str) -> None:
    """ConfigError ``LABEL PATH: ...`` unless the nearest existing folder above ``path`` (the writers
    create the missing ones between) is a folder this process may create files in."""
    path = Path(path)
    above = path.parent
    while not above.exists() and not above.is_symlink() and above != above.parent:  # the root exists
        above = above.parent
    if not above.is_dir():
        what = "a file, not a folder" if above.exists() else "a broken symbolic link"
        raise ConfigError(f"{label} {path}: {above} is {what}")
    longest = os.pathconf(above, "PC_NAME_MAX") - HIDDEN_NAME_EXTRA_BYTES
    if len(path.name.encode()) > longest:
        raise ConfigError(
            f"{label} {path}: the file name is {len(path.name.encode())} bytes; give one of at most {longest} "
            "(the file system's limit, less room for the hidden name the file is first written under)"
        )
    # a real file, not os.access: root passes that everywhere, and it would call a read-only mount
    # "permission denied"; the probe's error is the operating system's own reason
    try:
        with signals_held():  # a stop between its creation and its removal would leave the probe behind
            fd, probe = tempfile.mkstemp(prefix=".sonomap-probe.", dir=above)
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"{label} {path}: cannot create files in {above} ({exc.strerror})") from None


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when ``a`` and ``b`` name the same file: the same resolved path, or (both existing)
    one file reached through a hard or symbolic link."""
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    return a.exists() and b.exists() and os.path.samefile(a, b)


def check_output_file(path: str | Path, flag: str) -> None:
    """Raise ConfigError naming ``flag`` unless ``path`` can be written as a file: it is no folder,
    and the nearest existing folder above it (the writer creates the missing ones) is writable. For a
    file a command writes only at its end (bench-train's and soak's ``--json``, pretrain's weights):
    a typo fails at once, not after a long run."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a folder; give a file name")
    if path.exists() and not path.is_file():
        raise ConfigError(f"{flag} {path}: is a device, pipe or socket, not a file; give a file name")
    check_creatable(path, flag)


def check_apart(source: str | Path, out: str | Path, source_flag: str, out_flag: str = "--out") -> None:
    """Raise ConfigError naming both flags when OUT is SOURCE, lies inside it or contains it
    (symbolic links resolved, so a link into SOURCE counts as inside). Reads nothing but the paths.
    A command's output folder and a folder it reads (the dataset of train, pretrain, crossval and
    evaluate; the BUSI release of prepare-busi; pretrain's ``--images``; concordance's CASES and
    ``--dataset``; the simulators' ``--images`` and ``--masks``) must be apart, or the output would
    write over, or mix its files with, the input's."""
    s, o = Path(source).resolve(), Path(out).resolve()
    if o == s or s in o.parents or o in s.parents:
        raise ConfigError(
            f"{out_flag} {out}: is, lies inside or contains {source_flag} {source}; give an {out_flag} "
            f"folder apart from it, so the files {source_flag} holds are never written over or mixed "
            "with the output"
        )


def check_not_read(path: str | Path, flag: str, inputs: dict[str, str | Path | None]) -> None:
    """ConfigError naming ``flag`` when ``path``, a file a command writes, is one of the files it
    reads or lies in a folder it reads (``inputs``: how each is named in the message -> its path, None
    for one not given): writing it would destroy, or mix with, what is being read."""
    for name, source in inputs.items():
        if source is None:
            continue
        if same_file(path, source):
            raise ConfigError(
                f"{flag} {path} is the same file as {name} {source}: writing it would destroy what is "
                "being read; give another name"
            )
        if Path(source).is_dir() and Path(source).resolve() in Path(path).resolve().parents:
            raise ConfigError(
                f"{flag} {path}: lies inside {name} {source}, whose files it would mix with; give a "
                "path apart from it"
            )


def fsync_folder(path: str | Path) -> None:
    """fsync the folder ``path``: makes the renames and new entries in it durable."""
    _fsync(Path(path), os.O_RDONLY)


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes, durable: bool = False) -> Path:
    with atomic_path(path, durable) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def atomic_write_csv(path: str | Path, header, rows) -> Path:
    """A header row and ROWS as CSV (the csv module's quoting) at ``path``, atomically; return ``path``."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return Path(path)


def atomic_write_png(path: str | Path, image: np.ndarray, durable: bool = False) -> Path:
    """Write ``image`` (uint8 or uint16; gray, BGR or BGRA) as a PNG file at ``path``, atomically
    (``durable``: fsynced, as :func:`atomic_path`); return ``path``. InputError ``PATH: PNG encoding
    failed (REASON)`` when OpenCV cannot encode the array (None, empty, 2 or 5+ channels); an OSError
    naming ``path``, never the temp file, when the file cannot be written (a folder there, no
    permission, no space)."""
    return atomic_write_bytes(path, png_bytes(path, image), durable)


def png_bytes(path: str | Path, image: np.ndarray) -> bytes:
    """``image`` encoded as the PNG file ``path`` will hold; InputError as :func:`atomic_write_png`."""
    try:
        ok, buf = cv2.imencode(".png", image)
    except cv2.error as exc:
        raise InputError(f"{path}: PNG encoding failed ({str(exc).strip().splitlines()[-1]})") from exc
    if not ok:
        raise InputError(f"{path}: PNG encoding failed")
    return buf.tobytes()
