"""`sonomap` subcommands of the export stage (registered through the sonomap.commands entry point).

Heavy imports happen inside the handlers so that `sonomap --help` stays fast.
"""
from __future__ import annotations


def register(sub) -> None:
    """Add this stage's subcommands to the top-level parser's subparsers."""
