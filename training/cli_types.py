"""Argument types of the training commands that :mod:`edge_runtime.cli_args` lacks: a bad number is
refused by argparse with one line naming the option, before any work starts."""

from __future__ import annotations

import argparse

from edge_runtime import cli_args


def int_in_range(low: int, high: int):
    """An argparse type: an integer in [low, high] (e.g. a distance between 64-bit hashes)."""
    at_least_low = cli_args.at_least(low)

    def parse(text: str) -> int:
        value = at_least_low(text)
        if value > high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high}, got {value}")
        return value

    parse.__name__ = f"integer {low}..{high}"
    return parse
