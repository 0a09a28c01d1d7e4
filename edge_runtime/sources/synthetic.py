"""Synthetic scanner screen: a real BUSI image under simulated probe motion.

Used by ``sonomap make-clip`` and the ``synthetic`` live source. Each frame is a dark
1080p "scanner screen" with header text and a depth scale, and the ultrasound image in
a fixed window (the ROI, ~1200x840 px) whose content slides, breathes and tilts as a
handheld probe would. ``patient_line`` burns a patient line (name, ID, birth date) into the screen
above the image, as scanners do: the input for checking de-identification.
Frame-independent noise (``noise_sigma``, default 6 grey levels) imitates an
analogue capture path; 0 gives the clean picture of a digital (HDMI/DVI/SDI) scanner output. The noise
costs H.264 decode and encode CPU (1080p on 2 cores: 8.5 + 8.5 ms a frame at 6, 3.3 + 5.6 ms at 0).
Output: BGR uint8 frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.errors import InputError
from edge_runtime.image_files import read_image
from edge_runtime.manifest import sha256_file
from edge_runtime.roi import Roi
from edge_runtime.sinks.mp4 import Mp4Sink

SCREEN_W, SCREEN_H = 1920, 1080
ROI_RECT = Roi(360, 150, 1200, 840)
SCREEN_LEVEL = 4  # near-black scanner background
BORDER_LEVEL = 70  # thin frame around the image, as scanner UIs draw
BORDER_PX = 2
DEPTH_MM = 40.0  # imaged depth shown by the simulated scanner
OVERSCAN = 1.3  # content is larger than the window so motion reveals no edges
SHIFT_FRACTION = 0.07  # max probe slide, fraction of window size
TILT_DEG = 3.0
ZOOM_SWING = 0.04
MOTION_PERIOD_FRAMES = 90  # one slow sweep every 3 s at 30 fps
NOISE_PATTERNS = 8
NOISE_SIGMA = 6.0  # grey levels; 0 = digital scanner output
TEXT_LEVEL = 200
PATIENT_LINE_Y, PATIENT_LINE_SCALE = 110, 0.9  # second header line (1080p pixels, font scale)


def default_image() -> Path:
    """A real malignant BUSI image from the repo's vendored sample."""
    root = Path(__file__).resolve().parents[2] / "tests" / "data" / "busi" / "images"
    candidates = sorted(root.glob("malignant_*.png")) if root.is_dir() else []
    if not candidates:
        raise InputError(f"synthetic source: no BUSI image found under {root}; pass --image IMG")
    return candidates[0]


