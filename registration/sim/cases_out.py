"""Which ``simulate-biopsy --out`` folders it may write into: a new or empty one, or one holding only
the case folders an earlier simulate-biopsy made (its rerun writes over its own cases).

Anything else is refused before a case is simulated. Synthetic cases written among real captured
cases would go into a training dataset at the next register-batch, and written into a dataset or a
training run they would mix with files the folder's own writer relies on.
"""

from __future__ import annotations

import re
from pathlib import Path

from edge_runtime.errors import SonomapError

CASE_FOLDER = re.compile(r"sim_[0-9]{4,}")  # simulate-biopsy's case ids: sim_0000, sim_0001, ...
# Every file simulate-biopsy writes into a case folder (registration/sim/simulate.py::simulate_case).
CASE_FILES = frozenset(
    {
        "case.yaml",
        "truth.json",
        "us.png",
        "us_prefire.png",
        "truth.png",
        "core.ome.tif",
        "core.geojson",
        "core.xml",
    }
)
CASE_YAML = "case.yaml"


def _visible(folder: Path) -> list[Path]:
    """The entries of ``folder`` but hidden ones: an interrupted write's temp file, a file manager's
    .DS_Store; neither is a case register-batch would take."""
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _own_case(entry: Path) -> bool:
    """True for a case folder simulate-biopsy made: its name, and only files it writes (a run that
    stopped part way through a case leaves some of them)."""
    if entry.is_symlink() or not entry.is_dir() or CASE_FOLDER.fullmatch(entry.name) is None:
        return False
    return all(p.name in CASE_FILES and p.is_file() and not p.is_symlink() for p in _visible(entry))


def _describe(foreign: list[Path]) -> str:
    """What the foreign entries are, by kind and count: their names may be patients' (a case folder
    named after one), so only simulate-biopsy's own case names are shown."""
    folders = [p for p in foreign if p.is_dir() and not p.is_symlink()]
    cases = [p for p in folders if (p / CASE_YAML).is_file()]
    ours = [p.name for p in folders if CASE_FOLDER.fullmatch(p.name)]
    parts = [
        f"{len(cases)} case folder(s) with a {CASE_YAML}" if cases else "",
        f"{len(folders) - len(cases)} other folder(s)" if len(folders) > len(cases) else "",
        f"{len(foreign) - len(folders)} file(s) or link(s)" if len(foreign) > len(folders) else "",
    ]
    text = " and ".join(p for p in parts if p)
    if ours:  # named: it is simulate-biopsy's own name, holding what simulate-biopsy does not write
        text += f" ({ours[0]} holds files simulate-biopsy does not write)"
    return text


def check_cases_out(out: str | Path) -> None:
    """SonomapError, naming --out and what it holds, unless ``out`` is new, empty or holds only
    simulate-biopsy's case folders. Reads only: nothing is written or removed."""
    out = Path(out)
    if not out.is_dir():  # new (a file is refused by the caller's folder checks)
        return
    foreign = [p for p in _visible(out) if not _own_case(p)]
    if foreign:
        raise SonomapError(
            f"--out {out}: holds {_describe(foreign)} that simulate-biopsy did not make; it writes only into a "
            "new or empty folder or one of its own earlier runs, never among real cases, a dataset or a "
            "training run: give a new --out"
        )
