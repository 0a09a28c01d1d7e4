"""Pathologist annotations: QuPath GeoJSON or ASAP XML -> cancer polygons in level-0 pixels.

Input: the annotation file and the class-name lists of case.yaml (cancer / ignored /
exclusion). Output: ``Annotations`` with polygons (a polygon = [exterior ring, hole rings...],
each ring an float array [N, 2] of x, y in annotation pixels), which
:func:`registration.annotation_raster.rasterise` draws into a mask at any pyramid level.

Class names are mapped explicitly: a name that is neither cancer, ignored nor exclusion
fails loudly (a typo must not silently turn cancer into background). Names match literally (case
aside; QuPath names may hold ``[ ] ?``), except that a trailing ``*`` matches by prefix. An object
of an ignored class is skipped before its geometry is read, in both formats. Unclassified objects
are ignored with a warning, and so are points and lines (GeoJSON Point/LineString, ASAP
Dot/PointSet/Measurement): they mark no area. An ASAP outline (Polygon/Spline/Rectangle) of a
cancer or exclusion class with fewer than 3 points, or of an ASAP Type this reader does not know,
is refused naming the annotation. GeoJSON detections, cells, tiles and TMA cores are skipped, and an
object type QuPath does not know is refused (annotations_geojson.py); so is an ASAP element where ASAP
writes another (annotations_asap.py).

Encoding: GeoJSON is UTF-8 (a UTF-8 byte-order mark is allowed) or UTF-16/32 with its mark; XML
follows its byte-order mark or declaration. The format is told by the first character after the mark
(``<``: ASAP XML; ``{`` or ``[``: GeoJSON) or, for a file that is neither (empty, not text), by its
suffix (``.xml``: ASAP XML).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_runtime.errors import InputError
from registration.annotation_holes import check_holes_inside
from registration.annotation_raster import MAX_COORDINATE, UNNAMED
from registration.annotation_text import first_character
from registration.annotations_asap import asap_annotations, asap_points, read_asap_xml
from registration.annotations_geojson import (
    class_name,
    geojson_features,
    geometry_rings,
    is_outline,
    read_geojson,
    refuse_duplicated,
)

PREFIX_WILDCARD = "*"  # a class pattern ending in it matches by prefix; nothing else is a pattern
ASAP_OUTLINES = ("Polygon", "Spline", "Rectangle")  # ASAP Types that enclose an area
ASAP_NO_AREA = ("Dot", "PointSet", "Measurement")  # points and a ruler line
ASAP_DEFAULT_TYPE = "Polygon"  # an Annotation without a Type attribute (hand-written files)
MIN_OUTLINE_POINTS = 3
# an outline whose every point lies within half a pixel of one line encloses no pixel's centre: a
# line, which the rasteriser would still paint as a row of cancer pixels
MIN_OFF_LINE_PX = 0.5


class Polygons(list):
    """Polygons read from one annotation file, which ``where`` names in rasterise's errors (the level's
    scale is known only there)."""

    def __init__(self, where: str = UNNAMED):
        super().__init__()
        self.where = where


@dataclass
class Annotations:
    where: str = UNNAMED  # the annotation file
    cancer: Polygons = field(init=False)  # polygons counted as cancer
    exclude: Polygons = field(init=False)  # polygons cut out of cancer (ASAP _2, exclusion)
    n_objects: int = 0
    n_skipped: int = 0  # GeoJSON detections, cells, tiles, TMA cores: not outlines
    warnings: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.cancer, self.exclude = Polygons(self.where), Polygons(self.where)


def _class_matches(name: str, pattern: str) -> bool:
    """Case-insensitive and literal, but for a trailing ``*`` (prefix): not fnmatch, for which a class
    named 'Tumor [IDC]' could never be listed."""
    name, pattern = name.lower(), pattern.lower()
    if pattern.endswith(PREFIX_WILDCARD):
        return name.startswith(pattern[: -len(PREFIX_WILDCARD)])
    return name == pattern


def _role(name: str | None, cancer, ignore, exclude, where: str) -> str | None:
    """The role of class ``name``: the list naming it exactly, else the list whose wildcard matches it
    (so ``exclude_classes: [Tumor excluded]`` beats ``cancer_classes: ['Tumor*']``). InputError when
    two lists claim it alike, since either choice could paint excluded tissue as cancer or drop cancer."""
    if name is None:
        return None
    lists = {"cancer_classes": cancer, "exclude_classes": exclude, "ignore_classes": ignore}
    exact = [
        key
        for key, names in lists.items()
        if any(not pat.endswith(PREFIX_WILDCARD) and _class_matches(name, pat) for pat in names)
    ]
    claims = exact or [key for key, names in lists.items() if any(_class_matches(name, pat) for pat in names)]
    if len(claims) > 1:
        raise InputError(
            f"{where}: annotation class {name!r} matches both pathology.{claims[0]} and pathology.{claims[1]}; "
            "name it in one list only"
        )
    if claims:
        return claims[0].removesuffix("_classes")
    raise InputError(
        f"{where}: unknown annotation class {name!r}; add it to pathology.cancer_classes "
        f"or pathology.ignore_classes (cancer classes now: {list(cancer)})"
    )


def unclassified(where: str, why: str) -> str:
    """The error for an outline without a class: it cannot be told from a tumour left unlabelled."""
    return (
        f"{where}: an outline that {why}; give it a class (one of pathology.cancer_classes, or of "
        "pathology.ignore_classes for tissue that is not cancer) and export the annotation again"
    )


def _numbers(point) -> bool:
    """Whether a point is a list of JSON numbers (bool is an int in Python, but not a coordinate)."""
    return isinstance(point, (list, tuple)) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in point
    )


def _first_other(points: np.ndarray) -> np.ndarray:
    """The first point that differs from ``points[0]`` (``points[0]`` itself when none does)."""
    return points[(points != points[0]).any(axis=1).argmax()]


def _distinct(points: np.ndarray) -> int:
    """How many distinct points ``points`` holds, counted up to MIN_OUTLINE_POINTS (3): linear, where
    np.unique sorts a ring of a million points for seconds."""
    second = _first_other(points)
    if (second == points[0]).all():
        return 1
    third = (points != points[0]).any(axis=1) & (points != second).any(axis=1)
    return 3 if third.any() else 2


def _ring(coords, where: str) -> np.ndarray:
    # numbers only: numpy would read "12" as 12.0 and true as 1.0, where the file has no coordinate
    if isinstance(coords, (list, tuple)) and not all(_numbers(point) for point in coords):
        raise InputError(f"{where}: malformed coordinates (not all numbers: text, true/false or null)")
    try:
        arr = np.asarray(coords, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: malformed coordinates ({exc})") from exc
    except OverflowError as exc:  # a JSON integer of hundreds of digits: no float holds it
        raise InputError(
            f"{where}: a coordinate beyond {MAX_COORDINATE} pixels (a number of hundreds of digits); "
            "not a slide's pixel coordinates"
        ) from exc
    if arr.ndim != 2 or arr.shape[1] < 2 or len(arr) < 3 or not np.isfinite(arr).all():
        raise InputError(f"{where}: a polygon ring needs >= 3 finite [x, y] points")
    # a closed ring repeats its first point last (GeoJSON): 3 positions are 2 points, no area, which
    # would drop a cancer outline without a word; so are 5 positions going back and forth between 2
    distinct = _distinct(arr[:, :2])
    if distinct < MIN_OUTLINE_POINTS:
        raise InputError(
            f"{where}: a polygon ring needs >= 3 distinct points (a closed ring: 4 positions, the last "
            f"repeating the first), got {len(arr)} positions, {distinct} distinct"
        )
    if np.abs(arr[:, :2]).max() > MAX_COORDINATE:
        raise InputError(
            f"{where}: a coordinate beyond {MAX_COORDINATE} pixels ({np.abs(arr[:, :2]).max():g}); "
            "not a slide's pixel coordinates"
        )
    if _off_line_px(arr[:, :2]) < MIN_OFF_LINE_PX:  # distinct points on one line: a line drawn as cancer
        raise InputError(f"{where}: a polygon ring whose points all lie on one line encloses no area")
    return arr[:, :2]


def _off_line_px(points: np.ndarray) -> float:
    """How far, in pixels, the point farthest from the line through the first point and the first
    point distinct from it lies from that line (0 for a ring of collinear points)."""
    direction = _first_other(points) - points[0]
    offsets = points - points[0]
    cross = offsets[:, 0] * direction[1] - offsets[:, 1] * direction[0]
    return float(np.abs(cross).max() / np.hypot(*direction))


def _no_area(where: str, kind: str, name: str) -> str:
    """The warning for a point or line annotation of a cancer or exclusion class (same in both formats)."""
    return f"{where}: a {kind} of class {name!r} marks no area (points or a line): ignored"


def load_geojson(path: Path, cancer, ignore, exclude) -> Annotations:
    where = str(path)
    data = read_geojson(path)
    try:
        return _geojson_annotations(geojson_features(data, where), where, cancer, ignore, exclude)
    except RecursionError as exc:  # GeometryCollections nested hundreds deep
        raise InputError(f"{where}: malformed GeoJSON (geometries nested too deeply)") from exc


def _geojson_annotations(features: list, where: str, cancer, ignore, exclude) -> Annotations:
    out = Annotations(where)
    for i, feat in enumerate(features):
        fwhere = f"{where} feature {i}"
        if not isinstance(feat, dict):
            raise InputError(f"{fwhere}: not a JSON object")
        props = feat.get("properties") or {}
        if not isinstance(props, dict):  # found by tests/test_fuzz.py
            raise InputError(f"{fwhere}: 'properties' is not a JSON object")
        refuse_duplicated(feat, "feature", fwhere)
        refuse_duplicated(props, "properties", fwhere)
        if not is_outline(feat, props, fwhere):
            out.n_skipped += 1  # detections/cells/tiles are not the pathologist's outline
            continue
        out.n_objects += 1
        try:  # malformed nesting (a number where a list/object belongs): found by tests/test_fuzz.py
            name = class_name(props, fwhere)
            role = _role(name, cancer, ignore, exclude, fwhere)
            if role == "ignore":  # unread, as in ASAP XML: an ignored outline's damage changes nothing
                continue
            polys = [
                [_ring(r, fwhere) for r in rings] for rings in geometry_rings(feat.get("geometry"), fwhere)
            ]
            check_holes_inside(polys, fwhere)
            if role is None:
                if polys:  # left out, a tumour outlined but not classified would make the core benign
                    raise InputError(unclassified(fwhere, "has no classification"))
                out.warnings.append(
                    f"{fwhere}: unclassified annotation without an area (points or a line) ignored"
                )
                continue
        except (TypeError, KeyError, IndexError, AttributeError) as exc:
            raise InputError(f"{fwhere}: malformed feature ({type(exc).__name__}: {exc})") from exc
        if not polys:
            out.warnings.append(_no_area(fwhere, str(feat["geometry"]["type"]), name))
        (out.cancer if role == "cancer" else out.exclude).extend(polys)
    return out


def load_asap_xml(path: Path, cancer, ignore, exclude) -> Annotations:
    where = str(path)
    out = Annotations(where)
    for i, ann in enumerate(asap_annotations(read_asap_xml(path), where)):
        awhere = f"{where} Annotation {i} ({ann.get('Name')})"
        out.n_objects += 1
        group = ann.get("PartOfGroup")
        role = _role(group if group not in (None, "None", "") else None, cancer, ignore, exclude, awhere)
        if role == "ignore":  # unread, as in GeoJSON
            continue
        kind = ann.get("Type", ASAP_DEFAULT_TYPE)
        if kind not in ASAP_OUTLINES + ASAP_NO_AREA:
            raise InputError(
                f"{awhere}: unknown annotation Type {kind!r} (ASAP's are {list(ASAP_OUTLINES + ASAP_NO_AREA)})"
            )
        if role is None and kind in ASAP_OUTLINES:  # as in GeoJSON: it may be the tumour, unlabelled
            raise InputError(unclassified(awhere, "is in no group (PartOfGroup)"))
        if role is None:
            out.warnings.append(f"{awhere}: annotation without a group and without an area ignored")
            continue
        if kind in ASAP_NO_AREA:
            out.warnings.append(_no_area(awhere, kind, group))
            continue
        pts = asap_points(ann, awhere)  # sorted by Order
        if len(pts) < MIN_OUTLINE_POINTS:
            # an outline the export lost (<Coordinates/>) must not silently leave the cancer out
            raise InputError(
                f"{awhere}: a {kind} of class {group!r} with {len(pts)} point(s); an outline needs "
                f">= {MIN_OUTLINE_POINTS}"
            )
        poly = [_ring(pts, awhere)]
        (out.cancer if role == "cancer" else out.exclude).append(poly)
    return out


def load_annotations(path: str | Path, cancer, ignore, exclude) -> Annotations:
    """Dispatch on content: XML (``<`` after any byte-order mark) -> ASAP, JSON (``{`` or ``[``) ->
    GeoJSON; a file whose content tells neither (empty, not text) by its suffix: ``.xml`` -> ASAP, any
    other -> GeoJSON, so that its error names the format the file claims."""
    path = Path(path)
    first = first_character(path)
    # content first; a file it does not tell (empty, neither "<", "{" nor "[") by its suffix
    if first == "<" or (first not in ("{", "[") and path.suffix.lower() == ".xml"):
        ann = load_asap_xml(path, cancer, ignore, exclude)
    else:
        ann = load_geojson(path, cancer, ignore, exclude)
    if ann.n_objects == 0:
        skipped = f"; {ann.n_skipped} detection/cell/tile/TMA core object(s) skipped" if ann.n_skipped else ""
        ann.warnings.append(
            f"{path}: empty annotation file (no annotation objects{skipped}): the core is labelled cancer-free"
        )
    return ann
