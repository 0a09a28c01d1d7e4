"""The pre-fire frame of a captured case as a DICOM Secondary Capture image.

Input: a :class:`~registration.pacs.captured_case.CapturedCase` and its :class:`Subject`. Output: a
highdicom ``SCImage`` (8-bit MONOCHROME2, the ROI only, Modality US).

Why Secondary Capture and not US Image Storage: the capture comes off the scanner's video output, so
the scanner's calibration regions (US Region Calibration, the only place US Image Storage carries a
physical scale) are unknown; the SC Image module carries Pixel Spacing with its calibration type
(PS3.3 C.8.6.2), which is what ``mm_per_pixel`` is. The probe's orientation is unknown too, so
Patient Orientation (Type 2C) is left empty rather than guessed.
"""

from __future__ import annotations

import highdicom as hd

from edge_runtime import __version__
from registration.pacs.captured_case import CapturedCase
from registration.pacs.dicom_text import LO, LT, dicom_text
from registration.pacs.subject import MANUFACTURER, Subject, identify, uid

MODALITY = "US"
CONVERSION_TYPE = "DV"  # PS3.3 C.8.6.1: digitized video (the capture card)
PLACEHOLDER_ORIENTATION = ("P", "F")  # highdicom insists on one; cleared again below
SPACING_DESCRIPTION = "sonomap mm_per_pixel of the ROI"


def image_uids(case: CapturedCase, subject: Subject) -> tuple[str, str]:
    """(series, instance) UIDs of the case's image."""
    return (
        uid(subject.study_id, case.case_id, "image-series"),
        uid(subject.study_id, case.case_id, "image"),
    )


def prefire_image(case: CapturedCase, subject: Subject) -> hd.sc.SCImage:
    """The SC image of ``case.prefire`` (see module docstring)."""
    series_uid, instance_uid = image_uids(case, subject)
    # PixelSpacing is (between rows, between columns): y first
    spacing = None if case.mm_per_pixel is None else (case.mm_per_pixel[1], case.mm_per_pixel[0])
    when = case.prefire_utc
    image = hd.sc.SCImage(
        pixel_array=case.prefire,
        photometric_interpretation="MONOCHROME2",
        bits_allocated=8,
        coordinate_system="PATIENT",
        patient_orientation=PLACEHOLDER_ORIENTATION,
        study_instance_uid=subject.study_uid,
        series_instance_uid=series_uid,
        series_number=case.number,
        sop_instance_uid=instance_uid,
        instance_number=1,
        manufacturer=dicom_text(MANUFACTURER, LO),
        patient_id=subject.study_id,  # set again, cleaned, by identify()
        study_id=subject.study_id,
        study_date=subject.study_date,
        pixel_spacing=spacing,
    )
    image.PatientOrientation = ""  # unknown for a hand-held probe (Type 2C: present, empty)
    image.Laterality = ""  # the breast is paired and the side is not captured (Type 2C: present, empty)
    identify(image, subject)
    image.Modality = MODALITY
    image.ConversionType = CONVERSION_TYPE
    image.SecondaryCaptureDeviceManufacturer = dicom_text(MANUFACTURER, LO)
    image.SecondaryCaptureDeviceSoftwareVersions = dicom_text(__version__, LO)
    if spacing is not None:
        image.PixelSpacingCalibrationType = "GEOMETRY"
        image.PixelSpacingCalibrationDescription = dicom_text(SPACING_DESCRIPTION, LO)
    # capture.trigger is case.yaml text: cleaned of control characters and cut to LO's length
    image.SeriesDescription = dicom_text(f"biopsy {case.number} pre-fire ({case.trigger})", LO)
    image.ContentDate = when.strftime("%Y%m%d")
    image.ContentTime = when.strftime("%H%M%S.%f")
    image.AcquisitionDateTime = when.strftime("%Y%m%d%H%M%S.%f+0000")
    image.TimezoneOffsetFromUTC = "+0000"  # the capture times are UTC
    image.ImageComments = dicom_text(f"sonomap case {case.case_id}, frame {case.prefire_frame}", LT)
    return image
