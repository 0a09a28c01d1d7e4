"""Slide scale (microns per level-0 pixel): where each reader finds it, and when to trust it.

Input: an open tifffile ``TiffFile`` or OpenSlide's property mapping, and ``pathology.mpp``
from case.yaml. Output: ``(mpp, mpp_y, source)`` from a file, where ``mpp`` is across (x), ``mpp_y``
down (None when the source gives one value for both) and ``source`` says where they came from (it
goes into report.json); then the ``(mpp, source)`` to use.

The file's own value wins when it is plausible; ``pathology.mpp`` fills in when the file has
none (or only a screen default such as 72 dpi); when both exist and disagree, the case fails
with both numbers, because a wrong scale silently stretches every label. So does a file whose pixels
are not square (its y scale more than 2 % from its x scale): the registration, the annotation's scale
and the level choice take one scale for both axes, so such a slide is refused, naming both values.
"""

from __future__ import annotations

import argparse
import re

from edge_runtime.errors import InputError

UM_PER_CM, UM_PER_INCH = 1e4, 25400.0
MIN_PLAUSIBLE_MPP = 0.05  # finer than any light microscope resolves: a unit mistake
MAX_PLAUSIBLE_MPP = 50.0  # a "72 dpi" default gives 352.8 µm/px: a screen, not a slide scale
MPP_TOLERANCE = 0.02
OME_SOURCE = "OME PhysicalSizeX"
RESOLUTION_UNIT_INCH, RESOLUTION_UNIT_CM = 2, 3
SVS_MPP = re.compile(r"\bMPP\s*=\s*([0-9.]+)")
# An OME image's <Pixels> start tag (any namespace prefix); its attributes are read one by one, in
# whatever order the writer put them. Regular expressions, not an XML parser: only these attributes
# are wanted, and an untrusted file's entity tricks cannot reach them.
OME_PIXELS = re.compile(r"<(?:[\w.-]+:)?Pixels\b[^>]*>")
OME_ATTRIBUTE = r'\s{0}="([^"]*)"'
OME_UNITS = {"µm": 1.0, "um": 1.0, "\u03bcm": 1.0, "nm": 1e-3, "mm": 1e3}


def plausible(mpp: float | None) -> bool:
    return mpp is not None and MIN_PLAUSIBLE_MPP <= mpp <= MAX_PLAUSIBLE_MPP


def mpp_argument(text: str) -> float:
    """argparse type of ``--wsi-mpp``: a slide scale that registration will accept, so a simulated
    slide is never written at a scale ``sonomap register`` refuses later."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of µm per pixel, got {text!r}") from None
    if not plausible(value):
        raise argparse.ArgumentTypeError(
            f"must be between {MIN_PLAUSIBLE_MPP:g} and {MAX_PLAUSIBLE_MPP:g} µm per pixel "
            f"(the slide scales registration accepts), got {text}"
        )
    return value


def _float(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _attribute(tag: str, name: str) -> str | None:
    m = re.search(OME_ATTRIBUTE.format(name), tag)
    return m.group(1) if m else None


def ome_pixels(ome: str, height: int, width: int) -> str:
    """The <Pixels> tag of the OME image that is the slide: the one of the level-0 page's size (a macro
    or label image, often listed first, has its own scale), or the only one; empty when none fits."""
    tags = OME_PIXELS.findall(ome)
    for tag in tags:
        if (_attribute(tag, "SizeX"), _attribute(tag, "SizeY")) == (str(width), str(height)):
            return tag
    return tags[0] if len(tags) == 1 else ""


def ome_mpp(tag: str, axis: str) -> float | None:
    """One axis' OME PhysicalSize in µm, None when absent, in an unknown unit, or implausible."""
    factor = OME_UNITS.get(_attribute(tag, f"PhysicalSize{axis}Unit") or "µm")
    val = _float(_attribute(tag, f"PhysicalSize{axis}"))
    return val * factor if factor and val and plausible(val * factor) else None


def _resolution_mpp(tags, name: str, um: float) -> float | None:
    """µm per pixel from a resolution tag (pixels per ``um`` microns), None when absent or zero."""
    if name not in tags:
        return None
    num, den = tags[name].value
    return um * den / num if num > 0 and den > 0 else None


