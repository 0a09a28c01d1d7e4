"""The documentation's commands exist: every `sonomap COMMAND [TARGET] --option` written in code in
README.md and docs/*.md names a command the CLI has and options that command's ``--help`` lists.

A newcomer copies commands from the manuals; an option renamed in the code and not in the docs
would fail on their first try. Inputs: README.md and docs/*.md of this checkout, and the usage
``sonomap COMMAND [TARGET] --help`` prints. Outputs: none. Files: read only.
"""

from __future__ import annotations

import contextlib
import functools
import io
import re

import pytest
from test_docs import REPO, markdown_files

from edge_runtime.cli import build_parser

FENCE = re.compile(r"^\s*(?:```|~~~)\s*(\w*)")
SHELL_FENCES = {"bash", "sh", "shell", "console"}
INLINE_CODE = re.compile(r"`([^`]+)`")
COMMENT = re.compile(r"(^|\s)#.*$")
SEPARATOR = re.compile(r"&&|\|\||[|;]")
# A command: `sonomap` at the start of a shell command (after `$`, `sudo -u USER`, VAR=value or a
# path ending in /sonomap), its subcommand, then the rest of the command.
COMMAND = re.compile(
    r"^\s*(?:\$\s+)?(?:sudo(?:\s+-u\s+\S+)?\s+)?(?:\w+=\S*\s+)*(?:\S*/)?sonomap ([a-z][a-z0-9-]*)(.*)"
)
WORD = re.compile(r"^[a-z][a-z0-9-]*$")
OPTION = re.compile(r"^--[a-z][a-z0-9-]*")


def code_lines(text: str) -> list[tuple[int, str, bool]]:
    """(line number, code, is shell) of every fenced code line and every inline code span. A line of
    a shell fence (```bash) that ends in a backslash is joined with the next, as the shell joins
    them, and loses its comment; inline spans are not shell."""
    found, fence, pending = [], None, None
    for number, line in enumerate(text.splitlines(), 1):
        opening = FENCE.match(line)
        if opening:
            fence = None if fence is not None else opening.group(1)
            continue
        if fence is None:
            found.extend((number, span, False) for span in INLINE_CODE.findall(line))
            continue
        start, joined = pending if pending else (number, "")
        joined += line
        if joined.endswith("\\"):
            pending = (start, joined[:-1] + " ")
            continue
        pending = None
        shell = fence in SHELL_FENCES
        found.append((start, COMMENT.sub("", joined) if shell else joined, shell))
    return found


def documented_commands(text: str) -> list[tuple[int, str, list[str]]]:
    """(line number, command, the words after it) of every `sonomap COMMAND ...` in code that reads
    as a command: in a shell fence, or with an option. Elsewhere `sonomap recording` (a tag's value)
    or `sonomap content:=image` (a field of a file) is not one."""
    commands = []
    for number, code, shell in code_lines(text):
        for part in SEPARATOR.split(code):
            match = COMMAND.match(part)
            if match and (shell or "--" in match.group(2)):
                commands.append((number, match.group(1), match.group(2).split()))
    return commands


@functools.cache
def usage(*words: str) -> str:
    """What ``sonomap WORDS --help`` prints; empty when argparse refuses the words (no such command)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        with contextlib.suppress(SystemExit):
            build_parser(words[0]).parse_args([*words, "--help"])
    return out.getvalue()


def lists_option(help_text: str, option: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", help_text) is not None


def unknown_words(command: str, words: list[str]) -> list[str]:
    """The command itself when the CLI lacks it, else each option in ``words`` (``--a/--b`` is two)
    that its usage does not list. A first word that is a target of the command (`export onnx`)
    takes that target's usage."""
    help_text = usage(command)
    if not help_text:
        return [command]
    if words and WORD.match(words[0]) and usage(command, words[0]):
        help_text = usage(command, words[0])
    options = [
        match.group(0)
        for word in words
        for part in word.split("/")
        if (match := OPTION.match(part)) and match.group(0) != "--"
    ]
    return [option for option in options if not lists_option(help_text, option)]


def test_every_documented_command_and_option_exists():
    seen, wrong = 0, []
    for path in markdown_files():
        for number, command, words in documented_commands(path.read_text(encoding="utf-8")):
            seen += 1
            for word in unknown_words(command, words):
                wrong.append(f"{path.relative_to(REPO)}:{number}: sonomap {command}: {word}")
    assert seen > 100, f"only {seen} commands found in the docs: the extraction is broken"
    assert not wrong, "commands or options the CLI does not have:\n" + "\n".join(wrong)


def test_the_checker_reads_code_only_and_catches_a_wrong_option():
    text = (
        "Then sonomap reads the file, and `sonomap replay --out x --no-such-flag`; `sonomap case 3`.\n"
        "```bash\n"
        "sudo -u sonomap /opt/venv/bin/sonomap export onnx --checkpoint c.pt \\\n"
        "    --fp16 --min/--max  # comment --ignored, sonomap nothing\n"
        "cd x && sonomap no-such-command\n"
        "```\n"
        "```\nsonomap content:=image\n```\n"
    )
    found = documented_commands(text)
    assert [(n, command) for n, command, _ in found] == [(1, "replay"), (3, "export"), (5, "no-such-command")]
    assert unknown_words(*found[0][1:]) == ["--no-such-flag"]
    assert unknown_words(*found[1][1:]) == ["--min", "--max"]  # onnx's usage, not tensorrt's
    assert unknown_words("no-such-command", []) == ["no-such-command"]


@pytest.mark.parametrize("command", ["replay", "evaluate"])
def test_the_usage_lists_a_known_option(command):
    assert lists_option(usage(command), "--help")
