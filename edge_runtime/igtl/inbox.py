"""What a receiving OpenIGTLink link keeps of the messages it reads: the newest IMAGE of its device.

Latest wins, no queue: a reader waiting with :meth:`ImageInbox.wait_image` gets the newest image
newer than the one it had, and frames that came in between are dropped. Each TRANSFORM updates a
bounded table of the newest matrix per device (transforms.py), and an image carries only the
matrices that were current when it arrived. ``device`` None locks onto the first IMAGE device seen;
an IMAGE of another device, or one that cannot be segmented (image_message.py), is skipped and
counted, never costing the connection. An image whose geometry is refused (geometry.py) is kept,
without a pose.

Inputs: decoded pyigtl messages from the link's reader thread (link.py). Outputs: :class:`IgtlImage`
(with its sequence number) to the thread that waits; the current transforms. Files: none.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from edge_runtime.igtl.geometry import report_refused
from edge_runtime.igtl.image_message import IgtlImage, image_from_message
from edge_runtime.igtl.net import Counters, warn_counted
from edge_runtime.igtl.transforms import TransformTable
from edge_runtime.igtl.wire import SkipMessage

log = logging.getLogger("sonomap.igtl")

# What becomes of an IMAGE whose geometry is refused (geometry.py): the image goes on, without a pose.
IMAGE_KEPT = "the image is shown and segmented without geometry; its prediction is not sent over OpenIGTLink"


class ImageInbox:
    """The newest image of ``device`` and the current transforms, as the link at ``address``
    received them (``counters``: the link's; ``receive_images`` False counts an IMAGE as another
    message). :meth:`wake` releases every waiter (the link is closing)."""

    def __init__(self, address: str, counters: Counters, device: str | None, receive_images: bool):
        self.address = address
        self.counters = counters
        self.device = device
        self.receive_images = receive_images
        self._cond = threading.Condition()
        self._latest: IgtlImage | None = None
        self._seq = 0
        self._closed = False
        self._transforms = TransformTable()

    def enable(self, device: str | None) -> None:
        """Start keeping images (of ``device``; None keeps the one configured or locked onto)."""
        with self._cond:
            self.device = device if device is not None else self.device
            self.receive_images = True

    def image_seq(self) -> int:
        """The sequence number of the newest image so far (0: none yet); pass it to
        :meth:`wait_image` to get only images received from now on."""
        with self._cond:
            return self._seq

    def receive(self, message_type: str, msg: Any) -> None:
        """One message read whole: a TRANSFORM into the table, an IMAGE of the device as the newest
        image, anything else counted."""
        if message_type == "TRANSFORM" and msg is not None:
            self._transforms.receive(msg, self.counters, time.monotonic())
            return
        if message_type != "IMAGE" or msg is None or not self.receive_images:
            self.counters.inc("other_messages")
            return
        with self._cond:
            if self.device is None:
                self.device = msg.device_name
                log.info("OpenIGTLink %s: using IMAGE device %r", self.address, self.device)
            device = self.device
        transforms = self._transforms.current(time.monotonic())
        if msg.device_name != device:
            warn_counted(
                self.counters, "device", f"IMAGE from device {msg.device_name!r} (configured: {device!r})"
            )
            return
        try:
            image = image_from_message(msg, transforms)
        except SkipMessage as skip:
            warn_counted(self.counters, skip.reason, str(skip))
            return
        if image.geometry_fault:
            report_refused(self.counters, "IMAGE", msg.device_name, image.geometry_fault, IMAGE_KEPT)
        image.received_monotonic, image.received_wall = time.monotonic(), time.time()
        with self._cond:
            self._latest = image
            self._seq += 1
            self.counters.inc("images")  # before the wake-up: a reader of this image sees it counted
            self._cond.notify_all()

    def wait_image(self, after_seq: int, timeout: float) -> tuple[int, IgtlImage] | None:
        """The newest image newer than ``after_seq``, waiting up to ``timeout`` s; None if none
        came (or the inbox was woken for closing). Frames that arrived in between are dropped."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > after_seq or self._closed, timeout)
            if self._seq > after_seq and self._latest is not None:
                return self._seq, self._latest
            return None

    def transforms(self) -> dict[str, np.ndarray]:
        """The current matrices (received within transforms.TRANSFORM_MAX_AGE_S) by device name."""
        return self._transforms.current(time.monotonic())

    def wake(self) -> None:
        """Release every waiter now and from now on (the link closes)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
