"""tifffile's log records while slides open on several threads at once: each damaged slide keeps the
records tifffile logged about it, a good slide gets none, a record from a thread that opens no slide
takes its normal way, and the "tifffile" logger is left as it was (handlers, filters, level, propagate).

The damaged slides are the vendored small.svs cut short at different lengths: tifffile logs
different tag and page offsets for each, so a record that reaches the wrong slide is seen.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from registration.library_log import TIFFFILE_LOGGER, collected_log
from registration.wsi_tiff import TiffSlide

pytest.importorskip("tifffile", reason="tifffile not installed (registration extra)")

FIXTURES = Path(__file__).parent / "data" / "wsi-fixtures"
CUTS = (1000, 1325, 2000)  # bytes of small.svs kept: each cut logs its own offsets (and opens)
ROUNDS = 40
OPENS_PER_ROUND = 3


def _state(logger: logging.Logger) -> tuple:
    return list(logger.handlers), list(logger.filters), logger.level, logger.propagate, logger.disabled


def _damaged(tmp_path: Path) -> list[Path]:
    data = (FIXTURES / "small.svs").read_bytes()
    out = []
    for cut in CUTS:
        path = tmp_path / f"cut{cut}.svs"
        path.write_bytes(data[:cut])
        out.append(path)
    return out


def _messages(path: Path) -> list[str]:
    slide = TiffSlide(path)
    slide.close()
    return [r.getMessage() for r in slide.log_records]


def test_slides_opened_on_many_threads_keep_their_own_tifffile_records(tmp_path):
    logger = logging.getLogger(TIFFFILE_LOGGER)
    before = _state(logger)
    slides = [*_damaged(tmp_path), FIXTURES / "boxes.tiff"]
    alone = {path: _messages(path) for path in slides}  # one at a time: what each slide logs
    assert all(alone[p] for p in slides[:-1]) and alone[slides[-1]] == []
    assert len({tuple(m) for m in alone.values()}) == len(slides)  # each cut logs its own
    start = threading.Barrier(len(slides))
    wrong: list[str] = []

    def opener(path: Path) -> None:
        for _ in range(ROUNDS):
            start.wait()  # all threads open at once, every round
            for _ in range(OPENS_PER_ROUND):
                got = _messages(path)
                if got != alone[path]:
                    wrong.append(f"{path.name}: {got} instead of {alone[path]}")

    threads = [threading.Thread(target=opener, args=(p,)) for p in slides]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == [], f"{len(wrong)} open(s) got another slide's records, e.g. {wrong[0]}"
    assert _state(logger) == before


def test_a_record_of_a_thread_that_opens_no_slide_is_not_taken():
    """While one thread collects, another thread's tifffile record reaches the logger's handlers as
    usual and not that thread's list."""
    logger = logging.getLogger(TIFFFILE_LOGGER)
    before = _state(logger)
    seen: list[logging.LogRecord] = []
    watcher = logging.Handler()
    watcher.emit = seen.append
    logger.addHandler(watcher)
    collected: list[logging.LogRecord] = []
    inside, leave = threading.Event(), threading.Event()

    def collector() -> None:
        with collected_log(collected):
            inside.set()
            leave.wait(timeout=30)
            logger.warning("from the collecting thread")

    thread = threading.Thread(target=collector)
    thread.start()
    try:
        assert inside.wait(timeout=30)
        logger.warning("from a thread that opens no slide")
    finally:
        leave.set()
        thread.join()
        logger.removeHandler(watcher)
    assert [r.getMessage() for r in collected] == ["from the collecting thread"]
    assert [r.getMessage() for r in seen] == ["from a thread that opens no slide"]
    assert _state(logger) == before
