"""The AI's state for OpenIGTLink viewers: what the badge on sonomap's own screen says, as a STRING.

A viewer such as 3D Slicer overlays the labelmaps sonomap sends on the live image it gets from the
scanner (PLUS) itself. When the AI stops answering (switched off, loading, stalled, failed, no image
in the ROI) no new labelmap comes, and the last one would stay on the moving image as if it were
current. So the sink also sends (input: each rendered frame's AI state, ``stats["ai"]``):

- a STRING message ``AIState_<x>`` (for input ``Image_<x>``; ``AIState`` for a frame without a
  device) holding the badge's text (``AI ON``, ``AI OFF no image``, ``AI STALLED 2.1 s``) whenever
  the state changes, and every STATE_EVERY_S while it holds, so a viewer that connects later learns
  it within that time;
- when the state leaves ON, an empty labelmap (and probability map) over the current image, so no
  mask outlives the AI that made it. An empty labelmap says nothing by itself: a viewer shows the
  ``AIState`` text beside it ([openigtlink.md](../../docs/openigtlink.md)).

Output: what to send, decided here; the sink (:mod:`edge_runtime.igtl.sink`) builds and sends it.
Files: none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from edge_runtime.aistate import ON
from edge_runtime.frames import DEFAULT_DEVICE
from edge_runtime.igtl.image_message import derive_device_name

STATE_TAG = "AIState"
# A held state is said again this often: a viewer that connects later (or missed the change on a
# dropped connection) learns it within this time, at a few dozen bytes a second.
STATE_EVERY_S = 1.0


class StateNotes:
    """Decides, frame by frame, when the AI state goes out and when the last mask must be cleared."""

    def __init__(self) -> None:
        self.state: str | None = None  # the last state sent (None: none yet)
        self.sent_at = -math.inf  # time.monotonic() of that send
        self.device = DEFAULT_DEVICE  # the input image's device, from the last frame that had one

    def note(self, ai: Mapping, device: str | None, now: float) -> tuple[str | None, str, bool]:
        """(the badge text to send now or None, the STRING's device, whether the AI just left ON)
        for a frame whose AI state is ``ai`` (:meth:`edge_runtime.aistate.AiStatus.as_dict`) and
        whose image came from ``device`` (None: sonomap's own NO SIGNAL screen, no device)."""
        self.device = device or self.device
        state = str(ai.get("state") or ON)
        detail = str(ai.get("detail") or "")
        left_on = self.state == ON and state != ON
        due = state != self.state or now - self.sent_at >= STATE_EVERY_S
        if due:
            self.state, self.sent_at = state, now
        text = f"AI {state}" + (f" {detail}" if detail else "")
        return (text if due else None), derive_device_name(self.device, STATE_TAG), left_on
