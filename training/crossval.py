"""`sonomap crossval`: K-fold cross-validation of a training recipe by case, scored as served.

Why: a held-out test split of a small set is a handful of patients (on BUSI's leak-free split, 6
images with cancer and 7 without), so its figures carry 95 % intervals half a unit wide. Cross-
validation scores every case exactly once, each time by a model that never saw it, and pools the
out-of-fold images: the recipe's figures over the whole dataset, with intervals a reviewer can use.
It measures the recipe (train, calibrate, filter), not one set of weights: K models are trained.

Input: a training config, a dataset (images/, labels/, cases.csv; its split column is ignored, its
case_id groups images: a patient, or a near-duplicate group) and K. Output, in OUT:

- ``crossval.json``: K, the seed, whether calibration runs, the SHA-256 of the config and of
  cases.csv, and each case's fold; a later call with other settings is refused, so folds of two
  set-ups never mix.
- ``fold<k>/data/``: that fold's dataset: cases.csv with fold k as test, fold k+1 (mod K) as val
  and the rest as train; ``images`` and ``labels`` are links to the dataset's folders.
- ``fold<k>/run/``: ``sonomap train`` on it (best epoch chosen on val).
- the run's manifest then gets a temperature, a calibration curve and a mask filter fitted on val,
  exactly as the shipped model's were (``sonomap calibrate``, three methods), unless
  ``calibrate=False``.
- ``fold<k>/eval/``: ``sonomap evaluate`` on test.
- ``summary.json``, ``metrics.csv``, ``reliability.png``, ``report.md``: the pooled figures
  (:mod:`training.crossval_report`), written by the command once every fold is evaluated.

Folds: cases are stratified by whether any of their images has cancer, shuffled with the seed and
dealt in turn, so each fold holds about 1/K of each stratum and no case is in two folds. Each model
trains on K-2 folds (60 % of the cases with K = 5, against the 70 % of a fixed split), so the
figures, if anything, understate a model trained on the usual split.

Resuming: a fold with ``eval/summary.json`` is done and kept; a run that finished training is not
retrained; a run stopped part-way (``last.pt`` without ``summary.json``) continues with
``--resume``. ``only_fold`` runs one fold, so folds can run in parallel processes or on several
machines; the pooled report is written by whichever call finds every fold evaluated.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edge_runtime.atomic import atomic_write_csv, check_apart
from edge_runtime.case_split import CASES_COLUMNS, CASES_CSV
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.image_files import read_image
from edge_runtime.jsonfile import atomic_write_json, read_json
from edge_runtime.manifest import sha256_file
from edge_runtime.typed_config import shown
from training.config import load_config
from training.crossval_layout import FOLD_DATA, FOLD_EVAL, FOLD_RUN, SETUP_FILE, fold_dir, fold_evaluated
from training.data import CANCER, read_cases
from training.mask_filter_fit import fit_mask_filter

MIN_FOLDS = 3  # one fold tests, one validates, at least one trains
FOLDS_KEY = "fold_of_case"  # crossval.json's case id -> fold
NEW_OUT = "give a new --out folder"
MISSING = "nothing"  # what a case absent from crossval.json is shown as


def case_strata(samples) -> dict[str, str]:
    """case id -> "cancer" when any of its images has a cancer pixel, else "no cancer"."""
    cancer: dict[str, bool] = {}
    for s in samples:
        label = read_image(s.label)
        cancer[s.case_id] = cancer.get(s.case_id, False) or bool((label == CANCER).any())
    return {case: "cancer" if has else "no cancer" for case, has in cancer.items()}


def assign_folds(strata: dict[str, str], folds: int, seed: int) -> dict[str, int]:
    """case id -> fold 1..K: each stratum shuffled with ``seed`` and dealt in turn. The deal of a
    stratum starts where the previous one ended, so fold sizes differ by at most one case."""
    rng = np.random.default_rng(seed)
    out: dict[str, int] = {}
    turn = 0
    for stratum in sorted(set(strata.values())):
        members = sorted(c for c, s in strata.items() if s == stratum)
        for idx in rng.permutation(len(members)):
            out[members[idx]] = turn % folds + 1
            turn += 1
    return out


def fold_split(fold_of_case: int, k: int, folds: int) -> str:
    """Which split a case of fold ``fold_of_case`` is in when fold ``k`` is tested."""
    if fold_of_case == k:
        return "test"
    return "val" if fold_of_case == k % folds + 1 else "train"


def write_setup(
    out: Path, config: Path, data: Path, samples, folds: int, seed: int, calibrate: bool
) -> dict[str, int]:
    """Assign the folds to the cases of SAMPLES (DATA's :func:`read_cases`), or read them back from
    OUT/crossval.json when OUT was set up with the same config, dataset, K and seed; any difference
    is refused before anything is written."""
    setup = {
        "folds": folds,
        "seed": seed,
        "calibration": calibrate,
        "config_sha256": sha256_file(config),
        # cases.csv names the images and their cases; the images are checked by each fold's training
        "cases_sha256": sha256_file(data / CASES_CSV),
    }
    path = out / SETUP_FILE
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file, not a folder; give a cross-validation folder")
    if path.is_file():
        try:
            earlier = read_json(path)
        except InputError as exc:
            raise InputError(f"{exc}; {NEW_OUT}") from exc
        if not isinstance(earlier, dict):
            raise InputError(f"{path}: not a cross-validation setup (a JSON object); {NEW_OUT}")
        differs = [key for key, value in setup.items() if earlier.get(key) != value]
        if differs:
            raise ConfigError(
                f"--out {out}: set up with another {', '.join(differs)} ({path}); give a new --out "
                "folder, or the same --config, --data, --folds, --seed and calibration to continue it"
            )
        return earlier_folds(path, earlier, samples, folds)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"--out {out}: not empty and not a cross-validation folder; give a new folder")
    strata = case_strata(samples)
    if min(sum(1 for s in strata.values() if s == name) for name in set(strata.values())) < folds:
        raise InputError(
            f"{data / CASES_CSV}: {len(strata)} cases, fewer than {folds} with or without cancer; "
            "every fold needs both kinds: use fewer --folds"
        )
    fold_of_case = assign_folds(strata, folds, seed)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {**setup, FOLDS_KEY: fold_of_case})
    return fold_of_case


def earlier_folds(path: Path, earlier: dict, samples, folds: int) -> dict[str, int]:
    """case id -> fold of the cases of SAMPLES, as OUT/crossval.json (``path``, read as ``earlier``)
    assigned them. An InputError naming the file and the key when it does not give every case a
    fold 1..K (a file edited or damaged by hand): a fold out of range would silently train on it."""
    assigned = earlier.get(FOLDS_KEY)
    if not isinstance(assigned, dict):
        raise InputError(f"{path}: '{FOLDS_KEY}' missing or not a mapping of case id to fold; {NEW_OUT}")
    for case in sorted({s.case_id for s in samples}):
        k = assigned.get(case, MISSING)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= folds:
            raise InputError(
                f"{path}: '{FOLDS_KEY}.{case}': expected a fold 1..{folds}, got {k if k is MISSING else shown(k)}; {NEW_OUT}"
            )
    return {case: k for case, k in assigned.items()}


def write_fold_dataset(
    data: Path, samples, fold_of_case: dict[str, int], k: int, folds: int, dest: Path
) -> Path:
    """DEST/cases.csv of SAMPLES (DATA's) for fold k, with DEST/images and DEST/labels linked to
    DATA's (made once)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("images", "labels"):
        link = dest / name
        if not link.exists():
            # relative: the folder can move with the dataset, and a shared copy shows no absolute path
            target = os.path.relpath((data / name).resolve(), dest.resolve())
            os.symlink(target, link, target_is_directory=True)
    rows = ((s.id, s.case_id, fold_split(fold_of_case[s.case_id], k, folds)) for s in samples)
    atomic_write_csv(dest / CASES_CSV, CASES_COLUMNS, rows)
    return dest


def run_fold(config: Path, fold: Path, max_minutes: float | None, calibrate: bool, seed: int) -> dict:
    """Train, calibrate on val and evaluate on test one fold's dataset ``fold/data``; returns the
    evaluation summary. Steps already done are kept (see the module docstring)."""
    # deferred: these load torch, which setting up the folds (and `sonomap --help`) does not need
    from training.evaluate import evaluate
    from training.temperature import calibrate_checkpoint
    from training.train import run

    if fold_evaluated(fold):
        return read_json(fold / FOLD_EVAL / "summary.json")
    fold_data, run_dir = fold / FOLD_DATA, fold / FOLD_RUN
    if not (run_dir / "summary.json").is_file():
        resume = (run_dir / "last.pt").is_file()
        run(config, fold_data, run_dir, max_minutes=max_minutes, resume=resume, show_progress=False)
    best = run_dir / "best.pt"
    if calibrate:  # as the shipped model: temperature, then curve, then the mask filter, all on val
        calibrate_checkpoint(best, fold_data, "val", method="temperature")
        calibrate_checkpoint(best, fold_data, "val", method="curve")
        fit_mask_filter(best, fold_data, "val")
    return evaluate(best, fold_data, "test", fold / FOLD_EVAL, seed=seed)


def crossvalidate(
    config: str | Path,
    data: str | Path,
    out: str | Path,
    folds: int = 5,
    seed: int = 0,
    max_minutes: float | None = None,
    only_fold: int | None = None,
    calibrate: bool = True,
) -> list[int]:
    """Run the folds (or ``only_fold``); returns the folds still to be evaluated (none: the pooled
    report, :func:`training.crossval_report.write_pooled_report`, can be written)."""
    config, data, out = Path(config), Path(data), Path(out)
    if folds < MIN_FOLDS:
        raise ConfigError(f"--folds {folds}: at least {MIN_FOLDS} (one tests, one validates, one trains)")
    if only_fold is not None and not 1 <= only_fold <= folds:
        raise ConfigError(f"--fold {only_fold}: not between 1 and --folds {folds}")
    check_apart(data, out, "--data")  # the folds' datasets, runs and reports never go into DATA
    load_config(config)  # a config that training would refuse is refused before anything is written
    samples = read_cases(data)
    fold_of_case = write_setup(out, config, data, samples, folds, seed, calibrate)
    for k in range(1, folds + 1) if only_fold is None else (only_fold,):
        write_fold_dataset(data, samples, fold_of_case, k, folds, fold_dir(out, k) / FOLD_DATA)
        run_fold(config, fold_dir(out, k), max_minutes, calibrate, seed)
    return [k for k in range(1, folds + 1) if not fold_evaluated(fold_dir(out, k))]
