"""`bench-train --json` stopped by SIGTERM (`timeout`, a batch scheduler) as by Ctrl-C while a variant's
worker process trains: one line saying so, exit 143 (128 + SIGTERM), the worker ended with it (not left
training its round, which the interpreter's exit would wait for), no hidden temp file, and the earlier
report at the --json path byte for byte. A real process and a real signal (tests/sigterm_stop.py
`sigterm_when`), sent once the worker trains: read from /proc, as the worker writes no file."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import yaml
from sigterm_stop import sigterm_when

ENDLESS_ITERS = 1_000_000  # far more than the worker runs before the stop: the stop comes mid-round
TINY = {
    "model": {"arch": "unet_small", "width": 4},
    "data": {"input_height": 64, "input_width": 64},
    "train": {"batch_size": 2},
}
SPAWNED = b"multiprocessing.spawn"  # in a spawned worker's command line
# mapped once the worker decodes its first image with PIL: the first variant (the reference loop) is training
PIL_DECODER = "PIL/_imaging"


def _command_line(pid: int | str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # gone meanwhile
        return b""


def _maps(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/maps").read_text()
    except OSError:  # gone meanwhile
        return ""


def _workers(bench: list[int], config: Path) -> list[int]:
    """The spawned workers of the `bench-train` process whose command line names ``config``; ``bench``
    keeps that process's pid between calls, once found."""
    if not bench:
        marker = os.fsencode(config)
        bench += [int(p) for p in os.listdir("/proc") if p.isdigit() and marker in _command_line(p)]
    children = []
    for pid in bench:
        try:
            children += Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
    return [int(c) for c in children if SPAWNED in _command_line(c)]


def test_sigterm_mid_round_ends_the_worker_and_keeps_the_earlier_report(tmp_path, busi_dataset):
    config, report = tmp_path / "tiny.yaml", tmp_path / "bench.json"
    config.write_text(yaml.safe_dump(TINY))
    earlier = b'{"an earlier report": true}\n'
    report.write_bytes(earlier)
    args = ["bench-train", "--config", config, "--data", busi_dataset, "--json", report, "--device", "cpu"]
    args += ["--iters", ENDLESS_ITERS, "--rounds", 1]
    bench: list[int] = []
    workers: list[int] = []

    def training() -> bool:
        workers[:] = _workers(bench, config)
        return any(PIL_DECODER in _maps(w) for w in workers)

    try:
        stderr = sigterm_when(args, training)
        assert len(stderr.strip().splitlines()) == 1, stderr
        assert [w for w in workers if _command_line(w)] == []  # ended (and reaped) before the bench exited
        assert report.read_bytes() == earlier
        assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.json", "tiny.yaml"]
    finally:
        for worker in workers:  # a worker left training: not into the other tests' time
            if SPAWNED in _command_line(worker):
                os.kill(worker, signal.SIGKILL)
