"""The patient identifiers in a DICOM header, as the redactor (:mod:`edge_runtime.privacy`) registers them.

Input: a pydicom Dataset (its header only). Output: the strings to redact: each identifying value
as written (name, ID, other IDs, birth date, accession number, ...), each part of a person's name in
the spellings a file name gives it, and a birth date in its usual other forms. Files: none.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

MIN_REDACT_CHARS = 3  # shorter values ("F", "45") would redact random digits everywhere, except as below

# DICOM keywords whose values identify the patient or the visit (registered for log redaction).
IDENTIFIER_VALUE_KEYWORDS = (
    "PatientName",
    "PatientID",
    "OtherPatientIDs",
    "OtherPatientNames",
    "PatientBirthDate",
    "AccessionNumber",
    "PatientAddress",
    "ReferringPhysicianName",
    "OperatorsName",
    "InstitutionName",
)


# Sequences whose items hold more of them: scanners write the patient's other IDs in the sequence,
# the older OtherPatientIDs attribute above being retired.
IDENTIFIER_SEQUENCE_KEYWORDS = {"OtherPatientIDsSequence": ("PatientID",)}


# Of those, the person names (VR PN): their parts are registered one by one, since a file or folder
# name writes "Doe^Jane Marie" as DOE_JANE_MARIE or Jane-Marie.Doe.
PERSON_NAME_KEYWORDS = ("PatientName", "OtherPatientNames", "ReferringPhysicianName", "OperatorsName")
# PN separates components with ^ and its alphabetic/ideographic/phonetic groups with =; a component
# may hold spaces, hyphens, commas or full stops ("van der Berg", "Jane-Marie", "Doe, J.").
NAME_PART_SEPARATORS = re.compile(r"[\^=\s,.\-]+")
# An apostrophe inside a name part (O'Brien, D'Angelo) is dropped by file names (OBrien) or made a
# separator (O_Brien): both spellings are registered.
APOSTROPHES = re.compile(r"['\u2019\u02bc`\u00b4]")
# Letters that have no accent to drop (NFKD leaves them whole), in ASCII; and the German and Nordic
# spellings that write an umlaut or ø as two letters (Müller -> Mueller as well as Muller). Lower
# case only: the redactor matches any case.
PLAIN_LETTERS = str.maketrans({"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ł": "l", "þ": "th"})
TWO_LETTER_FORMS = PLAIN_LETTERS | str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ø": "oe", "å": "aa"})
ASCII_FORMS = (PLAIN_LETTERS, TWO_LETTER_FORMS)
MIN_NAME_PART_CHARS = 2  # "Li", "Wu": a name part this short is redacted only as a whole word
DICOM_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")  # DA: YYYYMMDD
# How a birth date is written in file names, reports and other systems' text.
DATE_FORMS = (
    "{y}-{m}-{d}",
    "{y}_{m}_{d}",
    "{y}.{m}.{d}",
    "{y}/{m}/{d}",
    "{d}.{m}.{y}",
    "{d}/{m}/{y}",
    "{m}/{d}/{y}",
    "{d}-{m}-{y}",
    "{d}{m}{y}",
)


def dicom_identifiers(ds: Any) -> list[str]:
    """The identifier strings of a Dataset (name, id, birth date, ...) for log redaction: each value
    as written, each part of a person's name, and a date also in its other usual spellings. Short
    name parts (2 characters) come back too; :meth:`RedactingFilter.register` matches them as whole
    words only."""
    values, name_parts = [], []
    found = [(keyword, ds.get(keyword)) for keyword in IDENTIFIER_VALUE_KEYWORDS]
    for sequence, keywords in IDENTIFIER_SEQUENCE_KEYWORDS.items():
        found += [(k, item.get(k)) for item in ds.get(sequence) or () for k in keywords]
    for keyword, value in found:
        if value is None:
            continue
        items = value if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]
        for item in items:
            text = str(item).strip()
            values.append(text)
            if keyword in PERSON_NAME_KEYWORDS:
                name_parts += [
                    spelling
                    for part in NAME_PART_SEPARATORS.split(text)
                    for spelling in name_spellings(part)
                    if len(spelling) >= MIN_NAME_PART_CHARS
                ]
            date = DICOM_DATE.fullmatch(text)
            if date is not None:
                y, m, d = date.groups()
                values += [form.format(y=y, m=m, d=d) for form in DATE_FORMS]
    return list(dict.fromkeys([v for v in values if len(v) >= MIN_REDACT_CHARS] + name_parts))


def name_spellings(part: str) -> list[str]:
    """``part`` of a person's name and the ways a file name may write it in ASCII: without its
    apostrophes (O'Brien -> OBrien, plus O and Brien), without its accents (Jürgen -> Jurgen) and
    transliterated (Jürgen -> Juergen, Søren -> Soeren). The caller drops the parts too short to
    register."""
    pieces = [part, APOSTROPHES.sub("", part), *APOSTROPHES.split(part)]
    spellings: dict[str, str] = {}  # lower case -> the first spelling (the redactor ignores case)
    for piece in pieces:
        for spelling in [piece] + [_without_accents(piece.lower().translate(t)) for t in ASCII_FORMS]:
            spellings.setdefault(spelling.lower(), spelling)
    return list(spellings.values())


def _without_accents(text: str) -> str:
    """``text`` with its combining marks dropped (NFKD: é -> e + U+0301 -> e)."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
