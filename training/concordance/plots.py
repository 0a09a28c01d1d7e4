"""The concordance report's two figures (matplotlib, Agg backend: files only, never a window).

``scatter.png``: predicted against observed cancer fraction per core (identity line, one colour
per model version). ``bland_altman.png``: the difference (predicted - observed) against the mean,
with the bias and the 95% limits of agreement of all cores.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt

from training.concordance.cores import Core
from training.figure_file import save_figure

DPI = 110
FIGSIZE = (4.6, 4.2)


def _by_model(cores: list[Core]) -> dict[str, list[Core]]:
    out: dict[str, list[Core]] = {}
    for c in cores:
        out.setdefault(c.model, []).append(c)
    return out


def write_scatter(path: Path, cores: list[Core], threshold: float) -> None:
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, label="identity")
    ax.axhline(threshold, color="0.8", lw=1, ls=":", label=f"core call {100 * threshold:.0f}%")
    for model, group in sorted(_by_model(cores).items()):
        ax.scatter(
            [c.observed_fraction for c in group], [c.predicted_fraction for c in group], s=28, label=model
        )
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("observed cancer fraction (registered pathology)")
    ax.set_ylabel("predicted cancer fraction (live, pre-fire)")
    ax.set_title(f"cancer fraction of the core band, {len(cores)} cores")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    save_figure(fig, path, DPI)


def write_bland_altman(path: Path, cores: list[Core], agreement: dict) -> None:
    fig, ax = plt.subplots(figsize=FIGSIZE)
    for model, group in sorted(_by_model(cores).items()):
        mean = [(c.predicted_fraction + c.observed_fraction) / 2 for c in group]
        diff = [c.predicted_fraction - c.observed_fraction for c in group]
        ax.scatter(mean, diff, s=28, label=model)
    if agreement.get("n"):
        ax.axhline(agreement["bias"], color="C3", lw=1.2, label=f"bias {agreement['bias']:+.3f}")
        for key in ("loa_low", "loa_high"):
            if agreement[key] == agreement[key]:  # NaN with a single core
                ax.axhline(agreement[key], color="C3", lw=1, ls="--")
    ax.axhline(0, color="0.6", lw=1)
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("mean of predicted and observed fraction")
    ax.set_ylabel("predicted - observed")
    ax.set_title("Bland-Altman (dashed: 95% limits)")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    save_figure(fig, path, DPI)
