"""All DICOM objects of one captured case: the pre-fire image, and the prediction's segmentation
when the case saved one. Input: a case, the study ID to file it under, the segmentation kind and the
site's ``privacy.study_id_pattern`` (None: none). Output: a list of pydicom datasets, image first
(see docs/pacs-export.md); ConfigError, before any object is made, for a study ID the rule or the
pattern refuses."""

from __future__ import annotations

from dataclasses import dataclass

from pydicom import Dataset

from registration.pacs.captured_case import CapturedCase
from registration.pacs.image_object import prefire_image
from registration.pacs.segmentation import prediction_segmentation
from registration.pacs.subject import subject_of


@dataclass(frozen=True)
class CaseObjects:
    case: CapturedCase
    study_id: str
    datasets: list[Dataset]

    @property
    def kinds(self) -> list[str]:
        return [ds.Modality for ds in self.datasets]


def case_objects(
    case: CapturedCase, study_id: str, kind: str = "binary", pattern: str | None = None
) -> CaseObjects:
    subject = subject_of(case, study_id, pattern)
    image = prefire_image(case, subject)
    datasets: list[Dataset] = [image]
    if case.prediction is not None:
        datasets.append(prediction_segmentation(case, image, subject, kind))
    return CaseObjects(case, subject.study_id, datasets)
