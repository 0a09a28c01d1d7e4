"""The data files a detached sequence header names: NRRD's ``data file:``, MetaImage's ``ElementDataFile``.

A ``.nhdr``/``.seq.nrrd`` or ``.mhd`` holds no pixels: they are in the file(s) it names. A command
that reads such a header reads those files too, so an output written over one of them destroys the
input while it is read (a memory-mapped data file cut to 0 bytes kills the reader with SIGBUS). The
output checks (:mod:`edge_runtime.commands.output_paths`) count them as inputs.

Input: the path of a source file. Output: the data files its header names, relative names taken
from the header's folder, as the readers take them: one file, a ``LIST`` of files (the lines after
the header), or a ``printf`` pattern with a range (``slice%03d.raw 0 99 1``). None for an attached
header (``LOCAL``), another kind of file, or a header that cannot be read (its source refuses it in
one line when it opens). Reads at most :data:`MAX_HEADER_BYTES`; never opens a FIFO or a device.
"""

from __future__ import annotations

from pathlib import Path

from edge_runtime import source_kinds

NRRD_KEYS = ("data file", "datafile")  # the NRRD format allows both spellings
METAIMAGE_KEY = "ElementDataFile"
LIST, LOCAL = "LIST", "LOCAL"
MAX_HEADER_BYTES = 64 * 1024 * 1024  # a PLUS header's per-frame fields: tens of MB for a long session
MAX_LISTED_FILES = 100_000  # of a LIST or a pattern: far more than any reader of one sequence opens
PATTERN_FIELDS = 4  # "format min max step" (and an optional sub-dimension)


def data_files(source: Path) -> list[Path]:
    """The data files ``source``'s header names (see module docstring)."""
    suffix = source.suffix.lower()
    if suffix not in source_kinds.SEQUENCE_SUFFIXES + source_kinds.PLUS_METAIMAGE_SUFFIXES:
        return []
    if not source.is_file():  # absent, a folder, or a FIFO that would block the read
        return []
    nrrd = suffix in source_kinds.SEQUENCE_SUFFIXES
    try:
        with open(source, "rb") as fh:
            value, rest = _data_file_field(fh, nrrd)
    except OSError:  # unreadable: the source says so when it opens
        return []
    if not value or value.upper() == LOCAL:
        return []
    names = rest if _is_list(value) else _pattern(value) or [value]
    return [source.parent / name for name in names[:MAX_LISTED_FILES]]


def _data_file_field(fh, nrrd: bool) -> tuple[str | None, list[str]]:
    """The data file field's value and, for a LIST, the non-empty lines after it."""
    separator = ":" if nrrd else "="
    while fh.tell() < MAX_HEADER_BYTES:
        line = fh.readline()
        text = line.decode("latin-1").rstrip("\r\n")
        if not line or (nrrd and not text):  # the end of the file, or of an attached NRRD header
            return None, []
        key, sep, value = text.partition(separator)
        if sep and (key.strip().lower() in NRRD_KEYS if nrrd else key.strip() == METAIMAGE_KEY):
            value = value.strip()
            rest = _listed(fh) if _is_list(value) else []
            return value, rest
    return None, []


def _is_list(value: str) -> bool:
    """``LIST`` (NRRD: ``LIST [subdim]``): the file names follow the header, one a line."""
    return bool(value.split()) and value.split()[0].upper() == LIST


def _listed(fh) -> list[str]:
    names = []
    while len(names) < MAX_LISTED_FILES and fh.tell() < MAX_HEADER_BYTES:
        line = fh.readline()
        if not line:
            break
        name = line.decode("latin-1").strip()
        if name:
            names.append(name)
    return names


def _pattern(value: str) -> list[str]:
    """``fmt min max step [subdim]`` -> the names it expands to; [] when ``value`` is no pattern."""
    fields = value.split()
    if len(fields) < PATTERN_FIELDS or "%" not in fields[0]:
        return []
    try:
        first, last, step = (int(v) for v in fields[1:PATTERN_FIELDS])
        if step == 0:
            return []
        stop = last + (1 if step > 0 else -1)
        return [fields[0] % n for n in range(first, stop, step)[:MAX_LISTED_FILES]]
    except (TypeError, ValueError):  # not numbers, or a format that is no integer pattern
        return []
