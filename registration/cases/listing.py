"""Placeholder: lists captured cases and what each lacks (being written)."""

from __future__ import annotations

from edge_runtime.errors import SonomapError


def add_options(p) -> None:
    """Options of ``sonomap cases DIR``."""


def run_list(args) -> int:
    raise SonomapError("sonomap cases: not implemented yet")
