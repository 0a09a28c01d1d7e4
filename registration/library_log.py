"""What a slide library logs while a slide is opened and read, collected per thread.

tifffile logs what it finds wrong in a damaged file (a corrupt tag list, a series it gives up on) to
its own logger. :func:`collected_log` takes those records while a reader opens and reads a slide,
instead of letting them reach stderr past the one-line error; the reader hands them on as report
warnings, or logs them again when the slide cannot be read. The collection is per thread: slides
opened on several threads at once each get the records logged while opening that slide.

Input: a logger name and a list to collect into. Output: the records in that list;
:func:`log_reason`, the one-line reason they give. Files: none.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

TIFFFILE_LOGGER = "tifffile"


class _Router(logging.Filter):
    """A filter on one logger that takes the records of threads inside :func:`collected_log`.

    ``captures``: thread id -> the record lists of the captures open on that thread (innermost
    last). A record logged on such a thread is appended to each of them and stops there (no
    handler, no propagation); any other thread's record passes on its normal way.
    """

    def __init__(self):
        super().__init__()
        self.captures: dict[int, list[list]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        # the emitting thread runs the logger's filters itself, so get_ident() here is that thread
        # (record.thread is None when logging.logThreads is off)
        with _ROUTING:
            lists = self.captures.get(threading.get_ident())
            if not lists:
                return True
            for records in {id(r): r for r in lists}.values():  # a list given twice gets it once
                records.append(record)
        return False


_ROUTING = threading.Lock()  # guards _ROUTERS and every router's captures
_ROUTERS: dict[str, _Router] = {}  # logger name -> its router, while any capture on it is open


@contextmanager
def collected_log(records: list, name: str = TIFFFILE_LOGGER) -> Iterator[None]:
    """While inside, the records logged on logger ``name`` (itself: tifffile logs nowhere else) by
    this thread are appended to ``records`` and go no further (no stderr line, no root handler).

    Thread-safe: one router filter per logger, installed by the first capture on it and removed by
    the last, routes each record to the captures of the thread that logged it, so slides opened on
    two threads at once never see each other's records. The logger's handlers, level and propagate
    are never changed, and the records of threads that capture nothing keep their normal way.
    Records from worker threads are collected only when the worker enters its own capture.
    """
    logger, me = logging.getLogger(name), threading.get_ident()
    with _ROUTING:
        router = _ROUTERS.get(name)
        if router is None:
            router = _ROUTERS[name] = _Router()
            logger.addFilter(router)
        router.captures.setdefault(me, []).append(records)
    try:
        yield
    finally:
        with _ROUTING:
            mine = router.captures[me]
            # by identity, innermost first: list.remove() would take the first *equal* list
            del mine[max(i for i, r in enumerate(mine) if r is records)]
            if not mine:
                del router.captures[me]
            if not router.captures:  # the last capture on this logger: leave it as it was
                logger.removeFilter(router)
                del _ROUTERS[name]


def log_reason(records: list) -> str:
    """The first ERROR-or-worse message of ``records`` (else the first one) on one line, '' if none."""
    if not records:
        return ""
    worst = next((r for r in records if r.levelno >= logging.ERROR), records[0])
    return " ".join(worst.getMessage().split())
