"""SIGHUP reload through the real `sonomap live`: an inference section that cannot be built keeps
the old backend inferring (and the error is logged); a good change is applied, as /metrics shows."""

from __future__ import annotations

import signal
import urllib.request

import yaml
from live_process import LiveProcess
from loopback import free_port
from prometheus_client.parser import text_string_to_metric_families
from runtime_model import dark_onnx

STARTUP_S = 90
APPLY_S = 60


class Live(LiveProcess):
    """`sonomap live --config CONFIG --headless` with its metrics."""

    def __init__(self, config, port: int):
        super().__init__("--config", config, "--headless", port=port)

    def metrics(self) -> tuple[int, dict[str, str]]:
        """(predictions made so far, backend info labels), from /metrics."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            assert r.status == 200
            text = r.read().decode()
        samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
        count = [
            s.value
            for s in samples
            if s.name == "sonomap_latency_seconds_count" and s.labels == {"stage": "backend"}
        ]
        info = [s.labels for s in samples if s.name == "sonomap_backend_info" and s.value == 1]
        return (int(count[0]) if count else 0), (info[0] if info else {})

    def predictions_grow(self, by: int, timeout: float) -> dict[str, str]:
        start, _ = self.metrics()
        return self.wait(
            lambda: (lambda c, i: i if c >= start + by else None)(*self.metrics()),
            timeout,
            f"{by} more predictions",
        )


def write_config(path, inference: dict) -> None:
    path.write_text(
        yaml.safe_dump(
            {
                "source": {"input": "synthetic", "fps": 15, "width": 320, "height": 240},
                "inference": {"model": str(dark_onnx()), **inference},
            }
        )
    )


def test_sighup_keeps_the_old_backend_when_the_new_one_cannot_be_built(tmp_path):
    config = tmp_path / "config.yaml"
    write_config(config, {"backend": "onnxruntime", "threads": 2})
    live = Live(config, free_port())
    try:
        info = live.wait(
            lambda: (lambda c, i: i if c > 5 else None)(*live.metrics()), STARTUP_S, "first predictions"
        )
        assert info["backend"] == "onnxruntime" and info["threads"] == "2"

        # valid YAML and schema, but no backend can be built from it: the torch backend named for an ONNX model
        write_config(config, {"backend": "torch", "threads": 1})
        live.proc.send_signal(signal.SIGHUP)
        rejected = live.wait(
            lambda: [line for line in live.lines if "config reload rejected" in line],
            APPLY_S,
            "the rejection in the log",
        )
        assert "inference.backend torch loads torchscript models" in rejected[0], rejected
        info = live.predictions_grow(10, APPLY_S)  # after the rejection: still inferring, same backend
        assert info["backend"] == "onnxruntime" and info["threads"] == "2"

        write_config(config, {"backend": "onnxruntime", "threads": 1})
        live.proc.send_signal(signal.SIGHUP)
        live.wait(lambda: live.metrics()[1].get("threads") == "1", APPLY_S, "threads 1 applied")
        info = live.predictions_grow(10, APPLY_S)  # the new backend infers
        assert info["backend"] == "onnxruntime" and info["threads"] == "1"
    finally:
        code = live.stop()
    assert code == 0, "\n".join(live.lines[-30:])
    assert sum("config reload rejected" in line for line in live.lines) == 1
    assert sum("config reloaded from" in line for line in live.lines) == 1
