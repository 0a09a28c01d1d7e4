"""Argument types shared by every stage's command line: a bad number is refused by argparse with one
line naming the option (``sonomap X: error: argument --seed: ...``, exit 2) before any work starts,
instead of a traceback after it.

``seed``: a random seed, an integer >= 0 (numpy's generators take no negative seed).
``at_least(n)``: an integer >= n (frame counts, rounds); ``non_negative_float``: seconds, >= 0;
``positive_float``: a duration or a sampling period, > 0; ``minutes``: a run's budget in minutes, > 0 and at
most :data:`MAX_MINUTES` (a typo such as ``1e308`` would otherwise mean "for ever"). ``path``: a file or folder given by name,
never empty (``--frames ""`` would read the working folder, ``--cache-dir ""`` fall back unsaid).
:class:`Parser`: argparse's parser, whose "expected one argument" says how to give a value that starts
with ``-`` (argparse takes ``--roi -10,0,100,100`` for a missing value followed by an option).
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable

MISSING_VALUE = re.compile(r"^argument ([^:]+): expected one argument$")  # the names: "-o/--out"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser (its subcommands' parsers are of this class too) whose error for an option given
    no value adds how to write a value starting with ``-``: ``--roi=-10,0,100,100``."""

    def error(self, message: str):
        match = MISSING_VALUE.match(message)
        if match:
            option = match.group(1).split("/")[-1]
            message += f" (a value that starts with '-' is written {option}=VALUE)"
        super().error(message)


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None


def seed(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed must be a whole number >= 0, got {value}")
    return value


def at_least(minimum: int):
    """An argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        value = _int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def int_in_range(low: int, high: int):
    """An argparse type: an integer from ``low`` to ``high`` (:func:`at_least`, plus the top)."""
    at_least_low = at_least(low)

    def parse(text: str) -> int:
        value = at_least_low(text)
        if value > high:
            raise argparse.ArgumentTypeError(f"must be a whole number <= {high}, got {value}")
        return value

    parse.__name__ = f"integer {low}..{high}"
    return parse


def _finite(text: str, wanted: str, accept: Callable[[float], bool]) -> float:
    """``text`` as a finite float that ``accept`` takes; the argparse error says ``wanted``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not (math.isfinite(value) and accept(value)):
        raise argparse.ArgumentTypeError(f"must be {wanted}, got {text}")
    return value


def non_negative_float(text: str) -> float:
    return _finite(text, "a finite number >= 0", lambda value: value >= 0)


def positive_float(text: str) -> float:
    return _finite(text, "a finite number > 0", lambda value: value > 0)


MAX_MINUTES = 30 * 24 * 60  # 30 days: longer than any training or soak run, far short of "for ever"


def minutes(text: str) -> float:
    return _finite(
        text, f"a number of minutes > 0 and <= {MAX_MINUTES}", lambda value: 0 < value <= MAX_MINUTES
    )


def path(text: str) -> str:
    """An argparse type: a path that is not empty (nor spaces only)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a file or folder, got an empty value")
    return text
