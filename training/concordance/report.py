"""The concordance report folder: ``report.md``, ``concordance.json``, ``cores.csv`` and the PNGs.

Input: the cores (:mod:`training.concordance.cores`) and their summaries per model version and
over all (:mod:`training.concordance.core_stats`). Output in REPORT/: the files above; the
markdown shows, per group, the core counts first and the scores with their CIs second.

The files of one run belong together (report.md names the numbers of cores.csv and the PNGs), so
a run replaces them all or none: every target is checked to be a file (or absent) first, all are
written into a hidden folder inside REPORT/, then each is renamed over its target, report.md last.
A run that fails leaves the earlier report as it was, and no temp folder behind.

REPORT may be new, empty or an earlier concordance report (a folder holding only REPORT_FILES, among
them concordance.json); any other folder (an evaluate report, a dataset, a training run) is refused
by :func:`check_report_folder` before anything is read: the run would replace its report.md.
"""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
import tempfile
from pathlib import Path

from edge_runtime.atomic import atomic_write_text
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.jsonfile import atomic_write_json
from training.concordance.cores import Core
from training.concordance.plots import write_bland_altman, write_scatter
from training.staged_names import final_names

CORE_COLUMNS = (
    "id",
    "patient_id",
    "model",
    "known_px",
    "tp",
    "fp",
    "fn",
    "tn",
    "dice",
    "sensitivity",
    "specificity",
    "predicted_fraction",
    "observed_fraction",
    "prob_mean",
    "expected_yield",
    "pathology_cancer",
    "called_cancer",
    "quality",
)
CORES_CSV, JSON, SCATTER, BLAND_ALTMAN, REPORT_MD = (
    "cores.csv",
    "concordance.json",
    "scatter.png",
    "bland_altman.png",
    "report.md",
)
REPORT_FILES = (CORES_CSV, JSON, SCATTER, BLAND_ALTMAN, REPORT_MD)  # renamed in this order: report.md last
STAGING_PREFIX = ".concordance."  # the hidden folder a run writes into before its files replace the old


def core_row(c: Core, threshold: float) -> dict:
    s = c.scores()
    return {
        "id": c.id,
        "patient_id": c.patient_id,
        "model": c.model,
        "known_px": c.known_px,
        "tp": c.counts.tp,
        "fp": c.counts.fp,
        "fn": c.counts.fn,
        "tn": c.counts.tn,
        **s,
        "predicted_fraction": c.predicted_fraction,
        "observed_fraction": c.observed_fraction,
        "prob_mean": c.prob_mean,
        "expected_yield": c.extra.get("expected_yield"),
        "pathology_cancer": c.pathology_positive,
        "called_cancer": c.predicted_fraction >= threshold,
        "quality": c.quality,
    }


def _f(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.{digits}f}"


def _ci(s: dict) -> str:
    """A core score with its CI; a missing CI names its reason, and left-out resamples are counted."""
    if s.get("reason"):
        text = f"{_f(s['value'])} [no CI: {s['reason']}]"
    else:
        text = f"{_f(s['value'])} [{_f(s['ci_low'])}, {_f(s['ci_high'])}]"
    if s.get("resamples_undefined"):
        text += f" ({s['resamples_undefined']} resamples left out: undefined)"
    return text


def _group_md(name: str, g: dict) -> list[str]:
    c, sc, px, ba = g["core_counts"], g["core_scores"], g["pixel"], g["fraction_agreement"]
    lines = [
        f"## {name}",
        "",
        f"{g['n_cores']} cores from {g['n_patients']} patient(s).",
        "",
        "| core counts | pathology cancer | pathology no cancer |",
        "|---|---|---|",
        f"| called cancer | {c['tp']} (tp) | {c['fp']} (fp) |",
        f"| not called | {c['fn']} (fn) | {c['tn']} (tn) |",
        "",
        "| score | value [95% CI, patient bootstrap] |",
        "|---|---|",
        f"| core sensitivity | {_ci(sc['sensitivity'])} |",
        f"| core specificity | {_ci(sc['specificity'])} |",
        f"| core AUC (predicted fraction) | {_ci(sc['auc'])} |",
        f"| Dice along the tract, mean over cores | {_f(px['dice_mean'])} (pooled {_f(px['dice_pooled'])}) |",
        f"| pixel sensitivity, mean over cores | {_f(px['recall_mean'])} ({px['recall_n_undefined']} "
        "cores without cancer: undefined) |",
        f"| pixel specificity, mean over cores | {_f(px['specificity_mean'])} "
        f"({px['specificity_n_undefined']} undefined) |",
    ]
    if ba.get("n"):
        lines.append(
            f"| fraction bias (predicted - observed) | {_f(ba['bias'])} [{_f(ba['bias_ci_low'])}, "
            f"{_f(ba['bias_ci_high'])}], limits of agreement {_f(ba['loa_low'])} to {_f(ba['loa_high'])} |"
        )
    return [*lines, ""]


