"""`sonomap` subcommands of the edge runtime (replay, live, bench, make-clip, soak).

This package is the CLI's wiring and is imported by every `sonomap` call, `--help` included: each
command imports the part of the runtime it runs (the pipeline, the bench, the service hooks) inside
its handler, so `--help` does not load the whole runtime. By subcommand group:
:mod:`~edge_runtime.commands.replay_live` (replay, live), :mod:`~edge_runtime.commands.clip_bench`
(make-clip, bench) and the soak test (:mod:`edge_runtime.tools.soak`); the options they share are in
:mod:`~edge_runtime.commands.options`, the observers they attach in
:mod:`~edge_runtime.commands.observers`.
"""

from __future__ import annotations

from edge_runtime.commands import clip_bench, replay_live
from edge_runtime.tools import soak


def register(sub) -> None:
    """Add the runtime's subcommands to the top-level parser's subparsers."""
    replay_live.register(sub)
    clip_bench.register(sub)
    soak.register(sub)
