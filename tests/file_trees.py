"""Test helper: what a folder holds, byte for byte, to prove a refused command changed nothing."""

from __future__ import annotations

from pathlib import Path


def tree_bytes(root: Path, folders: bool = False) -> dict[str, bytes]:
    """Every file under ``root``: relative name -> content; with ``folders``, every folder too
    (-> b""), so a folder made and left empty also shows."""
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else b""
        for p in sorted(root.rglob("*"))
        if p.is_file() or (folders and p.is_dir())
    }
