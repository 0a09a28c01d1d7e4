"""The report folder of `sonomap evaluate` (and ``--compare``): which folder may be written, and
writing it whole.

Input: REPORT, the ``--out`` folder. It may be new, empty or an earlier report of evaluate (a
folder holding only :data:`REPORT_NAMES`, with report.md), which is replaced as a whole. Any other
folder is refused with one line naming ``--out`` before anything is written, a training run's
(:data:`training.run_setup.RUN_FILES`) above all: evaluate writes metrics.csv and summary.json,
which would replace the run's. Output: :func:`staged_report` yields a hidden folder beside REPORT
(``.REPORT.<pid>.<random>.partial``) that becomes REPORT only once the report is complete, so a
failed evaluation leaves REPORT as it was and two evaluations never mix their files.
"""

from __future__ import annotations

import csv
import logging
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edge_runtime.errors import ConfigError
from edge_runtime.stop_signals import signals_held
from training.run_setup import RUN_FILES, refuse_files
from training.staged_names import final_names

log = logging.getLogger("sonomap.evaluate")
# Every name evaluate and compare write at the top of REPORT. A folder holding only these, with
# REPORT_MARK, is an earlier report and is replaced whole; a folder holding anything else is not
# evaluate's to delete.
REPORT_NAMES = frozenset(
    {
        "metrics.csv",
        "summary.json",
        "report.md",
        "pred",
        "calibration.json",
        "band_sums.npz",
        "reliability.png",
        "reliability_uncalibrated.png",
        "confusion_counts.png",
        "confusion_normalised.png",
        "boxplot.png",
        "training_curves.png",
        "gallery.png",
        "compare.csv",
        "A",
        "B",
    }
)
REPORT_MARK = "report.md"
CURVE_COLUMNS = ("epoch", "train_loss")  # what the training curves plot needs of the run's metrics.csv


def check_report_folder(out: Path) -> None:
    """Refuse OUT (ConfigError naming --out) unless it is new, empty or an earlier report of
    evaluate; reads only, so it runs before anything is written."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file; give a report folder")
    if not out.is_dir():
        return
    refuse_files(
        out,
        RUN_FILES,
        "so it holds a training run, and evaluate never writes into a run folder; give a report "
        f"folder such as {out / 'eval'}",
    )
    names = {p.name for p in out.iterdir()}
    foreign = sorted(names - REPORT_NAMES)
    if foreign:
        raise ConfigError(
            f"--out {out}: holds {foreign[0]}, which evaluate does not write, so the folder is not an "
            "evaluate report and is left alone; give a new or empty folder"
        )
    if names and REPORT_MARK not in names:
        raise ConfigError(
            f"--out {out}: holds {sorted(names)[0]} but no {REPORT_MARK}, so it is not an evaluate "
            "report and is left alone; give a new or empty folder"
        )


@contextmanager
def staged_report(out: Path) -> Iterator[Path]:
    """Yield a new empty hidden folder beside OUT to write the report into. When the block ends
    without an error it replaces OUT (an earlier report is deleted only then); on an error it is
    deleted and OUT is left as it was. An error about a file in the hidden folder names it under OUT as
    given (:func:`training.staged_names.final_names`); SIGINT/SIGTERM wait for the swap to end."""
    given = Path(out)
    out = out.resolve()  # the folder itself is swapped, never a symbolic link to it
    out.parent.mkdir(parents=True, exist_ok=True)
    token = f"{os.getpid()}.{secrets.token_hex(4)}"
    stage = out.parent / f".{out.name}.{token}.partial"
    stage.mkdir()  # mkdir, not mkdtemp: the report keeps the user's umask, not mode 0700
    try:
        with final_names(stage, given):
            yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    old = out.parent / f".{out.name}.{token}.old"
    with signals_held():  # a stop between the two renames would leave neither report at OUT
        if out.exists():
            out.rename(old)
        try:
            stage.rename(out)
        except OSError:
            if old.exists():
                old.rename(out)  # put the earlier report back: nothing already written is lost
            shutil.rmtree(stage, ignore_errors=True)
            raise
    shutil.rmtree(old, ignore_errors=True)


def run_curves_csv(checkpoint: Path) -> Path | None:
    """The training run's metrics.csv beside CHECKPOINT when it can be plotted; None when there is
    none (an exported model, a copied checkpoint) or it is not a training run's (a warning names it)."""
    path = checkpoint.parent / "metrics.csv"
    if not path.is_file():
        return None
    named = f"{path.parent.resolve().name}/{path.name}"  # a log line names the run folder, never its path
    try:
        with open(path, newline="") as fh:
            columns = csv.DictReader(fh).fieldnames or []
    except (UnicodeDecodeError, csv.Error) as exc:
        log.warning("%s: not a readable CSV (%s); no training curves", named, exc)
        return None
    missing = [c for c in CURVE_COLUMNS if c not in columns]
    if missing:
        log.warning("%s: no column(s) %s, not a training run's log; no training curves", named, missing)
        return None
    return path
