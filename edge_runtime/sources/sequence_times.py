"""Each frame's time in a recorded sequence file (a PLUS MetaImage or a Slicer ``.seq.nrrd``).

Input: the frame count, each frame's PLUS ``Timestamp`` field where it has one, and Slicer's index
values (the list axis's, as written). Output: one time in seconds per frame, all from one clock:
the PLUS timestamps when every frame has one, else the index values when every frame has a numeric
one, else frame ``n`` at ``n / DEFAULT_FPS``. (Zero frames: no time.) Mixing them would put frames timed by different clocks
side by side (a tracker's 1234.5 s beside 0.1 s), and the pts, the pacing and a biopsy's time would
jump back and forth; a file that times only some of its frames is named in one warning.
"""

from __future__ import annotations

import logging

from edge_runtime.errors import InputError
from edge_runtime.units import DEFAULT_FPS

log = logging.getLogger("sonomap.sources")


def frame_times(
    frames: int, stamps: dict[int, str], index_values: list[str], path: str, label: str
) -> list[float]:
    """The times of ``frames`` frames (module doc); ``stamps``: frame -> its PLUS ``Timestamp`` text.
    InputError naming the file ``path`` and the frame when a timestamp is not a number; the warning
    names the source by its ``label`` (its kind: a log line carries no file name)."""
    plus = {}
    for n, text in stamps.items():
        try:
            plus[n] = float(text)
        except ValueError as exc:
            raise InputError(f"{path}: frame {n}: Timestamp {text[:40]!r} is not a number") from exc
    indexed = _numbers(index_values[:frames])
    if len(plus) == frames or len(indexed) == frames:
        times = [plus[n] for n in range(frames)] if len(plus) == frames else indexed
        if plus and len(plus) < frames:
            log.warning(
                "%s: %d of its %d frames have a Timestamp; timed by its index values",
                label,
                len(plus),
                frames,
            )
        return times
    if plus or indexed:
        kind = "a Timestamp" if plus else "a numeric index value"
        log.warning(
            "%s: %d of its %d frames have %s; every frame is timed at %g fps instead",
            label,
            len(plus) or len(indexed),
            frames,
            kind,
            DEFAULT_FPS,
        )
    return [n / DEFAULT_FPS for n in range(frames)]


def _numbers(values: list[str]) -> list[float]:
    """``values`` as numbers, as far as they are numbers (stops at the first that is not)."""
    out = []
    for text in values:
        try:
            out.append(float(text))
        except ValueError:
            break
    return out