def check_report_folder(out: Path) -> None:
    """Refuse OUT (ConfigError naming --out) unless it is new, empty or an earlier concordance report
    (only REPORT_FILES, with concordance.json, and the hidden folder of a run that was killed); reads
    only, so it runs before anything is written."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file; give a report folder")
    if not out.is_dir():
        return
    names = {p.name for p in out.iterdir() if not p.name.startswith(STAGING_PREFIX)}
    foreign = sorted(names - set(REPORT_FILES))
    if foreign:
        raise ConfigError(
            f"--out {out}: holds {foreign[0]}, which concordance does not write, so the folder is not a "
            "concordance report and is left alone; give a new or empty folder"
        )
    if names and JSON not in names:
        raise ConfigError(
            f"--out {out}: holds {sorted(names)[0]} but no {JSON}, so it is not a concordance report "
            "and is left alone; give a new or empty folder"
        )


def _check_targets(out: Path) -> None:
    """InputError naming the first report file that cannot be replaced by a rename (a folder,
    device or pipe of that name), before anything is written."""
    for name in REPORT_FILES:
        path = out / name
        if path.exists() and not path.is_file():
            raise InputError(
                f"{path}: is a folder or special file, not a report file; nothing in {out} was changed"
            )


def _cores_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CORE_COLUMNS, lineterminator="\r\n")  # csv's own default ending
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def write_report(out: Path, cores: list[Core], summary: dict) -> None:
    """Write REPORT_FILES into ``out`` for ``cores`` and their ``summary``, all or none (module
    docstring); an error names the file it is about."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _check_targets(out)
    threshold = summary["core_threshold"]
    rows = [core_row(c, threshold) for c in cores]
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out))
    try:
        with final_names(staging, out):  # an error names out/NAME, not the hidden staging folder
            atomic_write_text(staging / CORES_CSV, _cores_csv(rows))
            atomic_write_json(staging / JSON, {**summary, "cores": rows})
            write_scatter(staging / SCATTER, cores, threshold)
            write_bland_altman(staging / BLAND_ALTMAN, cores, summary["all"]["fraction_agreement"])
            atomic_write_text(staging / REPORT_MD, _report_md(summary, rows, threshold))
        for name in REPORT_FILES:
            os.replace(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # only this run's own temp folder


def _report_md(summary: dict, rows: list[dict], threshold: float) -> str:
    md = [
        "# Concordance: live prediction at the biopsy vs registered pathology",
        "",
        f"Cases: the folder given as `{summary['cases_dir']}` (not named: its name may be a patient's); "
        f"registered in `{summary['dataset']}`. A core is *called* cancer",
        f"when the live prediction covers at least {100 * threshold:.0f}% of its known band. "
        f"Empty-mask policy: {summary['empty_mask_policy']}. Reduction: {summary['reduction']}.",
        "",
    ]
    for name, g in summary["models"].items():
        md += _group_md(f"model {name}", g)
    if len(summary["models"]) > 1:
        md += _group_md("all models", summary["all"])
    md += [
        "## Per core",
        "",
        "| core | patient | model | tp | fp | fn | tn | Dice | sens | spec | predicted | observed | pathology | call |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        md.append(
            f"| {r['id']} | {r['patient_id']} | {r['model']} | {r['tp']} | {r['fp']} | {r['fn']} | {r['tn']} | "
            f"{_f(r['dice'])} | {_f(r['sensitivity'])} | {_f(r['specificity'])} | "
            f"{_f(r['predicted_fraction'])} | {_f(r['observed_fraction'])} | "
            f"{'cancer' if r['pathology_cancer'] else 'no cancer'} | {'cancer' if r['called_cancer'] else '-'} |"
        )
    if summary["skipped"]:
        md += ["", "## Not scored", ""] + [f"- {s['case']}: {s['reason']}" for s in summary["skipped"]]
    md += ["", "![scatter](scatter.png) ![Bland-Altman](bland_altman.png)", ""]
    return "\n".join(md)
