"""QuPath GeoJSON structure: which features are outlines, their class names, and their raw rings.

annotations.py turns what this module reads into checked polygons and class roles; this module knows
only GeoJSON and QuPath's conventions (it imports nothing from annotations.py).

Object types: QuPath 0.3 and later name a feature's type in ``properties.objectType`` ("annotation",
"detection", "cell", "tile", "tmaCore", "root"; QuPath also reads ``object_type``, and so does this
module when ``objectType`` is absent). QuPath 0.2 and wsinfer name it in the feature's ``id``
("PathAnnotationObject", "PathDetectionObject", "PathCellObject", "PathTileObject", "TMACoreObject",
"PathRootObject"), where later QuPath versions write a UUID. The names QuPath's reader knows (OBJECT_TYPES,
from its PathObjectTypeAdapters) match case aside and without surrounding blanks, in either place. Only
annotations are the pathologist's outlines: detections, cells, tiles, TMA cores and the root (a
classifier's output, often over the whole slide) are skipped in either style. A feature without a type (a
hand-written file, or an ``id`` that names none) counts as an annotation. Any other ``objectType``
("Anotation", "", "region") is refused naming the feature: skipped, a misspelt annotation would turn the
pathologist's cancer into background.

A key written twice in one JSON object is refused where it makes the annotation ambiguous: in a feature,
its ``properties``, ``classification`` or ``geometry``, and ``type`` or ``features`` of the file's
FeatureCollection (json keeps the last, another reader the first, so which class or outline is meant
depends on the reader). Elsewhere (measurements, metadata) json's last value stands.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from edge_runtime.errors import InputError
from registration.annotation_text import read_annotation_bytes

# QuPath 0.2 / wsinfer: the object type as the feature's "id", mapped to QuPath 0.3's objectType names
LEGACY_TYPE_IDS = {
    "PathAnnotationObject": "annotation",
    "PathDetectionObject": "detection",
    "PathCellObject": "cell",
    "PathTileObject": "tile",
    "TMACoreObject": "tma_core",
    "PathRootObject": "root",
}
LEGACY_IDS = {name.lower(): kind for name, kind in LEGACY_TYPE_IDS.items()}
# every object type name QuPath's GeoJSON reader knows, lower-cased -> its kind; only "annotation" is an
# outline. QuPath writes "tmaCore" and reads "tma_core" too; the legacy names are read as objectType too.
OBJECT_TYPES = {
    **LEGACY_IDS,
    **{kind: kind for kind in LEGACY_TYPE_IDS.values()},
    "tmacore": "tma_core",
}
TYPE_KEYS = ("objectType", "object_type")  # QuPath 0.3+, and the older spelling QuPath still reads
# GeoJSON's geometry types without an area (RFC 7946 3.1); any other than these and the area types is refused
NO_AREA_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString")
AREA_TYPES = ("Polygon", "MultiPolygon", "GeometryCollection")


class Duplicated(dict):
    """A JSON object in which ``keys`` were written more than once (json's last value kept)."""

    keys_twice: tuple = ()


def _json_object(pairs: list) -> dict:
    """json's object_pairs_hook: a dict, a Duplicated one when a key repeats."""
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    twice = Duplicated(obj)
    twice.keys_twice = tuple(k for k, n in Counter(k for k, _ in pairs).items() if n > 1)
    return twice


def refuse_duplicated(obj, what: str, where: str, only: tuple = ()) -> None:
    """InputError naming ``where`` and the key when JSON object ``obj`` (``what``) has a key twice (one of
    ``only``, when given)."""
    twice = [k for k in getattr(obj, "keys_twice", ()) if k in only or not only]
    if twice:
        raise InputError(
            f"{where}: key {twice[0]!r} written twice in the {what}: which value the annotation "
            "means is ambiguous (this reader would take the last, others the first); fix the file or "
            "export the annotation again"
        )


def read_geojson(path: Path):
    """The parsed JSON of ``path``; InputError naming it when it cannot be read or parsed, or is over
    MAX_ANNOTATION_BYTES (refused before it is read)."""
    where = str(path)
    data = read_annotation_bytes(path)
    try:
        # bytes: json detects UTF-8 (with or without a byte-order mark) and UTF-16/32 by their marks,
        # where read_text() would use the machine's locale
        return json.loads(data, object_pairs_hook=_json_object)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{where}: malformed GeoJSON ({exc})") from exc
    except ValueError as exc:  # an integer of thousands of digits: Python's limit on int(text)
        raise InputError(
            f"{where}: malformed GeoJSON (a number of more than {sys.get_int_max_str_digits()} digits)"
        ) from exc
    except RecursionError as exc:  # [[[ ... ]]] thousands deep: json's parser recurses per level
        raise InputError(f"{where}: malformed GeoJSON (nested too deeply)") from exc


def geojson_features(data, where: str) -> list:
    """The features of a FeatureCollection, a Feature or a list of Features."""
    refuse_duplicated(data, "FeatureCollection", where, only=("type", "features"))
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
    return features


def _type_name(text: str) -> str:
    return text.strip().lower()


def is_outline(feat: dict, props: dict, where: str) -> bool:
    """Whether the feature is an annotation object, by ``objectType`` or a legacy type ``id`` (module
    docstring); InputError naming ``where`` (the feature) when the feature's ``type`` is not "Feature"
    or its objectType is not text or no object type QuPath knows."""
    if "type" in feat and feat["type"] != "Feature":
        raise InputError(f"{where}: 'type' is {json.dumps(feat['type'])[:80]}, expected \"Feature\"")
    key = next((k for k in TYPE_KEYS if props.get(k) is not None), None)
    if key is None:
        legacy = feat.get("id")  # a UUID, a number or a type name: only a known type name counts
        kind = LEGACY_IDS.get(_type_name(legacy)) if isinstance(legacy, str) else None
        return kind in (None, "annotation")
    obj_type = props[key]
    if not isinstance(obj_type, str):
        raise InputError(f"{where}: '{key}' must be text, got {type(obj_type).__name__}")
    kind = OBJECT_TYPES.get(_type_name(obj_type))
    if kind is None:
        raise InputError(
            f"{where}: unknown {key} {json.dumps(obj_type)[:80]}; QuPath's are 'annotation' (an outline, "
            "read) and 'detection', 'cell', 'tile', 'tmaCore', 'root' (skipped); fix the file or export "
            "the annotation again"
        )
    return kind == "annotation"


def class_name(props: dict, where: str) -> str | None:
    """The feature's class name; None when it has none (``"name": null`` included: no class, not a
    class called 'None'). InputError naming ``where`` (the feature) when ``classification`` or its
    ``name`` or ``names`` has a type QuPath never writes: read anyway, ``"names": "Tumor"`` would be class
    'T', and ``"name": 5`` or ``true`` class '5' or 'True'."""
    cls = props.get("classification")
    if cls is None or isinstance(cls, str):
        return cls  # a string: legacy v0.2 files
    refuse_duplicated(cls, "classification", where)
    if not isinstance(cls, dict):
        raise InputError(f"{where}: 'classification' must be an object or text, got {type(cls).__name__}")
    name = cls.get("name")
    if name is not None:
        if not isinstance(name, str):  # str(5) or str(["Tumor"]) is no class QuPath wrote
            raise InputError(
                f"{where}: classification 'name' must be text (QuPath writes \"Tumor\"), got "
                f"{type(name).__name__} {json.dumps(name)[:80]}"
            )
        return name
    names = cls.get("names")
    if names is None:
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InputError(
            f"{where}: classification 'names' must be a list of text (QuPath writes [\"Tumor\", ...]), "
            f"got {json.dumps(names)[:80]}"
        )
    return names[0] if names else None  # derived class "Tumor: Positive" counts as its base class


def _rings(rings, where: str) -> list:
    """A polygon's rings as given; an empty polygon is refused: it may be an outline the export lost."""
    if not isinstance(rings, list) or not rings:
        raise InputError(f"{where}: a polygon without rings (empty 'coordinates')")
    return rings


def geometry_rings(geom, where: str) -> list:
    """The polygons of a geometry, each a list of raw rings ([exterior, holes...]); [] for points and
    lines. InputError naming ``where`` for a type that is not GeoJSON's (``"Polgon"``, a list): it may
    enclose an area, so it is not ignored as a point or line would be."""
    if not isinstance(geom, dict) or "type" not in geom:
        raise InputError(f"{where}: feature without a valid 'geometry'")
    refuse_duplicated(geom, "geometry", where)
    kind = geom["type"]
    if kind == "Polygon":
        return [_rings(geom.get("coordinates"), where)]
    if kind == "MultiPolygon":
        polys = geom.get("coordinates")
        if not isinstance(polys, list) or not polys:
            raise InputError(f"{where}: a MultiPolygon without polygons (empty 'coordinates')")
        return [_rings(poly, where) for poly in polys]
    if kind == "GeometryCollection":
        geometries = geom.get("geometries")
        if not isinstance(geometries, list):
            raise InputError(f"{where}: a GeometryCollection whose 'geometries' is not a list")
        if not geometries:  # as an empty Polygon: an outline lost on export, not "points or a line"
            raise InputError(f"{where}: a GeometryCollection without geometries (empty 'geometries')")
        return [p for g in geometries for p in geometry_rings(g, where)]
    if kind in NO_AREA_TYPES:
        return []  # points and lines carry no area
    raise InputError(
        f"{where}: geometry type {kind!r} is not one of GeoJSON's ({', '.join(AREA_TYPES + NO_AREA_TYPES)})"
    )
