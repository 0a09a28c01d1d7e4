"""Who and when a case's DICOM objects are about: the pseudonymous subject and the generated UIDs.

Input: a :class:`~registration.pacs.captured_case.CapturedCase` and the study ID it is filed under.
Output: a :class:`Subject` (PatientID / PatientName / StudyID all from the study ID, the study date,
the de-identification statement) and :func:`uid` for every UID the objects need.

UIDs are derived from the study ID, the case id and the object's role (``2.25.`` + a name-based
UUID, PS3.5 B.2 and RFC 4122), so exporting a case twice yields the same instances and the PACS keeps one copy, not two.
One study per study ID and capture day: the cores of one session share it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from pydicom.uid import UID

from edge_runtime.biopsy.study_id import check_study_id
from registration.pacs.captured_case import CapturedCase

# PS3.15 E.1.1: what the objects say about their de-identification (DeidentificationMethod is LO: 64)
DEIDENTIFICATION_METHOD = "sonomap: pseudonymous study ID; ROI pixels only"
MANUFACTURER = "sonomap"
BODY_PART = "BREAST"
LO_MAX_CHARS = 64  # PS3.5 6.2: a Long String (LO) value holds at most 64 characters
UID_NAMESPACE = uuid.uuid5(
    uuid.NAMESPACE_URL, "https://sonomap/pacs-export"
)  # fixed: the UIDs must not change


@dataclass(frozen=True)
class Subject:
    study_id: str  # also PatientID, PatientName and StudyID
    study_date: date
    study_uid: UID


def subject_of(case: CapturedCase, study_id: str) -> Subject:
    """The subject ``case`` is filed under (``study_id`` checked again: it may come from a file)."""
    study_id = check_study_id(study_id, f"{case.folder / 'case.yaml'}: capture.study_id")
    day = case.prefire_utc.date()
    return Subject(study_id, day, uid(study_id, day.isoformat(), "study"))


def uid(*parts: str) -> UID:
    """A UID that is the same for the same ``parts`` and different for any other: ``2.25.`` and the
    integer of the UUID (version 5, SHA-1 name-based) of the parts."""
    return UID(f"2.25.{uuid.uuid5(UID_NAMESPACE, '/'.join(parts)).int}")


def lo(text: str) -> str:
    """``text`` cut to an LO value's length: case.yaml text (the model name, the trigger) can be
    longer, and a longer value makes an invalid DICOM object."""
    return str(text)[:LO_MAX_CHARS]


def identify(ds, subject: Subject) -> None:
    """Fill the patient and study attributes of ``ds`` from the subject, and state the de-identification.
    No birth date, sex, age or other identity: those stay empty (Type 2) or absent."""
    ds.PatientID = subject.study_id
    ds.PatientName = subject.study_id
    ds.StudyID = subject.study_id
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = DEIDENTIFICATION_METHOD
    ds.BodyPartExamined = BODY_PART
