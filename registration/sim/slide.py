"""Simulated biopsy slide: a bent, fragmented, shrunken core as a pyramidal OME-TIFF + GeoJSON.

Input: ``SlideLayout`` (tissue outlines and cancer polygons in level-0 pixels, QuPath
convention: pixel i spans [i, i+1)). Output files: a tiled pyramidal OME-TIFF (zlib, mpp in
OME PhysicalSizeX and in the resolution tags) rendered tile by tile, so a 40k x 3k level 0
never sits in memory whole, and a QuPath-style GeoJSON FeatureCollection.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.atomic import atomic_path
from registration.sim.annotation import hand_drawn
from registration.sim.artifacts import render_extras

TILE = 256
MIN_LEVEL_SIDE = 64
SUBPIXEL_BITS = 4
GLASS = np.array([243, 242, 246], np.float32)
STROMA = np.array([228, 162, 200], np.float32)  # eosin-pink
TUMOUR = np.array([176, 108, 182], np.float32)  # denser, more haematoxylin
NUCLEUS = np.array([88, 52, 140], np.float32)
NUCLEI_PER_UM2 = {"stroma": 1 / 900.0, "tumour": 1 / 220.0}
NUCLEUS_RADIUS_UM = 3.5


@dataclass
class SlideLayout:
    width: int  # level-0 pixels
    height: int
    mpp: float  # µm per level-0 pixel
    tissue: list  # polygons: [N, 2] float arrays (x, y) level-0 px
    cancer: list  # polygons with optional holes: [exterior, hole, ...]
    extras: dict = field(default_factory=dict)  # lab artefacts (sim_core/sim_artifacts); empty = clean


def _fill(mask: np.ndarray, rings: list, scale: float, x0: float, y0: float, value: int) -> None:
    f = float(1 << SUBPIXEL_BITS)
    pts = [np.round(((r * scale) - [x0, y0] - 0.5) * f).astype(np.int32).reshape(-1, 1, 2) for r in rings]
    cv2.fillPoly(mask, pts, value, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)


def render_tile(layout: SlideLayout, scale: float, x0: int, y0: int, w: int, h: int, seed: int) -> np.ndarray:
    """RGB pixels of a level with ``scale`` = level px per level-0 px, window (x0, y0, w, h)."""
    rng = np.random.default_rng(seed)
    tissue = np.zeros((h, w), np.uint8)
    tumour = np.zeros((h, w), np.uint8)
    for poly in layout.tissue:
        _fill(tissue, [poly], scale, x0, y0, 1)
    for poly in layout.cancer:
        tmp = np.zeros((h, w), np.uint8)
        _fill(tmp, poly[:1], scale, x0, y0, 1)
        if len(poly) > 1:
            _fill(tmp, poly[1:], scale, x0, y0, 0)
        tumour |= tmp
    tumour &= tissue
    img = np.empty((h, w, 3), np.float32)
    img[:] = GLASS
    img[tissue > 0] = STROMA
    img[tumour > 0] = TUMOUR
    if tissue.any():
        um_per_px = layout.mpp / scale
        r_px = max(NUCLEUS_RADIUS_UM / um_per_px, 0.6)
        for cls, sel in (("stroma", (tissue > 0) & (tumour == 0)), ("tumour", tumour > 0)):
            p = min(NUCLEI_PER_UM2[cls] * um_per_px**2, 0.5)
            seeds = (rng.random((h, w)) < p) & sel
            if r_px >= 1.0:
                k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(2 * r_px) | 1, int(2 * r_px) | 1))
                seeds = cv2.dilate(seeds.astype(np.uint8), k) > 0
                seeds &= sel
                img[seeds] = NUCLEUS
            else:  # nuclei smaller than a pixel just darken it
                img[seeds] = 0.5 * img[seeds] + 0.5 * NUCLEUS
    if layout.extras:
        render_extras(img, tissue > 0, layout.extras, scale, x0, y0, layout.mpp / scale, GLASS)
    img += rng.normal(0.0, 4.0, (h, w, 1)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def _tiles(layout: SlideLayout, scale: float, shape: tuple[int, int], seed: int):
    h, w = shape
    for ty in range(0, h, TILE):
        for tx in range(0, w, TILE):
            tile = np.full((TILE, TILE, 3), GLASS.astype(np.uint8), np.uint8)
            th, tw = min(TILE, h - ty), min(TILE, w - tx)
            tile[:th, :tw] = render_tile(layout, scale, tx, ty, tw, th, seed + ty * 7919 + tx)
            yield tile


def write_pyramid(layout: SlideLayout, path: Path, seed: int = 0) -> list[tuple[int, int]]:
    """Write the tiled pyramidal OME-TIFF; return the level shapes (h, w)."""
    # deferred: tifffile is the optional [wsi]/[registration] extra
    import tifffile

    shapes = [(layout.height, layout.width)]
    while min(shapes[-1]) // 2 >= MIN_LEVEL_SIDE:
        shapes.append((shapes[-1][0] // 2, shapes[-1][1] // 2))
    res = 1e4 / layout.mpp  # pixels per cm
    meta = {
        "axes": "YXS",
        "PhysicalSizeX": layout.mpp,
        "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": layout.mpp,
        "PhysicalSizeYUnit": "µm",
    }
    opts = dict(tile=(TILE, TILE), photometric="rgb", compression="zlib", compressionargs={"level": 1})
    # under a temp name, renamed once whole: a full disk leaves no truncated slide for register to read
    with atomic_path(path) as tmp, tifffile.TiffWriter(str(tmp), bigtiff=True, ome=True) as tw:
        for k, (h, w) in enumerate(shapes):
            scale = w / layout.width
            kwargs = dict(subifds=len(shapes) - 1, metadata=meta) if k == 0 else dict(subfiletype=1)
            tw.write(
                _tiles(layout, scale, (h, w), seed + k),
                shape=(h, w, 3),
                dtype=np.uint8,
                resolution=(res * scale, res * scale),
                resolutionunit="CENTIMETER",
                **opts,
                **kwargs,
            )
    return shapes


def write_geojson(
    layout: SlideLayout, path: Path, class_name: str = "Tumor", seed: int = 0, habits=None
) -> None:
    """QuPath FeatureCollection: one annotation per cancer polygon, level-0 pixel coordinates.

    ``habits`` (sim_lab.LabParams) draws them as a pathologist does: simplified, slightly
    inside or outside, class names in any case, Normal regions alongside."""
    rnd = np.random.default_rng(seed)
    feats = []
    cancer = layout.extras.get("annotated_cancer", layout.cancer)
    if habits is not None:
        cancer, class_name, normal = hand_drawn(cancer, layout, habits, rnd)
        feats += normal
    for poly in cancer:
        rings = [
            [[round(float(x), 2), round(float(y), 2)] for x, y in r]
            + [[round(float(r[0][0]), 2), round(float(r[0][1]), 2)]]
            for r in poly
        ]
        feats.append(
            {
                "type": "Feature",
                "id": str(uuid.UUID(bytes=rnd.bytes(16), version=4)),
                "geometry": {"type": "Polygon", "coordinates": rings},
                "properties": {
                    "objectType": "annotation",
                    "classification": {"name": class_name, "color": [200, 0, 0]},
                },
            }
        )
    for poly in layout.tissue:  # QuPath projects often keep a tissue outline too (ignored class)
        ring = [[round(float(x), 2), round(float(y), 2)] for x, y in poly] + [
            [round(float(poly[0][0]), 2), round(float(poly[0][1]), 2)]
        ]
        feats.append(
            {
                "type": "Feature",
                "id": str(uuid.UUID(bytes=rnd.bytes(16), version=4)),
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {
                    "objectType": "annotation",
                    "classification": {"name": "Stroma", "color": [150, 200, 150]},
                },
            }
        )
    Path(path).write_text(json.dumps({"type": "FeatureCollection", "features": feats}))


def write_asap_xml(layout: SlideLayout, path: Path, group: str = "Tumor") -> None:
    """The same cancer polygons as ASAP XML (CAMELYON style): holes become exclusion group _2."""
    lines = ['<?xml version="1.0"?>', "<ASAP_Annotations>", "  <Annotations>"]
    for i, poly in enumerate(layout.extras.get("annotated_cancer", layout.cancer)):
        lines.append(
            f'    <Annotation Name="Annotation {i}" Type="Polygon" PartOfGroup="{group}" Color="#F4FA58">'
        )
        lines.append("      <Coordinates>")
        lines += [
            f'        <Coordinate Order="{j}" X="{x:.2f}" Y="{y:.2f}" />' for j, (x, y) in enumerate(poly[0])
        ]
        lines += ["      </Coordinates>", "    </Annotation>"]
        for k, hole in enumerate(poly[1:]):  # holes as CAMELYON exclusion group _2
            lines.append(
                f'    <Annotation Name="Hole {i}.{k}" Type="Polygon" PartOfGroup="_2" Color="#000000">'
            )
            lines.append("      <Coordinates>")
            lines += [
                f'        <Coordinate Order="{j}" X="{x:.2f}" Y="{y:.2f}" />' for j, (x, y) in enumerate(hole)
            ]
            lines += ["      </Coordinates>", "    </Annotation>"]
    lines += [
        "  </Annotations>",
        "  <AnnotationGroups>",
        f'    <Group Name="{group}" PartOfGroup="None" Color="#64FE2E"><Attributes /></Group>',
        '    <Group Name="_2" PartOfGroup="None" Color="#000000"><Attributes /></Group>',
        "  </AnnotationGroups>",
        "</ASAP_Annotations>",
    ]
    Path(path).write_text("\n".join(lines) + "\n")