@dataclass
class ScreenSimulator:
    """Renders frame ``i`` of the simulated clip (deterministic for a given seed)."""

    image_path: Path
    seed: int = 0
    screen_w: int = SCREEN_W
    screen_h: int = SCREEN_H
    roi: Roi = ROI_RECT
    noise_sigma: float = NOISE_SIGMA
    patient_line: str | None = None

    def __post_init__(self):
        gray = read_image(self.image_path, cv2.IMREAD_GRAYSCALE)
        # Text, scale and margins are laid out at the image area's scale: scaled by the screen's height
        # alone, a 4:3 screen (640x480) printed the patient line over the image's top rows, where no
        # ROI can leave it out, and a screen above 1080p (whose image area stays 1080p's) likewise.
        self.layout_scale = 1.0
        if self.roi.x + self.roi.w > self.screen_w or self.roi.y + self.roi.h > self.screen_h:
            scale = self.layout_scale = min(self.screen_w / SCREEN_W, self.screen_h / SCREEN_H)
            self.roi = Roi(
                int(ROI_RECT.x * scale),
                int(ROI_RECT.y * scale),
                int(ROI_RECT.w * scale),
                int(ROI_RECT.h * scale),
            )
        fit = OVERSCAN * max(self.roi.w / gray.shape[1], self.roi.h / gray.shape[0])
        self.content = cv2.resize(gray, None, fx=fit, fy=fit, interpolation=cv2.INTER_CUBIC)
        rng = np.random.default_rng(self.seed)
        self.phase = rng.uniform(0, 2 * math.pi, 3)
        if self.noise_sigma < 0:
            raise InputError(f"noise sigma must be >= 0, got {self.noise_sigma}")
        self.noise = (
            [
                rng.normal(0, self.noise_sigma, (self.roi.h, self.roi.w)).astype(np.int16)
                for _ in range(NOISE_PATTERNS)
            ]
            if self.noise_sigma > 0
            else []
        )
        self.mm_per_pixel = DEPTH_MM / self.roi.h
        self.patient_box: list[int] | None = None
        self.background = self._screen()

    def _screen(self) -> np.ndarray:
        screen = np.full((self.screen_h, self.screen_w, 3), SCREEN_LEVEL, np.uint8)
        font = cv2.FONT_HERSHEY_SIMPLEX
        colour = (TEXT_LEVEL,) * 3
        k = self.layout_scale  # text and margins scale with the image area (__post_init__)
        thick = max(1, int(round(2 * k)))
        cv2.putText(
            screen,
            "SIMULATED SCANNER  L12-5  BREAST  MI 0.9  TIS 0.2",
            (int(40 * k), int(60 * k)),
            font,
            1.0 * k,
            colour,
            thick,
            cv2.LINE_AA,
        )
        if self.patient_line:
            org = (int(40 * k), int(PATIENT_LINE_Y * k))
            (tw, th), base = cv2.getTextSize(self.patient_line, font, PATIENT_LINE_SCALE * k, thick)
            cv2.putText(
                screen, self.patient_line, org, font, PATIENT_LINE_SCALE * k, colour, thick, cv2.LINE_AA
            )
            self.patient_box = [
                org[0] - 2,
                org[1] - th - 2,
                tw + 4,
                th + base + 4,
            ]  # x, y, w, h with the AA rim
        cv2.putText(
            screen,
            "sonomap synthetic clip",
            (int(40 * k), self.screen_h - int(40 * k)),
            font,
            0.8 * k,
            colour,
            1,
            cv2.LINE_AA,
        )
        x_scale = self.roi.x + self.roi.w + int(40 * k)
        for mm in range(0, int(DEPTH_MM) + 1, 10):
            y = self.roi.y + int(mm / self.mm_per_pixel)
            cv2.line(screen, (x_scale, y), (x_scale + int(20 * k), y), colour, thick)
            cv2.putText(
                screen,
                f"{mm}",
                (x_scale + int(30 * k), y + int(8 * k)),
                font,
                0.7 * k,
                colour,
                1,
                cv2.LINE_AA,
            )
        return screen

    def ultrasound(self, index: int) -> np.ndarray:
        """The ROI content (gray uint8, roi.h x roi.w) at frame ``index``."""
        t = 2 * math.pi * index / MOTION_PERIOD_FRAMES
        dx = SHIFT_FRACTION * self.roi.w * math.sin(t + self.phase[0])
        dy = 0.5 * SHIFT_FRACTION * self.roi.h * math.sin(0.5 * t + self.phase[1])
        angle = TILT_DEG * math.sin(0.7 * t + self.phase[2])
        zoom = 1.0 + ZOOM_SWING * math.sin(1.3 * t)
        ch, cw = self.content.shape
        m = cv2.getRotationMatrix2D((cw / 2, ch / 2), angle, zoom)
        # Move the content centre (+ probe slide) onto the window centre.
        m[0, 2] += self.roi.w / 2 - cw / 2 + dx
        m[1, 2] += self.roi.h / 2 - ch / 2 + dy
        view = cv2.warpAffine(
            self.content, m, (self.roi.w, self.roi.h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
        if self.noise:
            noisy = view.astype(np.int16) + self.noise[index % NOISE_PATTERNS]
            view = np.clip(noisy, 0, 255).astype(np.uint8)
        view[:BORDER_PX, :] = BORDER_LEVEL
        view[-BORDER_PX:, :] = BORDER_LEVEL
        view[:, :BORDER_PX] = BORDER_LEVEL
        view[:, -BORDER_PX:] = BORDER_LEVEL
        return view

    def frame(self, index: int) -> np.ndarray:
        """Full BGR screen at frame ``index``."""
        screen = self.background.copy()
        self.roi.crop(screen)[:] = self.ultrasound(index)[:, :, None]
        return screen


def write_clip(
    image: Path,
    out: Path,
    frames: int,
    fps: int,
    width: int = SCREEN_W,
    height: int = SCREEN_H,
    seed: int = 0,
    noise_sigma: float = NOISE_SIGMA,
    patient_line: str | None = None,
) -> dict:
    """Render ``frames`` frames to an H.264 mp4; return a description (the clip's file name, roi, mm
    scale, patient line box, the image's sha256: never a path or the image's name). The clip replaces
    an earlier one at ``out`` only once it is complete (a replay's recorder, :mod:`edge_runtime.sinks.mp4`):
    when writing it fails, an InputError saying why (the caller names ``out``), the earlier clip kept;
    a run stopped part-way (Ctrl-C) keeps the earlier clip too."""
    sim = ScreenSimulator(
        Path(image),
        seed=seed,
        screen_w=width,
        screen_h=height,
        noise_sigma=noise_sigma,
        patient_line=patient_line,
    )
    sink = Mp4Sink(out, fps=fps, preset="veryfast", resume=False)  # staged: see the docstring
    try:
        for i in range(frames):
            sink.write(sim.frame(i))
    except BaseException:
        # Ctrl-C or a failed frame: the clip is short of frames, so closing must treat it as a failed
        # recording (an earlier clip at ``out`` stays, its .json still describing it), not rename it over
        if sink.error is None:
            sink.error = InputError(f"stopped after {sink.frames} of {frames} frames")
        raise
    finally:
        sink.close()
    if sink.error is not None:  # the last frames or the closing index failed after the last write
        # without the path: make-clip puts ``--out OUT:`` before it (bench and soak write a temp file)
        raise InputError(str(sink.error).removeprefix(f"{out}: "))
    return {
        "clip": Path(out).name,  # not its path: a folder above it may be named after the patient
        "frames": frames,
        "fps": fps,
        "size": [width, height],
        "roi": sim.roi.as_list(),
        "mm_per_pixel": sim.mm_per_pixel,
        "image_sha256": sha256_file(image),  # not its path: a file may be named after a patient
        "noise_sigma": noise_sigma,
        "patient_box": sim.patient_box,
    }
