"""ASAP XML structure: the file's Annotation elements and each one's ordered points.

annotations.py turns what this module reads into checked polygons and class roles; this module knows
only XML and the layout ASAP writes (it imports nothing from annotations.py)::

    <ASAP_Annotations>
      <Annotations>
        <Annotation Name=".." Type="Polygon" PartOfGroup="Tumor" Color="..">
          <Coordinates><Coordinate Order="0" X=".." Y=".."/>...</Coordinates>
        </Annotation>
      </Annotations>
      <AnnotationGroups><Group Name="Tumor" PartOfGroup="None" Color=".."><Attributes/></Group></AnnotationGroups>
    </ASAP_Annotations>

Element names are matched exactly, as ASAP writes them. Any other element where these are expected
(``<annotations>``, ``<Annotation>`` directly under the root, ``<Point>`` in ``<Coordinates>``) is refused
naming the file and the element: skipped, it would leave the core cancer-free. What a Group holds is not
read. Comments and processing instructions are ignored. Each Coordinate's ``Order`` (its position in the
file when absent) must be distinct within its annotation: ASAP places a point at its Order, so of two
with one Order it keeps only the last.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from edge_runtime.errors import InputError
from registration.annotation_text import attribute_number, read_annotation_bytes

ROOT = "ASAP_Annotations"
# the children each element may have, by its name; a Group's children are not read
CHILDREN = {
    ROOT: ("Annotations", "AnnotationGroups"),
    "Annotations": ("Annotation",),
    "AnnotationGroups": ("Group",),
    "Annotation": ("Coordinates",),
    "Coordinates": ("Coordinate",),
}


def read_asap_xml(path: Path) -> ET.Element:
    """The root element of the ASAP XML file at ``path``; InputError naming it when it cannot be read,
    is not XML (an empty file included) or its root is not <ASAP_Annotations>."""
    where = str(path)
    data = read_annotation_bytes(path)  # bounded, as GeoJSON: ElementTree takes ~10x a file's size
    if not data.strip():
        raise InputError(f"{where}: malformed ASAP XML (an empty file)")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise InputError(f"{where}: malformed ASAP XML ({exc})") from exc
    # an encoding declaration Python has no codec for (LookupError), one expat cannot take ("utf-32":
    # ValueError) or whose codec fails on the text ("idna": UnicodeError, a ValueError)
    except (LookupError, ValueError) as exc:
        raise InputError(f"{where}: malformed ASAP XML (encoding: {exc})") from exc
    if root.tag != ROOT:
        raise InputError(f"{where}: malformed ASAP XML: root is <{root.tag}>, expected <{ROOT}>")
    return root


def _children(elem: ET.Element, where: str) -> list:
    """The child elements of ``elem``; InputError naming ``where`` and the first whose name is not one
    CHILDREN allows there."""
    allowed = CHILDREN[elem.tag]
    kids = list(elem)
    for kid in kids:
        if kid.tag not in allowed:
            raise InputError(
                f"{where}: malformed ASAP XML: element <{str(kid.tag)[:80]}> in <{elem.tag}>, expected "
                + " or ".join(f"<{name}>" for name in allowed)
                + " (names as ASAP writes them, case included)"
            )
    return kids


def asap_annotations(root: ET.Element, where: str) -> list:
    """The <Annotation> elements of the file (``where``), in file order, its layout checked."""
    out = []
    for part in _children(root, where):
        kids = _children(part, where)  # a Group's children are not read
        out += kids if part.tag == "Annotations" else []
    return out


def asap_points(ann: ET.Element, where: str) -> list:
    """The (X, Y) points of an <Annotation> (``where``), sorted by Order; InputError naming ``where`` for
    an unknown child element, two <Coordinates> or an Order written twice."""
    lists = _children(ann, where)
    if len(lists) > 1:
        raise InputError(f"{where}: malformed ASAP XML: {len(lists)} <Coordinates> in one annotation")
    coords = _children(lists[0], where) if lists else []
    points = {}
    for k, c in enumerate(coords):
        cwhere = f"{where} Coordinate {k}"
        order = k if c.get("Order") is None else attribute_number(c.get("Order"), True, cwhere, "Order")
        if order in points:
            raise InputError(
                f"{cwhere}: malformed Coordinate (Order={order} written twice in the annotation: which "
                "point comes where is ambiguous)"
            )
        points[order] = (
            attribute_number(c.get("X"), False, cwhere, "X"),
            attribute_number(c.get("Y"), False, cwhere, "Y"),
        )
    return [points[order] for order in sorted(points)]
