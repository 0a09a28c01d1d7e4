"""Where a case folder is written, so that sessions sharing one ``--cases`` folder never touch each
other's cases, and what a killed writer left is cleaned up.

- A case is written under the hidden name ``.<name>.<host>-<pid>.partial`` (:func:`make_partial`),
  made with an exclusive ``mkdir``: the writing process and its host are in the name, so no other
  session ever writes into it, and a later session can tell whether its writer is still alive.
- It becomes ``<name>`` by one ``rename`` (:func:`publish_name` gives the candidates: ``<name>``,
  then ``<name>-2``, ``<name>-3`` ...). A rename onto a folder that holds anything fails, and a case
  folder is never empty, so another session's case is never replaced: the next candidate is taken.
- :func:`remove_stale_partials` removes, at a writer's start, the partial folders of this host whose
  writer process is gone (killed mid-write). Those of live processes, of other hosts (a shared
  network folder) and of unknown owners are kept. A recycled pid keeps a dead writer's folder too:
  kept is the safe side.
- :func:`ensure_directory` makes the folder again (mode 0700) when it went away mid-session.

Readers (``sonomap cases``, the PACS export) skip every name that starts with a dot.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

from edge_runtime import privacy
from edge_runtime.processes import alive

log = logging.getLogger("sonomap.biopsy")
PARTIAL = re.compile(r"^\.(?P<name>.+)\.(?P<host>[A-Za-z0-9-]+)-(?P<pid>\d+)\.partial$")
HOST_UNSAFE = re.compile(r"[^A-Za-z0-9-]+")  # kept out of a partial folder's name (PARTIAL parses it)
UNKNOWN_HOST = "host"
MAX_NAMES = 1000  # names tried for one case: more taken at once means something else is wrong
TAKEN = (errno.EEXIST, errno.ENOTEMPTY)  # rename(2) onto a folder that holds something


def host_name() -> str:
    """This machine's name as a partial folder carries it: letters, digits and '-' only."""
    return HOST_UNSAFE.sub("-", socket.gethostname()).strip("-") or UNKNOWN_HOST


def ensure_directory(directory: Path) -> None:
    """Make ``directory`` again (mode 0700, parents too) when it is gone: deleted, or its disk
    re-mounted, mid-session. OSError when it cannot be made."""
    if directory.is_dir():
        return
    directory.mkdir(mode=privacy.PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    log.warning("--cases folder had gone: made it again")


def make_partial(directory: Path, name: str) -> Path:
    """A new, empty folder ``directory/.<name>.<host>-<pid>.partial`` (mode 0700) that no other
    writer uses: made exclusively; when the name is taken (a dead writer's folder under a recycled
    pid) ``<name>-2`` and so on. Never removes anything. OSError when it cannot be made."""
    owner = f"{host_name()}-{os.getpid()}"
    for candidate in publish_name(name):
        path = directory / f".{candidate}.{owner}.partial"
        try:
            path.mkdir(mode=privacy.PRIVATE_DIR_MODE)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"no free name for a partial case after {MAX_NAMES} tries", name)


def publish_name(name: str) -> Iterator[str]:
    """The names a case called ``name`` may get, in order: ``name``, ``name-2``, ... (MAX_NAMES)."""
    yield name
    for k in range(2, MAX_NAMES + 1):
        yield f"{name}-{k}"


def try_publish(partial: Path, final: Path) -> bool:
    """Rename the complete ``partial`` to ``final``; False when ``final`` is taken (by a case of this
    or another session), never replacing it. Other OSErrors are raised."""
    if os.path.lexists(final):
        return False
    try:
        # lexists and rename are two steps: a case published in between makes the rename fail
        # (ENOTEMPTY/EEXIST); only an empty folder, which holds no case, could be replaced.
        os.rename(partial, final)
    except OSError as exc:
        if exc.errno in TAKEN:
            return False
        raise
    return True


def remove_stale_partials(directory: Path) -> int:
    """Remove the partial case folders in ``directory`` left by writers of this host that are no
    longer running; returns how many were removed. Kept: this process's own, those of live processes,
    of other hosts and of names it does not parse (module doc). A folder that cannot be removed is
    logged and kept."""
    host, removed = host_name(), 0
    for entry in os.scandir(directory):
        match = PARTIAL.match(entry.name)
        if match is None or not entry.is_dir(follow_symlinks=False) or match["host"] != host:
            continue
        pid = int(match["pid"])
        if pid == os.getpid() or alive(pid):
            continue
        try:
            shutil.rmtree(entry.path)
        except FileNotFoundError:  # another session starting now removed it first
            continue
        except OSError as exc:
            log.error(
                "--cases: an unfinished case folder could not be removed: %s",
                privacy.without_file_names(str(exc)),  # the cases folder may be named after the patient
            )
            continue
        removed += 1
    return removed
