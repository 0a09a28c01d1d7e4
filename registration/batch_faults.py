"""register-batch's one reason to stop part way: the dataset's disk refused a write.

A case that fails for its own inputs is recorded and the batch goes on (batch.py). A write the
disk refuses (full: ENOSPC, EDQUOT; a file size limit: EFBIG; read-only: EROFS; no permission on a
file in DATASET) is no fault of the case: carrying on would record every case after it as failed,
move their images and labels to removed/ and write a cases.csv without them, and the next run
would split those patients afresh. So the run stops at the first such write, before cases.csv or
batch_report.json change or any case is set aside, and the case it was registering gets back the
image and label it had moved aside (when its earlier report.json is still the one in place).

Input: the exception a case raised, DATASET and the case. Output: a one-line error naming the file
by its path under DATASET as given, raised; nothing when the fault is the case's own.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from edge_runtime.errors import SonomapError
from edge_runtime.privacy import redact
from registration.batch_dataset import REMOVED

# errors only a write gives, wherever the file lies (an input file never reports a full disk)
WRITE_FAULTS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})
# errors a read of an input may give too: a fault of the dataset only for a file in it
DATASET_FAULTS = frozenset({errno.EACCES, errno.EPERM})


class DatasetWriteFailed(SonomapError):
    """The dataset's disk refused a write: the batch stopped with the dataset as it was."""


def report_mark(path: Path) -> tuple[int, int, int] | str:
    """What tells whether ``path`` (a case's report.json) was replaced: its inode, mtime and size, or
    ``"absent"`` when there is none (every write of it is a rename, so a new one has a new inode)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "absent"
    return st.st_ino, st.st_mtime_ns, st.st_size


def _write_fault(exc: BaseException, ds: Path) -> OSError | None:
    """The OSError in ``exc``'s chain that is the dataset's disk refusing a write, else None (the
    case's own fault). Wrapped errors are followed: a reader may re-raise as an InputError."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in WRITE_FAULTS:
            return exc
        if isinstance(exc, OSError) and exc.errno in DATASET_FAULTS and _in_dataset(exc.filename, ds):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _in_dataset(filename, ds: Path) -> bool:
    if filename is None:
        return False
    path = Path(os.fsdecode(filename)).absolute()
    return path.is_relative_to(ds.absolute()) or path.is_relative_to(ds.resolve())


def _shown(filename, ds: Path) -> str:
    """The file as the error names it: under DATASET as given, else as the OSError named it."""
    if filename is None:
        return f"--out {ds}"
    path = Path(os.fsdecode(filename)).absolute()
    for root in (ds.absolute(), ds.resolve()):
        if path.is_relative_to(root):
            return str(ds / path.relative_to(root))
    return redact(os.fsdecode(filename))


def _put_back(ds: Path, case_id: str, moved: list[str]) -> None:
    """Move the case's copies that ``moved`` lists (paths in DATASET under removed/) back into
    images/ and labels/ (renames on one file system: no space needed)."""
    for rel in moved:
        folder = Path(rel).relative_to(REMOVED).parts[0]
        os.replace(ds / rel, ds / folder / f"{case_id}.png")


def stop_on_write_fault(
    exc: BaseException, ds: Path, case_id: str, name: str, moved: list[str], mark_before
) -> None:
    """Raise DatasetWriteFailed when ``exc`` is the dataset's disk refusing a write (module
    docstring); return when it is the case's own fault. ``moved``: the copies of the case moved to
    removed/ before it was registered again; ``mark_before``: :func:`report_mark` of its report.json
    then. They are put back when that report.json is unchanged, else they stay in removed/ (the new
    report.json no longer matches them) and the error says so."""
    fault = _write_fault(exc, ds)
    if fault is None:
        return
    report = ds / "registration" / case_id / "report.json"
    if moved and report_mark(report) == mark_before:
        _put_back(ds, case_id, moved)
        moved = []
    kept = (
        f"this case's old image and label are in {ds / REMOVED} until it is registered"
        if moved
        else "no case was taken out of images/ or labels/"
    )
    raise DatasetWriteFailed(
        f"{_shown(fault.filename, ds)}: {fault.strerror or fault}: register-batch stopped at {name} "
        f"(id {case_id}), cases.csv and batch_report.json left as they were; {kept}: free space on the "
        "dataset's disk (or make it writable) and run it again"
    )
