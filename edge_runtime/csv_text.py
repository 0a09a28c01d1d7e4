"""A small CSV file people edit in a spreadsheet, read as text with one-line errors.

Shared by every reader of such a file (a dataset's ``cases.csv``, BUSI's ``index.csv``, the
same-lesion list): they all accept the byte-order mark a spreadsheet writes (``utf-8-sig``: it is not
part of the first column's name) and name the file, and the line of a byte that is not UTF-8, when
they refuse one. Input: the path and the columns to name in the advice. Output: the text. Reads the
file only.
"""

from __future__ import annotations

from pathlib import Path

from edge_runtime.errors import InputError


def read_csv_text(path: Path, columns: str) -> str:
    """The file at ``path`` as text; InputError naming it when unreadable, and the line when not
    UTF-8 (``columns``, e.g. ``"id,label"``, goes into the advice to save it as UTF-8 CSV)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: unreadable ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: not UTF-8 text; save it as UTF-8 CSV ({columns})") from None
