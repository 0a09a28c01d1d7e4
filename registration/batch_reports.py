"""register-batch's reading of the reports already in DATASET/registration/<id>/report.json, and
what it keeps beside them.

A report written by an earlier run decides three things: whether a case is skipped as done, which
patient its row in cases.csv belongs to, and (with ``--min-quality``) whether it stays in the
dataset. All must hold for the case as it is now:

* :func:`check_stored` says why a stored report does not belong to the loaded case: another
  case.yaml with the same id, this one edited since (e.g. a corrected ``patient_id``), or an input
  file it names (ultrasound image, slide, annotation) changed since, e.g. a revised annotation.
  The batch then registers the case again instead of keeping a label the inputs no longer give;
* a damaged report.json (:func:`edge_runtime.case_report.read_report`) is one InputError naming
  the file, so one bad file is one failed case, not a crash of the whole batch after all its work;
* :func:`write_input_stats` stores ``input_stats.json`` beside report.json (size, mtime and ctime of
  each input when its sha256 was confirmed), so the next check need not hash a large slide again
  (edge_runtime/case_report.py).

A message register-batch writes or logs names an input file by its case.yaml key, never by its
path or name (:func:`input_labels`): file names often carry the patient's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edge_runtime.case_report import (
    INPUT_STATS,
    changed_inputs,
    changed_reason,
    input_paths,
    read_input_stats,
    read_report,
    recorded_sha,
    stat_key,
)
from edge_runtime.errors import InputError, SonomapError
from edge_runtime.yamlfile import read_yaml_mapping
from registration.case import CaseSpec
from registration.report import write_json

MIN_NAME_CHARS = 5  # a bare file name shorter than this (e.g. "a.sv") is too likely an ordinary word


@dataclass
class StoredReport:
    """An earlier run's report.json of a case: ``stale`` says why it is not this case's registration
    as its inputs read now (None when it is); ``confirmed`` is what :func:`write_input_stats` stores."""

    report: dict | None
    stale: str | None
    confirmed: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)  # the input_stats.json read for the check


def spec_inputs(spec: CaseSpec) -> dict[str, Path]:
    """case.yaml key -> input file of a loaded case, keyed as report.json records them."""
    return {
        "case.yaml": spec.path,
        "ultrasound.image": spec.image,
        "ultrasound.dataset_image": spec.dataset_image or spec.image,
        "pathology.wsi": spec.pathology.wsi,
        "pathology.annotations": spec.pathology.annotations,
    }


def check_stored(path: Path, spec: CaseSpec) -> StoredReport:
    """The stored report at ``path`` checked against ``spec`` (module docstring)."""
    try:
        report = read_report(path)
    except InputError as exc:
        return StoredReport(None, str(exc))
    stats = read_input_stats(path)
    changed, confirmed = changed_inputs(report, spec_inputs(spec), stats)
    if "case.yaml" in changed:
        return StoredReport(
            report, f"{spec.path}: changed since it was registered (or another case.yaml has its id)"
        )
    if changed:
        return StoredReport(report, f"{spec.path}: {changed_reason(changed)}")
    if report["patient_id"] != spec.patient_id:
        stale = f"{spec.path}: patient_id is now {spec.patient_id!r}, registered as {report['patient_id']!r}"
        return StoredReport(report, stale)
    return StoredReport(report, None, confirmed, stats)


def write_input_stats(report_path: Path, confirmed: dict) -> None:
    """Store ``confirmed`` (:func:`edge_runtime.case_report.changed_inputs`) beside report_path."""
    write_json(report_path.parent / INPUT_STATS, confirmed)


def stats_before(spec: CaseSpec) -> dict[str, list[int]]:
    """Each input's stat (:func:`edge_runtime.case_report.stat_key`) now, before registration reads
    it: a file written during the registration then differs from it at the next check, and is
    hashed again rather than taken as the content registered."""
    out = {}
    for key, path in spec_inputs(spec).items():
        try:
            out[key] = stat_key(path)
        except OSError:  # the registration names the problem
            continue
    return out


def confirmed_after(report: dict, before: dict[str, list[int]]) -> dict:
    """input_stats.json for a case just registered into ``report``: each input's stat from
    :func:`stats_before` with the sha256 report.json recorded for it."""
    out = {}
    for key, stat in before.items():
        sha = recorded_sha(report, key)
        if sha is not None:
            out[key] = {"stat": stat, "sha256": sha}
    return out


def raw_case(case_yaml: Path) -> dict:
    """case.yaml's mapping, or {} when it cannot be read (its loader names the problem)."""
    try:
        return read_yaml_mapping(case_yaml, "case file")
    except SonomapError:
        return {}


def input_labels(case_yaml: Path, raw: dict | None = None) -> dict[str, str]:
    """Path (as given, resolved) and file name of each input case.yaml names -> its case.yaml key,
    for :func:`registration.report.without_input_paths`. The case.yaml itself is not in it: a case
    is named by its case.yaml under CASES_DIR."""
    raw = raw_case(case_yaml) if raw is None else raw
    labels: dict[str, str] = {}
    for key, path in input_paths(raw, case_yaml).items():
        if key == "case.yaml":
            continue
        forms = [str(path), str(path.absolute())]  # absolute: as a reader that resolves it names it
        if len(path.name) >= MIN_NAME_CHARS and path.suffix:
            forms.append(path.name)
        for form in forms:
            labels.setdefault(form, key)  # ultrasound.image before the dataset image defaulting to it
    return labels
