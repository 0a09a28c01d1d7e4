"""Core-needle device geometry the runtime needs before a fire (the expected-yield band).

``GAUGE_DEFAULTS`` equals registration's (registration/tract.py, which models the sampled band
from the post-fire tip); a test keeps the two identical, since edge_runtime must not import
registration. ``THROW_MM``: how far the tip jumps when the device fires (common 14G/16G
spring-loaded devices: 22 mm throw, ~19 mm notch).
"""

from __future__ import annotations

GAUGE_DEFAULTS = {
    14: {"width_mm": 1.6, "notch_mm": 19.0, "tip_offset_mm": 5.0, "od_mm": 2.11},
    16: {"width_mm": 1.2, "notch_mm": 19.0, "tip_offset_mm": 4.5, "od_mm": 1.65},
    18: {"width_mm": 0.9, "notch_mm": 19.0, "tip_offset_mm": 4.0, "od_mm": 1.27},
}
THROW_MM = 22.0


def band_along_tip(gauge: int, throw_mm: float = THROW_MM) -> tuple[float, float]:
    """The band the fire will sample, as (near, far) mm along the needle axis from the tip *now*
    (positive = deeper): after the throw the notch lies tip_offset..tip_offset+notch behind the tip."""
    geo = GAUGE_DEFAULTS[gauge]
    return throw_mm - geo["tip_offset_mm"] - geo["notch_mm"], throw_mm - geo["tip_offset_mm"]
