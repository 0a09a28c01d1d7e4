"""Placeholder: exports captured cases as DICOM to a DICOMweb server (being written)."""

from __future__ import annotations

from edge_runtime.errors import SonomapError


def add_options(p) -> None:
    """Options of ``sonomap cases export DIR``."""


def run_export(args) -> int:
    raise SonomapError("sonomap cases export: not implemented yet")
