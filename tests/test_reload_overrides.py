"""A config reload (SIGHUP) keeps the command line's flags: the file is re-read and the flags are
merged over it again, so a reload changes only what the file changed. Through the real `sonomap live`
(`--no-ai` stays off on every recorded frame, `--summary` is written) and through the pipeline's
reload itself (`--roi`, `--ema`, `--mm-per-pixel`, `--backend`/`--device`: no backend rebuild)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import av
import numpy as np
import yaml
from live_process import LiveProcess
from loopback import LIVE_START_TIMEOUT_S, get
from runtime_model import dark_onnx

from edge_runtime.cli import build_parser
from edge_runtime.commands.options import runtime_config, runtime_overrides
from edge_runtime.pipeline.graph import Pipeline
from edge_runtime.render.hudrow import AI_BADGE_BGR

FRAMES_BEFORE_RELOAD = 10
FRAMES_AFTER_RELOAD = 20  # the AI came back on within a frame or two of the reload before the fix
RELOAD_S = 30
BADGE_TOLERANCE = 45  # per channel, after H.264
BADGE_MIN_PIXELS = 100  # a badge is ~100 x 26 px; its text takes part of it
CLI_EMA, CLI_MM_PER_PIXEL, CLI_ROI = 0.5, 0.2, "full"


def badge_pixels(image: np.ndarray) -> dict[str, int]:
    """AI state -> how many pixels of ``image`` have that state's badge colour."""
    return {
        state: int((np.abs(image.astype(int) - bgr).max(axis=2) <= BADGE_TOLERANCE).sum())
        for state, bgr in AI_BADGE_BGR.items()
    }


class LiveRun(LiveProcess):
    """`sonomap live ARGS` with the frames it rendered so far."""

    def frames(self) -> int:
        """Frames rendered so far (/stats.json); 0 before the server listens."""
        try:
            status, body = get(f"http://127.0.0.1:{self.port}/stats.json")
        except OSError:
            return 0
        return json.loads(body)["frames"] if status == 200 else 0


def test_sighup_with_the_file_unchanged_keeps_no_ai_and_writes_the_summary(tmp_path):
    config, record, summary = tmp_path / "config.yaml", tmp_path / "rec.mp4", tmp_path / "summary.json"
    config.write_text(yaml.safe_dump({"overlay": {"alpha": 0.4}}))
    live = LiveRun(
        *("--source", "synthetic", "--width", "320", "--height", "240", "--fps", "15", "--headless"),
        *("--no-ai", "--model", str(dark_onnx()), "--backend", "onnxruntime", "--device", "cpu"),
        *("--config", str(config), "--record", str(record), "--summary", str(summary)),
    )
    try:
        live.wait(lambda: live.frames() >= FRAMES_BEFORE_RELOAD, LIVE_START_TIMEOUT_S, "the first frames")
        live.proc.send_signal(signal.SIGHUP)
        live.wait(lambda: any("config reloaded from" in x for x in live.lines), RELOAD_S, "the reload")
        reloaded_at = live.frames()
        live.wait(lambda: live.frames() >= reloaded_at + FRAMES_AFTER_RELOAD, RELOAD_S, "frames after it")
    finally:
        code = live.stop()
    log = "\n".join(live.lines)
    assert code == 0, log[-3000:]
    assert "AI switched on" not in log, log[-3000:]
    assert summary.is_file(), f"--summary {summary} not written after a reload; log: {log[-2000:]}"
    written = json.loads(summary.read_text())
    assert written["inferred"] == 0 and written["ai"]["state"] == "OFF"
    with av.open(str(record)) as c:
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    assert len(frames) >= FRAMES_BEFORE_RELOAD + FRAMES_AFTER_RELOAD
    for index, image in enumerate(frames):  # every recorded frame, the ones after the reload included
        pixels = badge_pixels(image)
        assert pixels["OFF"] >= BADGE_MIN_PIXELS, (index, pixels)
        others = {state: n for state, n in pixels.items() if state != "OFF" and n >= BADGE_MIN_PIXELS}
        assert not others, (index, pixels)


def cli_pipeline(tmp_path: Path, *flags: str) -> tuple[Pipeline, Path]:
    """A pipeline built as `sonomap live --config FILE FLAGS` builds it (the real parser and
    overrides); the config file names the model and an overlay alpha of 0.4."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"overlay": {"alpha": 0.4}, "inference": {"model": str(dark_onnx())}}))
    argv = ["live", "--config", str(config), "--headless", *flags]
    args = build_parser("live").parse_args(argv)
    overrides = runtime_overrides(args)
    return Pipeline(runtime_config(args), config_path=config, overrides=overrides), config


def reload(pipeline: Pipeline) -> None:
    pipeline.request_reload()
    pipeline.apply_reload()


def test_a_reload_changes_what_the_file_changed_and_keeps_every_flag(tmp_path):
    summary = tmp_path / "summary.json"
    flags = ["--roi", CLI_ROI, "--ema", str(CLI_EMA), "--mm-per-pixel", str(CLI_MM_PER_PIXEL)]
    flags += ["--backend", "onnxruntime", "--device", "cpu", "--summary", str(summary), "--no-ai"]
    pipeline, config = cli_pipeline(tmp_path, *flags)
    try:
        backend = pipeline.guard.backend
        config.write_text(config.read_text().replace("alpha: 0.4", "alpha: 0.7"))
        reload(pipeline)
        running = pipeline.config
        assert pipeline.stages.stats.last_error == ""  # not a rejected reload
        assert running.overlay.alpha == 0.7  # what the file changed
        assert pipeline.stages.config is running and pipeline.stages.rois.config is running
        assert running.roi.rect == CLI_ROI and running.roi.mm_per_pixel == CLI_MM_PER_PIXEL
        assert running.overlay.ema == CLI_EMA and running.sinks.summary == str(summary)
        assert running.inference.backend == "onnxruntime" and running.inference.device == "cpu"
        assert pipeline.guard.backend is backend  # the same settings: no needless rebuild
        assert not pipeline.ai.enabled and not running.inference.enabled
    finally:
        pipeline.close()


def test_a_reload_keeps_the_operators_ai_switch_unless_the_file_changes_it(tmp_path):
    pipeline, config = cli_pipeline(tmp_path, "--no-ai")
    try:
        pipeline.ai.set_enabled(True)  # the operator pressed 'a'
        reload(pipeline)  # the file unchanged (and --no-ai as it was): the operator's choice stands
        assert pipeline.ai.enabled
    finally:
        pipeline.close()
    pipeline, config = cli_pipeline(tmp_path)
    try:
        pipeline.ai.set_enabled(False)
        reload(pipeline)
        assert not pipeline.ai.enabled
        config.write_text(yaml.safe_dump({"inference": {"model": str(dark_onnx()), "enabled": False}}))
        pipeline.ai.set_enabled(True)
        reload(pipeline)  # the file switched the AI off: that applies
        assert not pipeline.ai.enabled
    finally:
        pipeline.close()
