"""Keep patient identifiers out of recordings and logs; keep recordings private.

- :func:`scrub_dicom` removes identifying DICOM attributes (the patient, study, people
  and institution attributes of the PS3.15 basic confidentiality profile, every
  person-name (PN) element, and private tags) from a pydicom Dataset in place.
- :func:`safe_meta` filters a frame's ``meta`` dict before it is logged or recorded:
  identifier-like keys and raw DICOM datasets never leave the process.
- :class:`RedactingFilter` replaces identifier values seen in opened DICOM files with
  ``[REDACTED]`` in every log record (file names often carry patient names).
- :func:`make_private_dir` creates the recordings directory 0700 (and fixes a looser one).
"""
from __future__ import annotations

import logging
import os
import re
import stat
import threading
from pathlib import Path
from typing import Any, Iterable, Mapping

from edge_runtime.errors import ConfigError

PRIVATE_DIR_MODE = 0o700
REDACTED = "[REDACTED]"
MIN_REDACT_CHARS = 3  # shorter values ("F", "45") would redact random digits everywhere

# DICOM keywords that identify a patient, the people around them, or the visit.
IDENTIFYING_KEYWORDS = frozenset("""
PatientName PatientID IssuerOfPatientID OtherPatientIDs OtherPatientIDsSequence OtherPatientNames
PatientBirthDate PatientBirthTime PatientBirthName PatientMotherBirthName PatientAddress
PatientTelephoneNumbers PatientAge PatientSex PatientSize PatientWeight EthnicGroup Occupation
MilitaryRank BranchOfService MedicalRecordLocator PatientComments AdditionalPatientHistory
PatientReligiousPreference ResponsiblePerson ResponsibleOrganization PatientInsurancePlanCodeSequence
CountryOfResidence RegionOfResidence MedicalAlerts Allergies PregnancyStatus
ReferringPhysicianName ReferringPhysicianAddress ReferringPhysicianTelephoneNumbers
PerformingPhysicianName NameOfPhysiciansReadingStudy OperatorsName PhysiciansOfRecord
RequestingPhysician ScheduledPerformingPhysicianName
InstitutionName InstitutionAddress InstitutionalDepartmentName StationName DeviceSerialNumber
AccessionNumber StudyID StudyDate StudyTime SeriesDate SeriesTime AcquisitionDate AcquisitionTime
AcquisitionDateTime ContentDate ContentTime InstanceCreationDate InstanceCreationTime
StudyInstanceUID SeriesInstanceUID SOPInstanceUID FrameOfReferenceUID MediaStorageSOPInstanceUID
StudyDescription RequestAttributesSequence AdmissionID AdmittingDiagnosesDescription
""".split())
IDENTIFIER_VALUE_KEYWORDS = ("PatientName", "PatientID", "OtherPatientIDs", "OtherPatientNames",
                             "PatientBirthDate", "AccessionNumber", "PatientAddress",
                             "ReferringPhysicianName", "OperatorsName", "InstitutionName")
# meta keys that look like identifiers (case-insensitive substrings).
IDENTIFYING_KEY_PARTS = ("patient", "name", "birth", "accession", "institution", "physician",
                         "operator", "uid", "address", "phone", "dicom")


def scrub_dicom(ds: Any) -> Any:
    """Remove identifying attributes from a pydicom Dataset (and nested sequences) in place."""
    ds.remove_private_tags()
    _scrub(ds)
    file_meta = getattr(ds, "file_meta", None)
    if file_meta is not None and "MediaStorageSOPInstanceUID" in file_meta:
        del file_meta.MediaStorageSOPInstanceUID
    return ds


def _scrub(ds: Any) -> None:
    for elem in list(ds):
        if elem.keyword in IDENTIFYING_KEYWORDS or elem.VR == "PN":
            del ds[elem.tag]
        elif elem.VR == "SQ":
            for item in elem.value:
                _scrub(item)


def dicom_identifiers(ds: Any) -> list[str]:
    """The identifier strings of a Dataset (name, id, birth date, ...) for log redaction."""
    values = []
    for keyword in IDENTIFIER_VALUE_KEYWORDS:
        value = ds.get(keyword)
        if value is None:
            continue
        items = value if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]
        for item in items:
            text = str(item).strip()
            values.append(text)
            if "^" in text:  # DICOM PN: Family^Given^Middle -> each part on its own too
                values += [p for p in text.split("^") if p]
    return [v for v in values if len(v) >= MIN_REDACT_CHARS]


def _identifying_key(key: str) -> bool:
    low = key.lower()
    return key in IDENTIFYING_KEYWORDS or any(part in low for part in IDENTIFYING_KEY_PARTS)


def safe_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``meta`` without identifier-like keys or DICOM datasets (recursively)."""
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if _identifying_key(str(key)) or type(value).__name__ in ("Dataset", "FileDataset"):
            continue
        out[key] = safe_meta(value) if isinstance(value, Mapping) else value
    return out


class RedactingFilter(logging.Filter):
    """Replace registered identifier strings in log messages (installed on handlers)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None
        self._values: set[str] = set()

    def register(self, values: Iterable[str]) -> None:
        with self._lock:
            self._values |= {v for v in values if len(v) >= MIN_REDACT_CHARS}
            if self._values:
                alternatives = sorted(self._values, key=len, reverse=True)
                self._pattern = re.compile("|".join(map(re.escape, alternatives)), re.IGNORECASE)

    def redact(self, text: str) -> str:
        pattern = self._pattern
        return text if pattern is None else pattern.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        if self._pattern is not None:
            record.msg = self.redact(record.getMessage())
            record.args = None
        return True


REDACTOR = RedactingFilter()


def install_log_redaction(logger: logging.Logger | None = None) -> RedactingFilter:
    """Attach the process-wide redactor to every handler of ``logger`` (root by default)."""
    logger = logger or logging.getLogger()
    for handler in logger.handlers:
        if REDACTOR not in handler.filters:
            handler.addFilter(REDACTOR)
    return REDACTOR


def make_private_dir(path: str | Path) -> Path:
    """Create ``path`` (and parents) with mode 0700; tighten an existing looser directory.

    Raises ConfigError naming the path when it is not a directory we own."""
    path = Path(path)
    try:
        path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        st = path.stat()
        if not stat.S_ISDIR(st.st_mode):
            raise ConfigError(f"recordings directory {path}: not a directory")
        if st.st_uid != os.geteuid():
            raise ConfigError(f"recordings directory {path}: owned by uid {st.st_uid}, not us")
        if stat.S_IMODE(st.st_mode) != PRIVATE_DIR_MODE:
            os.chmod(path, PRIVATE_DIR_MODE)
    except FileExistsError as exc:
        raise ConfigError(f"recordings directory {path}: exists and is not a directory") from exc
    except PermissionError as exc:
        raise ConfigError(f"recordings directory {path}: permission denied") from exc
    return path
