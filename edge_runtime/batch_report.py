"""The last ``sonomap register-batch`` run's ``batch_report.json``: which cases it failed and which it
held for review, by case id; the contract between registration, which writes it, and the commands
that read it (``sonomap cases --dataset``, training's concordance).

Input: ``DATASET/batch_report.json`` as register-batch writes it: ``failures``, records with a
``case`` (its place among the case files), an ``error`` and, when the case's id could be read, its
``id``; ``low_quality``, the cases registered but held out of the dataset for review because their
quality score is below ``--min-quality``, each with its ``id``. Output: :class:`LastBatch`, or one
InputError naming the file when it is not such a report. It sits on the runtime's ground floor,
beside case_report.py, because registration and training are peers that may not import each other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from edge_runtime.errors import InputError

BATCH_REPORT = "batch_report.json"


@dataclass(frozen=True)
class LastBatch:
    """What the last register-batch run recorded in batch_report.json, by case id."""

    failures: dict[str, str] = field(default_factory=dict)  # id -> its error
    held: frozenset[str] = frozenset()  # ids kept out for review (--min-quality: its low_quality list)
    found: bool = False  # DATASET has a batch_report.json (a first run stopped early leaves none)


def last_batch(dataset: Path | None) -> LastBatch:
    """The failures and held cases of the last register-batch run into ``dataset``, by the case's id;
    an empty :class:`LastBatch` (``found`` False) when ``dataset`` is None or has no batch_report.json.
    A failure recorded without an id (a case.yaml that could not be read, a dataset file) is not any
    case's now: its name there (``case N of M``) is a place among the case files, which another case
    takes once one is added or removed. InputError naming the file when it cannot be read or is not a
    register-batch report."""
    report = dataset / BATCH_REPORT if dataset is not None else None
    if report is None or not report.is_file():
        return LastBatch()
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
        # every record has a case and an error: a report of another shape is refused below
        records = [(f.get("id"), str(f["case"]), str(f["error"])) for f in data.get("failures", [])]
        held = frozenset(str(h["id"]) for h in data.get("low_quality", []))
    except OSError as exc:
        raise InputError(f"{report}: cannot be read ({exc.strerror or exc})") from exc
    except (ValueError, RecursionError, AttributeError, TypeError, KeyError) as exc:
        # ValueError covers JSONDecodeError and UnicodeDecodeError; the others a report of another shape
        raise InputError(
            f"{report}: not a register-batch report ({type(exc).__name__}); run register-batch again"
        ) from exc
    failures = {str(case_id): error for case_id, _, error in records if case_id is not None}
    return LastBatch(failures, held, found=True)