def resolution_tags_mpp(page, axis: str = "X") -> float | None:
    """µm per pixel along ``axis`` from a page's X/YResolution and ResolutionUnit (inch or cm), None
    when absent."""
    tags = page.tags
    if "ResolutionUnit" not in tags:
        return None
    um = {RESOLUTION_UNIT_CM: UM_PER_CM, RESOLUTION_UNIT_INCH: UM_PER_INCH}.get(
        int(tags["ResolutionUnit"].value)
    )
    return _resolution_mpp(tags, f"{axis}Resolution", um) if um else None


def tiff_mpp(tif, page) -> tuple[float | None, float | None, str]:
    """(mpp across, mpp down or None, source) from an open TiffFile and its slide's level-0 ``page``, not
    the file's first page (a macro image may come first): SVS ImageDescription (one value), OME
    PhysicalSizeX/Y, resolution tags."""
    m = SVS_MPP.search(page.description or "")
    if m and plausible(_float(m.group(1))):
        return float(m.group(1)), None, "Aperio ImageDescription MPP"
    pixels = ome_pixels(tif.ome_metadata or "", int(page.shape[0]), int(page.shape[1]))
    val = ome_mpp(pixels, "X")
    if val is not None:
        return val, ome_mpp(pixels, "Y"), OME_SOURCE
    val = resolution_tags_mpp(page)
    if val is not None:
        if plausible(val):
            return val, resolution_tags_mpp(page, "Y"), "TIFF resolution tags"
        return None, None, f"TIFF resolution tags ignored ({val:.4g} µm/px is not a slide scale)"
    return None, None, "none in the file"


def ome_conflict(found: float | None, source: str, page) -> str | None:
    """The report warning for an OME-TIFF that contradicts itself: its level-0 resolution tags give a
    plausible scale more than MPP_TOLERANCE from the OME PhysicalSizeX that is read (one of the two
    stretches every label); None when they agree, are absent or are a screen default."""
    tags_mpp = resolution_tags_mpp(page) if source == OME_SOURCE and found is not None else None
    if not plausible(tags_mpp) or abs(tags_mpp - found) <= MPP_TOLERANCE * found:
        return None
    return (
        f"the slide's scale contradicts itself: OME PhysicalSizeX gives {found:.4f} µm/px, its TIFF resolution "
        f"tags {tags_mpp:.4f} µm/px; the OME value is used: check it (pathology.mpp must then agree with it)"
    )


def openslide_mpp(props) -> tuple[float | None, float | None, str]:
    """(mpp across, mpp down or None, source) from OpenSlide's properties (openslide.mpp-x/y: vendor
    metadata, DICOM PixelSpacing, TIFF tags)."""
    val = _float(props.get("openslide.mpp-x"))
    if val is None:
        return None, None, "none in the file"
    if not plausible(val):
        return None, None, f"openslide.mpp-x ignored ({val:.4g} µm/px is not a slide scale)"
    return (
        val,
        _float(props.get("openslide.mpp-y")),
        f"openslide.mpp-x ({props.get('openslide.vendor', 'unknown')})",
    )


def check_square(mpp_x: float | None, mpp_y: float | None, source: str, where: str) -> None:
    """InputError naming ``where`` when the file's pixels are not square: its plausible y scale more than
    MPP_TOLERANCE from its x scale (module docstring). Nothing to check when either is missing, or the
    y scale is no slide scale (a lone placeholder tag)."""
    if mpp_x is None or not plausible(mpp_y) or abs(mpp_y - mpp_x) <= MPP_TOLERANCE * mpp_x:
        return
    raise InputError(
        f"{where}: non-square pixels: the file says {mpp_x:.4f} µm/px across and {mpp_y:.4f} µm/px down "
        f"({source}); the registration takes one scale for both axes: resample the slide to square pixels "
        "(e.g. with vips) or scan it again"
    )


def resolve_mpp(found: float | None, found_source: str, given: float | None, where: str) -> tuple[float, str]:
    """The level-0 mpp to use and where it came from; raise when missing or inconsistent."""
    if found is None and given is None:
        raise InputError(
            f"{where}: missing mpp (slide scale: {found_source}); "
            "give pathology.mpp (microns per level-0 pixel) in case.yaml"
        )
    if found is None:
        return float(given), "case.yaml pathology.mpp"
    if given is not None and abs(found - given) > MPP_TOLERANCE * found:
        raise InputError(
            f"{where}: inconsistent scales: pathology.mpp={given} but the file says {found:.4f} µm/px "
            f"({found_source}); remove pathology.mpp to use the file's value, or correct it"
        )
    return float(found), found_source
