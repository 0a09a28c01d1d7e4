"""Swapping backends (a config reload, the fail-safe's re-creation after repeated faults): a failure to
close the replaced backend is reported as that, never as a failed swap. Before, the swap had happened
(the new backend serving) while the reload was reported rejected, keeping the old config, and the
re-creation was logged as failed. Real ONNX Runtime backends; the replaced one's close raises."""

from __future__ import annotations

import logging

import numpy as np
from runtime_model import dark_onnx

from edge_runtime.backends.failsafe import GuardedInference
from edge_runtime.backends.onnxruntime import OnnxRuntimeBackend
from edge_runtime.manifest import load_manifest
from edge_runtime.stats import Stats


class CloseFails(OnnxRuntimeBackend):
    def close(self):
        raise RuntimeError("device lost while freeing")


def _backend(cls=OnnxRuntimeBackend):
    model = dark_onnx()
    return cls(model, load_manifest(model), device="cpu")


def test_a_replaced_backend_that_fails_to_close_leaves_the_new_one_serving(caplog):
    caplog.set_level(logging.WARNING, logger="sonomap.failsafe")
    stats = Stats()
    guard = GuardedInference(_backend, stats, backend=_backend(CloseFails))
    new = _backend()
    guard.replace_backend(lambda: new)  # a reload: no exception, so the reload is not "rejected"
    assert guard.backend is new
    assert "closing the replaced backend failed (the new one is serving): device lost" in caplog.text
    assert guard.infer(np.full((64, 80), 90, np.uint8)) is not None and guard.fault is None


def test_a_re_creation_after_faults_that_fails_to_close_the_old_backend_is_not_called_failed(caplog):
    caplog.set_level(logging.WARNING, logger="sonomap.failsafe")
    stats = Stats()
    guard = GuardedInference(_backend, stats, reload_after_errors=1, backend=_backend(CloseFails))
    guard.retry_every_call()
    first = guard.backend
    guard.report_fault("inference thread: RuntimeError: a fault")  # one fault: a re-creation is due
    assert guard.infer(np.full((64, 80), 90, np.uint8)) is not None  # re-created, then inferred
    assert guard.backend is not first
    assert "backend re-created after 1 consecutive faults" in caplog.text
    assert "re-creation after 1 consecutive faults failed" not in caplog.text
    assert "closing the replaced backend failed (the new one is serving)" in caplog.text
    assert stats.last_error == "inference thread: RuntimeError: a fault"


class MultiLineFault(OnnxRuntimeBackend):
    def infer(self, gray):
        raise RuntimeError(
            "Non-zero status code returned while running Reshape node.\n Status Message: shape\n"
        )


def test_a_fault_message_over_several_lines_is_logged_and_kept_as_one(caplog):
    """ONNX Runtime's errors span lines; the fault's log line and the summary's last_error (quoted by the
    replay's one-line error) were split by them."""
    caplog.set_level(logging.WARNING, logger="sonomap.failsafe")
    stats = Stats()
    guard = GuardedInference(_backend, stats, backend=_backend(MultiLineFault))
    assert guard.infer(np.full((64, 80), 90, np.uint8)) is None
    assert (
        stats.last_error
        == "RuntimeError: Non-zero status code returned while running Reshape node. Status Message: shape"
    )
    assert all("\n" not in r.getMessage() for r in caplog.records)
