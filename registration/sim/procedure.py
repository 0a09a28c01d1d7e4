"""A synthetic biopsy procedure on a still probe, with its truth (``sonomap simulate-procedure``).

A real BUSI image (malignant by default) fills the ROI of a 1280x720 scanner screen (the probe does not move;
frame-independent noise as an analogue capture adds). A static bright oblique line (a ligament or
specular reflector) is the decoy. Each needle is drawn with registration's post-fire echo model
(shaft, reverberation tail, shadow); it enters from the left edge, is advanced slowly, held, fired
(the tip jumps by the throw in one frame, or over two), held in the tract, then withdrawn.
``write_procedure_clip`` returns the truth: per fire the pre-fire and post-fire frame indices, the
post-fire tip (ROI pixels) and angle and a fingerprint of the pre-fire ROI (:func:`roi_fingerprint`,
which lets simulate-pathology tell this clip's captured cases from another clip's), and the source
image by the SHA-256 of its content, never its name (a user's image may be named after the patient).
With ``truth=True`` it also writes, beside CLIP.mp4, ``CLIP.lesion.png`` (the image's lesion mask
carried into ROI pixels exactly as the image is, 0/255; empty for a benign image: no cancer) and
``CLIP.truth.json`` (the returned dict, the clip by file name), which
``sonomap simulate-pathology`` turns into a slide and annotation per captured core. Every input (the
image, its lesion mask) is read before anything is written, a mask of another size than its image
refused, and the clip is encoded to a temp file renamed over CLIP.mp4 when whole: a failed run leaves
an earlier clip, truth and lesion as they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.atomic import atomic_path, atomic_write_png
from edge_runtime.errors import InputError
from edge_runtime.manifest import sha256_file
from edge_runtime.sinks.mp4 import Mp4Sink
from edge_runtime.sources.synthetic import BORDER_PX, ScreenSimulator, default_image
from registration.report import write_json
from registration.sim.echo import draw_needle
from registration.sim.sources import BUSI_LABELS, LESION_LEVEL, MALIGNANT, busi_labels, read_pair
from registration.tract import GAUGE_DEFAULTS

SCREEN = (1280, 720)
NOISE_SIGMA = 6.0
DECOY_MM = ((30.0, 5.0), (55.0, 12.0))  # a ligament-like line, ROI mm (x, depth)
DECOY_THICK_MM = 1.0
DECOY_LEVEL = 235
GAUGE = 14
THROW_MM = 22.0  # the device's throw: each fire's jumps add up to it
FPS = 30
INDEX_CSV = "index.csv"  # BUSI's labels, beside images/
# The pre-fire frame's fingerprint in truth.json (roi_fingerprint): a 16x16 thumbnail's 256 bits.
FINGERPRINT_KEY = "pre_fingerprint"
FINGERPRINT_CELLS = 16
FINGERPRINT_HEX = FINGERPRINT_CELLS * FINGERPRINT_CELLS // 4  # hex digits: 4 bits each
# Measured on the loop's three clips: a case's prefire.png (decoded H.264) differs from its drawn
# frame in 2-8 bits, from the other fire of its clip in 24-31 and from another image's in over 100.
FINGERPRINT_MAX_BITS = 20


@dataclass
class Needle:
    entry_depth_mm: float  # where the needle crosses the left ROI edge
    angle_deg: float  # below the horizontal
    start_mm: float  # tip distance from the entry when it appears
    advance_mm: float  # slow advancement before the fire
    advance_frames: int
    hold_frames: int  # in place before the fire
    throw_mm: tuple  # tip jump per frame of the fire: (22,) or (10, 12)
    after_frames: int  # in the tract after the fire
    gone_frames: int  # withdrawn before the next needle


# Each needle is held in place for 2/3 s before the fire (an operator aims for longer).
PROCEDURE = (
    Needle(10.0, 20.0, 15.0, 10.0, 20, 20, (22.0,), 12, 10),  # fired in one frame
    Needle(6.0, 30.0, 12.0, 8.0, 16, 20, (10.0, 12.0), 12, 8),
)  # fired over two frames
NO_FIRE = (Needle(10.0, 25.0, 10.0, 24.0, 12, 20, (), 0, 10),)  # a brisk 2 mm/frame push, held, withdrawn


def _still(sim: ScreenSimulator) -> np.ndarray:
    """The still ROI content without noise, with the decoy line."""
    base = ScreenSimulator(
        sim.image_path, seed=sim.seed, screen_w=sim.screen_w, screen_h=sim.screen_h, noise_sigma=0
    ).ultrasound(0)
    mm = sim.mm_per_pixel
    (x0, y0), (x1, y1) = DECOY_MM
    cv2.line(
        base,
        (int(x0 / mm), int(y0 / mm)),
        (int(x1 / mm), int(y1 / mm)),
        DECOY_LEVEL,
        max(int(DECOY_THICK_MM / mm), 1),
        cv2.LINE_AA,
    )
    return base


def truth_paths(clip: Path) -> tuple[Path, Path]:
    """(CLIP.truth.json, CLIP.lesion.png) beside the clip."""
    clip = Path(clip)
    return clip.with_suffix(".truth.json"), clip.with_suffix(".lesion.png")


def lesion_in_roi(sim: ScreenSimulator, mask_path: Path, cancer: bool) -> np.ndarray:
    """The lesion mask (0/255) drawn through the same resize and placement as the image at frame 0;
    all zero when the lesion is not cancer (a benign image)."""
    if not cancer:
        return np.zeros((sim.roi.h, sim.roi.w), np.uint8)
    warped = ScreenSimulator(
        Path(mask_path), seed=sim.seed, screen_w=sim.screen_w, screen_h=sim.screen_h, noise_sigma=0
    ).ultrasound(0)
    lesion = np.where(warped > LESION_LEVEL, 255, 0).astype(np.uint8)
    lesion[:BORDER_PX, :] = lesion[-BORDER_PX:, :] = 0  # the simulated scanner's frame line, not tissue
    lesion[:, :BORDER_PX] = lesion[:, -BORDER_PX:] = 0
    return lesion


def busi_mask(image: Path) -> tuple[Path, bool]:
    """(mask path, malignant?) of a BUSI-layout image (images/X.png, masks/X.png). Malignant by the
    label of X in ``index.csv`` beside images/, else by X's BUSI name (malignant_*, benign_*, normal_*); an
    InputError naming the image when neither tells (a renamed image must not pass as benign: its
    lesion would silently become no cancer in the truth)."""
    image = Path(image)
    mask = image.parent.parent / "masks" / image.name
    if not mask.is_file():
        raise InputError(f"{image}: no lesion mask at {mask} (BUSI layout: images/ beside masks/)")
    index = image.parent.parent / INDEX_CSV
    label = busi_labels(index).get(image.stem) if index.is_file() else None
    label = label or next((name for name in BUSI_LABELS if image.stem.startswith(name)), None)
    if label is None:
        raise InputError(
            f"{image}: cannot tell whether its lesion is cancer: name it malignant_* or benign_* as BUSI "
            f"does, or give its label (malignant or benign) in {INDEX_CSV} beside images/"
        )
    return mask, label == MALIGNANT


def write_procedure_clip(
    out: Path,
    procedure=PROCEDURE,
    lead_frames: int = 15,
    seed: int = 3,
    image: Path | None = None,
    truth: bool = False,
) -> dict:
    """Write the clip (H.264 mp4) and return {roi, mm_per_pixel, frames, fires: [...]}; with
    ``truth`` also CLIP.truth.json and CLIP.lesion.png (module docstring)."""
    image = Path(image) if image is not None else default_image()
    sim = ScreenSimulator(image, seed=seed, screen_w=SCREEN[0], screen_h=SCREEN[1], noise_sigma=0)
    lesion = None
    if truth:  # every input checked before anything is written: a failure leaves earlier files as they were
        mask, malignant = busi_mask(image)
        # another image's mask would be scaled by its own size and put the truth's lesion elsewhere
        read_pair(image, mask, str(image), str(mask))
        lesion = lesion_in_roi(sim, mask, malignant)
    image_sha256 = sha256_file(image)  # not its name: an image may be named after the patient
    mm = sim.mm_per_pixel
    still = _still(sim)
    od_px = GAUGE_DEFAULTS[GAUGE]["od_mm"] / mm
    rng = np.random.default_rng(seed)
    noise = [rng.normal(0, NOISE_SIGMA, still.shape).astype(np.int16) for _ in range(8)]
    views: list[tuple[float, float, float] | None] = [None] * lead_frames  # (entry_y_mm, angle, tip_mm)
    fires = []
    for n in procedure:
        for k in range(n.advance_frames + n.hold_frames):
            views.append(
                (n.entry_depth_mm, n.angle_deg, n.start_mm + n.advance_mm * min(k / n.advance_frames, 1))
            )
        tip_mm = n.start_mm + n.advance_mm
        pre = len(views) - 1
        for jump in n.throw_mm:
            tip_mm += jump
            views.append((n.entry_depth_mm, n.angle_deg, tip_mm))
        post = len(views)
        views += [(n.entry_depth_mm, n.angle_deg, tip_mm)] * n.after_frames + [None] * n.gone_frames
        if not n.throw_mm:
            continue  # a needle that is never fired
        a = np.radians(n.angle_deg)
        tip = (tip_mm * np.cos(a) / mm, (n.entry_depth_mm + tip_mm * np.sin(a)) / mm)
        fires.append(
            {
                "pre_index": pre,
                "post_index": post,
                "tip": tip,
                "angle_deg": n.angle_deg,
                "tip_pre": (
                    ((tip_mm - sum(n.throw_mm)) * np.cos(a)) / mm,
                    (n.entry_depth_mm + (tip_mm - sum(n.throw_mm)) * np.sin(a)) / mm,
                ),
            }
        )
    for fire in fires:  # what the capture's prefire.png shows, to tell this clip's cases from others'
        pre = fire["pre_index"]
        fire[FINGERPRINT_KEY] = roi_fingerprint(_roi_frame(pre, views[pre], still, noise, od_px, mm, seed))
    with atomic_path(out) as tmp:  # the clip appears only whole: a failed run keeps the earlier one
        _encode(tmp, views, sim, still, noise, od_px, seed)
    info = {
        "clip": str(out),
        "image_sha256": image_sha256,
        "roi": sim.roi.as_list(),
        "mm_per_pixel": mm,
        "frames": len(views),
        "gauge": GAUGE,
        "fires": [{k: _plain(v) for k, v in f.items()} for f in fires],
    }
    if truth:
        truth_json, lesion_png = truth_paths(out)
        atomic_write_png(lesion_png, lesion)
        info.update(lesion=lesion_png.name, cancer=malignant)
        # the file names the clip beside it, not the folder the user chose (it may name a patient)
        write_json(truth_json, {**info, "clip": out.name})
    return info


def roi_fingerprint(gray: np.ndarray) -> str:
    """A perceptual hash (hex) of a gray ROI image: one bit per neighbouring pair of cells of a
    FINGERPRINT_CELLS-square thumbnail, set where the right cell is brighter. The clip is lossy
    H.264, so a captured prefire.png never equals the drawn frame byte for byte; this hash of its
    coarse structure does to within a few bits (:data:`FINGERPRINT_MAX_BITS`), and the frames of
    two different images differ in about half of them."""
    cells = cv2.resize(gray, (FINGERPRINT_CELLS + 1, FINGERPRINT_CELLS), interpolation=cv2.INTER_AREA)
    bits = (cells[:, 1:].astype(np.int16) > cells[:, :-1]).ravel()
    return np.packbits(bits).tobytes().hex()


def fingerprint_distance(a: str, b: str) -> int:
    """How many bits two :func:`roi_fingerprint` hashes differ in (ValueError if not such hashes)."""
    x, y = bytes.fromhex(a), bytes.fromhex(b)
    if len(x) != len(y):
        raise ValueError(f"fingerprints of different lengths ({len(x)} and {len(y)} bytes)")
    return int(np.unpackbits(np.frombuffer(bytes(i ^ j for i, j in zip(x, y, strict=True)), np.uint8)).sum())


def _roi_frame(i: int, view, still, noise, od_px: float, mm: float, seed: int) -> np.ndarray:
    """The gray ROI content of frame ``i``: the still image, the needle of ``view`` (if any), noise."""
    gray = still
    if view is not None:
        entry_y, angle, tip_mm = view
        a = np.radians(angle)
        entry = np.array([0.0, entry_y / mm])
        tip = entry + tip_mm / mm * np.array([np.cos(a), np.sin(a)])
        gray = draw_needle(still, entry, tip, od_px, np.random.default_rng(seed))  # same echo look
    return np.clip(gray.astype(np.int16) + noise[i % len(noise)], 0, 255).astype(np.uint8)


def _encode(path: Path, views, sim: ScreenSimulator, still, noise, od_px: float, seed: int) -> None:
    """Draw every frame of ``views`` on the scanner screen and encode them into ``path``."""
    sink = Mp4Sink(path, fps=FPS, preset="veryfast")
    try:
        for i, view in enumerate(views):
            screen = sim.background.copy()
            sim.roi.crop(screen)[:] = _roi_frame(i, view, still, noise, od_px, sim.mm_per_pixel, seed)[
                :, :, None
            ]
            sink.write(screen)
    finally:
        sink.close()


def _plain(v):
    """JSON-ready: numpy scalars and tuples as plain floats and lists."""
    if isinstance(v, (tuple, list)):
        return [float(x) for x in v]
    return float(v) if isinstance(v, (float, np.floating)) else v
