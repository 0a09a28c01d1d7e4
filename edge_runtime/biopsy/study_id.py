"""The pseudonymous study ID an operator enters at session start (``--study-id``, the viewer's field).

Input: the text as typed. Output: the same text when it is a short pseudonym, else a ``ConfigError``
naming where it came from. The ID becomes ``capture.study_id`` in each case.yaml and, on export, the
DICOM PatientID, PatientName and StudyID (docs/pacs-export.md), so it must never be a real identity.
A pseudonym like ``BX-0042`` passes; a name (``Jane Doe``, ``Doe^Jane``), a bare record number
(``12345678``) or anything with spaces or punctuation is refused. The rule cannot prove a value is
not identifying; it stops the usual slips (typing the name, or the hospital number, into the box).
"""

from __future__ import annotations

import re

from edge_runtime.errors import ConfigError

MAX_CHARS = 16  # DICOM StudyID is SH: at most 16 characters
PATTERN = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_-]{{0,{MAX_CHARS - 1}}}")
RULE = (
    f"a study ID is a short pseudonym such as BX-0042: 1-{MAX_CHARS} letters, digits, '-' or '_', "
    "with at least one letter and one digit, never a name or a hospital number"
)


def check_study_id(value, where: str = "--study-id") -> str:
    """``value`` as a study ID, or ``ConfigError`` (one line) naming ``where`` and the rule."""
    text = value if isinstance(value, str) else None
    ok = (
        text is not None
        and PATTERN.fullmatch(text) is not None
        and any(c.isdigit() for c in text)
        and any(c.isalpha() for c in text)
    )
    if not ok:
        raise ConfigError(f"{where} {value!r} refused: {RULE}")
    return text
