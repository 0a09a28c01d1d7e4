"""`sonomap` subcommands of the edge runtime (replay, live, bench, make-clip)."""
from __future__ import annotations


def register(sub) -> None:
    """Add the runtime's subcommands to the top-level parser's subparsers."""
