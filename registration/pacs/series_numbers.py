"""Series numbers that stay apart within a study: two cases filed in one DICOM study with one capture
number are refused before ``sonomap cases export`` sends or writes anything.

The image's DICOM series number is the case's capture number and its segmentation's is 1000 + that
(:mod:`registration.pacs.image_object`, :mod:`registration.pacs.segmentation`), so the number a
radiologist reads as "biopsy 1" is the core's. Two capture sessions filed under one study ID both
count from 1 (the cart was restarted mid-procedure, or one pseudonym was given to two patients):
exported as they are, the study holds two "biopsy 1" series and nobody can tell which core each
pathology result belongs to. Renumbering one session silently would break the tie between the number
and the core's specimen label, and a PACS does not take back what it has filed, so the export stops
and the operator corrects the case.yaml that is wrong.

A DICOM study is one study ID on one UTC day (:mod:`registration.pacs.subject`), and the capture
numbers a study ID's cores per day (edge_runtime/biopsy/numbering.py), so numbers are compared
within (study ID, UTC day of ``capture.pre_fire.utc``): one patient's cores of two days are two
studies, each with its own "biopsy 1".

Input: the case folders and the ``--study-id`` fallback. Output: none; a ConfigError naming the case
ids (never the folders, whose names may be the patient's, nor the study ID, which may be a hand-typed
name) otherwise. A case.yaml that does not load, or lacks these keys, is left out: that case fails
on its own turn with read_case's error.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from edge_runtime.errors import ConfigError, InputError
from edge_runtime.yamlfile import read_yaml_mapping
from registration.pacs.captured_case import CAPTURE_ID, CASE_FILE, FIRST_NUMBER, MAX_NUMBER, utc_of
from registration.pacs.segmentation import SEG_SERIES_OFFSET

CLASHES_NAMED = 5  # the refusal's line names this many clashing numbers, then how many more


def refuse_repeated_numbers(folders: list[Path], fallback: str | None) -> None:
    """ConfigError when two of ``folders`` would be filed in one study (their ``capture.study_id``,
    else ``fallback``, and the UTC day of their ``capture.pre_fire.utc``) with one ``capture.number``."""
    by_key: dict[tuple[str, str, int], list[str]] = defaultdict(list)
    for folder in folders:
        key_and_id = _study_number_id(folder / CASE_FILE, fallback)
        if key_and_id is not None:
            by_key[key_and_id[0]].append(key_and_id[1])
    clashes = [(number, sorted(ids)) for (_, _, number), ids in by_key.items() if len(ids) > 1]
    if not clashes:
        return
    clashes.sort()
    named = "; ".join(
        f"capture {number}: {', '.join(ids)} (series {number} and {SEG_SERIES_OFFSET + number})"
        for number, ids in clashes[:CLASHES_NAMED]
    )
    more = f"; and {len(clashes) - CLASHES_NAMED} more numbers" if len(clashes) > CLASHES_NAMED else ""
    raise ConfigError(
        "cases filed under one study ID on one UTC day with one capture number would share DICOM "
        f"series numbers: {named}{more} (two capture sessions that numbered alike, or one study ID given to two "
        "patients); nothing was sent or written: correct capture.study_id or capture.number in the "
        "case.yaml of each case that is wrong, then export again"
    )


def _study_number_id(path: Path, fallback: str | None) -> tuple[tuple[str, str, int], str] | None:
    """((study ID, UTC day, capture number), case id) as the export will file the case, or None when
    the case.yaml cannot say (read_case then fails that case with the reason)."""
    try:
        doc = read_yaml_mapping(path, "captured case")
    except (ConfigError, OSError):
        return None
    capture, case_id = doc.get("capture"), doc.get("id")
    if not isinstance(capture, dict) or not isinstance(case_id, str) or not CAPTURE_ID.fullmatch(case_id):
        return None
    study, number = capture.get("study_id"), capture.get("number")
    study = fallback if study is None or not str(study) else str(study)
    if study is None or not isinstance(number, int) or isinstance(number, bool):
        return None
    if not FIRST_NUMBER <= number <= MAX_NUMBER:
        return None
    pre = capture.get("pre_fire")
    utc = pre.get("utc") if isinstance(pre, dict) else None
    try:
        day = utc_of(utc, "utc").date().isoformat() if isinstance(utc, str) else None
    except InputError:
        day = None
    return None if day is None else ((study, day, number), case_id)
