"""Case files that give one case id: a case folder copied (``20261130T034535Z-1 - Copy``) or an id
typed twice.

The dataset holds one registration per id, so each such case.yaml would be joined with the same
registered label and its core scored once per copy: one biopsy counted twice, or another core's
prediction scored against it. register-batch refuses every case of a shared id
(registration/batch_shared.py); concordance skips them all the same way, with a reason naming the
other cases by their place among the case files (``case 2 of 5``), never by folder.

Input: the case.yaml files (:func:`training.concordance.cases_folder.find_case_files`' order) and a
function giving a file's case id (:func:`case_id_of`, as register-batch takes it). Output: case.yaml
-> the reason it is skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edge_runtime.biopsy.study_id import case_id_of as study_case_id
from edge_runtime.errors import ConfigError, InputError, SonomapError
from edge_runtime.yamlfile import read_yaml_mapping


def case_id_of(case_yaml: Path, case: dict | None = None) -> str:
    """The case id of ``case_yaml`` (its mapping ``case``, read when not given) by register-batch's
    rule (:func:`edge_runtime.biopsy.study_id.case_id_of`); InputError when that rule refuses it:
    register-batch has refused the case too, so it has no registration to score."""
    case = read_yaml_mapping(case_yaml, "case file") if case is None else case
    try:
        return study_case_id(case, case_yaml)
    except ConfigError as exc:
        raise InputError(f"{exc}; then register it again") from None


def shared_ids(found: list[Path], id_of: Callable[[Path], str]) -> dict[Path, str]:
    """case.yaml -> why it is not scored, for every file of ``found`` whose id (``id_of``; a file it
    raises SonomapError for is left to its own turn) another file of ``found`` also has."""
    by_id: dict[str, list[int]] = {}
    for position, case_yaml in enumerate(found, start=1):
        try:
            by_id.setdefault(id_of(case_yaml), []).append(position)
        except SonomapError:
            continue
    reasons = {}
    for case_id, positions in by_id.items():
        for position in positions if len(positions) > 1 else ():
            others = ", ".join(f"case {p} of {len(found)}" for p in positions if p != position)
            reasons[found[position - 1]] = (
                f"case id {case_id!r} is also the id of {others} (a copied case folder, or an id typed "
                "twice), and the dataset has one registration per id: register-batch refuses all of "
                "them; delete the copy or give each case its own id"
            )
    return reasons
