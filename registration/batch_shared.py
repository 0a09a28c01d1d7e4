"""Cases of one batch that share what must be one core's own: its id (each names its files in the
dataset), or its slide or annotation file (a copy-paste slip in the lab would otherwise pair one
pathologist's outline with two cores, and both would be registered and scored).

Input: the ids every case file gives, loaded or not (a pending copy of a registered case shares its
id as much as a complete one), and the loaded ``(case.yaml, CaseSpec)`` pairs. Output: case.yaml -> one message per clash, each
naming the other case files and, for an input, its key (``pathology.wsi``, ``pathology.annotations``),
never the input's path or name (file names often carry the patient's name). Every case of a clash is
refused: which of them holds the right pathology cannot be told from the files.

Files are compared by identity: the resolved path, or the same (st_dev, st_ino), which also catches
two paths to one file through a hard link or a symlink. Contents are not hashed here: that would read
every multi-gigabyte slide of the batch again before anything is registered. A byte-identical copy
under another name is therefore not caught by this check.
"""

from __future__ import annotations

import os
from pathlib import Path

from edge_runtime.biopsy.study_id import case_id_of
from edge_runtime.errors import SonomapError
from edge_runtime.yamlfile import read_yaml_mapping
from registration.case import CaseSpec

SHARED_KEYS = ("wsi", "annotations")  # the pathology inputs that belong to exactly one core


def _identity(path: Path) -> tuple[int, int] | str:
    """(st_dev, st_ino) of the file ``path`` names, or its resolved path when it cannot be looked at
    now (registration then reports why on that case's own turn)."""
    try:
        st = os.stat(path)
    except OSError:
        return str(path.resolve())
    return st.st_dev, st.st_ino


def shared_inputs(loaded: list[tuple[Path, CaseSpec]]) -> dict[Path, list[str]]:
    """case.yaml -> one message for every case whose slide or annotation another case also names."""
    users: dict[tuple[int, int] | str, list[tuple[Path, str]]] = {}
    for case_yaml, spec in loaded:
        for key in SHARED_KEYS:
            users.setdefault(_identity(getattr(spec.pathology, key)), []).append((case_yaml, key))
    same: dict[Path, dict[str, list[str]]] = {}  # case.yaml -> its key -> the other cases' keys
    for entries in users.values():
        for case_yaml, key in entries:
            others = [f"pathology.{k2} of {c2}" for c2, k2 in entries if c2 != case_yaml]
            if others:
                same.setdefault(case_yaml, {}).setdefault(f"pathology.{key}", []).extend(others)
    return {
        case_yaml: [
            "; ".join(f"{key} is the same file as {', '.join(others)}" for key, others in keys.items())
            + "; a slide and its annotation belong to one core: correct the pathology section of the wrong case"
        ]
        for case_yaml, keys in same.items()
    }


def case_ids(cases: list[Path]) -> dict[Path, str]:
    """case.yaml -> its case id (edge_runtime/biopsy/study_id.case_id_of), for every case file that
    gives one: complete, pending or broken alike, since a pending or broken copy of a registered case
    would take its place in the dataset once it loads. A file that cannot be read or whose id is
    refused has no id to share; its own error reports it."""
    ids = {}
    for case_yaml in cases:
        try:
            ids[case_yaml] = case_id_of(read_yaml_mapping(case_yaml, "case file"), case_yaml)
        except SonomapError:
            continue
    return ids


def shared_ids(ids: dict[Path, str]) -> dict[Path, list[str]]:
    """case.yaml -> one message for every case of ``ids`` (:func:`case_ids`) whose id another also has."""
    by_id: dict[str, list[Path]] = {}
    for case_yaml, case_id in ids.items():
        by_id.setdefault(case_id, []).append(case_yaml)
    clashes: dict[Path, list[str]] = {}
    for case_yaml, case_id in ids.items():
        others = [str(p) for p in by_id[case_id] if p != case_yaml]
        if others:
            clashes[case_yaml] = [
                f"case id {case_id!r} is also used by {', '.join(others)}; give each case its own id"
            ]
    return clashes


def shared_ids_and_inputs(loaded: list[tuple[Path, CaseSpec]], ids: dict[Path, str]) -> dict[Path, list[str]]:
    """case.yaml -> messages for every case whose id another case of ``ids`` (:func:`case_ids`, every
    case with an id, loaded or not) also has, or whose slide or annotation another ``loaded`` case
    also names."""
    clashes = shared_ids(ids)
    for case_yaml, messages in shared_inputs(loaded).items():
        clashes.setdefault(case_yaml, []).extend(messages)
    return clashes
