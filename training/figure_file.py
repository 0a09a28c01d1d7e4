"""One writer for every matplotlib figure the training commands save (report plots, reliability
diagrams, the concordance figures).

``fig.savefig(path)`` on a full disk raises ``[Errno 27] File too large`` or ``No space left on
device`` with no file name, and leaves a truncated PNG behind. :func:`save_figure` writes the figure
through :func:`edge_runtime.atomic.atomic_path`, so the PNG appears whole or not at all and every
OSError names ``path`` (the CLI prints it as ``PATH: REASON``).
"""

from __future__ import annotations

from pathlib import Path

from edge_runtime.atomic import atomic_path


def save_figure(fig, path: str | Path, dpi: int) -> None:
    """Save ``fig`` as the PNG file ``path``, atomically, and close it (also when the save fails, so a
    failed report leaks no figure); an OSError names ``path``, never the hidden temp file."""
    import matplotlib.pyplot as plt  # deferred: the callers chose the Agg backend before drawing

    try:
        with atomic_path(path) as tmp:
            # the temp file ends in .tmp, so the format is named rather than read off the suffix
            fig.savefig(tmp, dpi=dpi, format="png")
    finally:
        plt.close(fig)
