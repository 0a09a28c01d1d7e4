"""The largest frame a source hands on: checked before the pixels are decoded where the header tells.

A scanner screen is at most 4K (3840x2160, 8.3 Mpx). A frame far beyond that is a mistake or a hostile
file: one 8000x8000 frame is 192 MB as BGR, the pipeline holds a dozen frames in flight, and a 1 MB
PNG can declare 30000x30000 (2.7 GB decoded), so such an input would exhaust the cart's memory before
anything failed; libx264 refuses such frames anyway. Every file source (video, image folder, DICOM)
refuses it with one line naming the file and the frame.

Input: a frame's width and height, the file as the user gave it and the frame's index.
Output: nothing when the frame fits; :class:`FrameTooLarge` (an InputError) when it does not.
"""

from __future__ import annotations

from edge_runtime.errors import InputError

MAX_FRAME_PIXELS = 4096 * 4096  # 16.8 Mpx: room for a 5K screen (14.7 Mpx), twice a 4K one
MAX_FRAME_SIDE = 8192  # libx264's widest usable frame; also stops a 16384x1024 strip


class FrameTooLarge(InputError):
    """A frame larger than :data:`MAX_FRAME_PIXELS` or :data:`MAX_FRAME_SIDE`."""


def too_large(width: int, height: int) -> bool:
    """Whether a ``width`` x ``height`` frame is beyond the limits."""
    return width * height > MAX_FRAME_PIXELS or max(width, height) > MAX_FRAME_SIDE


def check_frame_size(width: int, height: int, origin: str, index: int) -> None:
    """Raise FrameTooLarge naming ``origin`` (the file) and frame ``index`` when the frame is too large."""
    if too_large(width, height):
        raise FrameTooLarge(
            f"{origin}: frame {index} is {width}x{height}, larger than the maximum of "
            f"{MAX_FRAME_PIXELS / 1e6:.1f} Mpx or {MAX_FRAME_SIDE} px on a side"
        )
