"""Errors from inside a hidden staging folder, named by the final path the user asked for.

Reports that appear whole or not at all (evaluate's report folder, the concordance report) are first
written into a hidden folder (``.REPORT.<pid>.<random>.partial``, an absolute path the user never
typed) and renamed into place at the end. A full disk or a bad image met while writing there would
otherwise name that hidden folder, which is gone by the time anyone reads the message.
:func:`final_names` rewrites the path in such an error to the one under the folder as the user gave
it: ``REPORT/pred/benign_074.png``, not ``/abs/.REPORT.1234.ab12cd34.partial/pred/benign_074.png``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edge_runtime.errors import SonomapError


@contextmanager
def final_names(stage: Path, final: Path) -> Iterator[None]:
    """Within the block, an OSError whose file lies in ``stage`` is raised again naming the same file
    under ``final``, and a SonomapError whose message names ``stage`` names ``final`` instead;
    everything else passes unchanged."""
    try:
        yield
    except OSError as exc:
        names = (_final(exc.filename, stage, final), _final(exc.filename2, stage, final))
        if exc.errno is None or names == (exc.filename, exc.filename2):
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), names[0], None, names[1]) from exc
    except SonomapError as exc:
        text = str(exc)
        if str(stage) not in text:
            raise
        text = text.replace(str(stage), str(final))
        try:
            renamed = type(exc)(text)
        except TypeError:  # a subclass made from other arguments (UnreadableImage): its message alone
            renamed = SonomapError(text)
        raise renamed from exc


def _final(name, stage: Path, final: Path):
    """``name`` (an error's file name) moved from ``stage`` to ``final``; unchanged outside it."""
    if not isinstance(name, str):
        return name
    path = Path(name)
    if path != stage and stage not in path.parents:
        return name
    return str(final / path.relative_to(stage))
