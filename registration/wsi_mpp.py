"""Slide scale (microns per level-0 pixel): where each reader finds it, and when to trust it.

Input: an open tifffile ``TiffFile`` or OpenSlide's property mapping, and ``pathology.mpp``
from case.yaml. Output: ``(mpp, source)``, where ``source`` says where the value came from
(it goes into report.json).

The file's own value wins when it is plausible; ``pathology.mpp`` fills in when the file has
none (or only a screen default such as 72 dpi); when both exist and disagree, the case fails
with both numbers, because a wrong scale silently stretches every label.
"""

from __future__ import annotations

import argparse
import re

from edge_runtime.errors import InputError

UM_PER_CM, UM_PER_INCH = 1e4, 25400.0
MIN_PLAUSIBLE_MPP = 0.05  # finer than any light microscope resolves: a unit mistake
MAX_PLAUSIBLE_MPP = 50.0  # a "72 dpi" default gives 352.8 µm/px: a screen, not a slide scale
MPP_TOLERANCE = 0.02
RESOLUTION_UNIT_INCH, RESOLUTION_UNIT_CM = 2, 3
SVS_MPP = re.compile(r"\bMPP\s*=\s*([0-9.]+)")
OME_MPP = re.compile(r'PhysicalSizeX="([0-9.eE+-]+)"(?:\s+PhysicalSizeXUnit="([^"]+)")?')
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


def tiff_mpp(tif) -> tuple[float | None, str]:
    """mpp from an open TiffFile: SVS ImageDescription, OME PhysicalSizeX, resolution tags."""
    page = tif.pages[0]
    m = SVS_MPP.search(page.description or "")
    if m and plausible(_float(m.group(1))):
        return float(m.group(1)), "Aperio ImageDescription MPP"
    m = OME_MPP.search(tif.ome_metadata or "")
    if m:
        factor = OME_UNITS.get(m.group(2) or "µm")
        val = _float(m.group(1))
        if factor and val and plausible(val * factor):
            return val * factor, "OME PhysicalSizeX"
    tags = page.tags
    if "XResolution" in tags and "ResolutionUnit" in tags:
        num, den = tags["XResolution"].value
        unit = int(tags["ResolutionUnit"].value)
        per_unit = num / den if num > 0 and den > 0 else 0.0
        um = {RESOLUTION_UNIT_CM: UM_PER_CM, RESOLUTION_UNIT_INCH: UM_PER_INCH}.get(unit)
        if um and per_unit > 0:
            val = um / per_unit
            if plausible(val):
                return val, "TIFF resolution tags"
            return None, f"TIFF resolution tags ignored ({val:.4g} µm/px is not a slide scale)"
    return None, "none in the file"


def openslide_mpp(props) -> tuple[float | None, str]:
    """mpp from OpenSlide's properties (openslide.mpp-x: vendor metadata, DICOM PixelSpacing, TIFF tags)."""
    val = _float(props.get("openslide.mpp-x"))
    if val is None:
        return None, "none in the file"
    if not plausible(val):
        return None, f"openslide.mpp-x ignored ({val:.4g} µm/px is not a slide scale)"
    return val, f"openslide.mpp-x ({props.get('openslide.vendor', 'unknown')})"


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
