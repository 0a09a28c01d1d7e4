"""What ``--record-sequence`` costs: bytes and CPU per frame, measured in one run.

``python -m edge_runtime.tools.sequence_bench [--frames N] [--size WxH] [--out DIR]``

Input: the vendored BUSI image on the synthetic scanner screen (probe motion, so frames differ),
its ROI, and a labelmap/probability made from it (the recorder's cost does not depend on the model).
It feeds :class:`edge_runtime.sinks.sequence.SequenceRecorder` as replay does (every frame, the
render thread waiting for room) and prints: bytes on disk per frame (data + headers), the render
thread's time per frame in ``on_frame`` (the ROI copy), and CPU per frame by thread
(:class:`edge_runtime.tools.threadcpu.ThreadCpu`: the writer thread ``sink-sequence``; ``render`` is
this loop, which also makes the frames).
Files: the recording in ``--out`` (a temp folder, deleted, by default).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from edge_runtime import cli_args
from edge_runtime.frames import Frame, Prediction
from edge_runtime.roi import detect_roi
from edge_runtime.sinks.sequence import SequenceRecorder
from edge_runtime.sources.synthetic import ScreenSimulator, default_image
from edge_runtime.tools.threadcpu import ThreadCpu
from edge_runtime.units import MS_PER_S

DISTINCT_FRAMES = (
    30  # screens rendered up front and cycled: the bench measures the recorder, not the simulator
)
DARK_LEVEL = 70  # "cancer" where the image is dark: a labelmap with real structure to write


def run(frames: int, width: int, height: int, out: Path) -> dict:
    sim = ScreenSimulator(default_image(), screen_w=width, screen_h=height)
    screens = [sim.frame(i) for i in range(DISTINCT_FRAMES)]
    roi = detect_roi(screens[0])
    recorder = SequenceRecorder(out / "bench.seq.nrrd", live=False)
    cpu = ThreadCpu("render")
    on_frame_ms, on_frame_cpu_ms = [], []
    cpu.start()
    started = time.perf_counter()
    for i in range(frames):
        screen = screens[i % DISTINCT_FRAMES]
        gray = roi.crop(screen)[:, :, 1]
        mask = (gray < DARK_LEVEL).astype(np.uint8)
        frame = Frame(i, screen, time.monotonic(), i / 30.0, {"roi": roi, "mm_per_pixel": sim.mm_per_pixel})
        prediction = Prediction(mask, mask.astype(np.float32), frame=frame, roi=roi)
        t0, c0 = time.perf_counter(), time.thread_time()
        recorder.on_frame(frame, prediction, screen, {})
        on_frame_ms.append((time.perf_counter() - t0) * MS_PER_S)
        on_frame_cpu_ms.append((time.thread_time() - c0) * MS_PER_S)
    recorder.close()
    wall_s = time.perf_counter() - started
    cpu.stop()
    disk = sum(f.stat().st_size for f in out.iterdir())
    headers = sum(f.stat().st_size for f in out.glob("*.nrrd"))
    return {
        "frames": recorder.frames,
        "roi": f"{roi.w}x{roi.h}",
        "bytes_per_frame": disk / max(recorder.frames, 1),
        "header_bytes_per_frame": headers / max(recorder.frames, 1),
        "on_frame_ms_p50": statistics.median(on_frame_ms),
        "on_frame_cpu_ms_mean": statistics.fmean(on_frame_cpu_ms),
        "wall_ms_per_frame": wall_s * MS_PER_S / frames,
        "cpu_ms_per_frame": cpu.per_frame_ms(frames),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge_runtime.tools.sequence_bench", description=__doc__)
    parser.add_argument("--frames", type=cli_args.at_least(1), default=300)
    parser.add_argument("--size", default="1920x1080", help="screen WxH (the ROI is detected on it)")
    parser.add_argument("--out", help="keep the recording in this folder")
    args = parser.parse_args(argv)
    width, _, height = args.size.partition("x")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        out.mkdir(parents=True, exist_ok=True)
        report = run(args.frames, int(width), int(height), out)
    print(
        f"{report['frames']} frames, ROI {report['roi']}: {report['bytes_per_frame'] / 1e6:.3f} MB per frame on "
        f"disk (headers {report['header_bytes_per_frame']:.0f} B of it); {report['wall_ms_per_frame']:.2f} ms wall per frame"
    )
    print(
        f"  render thread in on_frame: {report['on_frame_cpu_ms_mean']:.3f} ms CPU per frame (mean), "
        f"{report['on_frame_ms_p50']:.2f} ms wall (p50; replay waits here when the writer is behind)"
    )
    for thread, ms in sorted(report["cpu_ms_per_frame"].items(), key=lambda kv: -kv[1]):
        print(f"  cpu {thread:<16} {ms:7.3f} ms/frame")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
