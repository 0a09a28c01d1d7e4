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
digit in it (``DOE1970``) that the general rule lets through. An ID that holds any value registered
for redaction (:mod:`edge_runtime.privacy`: the name, ID, birth date, accession number... of each DICOM
file read, so the source's own PatientID) is refused too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from edge_runtime import privacy
from edge_runtime.biopsy.numbering import CASE_NAME
from edge_runtime.errors import ConfigError

MAX_CHARS = 16  # DICOM StudyID is SH: at most 16 characters
# A case id names dataset files, not DICOM fields, and adds the core to the study's pseudonym
# (BX-0042-core2): room for that, not for a sentence.
MAX_CASE_ID_CHARS = 32
PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")  # the length is checked on its own
# Name + birth date, as folders are named after patients (Doe_Jane_1970): a word of two or more
# letters (a surname), another run of letters (a given name or an initial) and a year 1900-2099,
# alone or as YYYYMMDD. A pseudonym scheme has one prefix (BX-0042, SITE2024-001) and a capture's
# time stamp only single letters (20261130T034535Z), so they pass.
WORD = re.compile(r"[A-Za-z]+")
NAME_WORD_LETTERS = 2
BIRTH_DATE = re.compile(r"(?<![0-9])(19|20)[0-9]{2}([01][0-9][0-3][0-9])?(?![0-9])")
NAME_WORDS = 2
EXAMPLE_CASE_ID = "BX-0042-1"  # a study ID with the core's number
# Why an ID that holds a value registered for redaction is refused: in practice the patient's name,
# ID, birth date or accession number from the header of the DICOM file being read
# (privacy.register_dicom), typed or pasted into the box instead of the pseudonym.
IMAGE_IDENTIFIER = "holds an identifier from the DICOM header of the image being read"


def rule(max_chars: int = MAX_CHARS) -> str:
    """The rule an ID of at most ``max_chars`` characters follows, as error messages state it."""
    return (
        f"a study ID is a short pseudonym such as BX-0042: 1-{max_chars} letters, digits, '-' or '_', "
        "with at least one letter and one digit, never a name, a birth date or a hospital number"
    )


RULE = rule()


def _why(value, max_chars: int = MAX_CHARS) -> str | None:
    """What is wrong with ``value`` as a study ID, without repeating it; None when it is fine."""
    if not isinstance(value, str):
        return f"not text ({type(value).__name__})"
    if not value:
        return "empty"
    if len(value) > max_chars:
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
    if privacy.redact(value) != value:
        return IMAGE_IDENTIFIER
    return None


def check_study_id(
    value, where: str = "--study-id", pattern: str | None = None, max_chars: int = MAX_CHARS
) -> str:
    """``value`` as a study ID, or ``ConfigError`` (one line) naming ``where``, what is wrong and the
    rule. ``pattern``: the site's ``privacy.study_id_pattern``, matched whole. The refused value is
    not repeated: it may be the patient's name, and errors reach logs."""
    why = _why(value, max_chars)
    if why is not None:
        raise ConfigError(f"{where} refused ({why}): {rule(max_chars)}")
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
    return check_study_id(name, where, max_chars=MAX_CASE_ID_CHARS)


def case_id_of(case: Mapping, case_yaml: Path) -> str:
    """The case id of ``case_yaml`` (its mapping ``case``), the one rule register-batch, the case
    listing and the concordance share: its ``id`` when written, else its folder's name, either
    passing :func:`check_folder_id`. The id names the case's files in the dataset
    (``images/<id>.png``) and its rows in every report, so a hand-typed ``id: Doe_Jane_1970`` is
    refused as a folder so named is. ConfigError naming the file and what to change, never the value."""
    where = str(case_yaml)
    written = case.get("id")
    if written is None:
        folder = os.path.basename(os.path.dirname(os.path.abspath(case_yaml)))  # "case.yaml" alone too
        try:
            return check_folder_id(
                folder, f"{where}: the case folder's name (the case id, as case.yaml has no id)"
            )
        except ConfigError as exc:
            raise ConfigError(
                f"{exc}; set 'id:' in {where} to a pseudonym such as {EXAMPLE_CASE_ID}"
            ) from exc
    if not isinstance(written, str):
        raise ConfigError(
            f"{where}: id must be text, got a YAML {type(written).__name__}: put it in quotes "
            f"(id: '{EXAMPLE_CASE_ID}'); unquoted, 0042 reads as the number 34 and 1970-01-01 as a date"
        )
    try:
        return check_folder_id(written, f"{where}: id")
    except ConfigError as exc:
        raise ConfigError(f"{exc}; the id names the case's files in the dataset") from exc


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


CASE_FOLDER_WORDS = "the case's folder"


def without_case_folder(text: str, folder: Path) -> str:
    """``text`` (an error about one case) with the case folder's path left out: ``<folder>/case.yaml:
    ...`` becomes ``case.yaml: ...`` and the folder itself "the case's folder", however it was
    spelled (as given, absolute, through links). A folder's name may be a patient's (the reason
    :func:`case_id_of` exists); a report names the case by its id or place instead."""
    spellings = {str(folder), str(folder.absolute()), str(folder.resolve())}
    for spelled in sorted(spellings, key=len, reverse=True):
        text = text.replace(spelled + os.sep, "").replace(spelled, CASE_FOLDER_WORDS)
    return text
