"""case.yaml key by key as typed structs: types, ranges and defaults of every key.

``registration/case.py`` converts a case.yaml with these (unknown keys, wrong types and ranges
are one-line ``ConfigError`` naming the file and the key) and then resolves what needs the file
system (paths, ids). The commented example with every key is ``case_example.py``; a test checks
it against these structs. The captured cases ``sonomap live --cases`` writes carry ``capture:``
(free-form provenance) and a ``pathology:`` template with nulls for the lab to fill in.
"""

# no `from __future__ import annotations`: the annotations are the checked types, read as objects
from typing import Any, Literal

from edge_runtime.typed_config import Rule, Section, described, number

DEFAULT_CANCER_CLASSES = (
    "Tumor",
    "Tumour",
    "Cancer",
    "Carcinoma",
    "Invasive carcinoma",
    "DCIS",
    "Malignant",
    "_0",
    "_1",
)
DEFAULT_IGNORE_CLASSES = (
    "Stroma",
    "Other",
    "Normal",
    "Benign",
    "Necrosis",
    "Immune cells",
    "Region*",
    "Ignore*",
    "Tissue",
    "Fat",
)
DEFAULT_EXCLUDE_CLASSES = ("_2", "Exclusion", "Exclude")
TIP_ENDS = ("left", "right", "top", "bottom")
SLIDE_READERS = ("auto", "tifffile", "openslide")
DEFAULT_GAUGE = 14
# The sampled band's width is the core's diameter. Core needles run from 22G (0.72 mm outside, a core
# of ~0.4 mm) to 8G and the 7G vacuum-assisted probes (4.2 and 4.6 mm outside); these limits keep half
# the thinnest core and ~30 % over the widest cannula. Outside them is a unit slip (µm typed as mm)
# or a typo: a band a few pixels wide or none at all, labelled as if it were the core, or one wider
# than the image, which the QA view cannot draw.
MIN_CORE_WIDTH_MM = 0.2
MAX_CORE_WIDTH_MM = 6.0
XY = 2

COORDINATE = number("a number")
POINT = described(tuple[COORDINATE, COORDINATE], "a pixel point [x, y]")
POSITIVE = number("a positive number", gt=0)
OPTIONAL_POSITIVE = described(POSITIVE | None, "a positive number")
FILE = described(str | None, "a file path")
NAMES = described(str | list[str] | None, "a list of class names")
NAME = described(str | int | None, "a name (text)")
CORE_WIDTH_WANT = f"a core width in mm in [{MIN_CORE_WIDTH_MM:g}, {MAX_CORE_WIDTH_MM:g}] (22G to 7G devices)"
CORE_WIDTH = number(CORE_WIDTH_WANT, ge=MIN_CORE_WIDTH_MM, le=MAX_CORE_WIDTH_MM)


def _box_ordered(v: Any) -> bool:
    return v is None or (v[2] > v[0] and v[3] > v[1])


class UltrasoundSection(Section, kw_only=True):
    image: FILE  # PNG/JPEG, or DICOM with SequenceOfUltrasoundRegions
    # PNG/JPEG: required; DICOM: read from the file. [x, y] is a list with a length Rule, so a wrong
    # length is refused with the message of this key
    mm_per_pixel: described(
        POSITIVE | list[POSITIVE] | None,
        "a positive number or [x, y]",
        Rule(lambda v: not isinstance(v, list) or len(v) == XY),
    ) = None
    frame: number("an integer >= 0", integer=True, ge=0) = 0  # DICOM cine: the post-fire frame
    dataset_image: FILE = None  # the frame that goes into the dataset (default: image)
    dataset_frame: number("an integer >= 0", integer=True, ge=0) = 0


# Biopsy needles' gauges: vacuum-assisted 7-11 G, core 12-18 G, fine needles up to 25 G. Outside
# this a gauge is a typo (99, 0), even when notch, offset and width are given and it sets nothing.
MIN_GAUGE, MAX_GAUGE = 7, 25
GAUGE = number(
    f"an integer in [{MIN_GAUGE}, {MAX_GAUGE}] (a biopsy needle's gauge)",
    integer=True,
    ge=MIN_GAUGE,
    le=MAX_GAUGE,
)


class NeedleSection(Section):
    tip: described(Literal["auto"] | tuple[COORDINATE, COORDINATE], "auto or a pixel point [x, y]") = "auto"
    shaft: described(POINT | None, "a pixel point [x, y]") = None  # a second point on the shaft
    gauge: GAUGE = DEFAULT_GAUGE  # 14 | 16 | 18: sets the defaults below
    notch_mm: OPTIONAL_POSITIVE = None  # sampling-notch length
    tip_offset_mm: described(number("", ge=0) | None, "a number >= 0") = None  # tip -> notch's distal end
    width_mm: described(CORE_WIDTH | None, CORE_WIDTH_WANT) = None  # sampled band width (core diameter)


class TractSection(Section, kw_only=True):
    start: POINT  # proximal end of the notch (pixels)
    end: POINT  # distal end (towards the needle tip)
    width_mm: CORE_WIDTH


class PathologySection(Section, kw_only=True):
    wsi: FILE  # the core's slide: pyramidal TIFF/OME-TIFF/SVS/NDPI/MRXS, DICOM WSI or a thumbnail
    annotations: FILE  # QuPath GeoJSON or ASAP XML (level-0 pixels)
    roi: described(  # one section of the core, in level-0 pixels
        tuple[COORDINATE, COORDINATE, COORDINATE, COORDINATE] | None,
        "[x0, y0, x1, y1] in level-0 pixels with x1 > x0, y1 > y0",
        Rule(_box_ordered),
    ) = None
    mpp: OPTIONAL_POSITIVE = None  # microns per level-0 pixel, when the file has none
    annotation_mpp: OPTIONAL_POSITIVE = None  # microns per annotation pixel (default: level-0 mpp)
    cancer_classes: NAMES = None  # None: DEFAULT_CANCER_CLASSES
    ignore_classes: NAMES = None  # None: DEFAULT_IGNORE_CLASSES
    exclude_classes: NAMES = None  # None: DEFAULT_EXCLUDE_CLASSES
    tip_end: described(Literal[TIP_ENDS], f"one of {TIP_ENDS}") = "left"
    shrinkage: OPTIONAL_POSITIVE = None  # slide length / fresh length
    fresh_length_mm: OPTIONAL_POSITIVE = None
    flip_across: described(bool, "true or false") = False
    reader: described(Literal[SLIDE_READERS], f"one of {SLIDE_READERS}") = "auto"
    fragments: described(number("", integer=True, ge=1) | None, "a whole number >= 1") = None
    patient_id: NAME = None  # the pseudonymous patient id the lab enters (registration/cases/identity.py)


class CaseFile(Section, kw_only=True):
    """A whole case.yaml."""

    id: NAME = None  # default: the folder name
    patient_id: NAME = None  # default: id
    source: described(dict[str, Any] | None, "a mapping") = None
    ultrasound: UltrasoundSection
    needle: described(Literal["auto"] | NeedleSection | None, "'auto' or a mapping") = None
    tract: described(TractSection | None, "a mapping with start, end and width_mm") = None
    pathology: PathologySection
    notes: Any = None
    capture: described(dict[str, Any] | None, "a mapping") = None  # see docs/biopsy-capture.md
