"""Train/val/test split by case (patient): the one splitter every stage uses.

Registration's ``register-batch`` (patients of a biopsy batch) and training's ``prepare-busi``
(near-duplicate groups of a public set) both call :func:`split_cases`, so one set of cases with
one seed gets one split wherever it is made. It lives on edge_runtime's ground floor because
registration and training may both import that and must not import each other.

Input: case ids (duplicates are one case), a seed, optionally a stratum per case and an earlier
split to keep. Output: case id -> "train" | "val" | "test". Numpy only; writes nothing.
"""

from __future__ import annotations

import numpy as np

SPLITS = ("train", "val", "test")
# The study's 70/20/10 patient split (train, val, test).
SPLIT_FRACTIONS = (0.7, 0.2, 0.1)
# From this many cases on (per stratum) every split gets at least one.
MIN_CASES_ALL_SPLITS = 3


def split_counts(n: int, fractions: tuple[float, float, float] = SPLIT_FRACTIONS) -> dict[str, int]:
    """How many of ``n`` cases go to each split; every split that can be non-empty is.

    1 case: train. 2: train + test (evaluation needs a test set more than model selection needs a
    val set). 3 or more: val and test get their rounded share, at least one each; train the rest.
    """
    if n < MIN_CASES_ALL_SPLITS:
        return {"train": min(n, 1), "val": 0, "test": max(n - 1, 0)}
    test = max(1, round(n * fractions[2]))
    val = max(1, round(n * fractions[1]))
    return {"train": n - val - test, "val": val, "test": test}


def split_cases(
    case_ids,
    seed: int = 0,
    fractions: tuple[float, float, float] = SPLIT_FRACTIONS,
    strata: dict[str, str] | None = None,
    existing: dict[str, str] | None = None,
) -> dict[str, str]:
    """Seeded split of cases, stratified by ``strata`` (case -> stratum) when given.

    ``existing`` (case -> split, e.g. from an earlier cases.csv) is kept as it is: a case never
    moves between splits when later cases are added. New cases first fill a split that
    :func:`split_counts` promises for the grown stratum but that is still empty (from
    MIN_CASES_ALL_SPLITS cases on, every split), then the splits furthest below their share,
    within their stratum. The order the ids come in does not matter.
    """
    cases = sorted(set(case_ids))
    known = set(cases)
    kept = {c: s for c, s in (existing or {}).items() if c in known and s in SPLITS}
    rng = np.random.default_rng(seed)
    strata_members: dict[str, list[str]] = {}
    for case in cases:
        strata_members.setdefault((strata or {}).get(case, ""), []).append(case)
    out: dict[str, str] = {}
    for key in sorted(strata_members):
        members = strata_members[key]
        if kept:
            out.update(_extend(members, kept, rng, fractions))
        else:
            out.update(_fresh(members, rng, fractions))
    return out


def _fresh(cases: list[str], rng: np.random.Generator, fractions) -> dict[str, str]:
    """Permuted ranks: the first go to test, the next to val, the rest to train."""
    counts = split_counts(len(cases), fractions)
    order = rng.permutation(len(cases))
    n_test, n_val = counts["test"], counts["val"]
    return {
        cases[idx]: "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
        for rank, idx in enumerate(order)
    }


def _extend(cases: list[str], kept: dict[str, str], rng: np.random.Generator, fractions) -> dict[str, str]:
    """Keep the earlier split; each new case goes to a split :func:`split_counts` promises to be
    non-empty and that still is (test before val, as with two cases), otherwise to the split with
    the largest deficit. Slides come back in batches: without the first rule a val or test split
    could stay empty for many patients, and training refuses an empty split."""
    share = dict(zip(SPLITS, fractions, strict=True))
    out = {c: kept[c] for c in cases if c in kept}
    new = [c for c in cases if c not in kept]
    counts = {name: sum(1 for s in out.values() if s == name) for name in SPLITS}
    for idx in rng.permutation(len(new)):
        total = len(out) + 1
        promised = split_counts(total, fractions)
        empty = [n for n in reversed(SPLITS) if promised[n] > 0 and counts[n] == 0]  # test first
        if empty:
            name = empty[0]
        else:
            name = max(SPLITS, key=lambda n: share[n] * total - counts[n])  # largest deficit first
        out[new[idx]] = name
        counts[name] += 1
    return out
