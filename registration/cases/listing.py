"""``sonomap cases DIR``: one line per captured (or any) case and what it still lacks.

Input: DIR holding ``<case>/case.yaml`` at any depth; optionally ``--dataset DATASET`` (the
``register-batch --out`` folder): a complete case is then ``registered`` (in the dataset, from
case.yaml and the input files it names as they read now), ``held`` (kept out for review by
``--min-quality``: in ``batch_report.json``'s ``low_quality``) or ``failed`` (the batch's error for it,
from ``batch_report.json``, found by its id). A case registered from inputs that changed since (a
revised annotation or slide, an edited case.yaml), or whose ``images/`` or ``labels/`` file is missing
from the dataset, is ``complete`` again, ready to register, with what changed or is missing. Output on stdout:

    20261130T034535Z-1  pending   patient 20261130T034535Z-1 (case id)  lacks: slide (pathology.wsi), ...
    20261130T034540Z-2  complete  patient P-7 (capture.study_id)  ready to register
    ...
    3 case(s): 1 registered, 0 held, 0 failed, 1 complete, 1 pending, 0 broken

Cases sharing an id (a copied case folder, pending, broken or complete), a slide or an annotation
are listed ``broken``, all of them, with register-batch's message (registration/batch_shared.py),
never ``complete``, ``pending`` or ``registered``.

Names printed are folder names and ids from case.yaml: captured cases are named by time, never
by patient. Exit status 0 whatever the cases' state (a listing is not a check), also for a DIR
with no case yet; a missing DIR, a file given as DIR, and a DATASET that is missing or not a
register-batch dataset (a typo would otherwise list every case as ready to register) are errors.
"""

from __future__ import annotations

from pathlib import Path

from edge_runtime.batch_report import LastBatch, last_batch
from edge_runtime.case_report import (
    REPORT,
    changed_reason,
    changed_since,
    read_report,
)
from edge_runtime.errors import SonomapError
from edge_runtime.yamlfile import read_yaml_mapping
from registration.batch_dataset import LAYOUT, check_dataset_folder
from registration.batch_shared import case_ids, shared_ids_and_inputs
from registration.cases.status import (
    BROKEN,
    COMPLETE,
    PENDING,
    CaseStatus,
    check_cases_folder,
    find_case_files,
    inspect_case,
)

REGISTERED, HELD, FAILED = "registered", "held", "failed"
STATES = (REGISTERED, HELD, FAILED, COMPLETE, PENDING, BROKEN)


def add_options(p) -> None:
    """Options of ``sonomap cases DIR``."""
    p.add_argument(
        "--dataset",
        default=None,
        metavar="DATASET",
        help="register-batch output folder: complete cases are listed as registered, held or failed there",
    )


def out_of_date(status: CaseStatus, dataset: Path) -> str | None:
    """Why the dataset's registration of the case is not of its inputs as they read now (which
    case.yaml keys changed, or a damaged report), or None when it is current."""
    report_path = dataset / "registration" / status.id / REPORT
    try:
        report = read_report(report_path)
        case = read_yaml_mapping(status.case_yaml, "case file")
    except SonomapError as exc:
        return str(exc)
    changed = changed_since(report, report_path, case, status.case_yaml)
    return f"registered from earlier inputs: {changed_reason(changed)}" if changed else None


def state_of(status: CaseStatus, dataset: Path | None, last: LastBatch) -> str:
    """The status's state, refined by what the dataset holds for a complete case; ``last``:
    :func:`last_batch`. Held only when the last run listed the case as held: a registered case
    whose image or label is missing from the dataset is complete, saying which file is missing."""
    if status.state != COMPLETE or dataset is None:
        return status.state
    registered = (dataset / "registration" / status.id / REPORT).is_file()
    stale = out_of_date(status, dataset) if registered else None
    missing = [
        f"{folder}/{status.id}.png"
        for folder in LAYOUT
        if not (dataset / folder / f"{status.id}.png").is_file()
    ]
    if registered and stale is None and not missing:
        return REGISTERED
    error = last.failures.get(status.id)
    if error is not None:  # before HELD: a case registered again that failed keeps its old report
        status.error = error
        return FAILED
    if stale is not None:  # registered, but its label is not what the inputs give now
        status.error = stale
        return COMPLETE
    if registered and status.id in last.held:
        return HELD
    if registered:  # register-batch registers it again
        status.error = f"incomplete in the dataset: {', '.join(missing)} missing"
    return COMPLETE


def line(status: CaseStatus, state: str, cases_dir: Path) -> str:
    name = status.case_yaml.parent.relative_to(cases_dir).as_posix()
    who = f"patient {status.patient_id} ({status.patient_source})" if status.patient_id else ""
    if state in (BROKEN, FAILED):
        tail = f"error: {status.error}"
    elif state == HELD:
        tail = "registered, kept out of the dataset for review (register-batch --min-quality)"
    elif status.lacks:
        tail = "lacks: " + ", ".join(str(x) for x in status.lacks)
    else:
        tail = "nothing missing"
    if state == COMPLETE:
        tail = f"ready to register; {tail}" if status.error is None else f"ready to register; {status.error}"
    return "  ".join(x for x in (f"{name:<22}", f"{state:<10}", who, tail) if x)


def list_cases(cases_dir: str | Path, dataset: str | Path | None = None) -> list[tuple[CaseStatus, str]]:
    """(status, state) of every case under cases_dir; state adds 'registered' to the status's."""
    cases_dir = Path(cases_dir)
    check_cases_folder(cases_dir)
    ds = Path(dataset) if dataset else None
    if ds is not None:
        check_dataset_folder(ds, "--dataset", new_ok=False)
    files = find_case_files(cases_dir)  # none yet is a listing too: no biopsy captured so far
    last = last_batch(ds)
    statuses = [inspect_case(f) for f in files]
    # as register-batch refuses them, before it runs: a copied case folder is not "ready to register"
    # every case with an id takes part: a pending or broken copy shares it as much as a complete one
    loaded = [(s.case_yaml, s.spec) for s in statuses if s.state == COMPLETE and s.spec is not None]
    clashes = shared_ids_and_inputs(loaded, case_ids(files))
    for s in statuses:
        if s.case_yaml in clashes:
            own = [s.error] if s.state == BROKEN and s.error else []
            s.state, s.error = BROKEN, f"{s.case_yaml}: " + "; ".join([*clashes[s.case_yaml], *own])
    return [(s, state_of(s, ds, last)) for s in statuses]


def run_list(args) -> int:
    cases_dir = Path(args.cases_dir)
    rows = list_cases(cases_dir, args.dataset)
    for status, state in rows:
        print(line(status, state, cases_dir))
    counts = {k: sum(1 for _, s in rows if s == k) for k in STATES}
    print(f"{len(rows)} case(s): " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    return 0
