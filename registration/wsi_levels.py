"""Which of a slide reader's levels form the slide's pyramid, and which of them serves a scale.

Input: the level shapes (height, width) and downsamples (level-0 pixels per level pixel, along x) a
reader reports, the level-0 mpp and the scale wanted. Output: the indices of the levels that are
reduced copies of level 0 (with the shapes of those that are not), and the level to read with the
integer shrink toward the scale.

A reader may list as a level an image that is no reduced copy of level 0: OpenSlide's generic-tiff
driver takes every tiled directory of the file as a level, so a tiled macro image (the whole glass
slide with its paper label, which often carries the patient's name) or label image lands among the
levels, sorted by width. Picked as the level to read, it would be drawn into qa.png as the slide,
and every level-0 coordinate would be scaled by its width alone. Such a level has another shape
(the glass slide, not the scanned region), so only levels whose aspect ratio is level 0's, up to
the rounding of their sizes, are used.
"""

from __future__ import annotations

LEVEL_TOLERANCE = 1.01  # odd level-0 sizes make a "2x" level 2.0004x
# A reduced level's height and width are level 0's divided by its downsample and rounded, each by up to a
# pixel; beyond that, this share of the level's size is allowed for a writer that rounds its levels up to
# whole tiles of a small level. A label or macro image (a 3:1 glass slide, a square label) is far off.
ASPECT_TOLERANCE = 0.02


def is_reduced_copy(shape: tuple[int, int], shape0: tuple[int, int]) -> bool:
    """Whether a level of ``shape`` (height, width) has level 0's (``shape0``) aspect ratio, up to the
    rounding of its size: h/h0 == w/w0, compared as h * w0 against w * h0 (level-0 px times level px)."""
    (h, w), (h0, w0) = shape, shape0
    rounding = h0 + w0  # each side of the level off by < 1 px, times the other side of level 0
    return abs(h * w0 - w * h0) <= rounding + ASPECT_TOLERANCE * w * h0


def pyramid_levels(level_shapes: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """(levels of the pyramid, levels that are not reduced copies of level 0); level 0 is always kept."""
    kept, dropped = [0], []
    for k, shape in enumerate(level_shapes[1:], start=1):
        (kept if is_reduced_copy(shape, level_shapes[0]) else dropped).append(k)
    return kept, dropped


def not_a_level(where: str, k: int, shape: tuple[int, int], shape0: tuple[int, int]) -> str:
    """The report warning for a level :func:`pyramid_levels` dropped."""
    (h, w), (h0, w0) = shape, shape0
    return (
        f"{where}: level {k} ({w}x{h} px) is not a reduced copy of level 0 ({w0}x{h0} px): another shape, "
        "e.g. a macro or label image the reader lists as a level; not used"
    )


def level_for(levels: list[int], downsamples: list[float], mpp0: float, target_mpp: float) -> tuple[int, int]:
    """(level, shrink): of ``levels``, the coarsest with mpp <= ``target_mpp``, then the integer shrink
    toward it; level 0 when every level is coarser."""
    ok = [i for i in levels if mpp0 * downsamples[i] <= target_mpp * LEVEL_TOLERANCE]
    k = max(ok, key=lambda i: downsamples[i]) if ok else 0
    return k, max(1, int(target_mpp * LEVEL_TOLERANCE / (mpp0 * downsamples[k])))
