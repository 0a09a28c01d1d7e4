"""The pseudonymous study ID an operator enters at session start (``--study-id``, the viewer's field).

Input: the text as typed. Output: the same text when it is a short pseudonym, else a ``ConfigError``
naming where it came from. The ID becomes ``capture.study_id`` in each case.yaml and, on export, the
DICOM PatientID, PatientName and StudyID (docs/pacs-export.md), so it must never be a real identity.
A pseudonym like ``BX-0042`` passes; a name (``Jane Doe``, ``Doe^Jane``), a bare record number
(``12345678``), anything with spaces or punctuation, and two words with a birth year or date
(``Doe_Jane_1970``, ``DOE-J-19700101``: the way case folders are often named) are refused. The rule cannot prove a value is
not identifying; it stops the usual slips (typing the name, or the hospital number, into the box).
A site that issues pseudonyms in one format sets it as ``privacy.study_id_pattern`` (a regular
expression, e.g. ``BX-[0-9]{4}``): an ID must then also match it whole, which stops a name with a
digit in it (``DOE1970``) that the general rule lets through.
"""

from __future__ import annotations

import re

from edge_runtime.biopsy.numbering import CASE_NAME
from edge_runtime.errors import ConfigError

MAX_CHARS = 16  # DICOM StudyID is SH: at most 16 characters
PATTERN = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_-]{{0,{MAX_CHARS - 1}}}")
# Name + birth date, as folders are named after patients (Doe_Jane_1970): a word of two or more
# letters (a surname), another run of letters (a given name or an initial) and a year 1900-2099,
# alone or as YYYYMMDD. A pseudonym scheme has one prefix (BX-0042, SITE2024-001) and a capture's
# time stamp only single letters (20261130T034535Z), so they pass.
WORD = re.compile(r"[A-Za-z]+")
NAME_WORD_LETTERS = 2
BIRTH_DATE = re.compile(r"(?<![0-9])(19|20)[0-9]{2}([01][0-9][0-3][0-9])?(?![0-9])")
NAME_WORDS = 2
RULE = (
    f"a study ID is a short pseudonym such as BX-0042: 1-{MAX_CHARS} letters, digits, '-' or '_', "
    "with at least one letter and one digit, never a name, a birth date or a hospital number"
)


def _why(value) -> str | None:
    """What is wrong with ``value`` as a study ID, without repeating it; None when it is fine."""
    if not isinstance(value, str):
        return f"not text ({type(value).__name__})"
    if not value:
        return "empty"
    if len(value) > MAX_CHARS:
        return f"{len(value)} characters"
    if any(c.isspace() for c in value):
        return "contains a space"
    if value[0] in "-_":
        return "starts with '-' or '_'"
    if PATTERN.fullmatch(value) is None:
        return "contains a character other than a letter, a digit, '-' or '_'"
    if not any(c.isdigit() for c in value):
        return "has no digit"
    if not any(c.isalpha() for c in value):
        return "has no letter"
    words = WORD.findall(value)
    named = len(words) >= NAME_WORDS and max(map(len, words)) >= NAME_WORD_LETTERS
    if named and BIRTH_DATE.search(value):
        return "reads as a name with a birth year or date"
    return None


def check_study_id(value, where: str = "--study-id", pattern: str | None = None) -> str:
    """``value`` as a study ID, or ``ConfigError`` (one line) naming ``where``, what is wrong and the
    rule. ``pattern``: the site's ``privacy.study_id_pattern``, matched whole. The refused value is
    not repeated: it may be the patient's name, and errors reach logs."""
    why = _why(value)
    if why is not None:
        raise ConfigError(f"{where} refused ({why}): {RULE}")
    if pattern is not None and re.fullmatch(pattern, value) is None:
        raise ConfigError(
            f"{where} refused (not in this site's format, privacy.study_id_pattern {pattern!r}): {RULE}"
        )
    return value


def check_folder_id(name: str, where: str) -> str:
    """A case folder's ``name`` as the id of a case.yaml that has none: a capture's folder name (its UTC
    time and number: it names no one) as it is, any other name only when it passes the study ID's rule
    (:func:`check_study_id`: ConfigError naming ``where``, never repeating the name)."""
    if CASE_NAME.match(name):
        return name
    return check_study_id(name, where)


class StudyIdSlot:
    """The running session's study ID, set at start (``--study-id``) or from the viewer
    (``POST /study-id``) and read by the capture when it writes a case. A plain attribute: a str
    assignment is atomic, and a capture takes whichever ID was set when it was made."""

    def __init__(self) -> None:
        self.value: str | None = None
        self.enabled = False  # set by the capture observer: without --cases an ID has nothing to name
        self.pattern: str | None = None  # privacy.study_id_pattern, set with the capture observer

    def set(self, value, where: str) -> str:
        self.value = check_study_id(value, where, self.pattern)
        return self.value


STUDY_ID = StudyIdSlot()
