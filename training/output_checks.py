"""Checks on the training commands' output files, made before any work starts.

``refuse_manifest_clash(source, out)``: ``upgrade-checkpoint --out`` must not be a manifest
(``X.yaml`` beside an existing ``X``: the torch file would replace it) nor a path whose own
manifest sidecar (``OUT.yaml``) is the checkpoint being read.
``refuse_existing(out)``: a command that writes a new checkpoint (``upgrade-checkpoint --out``,
``training.ensemble``, ``training.average``) never writes over one, nor over its manifest: a trained
run's ``best.pt``, one of the command's own inputs, an earlier upgrade's ``.orig`` backup.
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


def refuse_existing(out: str | Path, flag: str = "--out", what: str = "") -> None:
    """ConfigError naming ``flag`` when ``out``, or its manifest, exists already (``what``: what the
    file may be, said in brackets): the command writes new files only."""
    out = Path(out)
    kind = f" ({what})" if what else ""
    if out.exists() or out.is_symlink():
        raise ConfigError(
            f"{flag} {out}: exists already{kind}; it is not written over: give a new file name, "
            "or move it away first"
        )
    if manifest_path(out).exists() or manifest_path(out).is_symlink():
        raise ConfigError(
            f"{flag} {out}: its manifest {manifest_path(out)} exists already; it is not written over: "
            "give a new file name, or move it away first"
        )
