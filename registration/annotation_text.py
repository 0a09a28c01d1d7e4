"""How an annotation file starts: its first character after any byte-order mark, which tells ASAP XML
(``<``) from GeoJSON. Files come from QuPath, ASAP and hand-made scripts, in UTF-8 with or without a
byte-order mark, or in UTF-16/32 with one.

Input: the file's path. Output: its first non-blank character (``""`` for an empty file), or an
InputError naming the file when it cannot be read.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from edge_runtime.errors import InputError

HEAD_BYTES = 64  # enough to see past a byte-order mark and leading whitespace to the first character
# longest first: the UTF-32 LE mark begins with the UTF-16 LE one
BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def first_character(path: Path) -> str:
    """The first non-blank character of the file at ``path``, read past a byte-order mark."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
    except OSError as exc:
        raise InputError(f"{path}: cannot read annotations ({exc})") from exc
    for mark, encoding in BYTE_ORDER_MARKS:
        if head.startswith(mark):
            text = head.decode(encoding, errors="ignore")  # a cut multi-byte character at the end
            break
    else:
        text = head.decode("latin-1")  # any byte is a character: only the first one matters
    return text.lstrip("\ufeff \t\r\n")[:1]
