"""What `sonomap train` reports about a run's best epoch: in summary.json, the epoch lines, metrics.csv
and the lines the command prints at its end.

Input: the training loop's ``best`` record ``{metric, value, epoch}``, which starts at value -1 and
epoch -1 so that the first validated epoch beats it. Until an epoch has been validated that record is
no figure: a session that ends before the first validation (``--stop-after-epochs`` below
``train.val_every``) has written no best.pt. Output: the record as reported (value and epoch null
until then), and the text that names best.pt only once it exists.
"""

from __future__ import annotations

from pathlib import Path

from edge_runtime.jsonfile import json_text


def has_best(best: dict) -> bool:
    """Whether a validated epoch has been selected (and written as best.pt)."""
    return int(best["epoch"]) >= 0


def reported_best(best: dict) -> dict:
    """``best`` as summary.json and metrics.csv report it: value and epoch null before any epoch was
    validated (the loop's starting -1 was never computed)."""
    return dict(best) if has_best(best) else {**best, "value": None, "epoch": None}


def best_text(best: dict) -> str:
    """The best so far for an epoch line: ``0.7123 (epoch 4)``, or ``none yet`` before validation."""
    return f"{best['value']:.4f} (epoch {best['epoch']})" if has_best(best) else "none yet"


def result_lines(result: dict, out) -> list[str]:
    """What `sonomap train` prints at the end of a session with ``result`` (the summary) in run
    folder ``out``: the best epoch and best.pt when there is one; otherwise that no validation has
    run yet and how to continue. Never a path that does not exist."""
    out = Path(out)
    resume = f"resume state: {out / 'last.pt'}"
    best = result["best"]
    if best["epoch"] is None:
        return [
            f"no validation has run yet (an epoch is validated every train.val_every epochs, and the last "
            f"one always), so there is no best.pt; continue the run with --resume ({resume})"
        ]
    return [
        json_text(best, indent=None),
        f"best checkpoint: {out / 'best.pt'} (manifest best.pt.yaml), {resume}",
    ]
