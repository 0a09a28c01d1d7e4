"""Pathologist annotations: QuPath GeoJSON or ASAP XML -> cancer polygons in level-0 pixels.

Input: the annotation file and the class-name lists of case.yaml (cancer / ignored /
exclusion). Output: ``Annotations`` with polygons (a polygon = [exterior ring, hole rings...],
each ring an float array [N, 2] of x, y in annotation pixels), and ``rasterise`` to draw
them into a mask at any pyramid level.

Class names are mapped explicitly: a name that is neither cancer, ignored nor exclusion
fails loudly (a typo must not silently turn cancer into background). Names ending in ``*``
match by prefix. Unclassified objects are ignored with a warning, and so are points and lines
(GeoJSON Point/LineString, ASAP Dot/PointSet/Measurement): they mark no area. An ASAP outline
(Polygon/Spline/Rectangle) of a cancer or exclusion class with fewer than 3 points, or an ASAP
annotation Type this reader does not know, is refused naming the annotation.

Encoding: GeoJSON is UTF-8 (a UTF-8 byte-order mark is allowed) or UTF-16/32 with its mark; XML
follows its byte-order mark or declaration. The format is told by the first character after the mark.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.errors import InputError
from registration.annotation_text import first_character

SUBPIXEL_BITS = 4  # cv2.fillPoly fixed-point precision: 1/16 pixel
# Largest |coordinate| accepted: rasterise's fixed-point int32 (x * 2**SUBPIXEL_BITS) must not
# overflow, and no scanned slide is near this wide (level 0 is ~1e5 px); beyond it is a broken file
MAX_COORDINATE = 2 ** (31 - SUBPIXEL_BITS - 1)
ANNOTATION_TYPES = {"annotation", "PathAnnotationObject", None}
ASAP_OUTLINES = ("Polygon", "Spline", "Rectangle")  # ASAP Types that enclose an area
ASAP_NO_AREA = ("Dot", "PointSet", "Measurement")  # points and a ruler line
ASAP_DEFAULT_TYPE = "Polygon"  # an Annotation without a Type attribute (hand-written files)
MIN_OUTLINE_POINTS = 3


@dataclass
class Annotations:
    cancer: list = field(default_factory=list)  # polygons counted as cancer
    exclude: list = field(default_factory=list)  # polygons cut out of cancer (ASAP _2, exclusion)
    n_objects: int = 0
    warnings: list = field(default_factory=list)


def _role(name: str | None, cancer, ignore, exclude, where: str) -> str | None:
    if name is None:
        return None
    for role, names in (("cancer", cancer), ("exclude", exclude), ("ignore", ignore)):
        if any(fnmatchcase(name.lower(), pat.lower()) for pat in names):
            return role
    raise InputError(
        f"{where}: unknown annotation class {name!r}; add it to pathology.cancer_classes "
        f"or pathology.ignore_classes (cancer classes now: {list(cancer)})"
    )


def _ring(coords, where: str) -> np.ndarray:
    try:
        arr = np.asarray(coords, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: malformed coordinates ({exc})") from exc
    if arr.ndim != 2 or arr.shape[1] < 2 or len(arr) < 3 or not np.isfinite(arr).all():
        raise InputError(f"{where}: a polygon ring needs >= 3 finite [x, y] points")
    if np.abs(arr[:, :2]).max() > MAX_COORDINATE:
        raise InputError(
            f"{where}: a coordinate beyond {MAX_COORDINATE} pixels ({np.abs(arr[:, :2]).max():g}); "
            "not a slide's pixel coordinates"
        )
    return arr[:, :2]


def _polygon(rings, where: str) -> list:
    """[exterior, holes...]; an empty polygon is refused: it may be an outline the export lost."""
    if not isinstance(rings, list) or not rings:
        raise InputError(f"{where}: a polygon without rings (empty 'coordinates')")
    return [_ring(r, where) for r in rings]


def _geometry_polygons(geom, where: str) -> list:
    if not isinstance(geom, dict) or "type" not in geom:
        raise InputError(f"{where}: feature without a valid 'geometry'")
    kind = geom["type"]
    if kind == "Polygon":
        return [_polygon(geom.get("coordinates"), where)]
    if kind == "MultiPolygon":
        polys = geom.get("coordinates")
        if not isinstance(polys, list) or not polys:
            raise InputError(f"{where}: a MultiPolygon without polygons (empty 'coordinates')")
        return [_polygon(poly, where) for poly in polys]
    if kind == "GeometryCollection":
        return [p for g in geom.get("geometries", []) for p in _geometry_polygons(g, where)]
    return []  # points and lines carry no area


def _no_area(where: str, kind: str, name: str) -> str:
    """The warning for a point or line annotation of a cancer or exclusion class (same in both formats)."""
    return f"{where}: a {kind} of class {name!r} marks no area (points or a line): ignored"


def _class_name(props: dict) -> str | None:
    cls = props.get("classification")
    if isinstance(cls, str):
        return cls  # legacy v0.2 files
    if isinstance(cls, dict):
        if "name" in cls:
            return str(cls["name"])
        if cls.get("names"):
            return str(cls["names"][0])  # derived class "Tumor: Positive" counts as its base class
    return None


def load_geojson(path: Path, cancer, ignore, exclude) -> Annotations:
    where = str(path)
    try:
        # bytes: json detects UTF-8 (with or without a byte-order mark) and UTF-16/32 by their marks,
        # where read_text() would use the machine's locale
        data = json.loads(Path(path).read_bytes())
    except OSError as exc:
        raise InputError(f"{where}: cannot read annotations ({exc.strerror})") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{where}: malformed GeoJSON ({exc})") from exc
    except RecursionError as exc:  # [[[ ... ]]] thousands deep: json's parser recurses per level
        raise InputError(f"{where}: malformed GeoJSON (nested too deeply)") from exc
    try:
        return _geojson_annotations(data, where, cancer, ignore, exclude)
    except RecursionError as exc:  # GeometryCollections nested hundreds deep
        raise InputError(f"{where}: malformed GeoJSON (geometries nested too deeply)") from exc


def _geojson_annotations(data, where: str, cancer, ignore, exclude) -> Annotations:
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        features = data.get("features")
    elif isinstance(data, dict) and data.get("type") == "Feature":
        features = [data]
    elif isinstance(data, list):
        features = data
    else:
        raise InputError(
            f"{where}: malformed GeoJSON: expected a FeatureCollection, Feature or list of Features"
        )
    if not isinstance(features, list):
        raise InputError(f"{where}: malformed GeoJSON: 'features' is not a list")
    out = Annotations()
    for i, feat in enumerate(features):
        fwhere = f"{where} feature {i}"
        if not isinstance(feat, dict):
            raise InputError(f"{fwhere}: not a JSON object")
        props = feat.get("properties") or {}
        if not isinstance(props, dict):  # found by tests/test_fuzz.py
            raise InputError(f"{fwhere}: 'properties' is not a JSON object")
        obj_type = props.get(
            "objectType", feat.get("id") if feat.get("id") == "PathAnnotationObject" else None
        )
        if obj_type is not None and not isinstance(obj_type, str):
            raise InputError(f"{fwhere}: 'objectType' must be text, got {type(obj_type).__name__}")
        if obj_type not in ANNOTATION_TYPES:
            continue  # detections/cells/tiles are not the pathologist's outline
        out.n_objects += 1
        try:  # malformed nesting (a number where a list/object belongs): found by tests/test_fuzz.py
            role = _role(_class_name(props), cancer, ignore, exclude, fwhere)
            if role is None:
                out.warnings.append(f"{fwhere}: unclassified annotation ignored")
                continue
            polys = _geometry_polygons(feat.get("geometry"), fwhere)
        except (TypeError, KeyError, IndexError, AttributeError) as exc:
            raise InputError(f"{fwhere}: malformed feature ({type(exc).__name__}: {exc})") from exc
        if not polys and role != "ignore":
            out.warnings.append(_no_area(fwhere, str(feat["geometry"]["type"]), _class_name(props)))
        if role == "cancer":
            out.cancer.extend(polys)
        elif role == "exclude":
            out.exclude.extend(polys)
    return out


def load_asap_xml(path: Path, cancer, ignore, exclude) -> Annotations:
    where = str(path)
    try:
        root = ET.parse(str(path)).getroot()
    except ET.ParseError as exc:
        raise InputError(f"{where}: malformed ASAP XML ({exc})") from exc
    if root.tag != "ASAP_Annotations":
        raise InputError(f"{where}: malformed ASAP XML: root is <{root.tag}>, expected <ASAP_Annotations>")
    out = Annotations()
    for i, ann in enumerate(root.iter("Annotation")):
        awhere = f"{where} Annotation {i} ({ann.get('Name')})"
        out.n_objects += 1
        group = ann.get("PartOfGroup")
        role = _role(group if group not in (None, "None", "") else None, cancer, ignore, exclude, awhere)
        if role is None:
            out.warnings.append(f"{awhere}: annotation without a group ignored")
            continue
        kind = ann.get("Type", ASAP_DEFAULT_TYPE)
        if kind not in ASAP_OUTLINES + ASAP_NO_AREA:
            raise InputError(
                f"{awhere}: unknown annotation Type {kind!r} (ASAP's are {list(ASAP_OUTLINES + ASAP_NO_AREA)})"
            )
        if kind in ASAP_NO_AREA:
            if role != "ignore":
                out.warnings.append(_no_area(awhere, kind, group))
            continue
        try:
            pts = sorted(
                (
                    (int(c.get("Order", 0)), float(c.get("X")), float(c.get("Y")))
                    for c in ann.iter("Coordinate")
                ),
                key=lambda t: t[0],
            )
        except (TypeError, ValueError) as exc:
            raise InputError(f"{awhere}: malformed Coordinate ({exc})") from exc
        if role == "ignore":
            continue
        if len(pts) < MIN_OUTLINE_POINTS:
            # an outline the export lost (<Coordinates/>) must not silently leave the cancer out
            raise InputError(
                f"{awhere}: a {kind} of class {group!r} with {len(pts)} point(s); an outline needs "
                f">= {MIN_OUTLINE_POINTS}"
            )
        poly = [_ring([(x, y) for _, x, y in pts], awhere)]
        (out.cancer if role == "cancer" else out.exclude).append(poly)
    return out


def load_annotations(path: str | Path, cancer, ignore, exclude) -> Annotations:
    """Dispatch on content: XML (``<`` after any byte-order mark) -> ASAP, otherwise GeoJSON."""
    path = Path(path)
    if first_character(path) == "<":
        ann = load_asap_xml(path, cancer, ignore, exclude)
    else:
        ann = load_geojson(path, cancer, ignore, exclude)
    if ann.n_objects == 0:
        ann.warnings.append(
            f"{path}: empty annotation file (no annotation objects): the core is labelled cancer-free"
        )
    return ann


def _ring_area(ring: np.ndarray) -> float:
    """|shoelace area| in float64 (cv2.contourArea works in float32: large coordinates overflow)."""
    x, y = ring[:, 0], ring[:, 1]
    with np.errstate(over="ignore", invalid="ignore"):  # an inf/NaN area is polygon_area's error
        return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2


def polygon_area(polygons: list, where: str) -> float:
    """Total area (annotation pixels^2) of polygons, holes subtracted; counts what lies off the slide
    too. InputError naming ``where`` (the annotation file) when it is not a finite number: an
    infinite or NaN area would silently pass the "annotation outside the tissue" check."""
    total = 0.0
    for poly in polygons:
        rings = [_ring_area(r) for r in poly]
        total += rings[0] - sum(rings[1:])
    if not math.isfinite(total):
        raise InputError(
            f"{where}: the annotated cancer area is not a finite number; coordinates out of range"
        )
    return total


def rasterise(
    polygons: list, shape: tuple[int, int], scale: float, value: int = 1, out: np.ndarray | None = None
) -> np.ndarray:
    """Fill polygons (holes cut out) into a uint8 mask; coordinates are multiplied by ``scale``.

    Pixel centres sit at integer coordinates, so level-0 point x maps to x * scale - 0.5 + 0.5.
    """
    mask = np.zeros(shape, np.uint8) if out is None else out
    factor = float(1 << SUBPIXEL_BITS)
    for poly in polygons:
        rings = [np.round((r * scale - 0.5) * factor).astype(np.int32).reshape(-1, 1, 2) for r in poly]
        tmp = np.zeros(shape, np.uint8)
        cv2.fillPoly(tmp, rings[:1], 1, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)
        if len(rings) > 1:
            cv2.fillPoly(tmp, rings[1:], 0, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)
        mask[tmp > 0] = value
    return mask
