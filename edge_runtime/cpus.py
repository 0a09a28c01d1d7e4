"""How many CPU cores this process may use, and the codec thread counts derived from it.

Video decode/encode threads compete with inference for the same cores. On a 2-core machine
extra codec threads only add switching and frame-threading overhead (measured: 1080p H.264
decode 8.5 ms CPU/frame single-threaded vs 11.7 ms with FFmpeg's default 3 threads); on a
16-core GPU host a single thread caps the frame rate instead.
"""

from __future__ import annotations

import os

import cv2

CORES_PER_DECODE_THREAD = 2
CORES_PER_ENCODE_THREAD = 4
MAX_CODEC_THREADS = 8
CORES_PER_RENDER_WORKER = 4
MAX_RENDER_WORKERS = 4


def available_cores() -> int:
    """Cores in this process's affinity mask (systemd CPUAffinity=, taskset, containers)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def decode_threads() -> int:
    """FFmpeg decoder threads: one per two cores (1 on a 2-core machine), at most 8."""
    return max(1, min(MAX_CODEC_THREADS, available_cores() // CORES_PER_DECODE_THREAD))


def encode_threads() -> int:
    """libx264 threads: 1 up to 7 cores (2-core CI, small Jetsons), then one per four cores, at most 8
    (zerolatency uses sliced threads, so more threads add no latency)."""
    return max(1, min(MAX_CODEC_THREADS, available_cores() // CORES_PER_ENCODE_THREAD))


def render_workers() -> int:
    """Replay overlay workers: 1 up to 7 cores, then one per four cores, at most 4. Frames are
    drawn in parallel and written in order; on a 16-core GPU host the single render thread was
    the stage that capped replay throughput."""
    return max(1, min(MAX_RENDER_WORKERS, available_cores() // CORES_PER_RENDER_WORKER))


OPENCV_THREADS_ENV = "OPENCV_FOR_THREADS_NUM"  # OpenCV's own override, honoured when set


def limit_opencv_threads() -> None:
    """Run each OpenCV call on its calling thread, unless ``OPENCV_FOR_THREADS_NUM`` says otherwise.

    The pipeline already runs its stages (and, in replay, several overlay workers) in parallel
    threads; OpenCV's own pool of one worker per core on top of them oversubscribes a large host.
    A precaution, not a measured win: on 2 cores it made no difference, and on the 16-core H100
    host its effect could not be separated from other changes (docs/measurements.md, GPU section).
    """
    if os.environ.get(OPENCV_THREADS_ENV) is None:
        cv2.setNumThreads(1)
