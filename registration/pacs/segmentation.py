"""The live prediction of a captured case as a DICOM Segmentation of its pre-fire image.

Input: the case (its saved prediction), the Secondary Capture image it was computed on
(:mod:`registration.pacs.image_object`) and the kind: ``binary`` (the saved class-id mask, cancer
class; decodes back to exactly that mask) or ``fractional`` (the saved probability as a PROBABILITY
segmentation, 8-bit: within 1/255 of the 16-bit PNG). Output: a highdicom ``Segmentation`` with one
segment, "cancer (predicted)", whose algorithm is the model: its name and the sha256 of its file.

The source image has no frame of reference, so the segmentation has none either; it refers to the
image and shares its pixel grid. Its Pixel Measures are dropped: without a frame of reference the
standard does not need them, highdicom's reader refuses them without a Slice Thickness (which a 2-D
ultrasound frame does not have), and the spacing is on the referenced image.
"""

from __future__ import annotations

import warnings

import highdicom as hd
from pydicom.sr.codedict import codes

from edge_runtime import __version__
from registration.pacs.captured_case import CapturedCase
from registration.pacs.dicom_text import LO, dicom_text
from registration.pacs.subject import MANUFACTURER, Subject, identify, uid

KINDS = ("binary", "fractional")
SEGMENT_LABEL = "cancer (predicted)"
SEG_SERIES_OFFSET = 1000  # the image series is the capture number; its segmentation 1000 + that
MAX_FRACTIONAL = 255  # 8-bit fractional values
SERIAL_NOT_RECORDED = "not recorded"  # the cart's serial is not in the case


def segment_description(case: CapturedCase) -> hd.seg.SegmentDescription:
    algorithm = hd.AlgorithmIdentificationSequence(
        name=dicom_text(case.model_name, LO),  # case.yaml text: cleaned and cut to LO
        version=dicom_text(case.model_sha256, LO),  # the model file's sha256 identifies the version
        family=codes.cid7162.ArtificialIntelligence,
    )
    return hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=dicom_text(SEGMENT_LABEL, LO),
        segmented_property_category=codes.cid7150.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Carcinoma,
        algorithm_type="AUTOMATIC",
        algorithm_identification=algorithm,
        anatomic_regions=[codes.SCT.Breast],
    )


def _segmentation(case: CapturedCase, image, subject: Subject, kind: str, pixels) -> hd.seg.Segmentation:
    return hd.seg.Segmentation(
        source_images=[image],
        pixel_array=pixels[None],
        segmentation_type=kind.upper(),
        fractional_type="PROBABILITY" if kind == "fractional" else None,
        max_fractional_value=MAX_FRACTIONAL,
        segment_descriptions=[segment_description(case)],
        series_instance_uid=uid(subject.study_id, case.case_id, kind, "seg-series"),
        series_number=SEG_SERIES_OFFSET + case.number,
        sop_instance_uid=uid(subject.study_id, case.case_id, kind, "seg"),
        instance_number=1,
        manufacturer=dicom_text(MANUFACTURER, LO),
        manufacturer_model_name=dicom_text(case.model_name, LO),
        software_versions=dicom_text(__version__, LO),
        device_serial_number=dicom_text(SERIAL_NOT_RECORDED, LO),
        content_description=dicom_text(f"live prediction, frame {case.prediction.frame}", LO),
        content_label="SONOMAP",
        omit_empty_frames=False,  # "no cancer predicted" is a result too: keep the empty frame
    )


def prediction_segmentation(
    case: CapturedCase, image, subject: Subject, kind: str = "binary"
) -> hd.seg.Segmentation:
    """The segmentation of ``image`` from ``case.prediction`` (see module docstring)."""
    if kind not in KINDS:
        raise ValueError(f"segmentation kind {kind!r}: expected one of {KINDS}")
    if case.prediction is None:
        raise ValueError(f"{case.folder}: the case has no saved prediction")
    pixels = case.prediction.mask if kind == "binary" else case.prediction.probability
    with warnings.catch_warnings():
        # the pseudonym is a one-component PatientName on purpose; highdicom warns about any such name
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name")
        seg = _segmentation(case, image, subject, kind, pixels)
    shared = seg.SharedFunctionalGroupsSequence[0]
    if "PixelMeasuresSequence" in shared:
        del shared.PixelMeasuresSequence
    seg.PatientOrientation = ""  # no frame of reference: General Image's Type 2C, as on the image
    seg.SoftwareVersions = [dicom_text(__version__, LO), dicom_text(case.model_sha256, LO)]  # highdicom: one
    identify(seg, subject)
    seg.SeriesDescription = dicom_text(f"biopsy {case.number} live prediction ({kind})", LO)
    return seg
