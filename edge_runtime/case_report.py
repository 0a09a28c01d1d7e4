"""A registered case's ``report.json``: the contract between registration and the stages that read
its output (register-batch's re-runs, training's concordance).

Input: ``DATASET/registration/<id>/report.json`` as ``sonomap register-batch`` writes it. Output:
the report as a dict whose ``case_id`` (the folder's name) and ``patient_id`` are text, or one
InputError naming the file. It sits on the runtime's ground floor, beside the other shared
contracts, because registration and training are peers that may not import each other.

A report belongs to a case only while case.yaml and every input file the report records a SHA-256
for (ultrasound image, dataset image, slide, annotation) read as they did: :func:`changed_inputs`
names those that do not, by case.yaml key. To spare re-hashing a large slide on every check,
register-batch stores ``input_stats.json`` beside report.json: per input, its size, mtime and ctime
when the sha256 was last confirmed. A file whose stat still matches is not read again; any other
file is hashed (a changed size alone already marks it changed). The file holds no path or name.
"""

from __future__ import annotations

import json
from pathlib import Path

from edge_runtime.errors import InputError
from edge_runtime.manifest import sha256_file

REPORT = "report.json"
TEXT_FIELDS = ("case_id", "patient_id")  # what cases.csv and the concordance take from each report


def read_report(path: Path) -> dict:
    """The report.json at ``path``, its ``case_id`` the folder's name and ``patient_id`` text;
    InputError naming the file when it is damaged (cut short, not an object, a field missing,
    nested deeper than the JSON reader's recursion allows)."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError as exc:  # json's decoder recurses once per level: a damaged file, no traceback
        raise InputError(f"{path}: damaged report.json (nested too deeply); register the case again") from exc
    except (OSError, ValueError) as exc:  # ValueError: JSONDecodeError and UnicodeDecodeError
        raise InputError(f"{path}: damaged report.json ({exc}); register the case again") from exc
    if not isinstance(report, dict):
        raise InputError(f"{path}: damaged report.json (not a JSON object); register the case again")
    for key in TEXT_FIELDS:
        if not isinstance(report.get(key), str) or not report[key]:
            raise InputError(
                f"{path}: damaged report.json ({key!r} missing or not text); register the case again"
            )
    if report["case_id"] != path.parent.name:
        raise InputError(
            f"{path}: damaged report.json (case_id {report['case_id']!r} is not its folder's name)"
        )
    return report


# report.json's record of each input file ({"sha256", "bytes"}) -> the case.yaml key naming the file
RECORDED_INPUTS = (
    (("case_file",), "case.yaml"),
    (("ultrasound", "file"), "ultrasound.image"),
    (("ultrasound", "dataset_image"), "ultrasound.dataset_image"),
    (("slide", "file"), "pathology.wsi"),
    (("slide", "annotations"), "pathology.annotations"),
)
INPUT_STATS = "input_stats.json"  # beside report.json: when each input's sha256 was last confirmed


def input_paths(case: dict, case_yaml: Path) -> dict[str, Path]:
    """case.yaml key -> the file it names, from the case.yaml mapping ``case`` as registration's loader
    resolves it (relative to the folder of ``case_yaml``). ``ultrasound.dataset_image`` defaults to
    ``ultrasound.image``, as report.json records it; a key without a text value is left out."""
    base = case_yaml.parent
    us = case.get("ultrasound") if isinstance(case.get("ultrasound"), dict) else {}
    pathology = case.get("pathology") if isinstance(case.get("pathology"), dict) else {}
    named = {
        "ultrasound.image": us.get("image"),
        "ultrasound.dataset_image": us.get("dataset_image") or us.get("image"),
        "pathology.wsi": pathology.get("wsi"),
        "pathology.annotations": pathology.get("annotations"),
    }
    paths = {"case.yaml": case_yaml}
    for key, value in named.items():
        if isinstance(value, str) and value:
            paths[key] = base / value  # an absolute value stays itself
    return paths


def _recorded(report: dict, where: tuple[str, ...]) -> dict | None:
    node = report
    for part in where:
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) and isinstance(node.get("sha256"), str) else None


def recorded_sha(report: dict, key: str) -> str | None:
    """The sha256 ``report`` records for the input case.yaml names by ``key``; None when it records none."""
    for where, k in RECORDED_INPUTS:
        if k == key:
            found = _recorded(report, where)
            return None if found is None else found["sha256"]
    return None


def stat_key(path: Path) -> list[int]:
    """What must stay the same for a file's content to be taken as unchanged without reading it:
    size, modification time and inode change time (the last cannot be set back by copy tools)."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def read_input_stats(report_path: Path) -> dict:
    """The input stats stored beside ``report_path`` (:func:`changed_inputs`); {} when there are none
    or they are damaged (unreadable, not JSON, nested deeper than the JSON reader's recursion allows):
    they only save re-reading files, so without them every input is hashed."""
    try:
        stats = json.loads((report_path.parent / INPUT_STATS).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # ValueError: JSONDecodeError and UnicodeDecodeError
        return {}
    return stats if isinstance(stats, dict) else {}


def changed_inputs(report: dict, paths: dict[str, Path], stats: dict | None = None) -> tuple[list[str], dict]:
    """(keys, confirmed): the case.yaml keys of the inputs whose content differs from what ``report``
    recorded (gone, another size, another SHA-256), and for the others ``{key: {"stat", "sha256"}}``
    to store as :data:`INPUT_STATS` for the next check.

    ``paths``: key -> file now (:func:`input_paths`). Every input report.json records a sha for is
    compared. A file whose size, mtime and ctime equal those ``stats`` stored with the same sha256 is
    taken as unchanged without being read: a whole slide can be gigabytes, hashed on every run
    otherwise. Any other file is hashed."""
    stats = stats or {}
    changed, confirmed = [], {}
    for where, key in RECORDED_INPUTS:
        recorded = _recorded(report, where)
        if recorded is None:
            continue  # not recorded by this report: nothing to compare
        path = paths.get(key)
        try:
            if path is None or not path.is_file():
                changed.append(key)
                continue
            now = stat_key(path)  # before hashing: a write during the hash changes it for next time
            if isinstance(recorded.get("bytes"), int) and recorded["bytes"] != now[0]:
                changed.append(key)
                continue
            known = stats.get(key) if isinstance(stats.get(key), dict) else {}
            same = known.get("stat") == now and known.get("sha256") == recorded["sha256"]
            if not same and sha256_file(path) != recorded["sha256"]:
                changed.append(key)
                continue
        except OSError:  # unreadable now: it cannot be the file registered
            changed.append(key)
            continue
        confirmed[key] = {"stat": now, "sha256": recorded["sha256"]}
    return changed, confirmed


def changed_since(report: dict, report_path: Path, case: dict, case_yaml: Path) -> list[str]:
    """The case.yaml keys of the inputs that changed since ``report`` (at ``report_path``) was made
    from the case.yaml mapping ``case`` (at ``case_yaml``): :func:`changed_inputs` with the files it
    names now and the stats stored beside the report."""
    changed, _ = changed_inputs(report, input_paths(case, case_yaml), read_input_stats(report_path))
    return changed


def changed_reason(changed: list[str]) -> str:
    """One phrase for :func:`changed_inputs`' keys: which inputs changed since the registration."""
    return f"{', '.join(changed)} changed since it was registered"
