"""Checks on the training commands' output files, made before any work starts.

``refuse_manifest_clash(source, out)``: ``upgrade-checkpoint --out`` must not be a manifest
(``X.yaml`` beside an existing ``X``: the torch file would replace it) nor a path whose own
manifest sidecar (``OUT.yaml``) is the checkpoint being read.
It is one ConfigError naming the flag, raised before anything is written. (Output folders apart from
the folders a command reads: :func:`edge_runtime.atomic.check_apart`.)
"""

from __future__ import annotations

from pathlib import Path

from edge_runtime.atomic import same_file
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import manifest_path

MANIFEST_SUFFIX = ".yaml"  # edge_runtime.manifest.manifest_path: ARTIFACT -> ARTIFACT.yaml


def refuse_manifest_clash(source: str | Path, out: str | Path, flag: str = "--out") -> None:
    """Raise ConfigError when writing checkpoint ``out`` (and its manifest ``out.yaml``) from
    ``source`` would replace a manifest, or ``source`` itself, with the wrong kind of file."""
    source, out = Path(source), Path(out)
    if same_file(out, manifest_path(source)):
        raise ConfigError(
            f"{flag} {out}: is the manifest of {source}; a checkpoint written there would destroy it; "
            "give another file name"
        )
    if out.name.endswith(MANIFEST_SUFFIX):
        described = out.with_name(out.name[: -len(MANIFEST_SUFFIX)])
        if described.is_file():
            raise ConfigError(
                f"{flag} {out}: is the manifest of {described}; a checkpoint written there would "
                "destroy it; give another file name"
            )
    if same_file(manifest_path(out), source):
        raise ConfigError(
            f"{flag} {out}: its manifest {manifest_path(out)} would be written over {source}, the "
            "checkpoint being read; give another file name"
        )
