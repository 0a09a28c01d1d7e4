"""The one case splitter (edge_runtime.case_split) and the stage arrows around it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from edge_runtime.case_split import SPLITS, split_cases, split_counts

ROOT = Path(__file__).resolve().parents[1]


def _count(split: dict[str, str]) -> dict[str, int]:
    return {name: sum(1 for v in split.values() if v == name) for name in SPLITS}


@pytest.mark.parametrize(
    "n,expected",
    [(0, (0, 0, 0)), (1, (1, 0, 0)), (2, (1, 0, 1)), (3, (1, 1, 1)), (10, (7, 2, 1)), (40, (28, 8, 4))],
)
def test_counts(n, expected):
    assert tuple(split_counts(n).values()) == expected


def test_two_cases_per_stratum_give_a_test_case_in_each():
    """Two cases: train + test, with or without strata (the stages used to differ here)."""
    assert sorted(split_cases(["a", "b"], seed=5).values()) == ["test", "train"]
    strata = {"m1": "malignant", "m2": "malignant", "b1": "benign", "b2": "benign"}
    split = split_cases(list(strata), seed=5, strata=strata)
    for label in ("malignant", "benign"):
        assert sorted(s for c, s in split.items() if strata[c] == label) == ["test", "train"]


def test_stratified_split_puts_every_stratum_in_every_split():
    strata = {f"m{i}": "malignant" for i in range(10)} | {f"b{i}": "benign" for i in range(20)}
    split = split_cases(list(strata), seed=1, strata=strata)
    for label, n in (("malignant", 10), ("benign", 20)):
        assert _count({c: s for c, s in split.items() if strata[c] == label}) == split_counts(n)
    assert split_cases(list(reversed(list(strata))), seed=1, strata=strata) == split  # order-free
    assert split_cases(list(strata), seed=2, strata=strata) != split  # the seed matters


def test_an_earlier_split_is_kept_within_each_stratum():
    strata = {f"c{i}": "ab"[i % 2] for i in range(40)}
    first = split_cases([c for c in strata if int(c[1:]) < 20], seed=3, strata=strata)
    grown = split_cases(list(strata), seed=3, strata=strata, existing=first)
    assert all(grown[c] == s for c, s in first.items())  # nobody moves
    for label in "ab":
        assert _count({c: s for c, s in grown.items() if strata[c] == label}) == split_counts(20)


def _imports(package: str) -> set[str]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):  # function-level imports count too
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
    return found


@pytest.mark.parametrize(
    "stage,forbidden",
    [
        ("edge_runtime", {"registration", "training", "export"}),
        ("registration", {"training", "export"}),
        ("training", {"export"}),
    ],
)
def test_stages_import_only_the_way_the_data_flows(stage, forbidden):
    assert not _imports(stage) & forbidden


def test_a_batch_arriving_later_fills_an_empty_split_first():
    """Two patients, then a third: the third goes to the empty val split (train refuses an empty
    split), and the first two keep theirs."""
    first = split_cases(["pat-a", "pat-b"], seed=0)
    grown = split_cases(["pat-a", "pat-b", "pat-c"], seed=0, existing=first)
    assert all(grown[c] == s for c, s in first.items())
    assert _count(grown) == {"train": 1, "val": 1, "test": 1}


@pytest.mark.parametrize("seed", range(5))
def test_patients_arriving_one_at_a_time_give_every_split_a_patient_once_there_are_enough(seed):
    """One new patient per run: from MIN_CASES_ALL_SPLITS patients on no split is empty, as
    split_counts promises; nobody ever moves."""
    split: dict[str, str] = {}
    for n in range(1, 25):
        grown = split_cases([f"p{i:02d}" for i in range(n)], seed=seed, existing=split)
        assert all(grown[c] == s for c, s in split.items())  # existing assignments are stable
        counts = _count(grown)
        promised = split_counts(n)
        assert all(counts[name] > 0 for name in SPLITS if promised[name] > 0), (n, counts)
        split = grown
    assert _count(split) == split_counts(24)  # and the shares still converge


def test_an_empty_split_is_filled_before_a_larger_deficit_elsewhere():
    """An earlier split without a test patient (train far below its 70 %): the next patient still
    goes to test, and nobody moves."""
    existing = {"p0": "train", "p1": "train", "p2": "val", "p3": "val", "p4": "val"}
    grown = split_cases([*existing, "new"], seed=0, existing=existing)
    assert grown["new"] == "test" and all(grown[c] == s for c, s in existing.items())
