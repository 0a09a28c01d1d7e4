"""TensorRT's own messages reach the one-line errors: the process's logger is a ``trt.ILogger``
subclass (NVIDIA's documented way to receive them) that passes them to Python logging and keeps the
last errors, so a ``Runtime`` or ``Builder`` that cannot start (a CUDA 13 build of TensorRT on an
older driver, or no GPU) is a TensorRTUnavailable naming TensorRT's reason, not a bare TypeError or
an object that fails later. Against the real ``tensorrt_lean`` bindings: on this machine without a
GPU, its Runtime logs "CUDA driver version is insufficient"; on a GPU machine it starts."""

from __future__ import annotations

import json
import logging
import os

import pytest

from edge_runtime.tensorrt import modules

lean = pytest.importorskip("tensorrt_lean", reason="tensorrt-lean-cu13 not installed")


def _cuda_usable() -> bool:
    torch = pytest.importorskip("torch")
    return torch.cuda.is_available()


def test_the_process_logger_is_an_ilogger_that_keeps_tensorrts_errors(caplog):
    logger = modules.trt_logger(lean)
    assert isinstance(logger, lean.ILogger) and modules.trt_logger(lean) is logger  # one per process
    with caplog.at_level(logging.WARNING, logger="sonomap.tensorrt"):
        logger.log(lean.ILogger.Severity.ERROR, "Error Code 4: the first")
        logger.log(lean.ILogger.Severity.WARNING, "a warning is logged, not kept")
        logger.log(lean.ILogger.Severity.INFO, "info is dropped")
        logger.log(lean.ILogger.Severity.INTERNAL_ERROR, "Error Code 2: the second")
    assert modules.logged_errors(lean) == "Error Code 4: the first; Error Code 2: the second"
    assert modules.logged_errors() == ""  # taken: the next failure names only its own
    levels = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "sonomap.tensorrt"]
    assert levels == [
        ("ERROR", "Error Code 4: the first"),
        ("WARNING", "a warning is logged, not kept"),
        ("ERROR", "Error Code 2: the second"),
    ]


def _construct_in_child() -> tuple[str, str]:
    """(outcome, text) of ``construct(lean, "Runtime")`` in a forked child that ends with ``os._exit``,
    as the CLI does after such a failure: tensorrt-lean's object around a failed start crashes when it
    is destroyed, which the child never does."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then end without finalising anything
        os.close(read)
        try:
            made = modules.construct(lean, "Runtime")
            outcome, text = "made", type(made).__name__
        except modules.TensorRTUnavailable as exc:
            outcome, text = "unavailable", str(exc)
        except BaseException as exc:  # anything else is this test's finding: reported, not raised
            outcome, text = "other", f"{type(exc).__name__}: {exc}"
        os.write(write, json.dumps([outcome, text, len(modules.UNUSABLE)]).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        outcome, text, kept = json.loads(pipe.read())
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return outcome, text, kept


def test_a_runtime_that_cannot_start_names_tensorrts_reason():
    outcome, text, kept = _construct_in_child()
    if _cuda_usable():  # a GPU machine: it starts
        assert (outcome, kept) == ("made", 0), text
        return
    assert outcome == "unavailable", text
    assert text.startswith(f"TensorRT {lean.__version__} Runtime cannot start (") and "\n" not in text
    assert "CUDA" in text.split("):")[0]  # TensorRT's own reason, e.g. "CUDA driver version is insufficient"
    assert "update the driver, or install the CUDA 12 build" in text
    assert kept == 1  # the object around the failed start is kept, never destroyed
