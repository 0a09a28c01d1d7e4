"""bench-registration --lab: the lab-phenomena figures (floor, breakdown, failures, memory).

Input: per-case rows of bench.py (counts, Dice, boundary errors with their tract positions,
known fraction) and each case's truth.json. Output:
- the boundary-error floor of a mapping linear within each fragment: at every truth boundary
  that was scored, how far the true (non-uniformly shrunken) position lies from the position
  a linear map between the fragment's true end points gives (the best any such map can do);
- Dice, boundary error and known fraction broken down by fragment count, stretch amplitude,
  ink, end loss, fat and serial sections;
- peak resident memory of one `sonomap register` run in a child process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

END_LOSS_MM = 0.3  # "with end loss": either outer end lost more than this
STRETCH_BINS = (0.033, 0.066)


def linear_floor_mm(truth: dict, a_mm: float) -> float | None:
    """|true - linear-within-fragment| position (fresh mm) of a truth boundary at a_mm; None in a gap."""
    prof = truth.get("shrink_profile")
    if not prof:
        return 0.0
    step, s = prof["step_mm"], np.asarray(prof["values"], float)
    grid = np.arange(len(s)) * step
    cum = np.concatenate([[0.0], np.cumsum(s[:-1] * step)])
    slide = lambda a: float(np.interp(a, grid, cum))  # noqa: E731 - slide length from the distal end
    for a0, a1 in truth["fragments_mm"]:
        if a0 <= a_mm <= a1:
            lin = a0 + (slide(a_mm) - slide(a0)) / max(slide(a1) - slide(a0), 1e-9) * (a1 - a0)
            return abs(lin - a_mm)
    return None


def groups(truth: dict) -> dict[str, str]:
    n = len(truth["fragments_mm"])
    amp = truth.get("stretch_amplitude", 0.0)
    return {
        "fragments": str(n) if n < 4 else "4+",
        "stretch": (
            "< 0.033" if amp < STRETCH_BINS[0] else "0.033-0.066" if amp < STRETCH_BINS[1] else ">= 0.066"
        ),
        "ink": "ink" if truth.get("ink") else "no ink",
        "end_loss": "end loss" if max(truth.get("end_loss_mm", [0.0])) > END_LOSS_MM else "no end loss",
        "fat": "fat" if truth.get("fat_lobules") else "no fat",
        "serial": (f"{truth.get('serial_copies', 1)} sections" + (", roi" if truth.get("roi") else "")),
    }


def quality_group(score: float) -> str:
    return "q < 0.5" if score < 0.5 else "q 0.5-0.8" if score < 0.8 else "q >= 0.8"


def breakdown(rows: list) -> dict:
    out: dict = {}
    for r in rows:
        if "groups" not in r:
            continue
        for key, val in r["groups"].items():
            g = out.setdefault(key, {}).setdefault(val, {"dice": [], "boundary": [], "known": []})
            g["dice"].append(r["dice"])
            g["boundary"] += r["boundary_mm"]
            g["known"].append(r["known"])
    return {
        k: {
            v: {
                "n": len(g["dice"]),
                "dice": float(np.mean(g["dice"])),
                "boundary_mm": float(np.mean(g["boundary"])) if g["boundary"] else None,
                "known": float(np.mean(g["known"])),
            }
            for v, g in sorted(vals.items())
        }
        for k, vals in out.items()
    }


def print_breakdown(bd: dict) -> None:
    print("  per phenomenon (cases, Dice mean, boundary mean mm, known mean):")
    for key, vals in bd.items():
        cells = [
            f"{v} n={g['n']} {g['dice']:.3f}/{'-' if g['boundary_mm'] is None else round(g['boundary_mm'], 3)}"
            f"/{g['known']:.2f}"
            for v, g in vals.items()
        ]
        print(f"    {key:<10} " + " | ".join(cells))


def peak_rss_register(case_file: Path, out: Path) -> dict:
    """Peak RSS (MB) of `sonomap register` on one case, run as a child process."""
    proc = subprocess.run(
        [sys.executable, "-m", "edge_runtime.cli", "register", str(case_file), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    # The child's own VmHWM from its report: getrusage's ru_maxrss of a child carries the peak of
    # the parent it was forked from, which is the bench (or pytest), not the registration.
    peak = (
        json.loads((out / "report.json").read_text())["process_peak_rss_mb"] if proc.returncode == 0 else None
    )
    return {
        "ok": proc.returncode == 0,
        "peak_rss_mb": peak,
        "error": None if proc.returncode == 0 else proc.stderr.strip().splitlines()[-1:],
    }
