"""Checks on the training commands' output files, made before any work starts.

``refuse_manifest_clash(source, out)``: ``upgrade-checkpoint --out`` must not be a manifest
(``X.yaml`` beside an existing ``X``: the torch file would replace it) nor a path whose own
manifest sidecar (``OUT.yaml``) is the checkpoint being read.
``check_apart(source, out, source_flag)``: a command's output folder and a folder it reads (the
dataset of train, pretrain, crossval and evaluate; the BUSI release of prepare-busi; pretrain's
``--images``; concordance's CASES and ``--dataset``) must be apart: neither the same folder nor one
inside the other, or the output would write over, or mix its files with, the input's. Each is one
ConfigError naming the flag, raised before anything is written.
"""

from __future__ import annotations

from pathlib import Path

from edge_runtime.atomic import same_file
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import manifest_path

MANIFEST_SUFFIX = ".yaml"  # edge_runtime.manifest.manifest_path: ARTIFACT -> ARTIFACT.yaml


def check_apart(source: str | Path, out: str | Path, source_flag: str, out_flag: str = "--out") -> None:
    """Raise ConfigError naming both flags when OUT is SOURCE, lies inside it or contains it
    (symbolic links resolved, so a link into SOURCE counts as inside). Reads nothing but the paths."""
    s, o = Path(source).resolve(), Path(out).resolve()
    if o == s or s in o.parents or o in s.parents:
        raise ConfigError(
            f"{out_flag} {out}: is, lies inside or contains {source_flag} {source}; give an {out_flag} "
            f"folder apart from it, so the files {source_flag} holds are never written over or mixed "
            "with the output"
        )


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
