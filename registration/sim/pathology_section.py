"""Fill case.yaml's ``pathology:`` section in place, as ``sonomap simulate-pathology`` answers for the lab.

Only that section's lines are replaced: everything before and after it (the capture record, a
top-level ``patient_id`` the lab added below it, comments) stays byte for byte, because case.yaml
is the lab's and the capture's record and a rewrite would lose what they typed. Inside the section
the simulated slide's keys are written; keys that describe a slide (``mpp``, ``roi``,
``fresh_length_mm``, ...) are dropped, since they would describe another slide than the simulated
one (``fresh_length_mm`` beside the simulated ``shrinkage`` is even refused by register); every
other key the lab entered (``patient_id``, ``fragments``, ...) is kept.

The section ends where the next top-level key (a line starting with neither space nor ``#``)
begins; comment and blank lines just before that key stay outside it. The filled text is read
back and must give the case with only its pathology section changed; when it does not (a layout
this line-wise edit cannot follow), the case is refused in one line before any case is written.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from edge_runtime.errors import InputError

HEADER = re.compile(r"pathology\s*:")  # the section's first line, at column 0
TOP_LEVEL = re.compile(r"[^\s#]")  # a line that starts a top-level key (or ends the document)
# keys describing the lab's slide: the simulated slide replaces them
WIDE = 1 << 16  # no wrapped values
SLIDE_KEYS = ("roi", "mpp", "annotation_mpp", "fresh_length_mm", "flip_across", "reader")


def _outside(line: str) -> bool:
    """True for a blank or column-0 comment line: kept outside the section when it ends it."""
    return not line.strip() or line.startswith("#")


def section_span(case_yaml: Path, text: str) -> tuple[int, int]:
    """(start, end) character offsets of the pathology section's lines in ``text``; InputError
    naming case.yaml when it has none."""
    lines = text.splitlines(keepends=True)
    first = next((i for i, line in enumerate(lines) if HEADER.match(line)), None)
    if first is None:
        raise InputError(f"{case_yaml}: no 'pathology:' section to fill in (not a captured case?)")
    end = first + 1
    while end < len(lines) and not TOP_LEVEL.match(lines[end]):
        end += 1
    while end > first + 1 and _outside(lines[end - 1]):
        end -= 1
    start = sum(len(line) for line in lines[:first])
    return start, start + sum(len(line) for line in lines[first:end])


def merged(case: dict, answer: dict) -> dict:
    """The pathology section after the lab's ``answer``: the lab's other keys kept, slide keys dropped."""
    before = case.get("pathology") if isinstance(case.get("pathology"), dict) else {}
    kept = {key: value for key, value in before.items() if key not in SLIDE_KEYS}
    return {**kept, **answer}


def _line(key: str, value) -> str:
    """One ``key: value`` line of the section, a list or mapping value in flow style."""
    flow = None if isinstance(value, (list, dict)) else False  # None: a mapping of scalars alone is flow too
    return yaml.safe_dump({key: value}, sort_keys=False, default_flow_style=flow, width=WIDE)


def filled_text(case_yaml: Path, text: str, answer: dict, note: str) -> str:
    """``text`` of ``case_yaml`` with its pathology section holding ``answer`` merged into the lab's
    keys (:func:`merged`), every other byte kept. InputError naming the file when the result does
    not read back as the same case with only that section changed."""
    start, end = section_span(case_yaml, text)
    try:
        case = yaml.safe_load(text)
        section = merged(case, answer)
        body = "".join(f"  {_line(key, value)}" for key, value in section.items())
        new = text[:start] + f"pathology:  # {note}\n" + body + text[end:]
        again = yaml.safe_load(new)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or "not YAML once filled"
        raise InputError(
            f"{case_yaml}: its pathology section cannot be filled in place ({problem}); fill it in by hand"
        ) from exc
    if again != {**case, "pathology": section}:
        raise InputError(
            f"{case_yaml}: its pathology section cannot be told apart from the keys around it; fill it in by hand"
        )
    return new
