"""Every command's ``--help`` reads as written: argparse %-formats option help but prints a
description verbatim, so a ``%%`` meant as an escape shows up doubled in one of the two."""

from __future__ import annotations

import argparse

import pytest

from edge_runtime.cli import build_parser


def all_parsers(parser: argparse.ArgumentParser, name: str = "sonomap"):
    """``parser`` and every subcommand parser below it, with its command line."""
    yield name, parser
    for action in parser._actions:  # argparse exposes subparsers only through its actions
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from all_parsers(sub, f"{name} {sub_name}")


PARSERS = dict(all_parsers(build_parser()))


def test_every_stage_contributes_its_commands():
    # the dev install has every extra, so a stage missing here is a broken entry point
    for command in ("replay", "register", "train", "export", "concordance", "crossval", "cases"):
        assert f"sonomap {command}" in PARSERS


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_help_has_no_stray_format_markup(name):
    text = PARSERS[name].format_help()
    assert "%%" not in text and "%(" not in text, f"{name} --help: {text}"
