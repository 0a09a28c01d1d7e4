"""Reading an annotation file: its first character after any byte-order mark, which tells ASAP XML
(``<``) from GeoJSON, and its bytes, at most MAX_ANNOTATION_BYTES of them. Files come from QuPath, ASAP
and hand-made scripts, in UTF-8 with or without a byte-order mark, or in UTF-16/32 with one.

Input: the file's path. Output: its first non-blank character (``""`` for an empty file) or its bytes,
or an InputError naming the file when it cannot be read or is over the size limit.

Numbers written as text (ASAP XML's attributes) are read by strict syntax (``attribute_number``): Python's
float() and int() also take ``1_0`` (10), `` 12 `` and digits of other scripts, which no exporter writes.
"""

from __future__ import annotations

import codecs
import os
import re
from pathlib import Path

from edge_runtime.errors import InputError

# Largest annotation file read, GeoJSON or ASAP XML. Parsed, a file takes about ten times its size in
# Python objects (a 192 MB QuPath export with 300,000 cell detections peaked at 1.9 GB); a core's outlines
# take kilobytes, so a file this large is a classifier's detections over the whole slide.
MAX_ANNOTATION_BYTES = 256 * 1024 * 1024
HEAD_BYTES = 64  # enough to see past a byte-order mark and leading whitespace to the first character
# longest first: the UTF-32 LE mark begins with the UTF-16 LE one
BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# ASCII digits only ([0-9], not \d: that takes Arabic-Indic and other scripts' digits, as float() does)
DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
INTEGER = re.compile(r"[+-]?[0-9]{1,18}")  # an Order: int() refuses 4,300 digits with a ValueError


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


def _too_large(path: Path, size: str) -> InputError:
    return InputError(
        f"{path}: {size} of annotations is over the {MAX_ANNOTATION_BYTES // 2**20} MiB limit "
        f"({MAX_ANNOTATION_BYTES} bytes) for an annotation file: export the annotations alone (in QuPath: "
        "the annotation objects, without detections or cells)"
    )


def read_annotation_bytes(path: Path) -> bytes:
    """The bytes of the annotation file at ``path``; InputError naming it, before it is read, when it is
    over MAX_ANNOTATION_BYTES, and when more than that comes out of it all the same (a file still
    growing, a device or pipe whose size the file system does not know): memory stays bounded."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > MAX_ANNOTATION_BYTES:
                raise _too_large(path, f"{size} bytes ({size / 2**20:.1f} MiB)")
            data = fh.read(MAX_ANNOTATION_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{path}: cannot read annotations ({exc.strerror})") from exc
    if len(data) > MAX_ANNOTATION_BYTES:
        raise _too_large(path, f"more than {MAX_ANNOTATION_BYTES} bytes")
    return data


def attribute_number(text: str | None, integer: bool, where: str, name: str) -> float | int:
    """``text``, the value of attribute ``name``, as a number: a decimal (``12``, ``-3.5``, ``1.2e+04``)
    or, with ``integer``, a whole number; InputError naming ``where`` and the attribute for anything
    else: missing, blank, padded with spaces, ``1_0``, ``nan``, ``1,5``."""
    pattern, kind = (INTEGER, "a whole number") if integer else (DECIMAL, "a decimal number")
    if text is None:
        raise InputError(f"{where}: malformed Coordinate (no {name} attribute; {kind} expected)")
    if not pattern.fullmatch(text):
        raise InputError(f"{where}: malformed Coordinate ({name}={text[:40]!r} is not {kind})")
    return int(text) if integer else float(text)
