"""Who and when a case's DICOM objects are about: the pseudonymous subject and the generated UIDs.

Input: a :class:`~registration.pacs.captured_case.CapturedCase`, the study ID it is filed under and
the site's ``privacy.study_id_pattern`` (None: no site format). Output: a :class:`Subject`
(PatientID / PatientName / StudyID all from the study ID, the study date, the de-identification
statement) and :func:`uid` for every UID the objects need.

UIDs are derived from the study ID, the case id and the object's role (``2.25.`` + a name-based
UUID, PS3.5 B.2 and RFC 4122), so exporting a case twice yields the same instances and the PACS keeps one copy, not two.
One study per study ID and capture day: the cores of one session share it. Nothing site-specific goes
into a UID, so any machine exporting a case gives the same ones; two sites issuing the same pseudonyms
into one PACS would share study UIDs, so pseudonyms must be unique per PACS (docs/pacs-export.md).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from pydicom.uid import UID

from edge_runtime.biopsy.study_id import check_study_id
from registration.pacs.captured_case import CapturedCase
from registration.pacs.dicom_text import LO, PN, SH, dicom_text

# PS3.15 E.1.1: what the objects say about their de-identification (DeidentificationMethod is LO: 64)
DEIDENTIFICATION_METHOD = "sonomap: pseudonymous study ID; ROI pixels only"
MANUFACTURER = "sonomap"
BODY_PART = "BREAST"
UID_NAMESPACE = uuid.uuid5(
    uuid.NAMESPACE_URL, "https://sonomap/pacs-export"
)  # fixed: the UIDs must not change


@dataclass(frozen=True)
class Subject:
    study_id: str  # also PatientID, PatientName and StudyID
    study_date: date
    study_uid: UID


def subject_of(case: CapturedCase, study_id: str, pattern: str | None = None) -> Subject:
    """The subject ``case`` is filed under. ``study_id`` is checked again, against the general rule
    and the site's ``pattern`` (it may come from case.yaml, written before the site set its format,
    or by hand): ConfigError naming capture.study_id, without the value, before any object exists."""
    study_id = check_study_id(study_id, f"{case.folder / 'case.yaml'}: capture.study_id", pattern)
    day = case.prefire_utc.date()
    return Subject(study_id, day, uid(study_id, day.isoformat(), "study"))


def uid(*parts: str) -> UID:
    """A UID that is the same for the same ``parts`` and different for any other: ``2.25.`` and the
    integer of the UUID (version 5, SHA-1 name-based) of the parts."""
    return UID(f"2.25.{uuid.uuid5(UID_NAMESPACE, '/'.join(parts)).int}")


def identify(ds, subject: Subject) -> None:
    """Fill the patient and study attributes of ``ds`` from the subject, and state the de-identification.
    No birth date, sex, age or other identity: those stay empty (Type 2) or absent."""
    ds.PatientID = dicom_text(subject.study_id, LO)
    ds.PatientName = dicom_text(subject.study_id, PN)
    ds.StudyID = dicom_text(subject.study_id, SH)
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = dicom_text(DEIDENTIFICATION_METHOD, LO)
    ds.BodyPartExamined = BODY_PART
