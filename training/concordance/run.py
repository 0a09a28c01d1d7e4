"""``sonomap concordance CASES --dataset DATASET --out REPORT``: load the cores, group them by model
version (``capture.model``: name and sha256), summarise each group and all, write the report."""

from __future__ import annotations

from pathlib import Path

from edge_runtime.atomic import check_apart
from edge_runtime.errors import InputError
from training.concordance.cases_folder import CASES_LABEL, load_cores
from training.concordance.core_stats import group_summary
from training.concordance.report import check_report_folder, write_report
from training.metrics import EMPTY_POLICY


def concordance(cases_dir, dataset, out, core_threshold: float, seed: int = 0) -> dict:
    """Write the report folder ``out``; return the summary (also ``out/concordance.json``).
    ``core_threshold``: the share of a core's known band the model must mark to call it cancer
    (the command's default is ``training.concordance.cli.DEFAULT_CORE_THRESHOLD``)."""
    if not 0.0 < core_threshold <= 1.0:
        raise InputError(f"--core-threshold {core_threshold}: must be in (0, 1]")
    # before the cores are read and bootstrapped: a wrong folder at once. A report inside CASES would be
    # met as a case by every later command reading the folder; inside DATASET it would mix with its files
    check_apart(cases_dir, out, "CASES")
    check_apart(dataset, out, "--dataset")
    check_report_folder(Path(out))
    cores, skipped = load_cores(cases_dir, dataset)
    if not cores:
        reasons = "; ".join(f"{s['case']}: {s['reason']}" for s in skipped[:3])
        raise InputError(f"{cases_dir}: no registered core with a saved prediction ({reasons})")
    models: dict[str, list] = {}
    for c in cores:
        models.setdefault(c.model, []).append(c)
    summary = {
        # the dataset by its base name, as model manifests name it (a folder above may be the
        # patient's); the cases folder not at all: it may be one patient's, named after them
        "cases_dir": CASES_LABEL,
        "dataset": Path(dataset).resolve().name,
        "core_threshold": core_threshold,
        "seed": seed,
        "empty_mask_policy": EMPTY_POLICY,
        "models": {m: group_summary(g, core_threshold, seed) for m, g in sorted(models.items())},
        "all": group_summary(cores, core_threshold, seed),
        "skipped": skipped,
    }
    summary["reduction"] = summary["all"]["reduction"]
    write_report(Path(out), cores, summary)
    return summary
