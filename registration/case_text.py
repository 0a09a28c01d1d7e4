"""Read a case.yaml, saying what a hand edit got wrong when it cannot be read.

Input: a case.yaml path. Output: its mapping (``edge_runtime.yamlfile.read_yaml_mapping``), or that
reader's one-line ``ConfigError`` with a hint for the two slips a text editor makes most:

- saved as UTF-16 (Notepad's "Unicode"): the reader says only that byte 0 is not UTF-8;
- a tab in the indentation, or a Windows path in double quotes (``"C:\\Users\\..."``: ``\\U`` starts an
  escape): the reader keeps the first line of YAML's message, which says neither where nor what.

The hint names the line and column, never the text there: a path on that line may carry the
patient's name, and the message reaches batch_report.json and the log.
"""

from __future__ import annotations

import codecs
from pathlib import Path

import yaml

from edge_runtime.errors import ConfigError
from edge_runtime.yamlfile import read_yaml_mapping

WHAT = "case file"
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
SNIFF_BYTES = 64  # UTF-16 without a mark shows as a NUL byte beside each ASCII character


def read_case_yaml(path: str | Path) -> dict:
    """case.yaml's mapping; ConfigError naming the file, with :func:`hint` where one applies."""
    try:
        return read_yaml_mapping(path, WHAT)
    except ConfigError as exc:
        found = hint(Path(path), exc)
        if found is None:
            raise
        raise ConfigError(f"{exc}: {found}") from exc


def hint(path: Path, exc: ConfigError) -> str | None:
    """What to change in the file ``path`` that the reader refused with ``exc``, or None."""
    cause = exc.__cause__
    if isinstance(cause, UnicodeDecodeError):
        try:
            head = path.read_bytes()[:SNIFF_BYTES]
        except OSError:
            return None
        if head.startswith(UTF16_BOMS) or b"\x00" in head:
            return "it was saved as UTF-16 (Notepad's 'Unicode'); save it again as UTF-8"
        return None
    mark = getattr(cause, "problem_mark", None)
    if not isinstance(cause, yaml.MarkedYAMLError) or mark is None:
        return None
    where = f"line {mark.line + 1}, column {mark.column + 1}"
    buffer = mark.buffer or ""
    if 0 <= mark.pointer < len(buffer) and buffer[mark.pointer] == "\t":
        return f"a tab at {where}: YAML indents with spaces only; replace the tab with spaces"
    problem = cause.problem or "not valid here"
    if "escape" in problem:
        return (
            f"{problem} at {where}: a backslash in double quotes starts an escape; write a Windows path "
            "with '/', or in single quotes"
        )
    return f"{problem} at {where}"
