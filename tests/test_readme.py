"""The README as a new user reads it: the venv is spelled out, every spxdl command it prints parses, the archive
examples run right after the demo, every check is explained, and the scheduling notes say what a timer needs."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import warnings
from pathlib import Path

import click
import pytest

from spxdl import checks, cli

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end != -1 else None]


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def shell_commands(text: str) -> list[str]:
    """Every `spxdl ...` command of the sh blocks and inline code spans, without comments and env prefixes."""
    found = []
    lines = [line for block in code_blocks(text, "sh") for line in block.splitlines()]
    lines += [span.replace("\\|", "|") for span in re.findall(r"`([^`\n]*spxdl [^`\n]*)`", text)]
    for line in lines:
        line = line.split(" #")[0].strip()
        for part in re.split(r"&&|\|", line):
            words = shlex.split(part)
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                words = words[1:]
            if words and words[0] == "spxdl":
                found.append(shlex.join(words))
    return found


def remaining(context: click.Context) -> list[str]:
    with warnings.catch_warnings():  # a group's subcommand words: Click 8 calls them protected_args
        warnings.simplefilter("ignore", DeprecationWarning)
        return [*context.protected_args, *context.args]


def parse(words: list[str]) -> None:
    """Parse ``spxdl WORDS`` as Click would, down to the command, without running it (``--version`` alone
    ends the parse as it ends the program)."""
    group: click.Command = cli.cli
    try:
        context = group.make_context("spxdl", list(words), resilient_parsing=False)
    except click.exceptions.Exit as done:
        assert done.exit_code == 0
        return
    rest = remaining(context)
    while isinstance(group, click.Group) and rest:
        name, command, rest = group.resolve_command(context, rest)
        context = command.make_context(name, rest, parent=context)
        group, rest = command, remaining(context)


def test_the_quick_start_puts_spxdl_on_the_path_before_using_it():
    block = code_blocks(section("Quick start"), "sh")[0].splitlines()
    activate = next(index for index, line in enumerate(block) if line.startswith("source .venv/bin/activate"))
    first_spxdl = next(index for index, line in enumerate(block) if line.startswith("spxdl "))
    assert activate < first_spxdl
    assert ".venv/bin/spxdl" in section("Quick start") and ".venv/bin/spxdl" in section("Install")


@pytest.mark.parametrize("command", sorted(shell_commands(README)))
def test_every_spxdl_command_in_the_readme_parses(command):
    parse(shlex.split(command)[1:])  # UsageError (an unknown command or option, a bad choice) fails the test


def command_name(command: str) -> str | None:
    """The command of ``spxdl [GROUP OPTIONS] COMMAND ...`` (None for ``spxdl --version``)."""
    rest = shlex.split(command)[1:]
    while rest and rest[0].startswith("-"):
        rest = rest[2:] if rest[0] == "--config" else rest[1:]
    return rest[0] if rest else None


def test_every_command_the_readme_names_exists():
    named = {name for name in map(command_name, shell_commands(README)) if name}
    assert named <= set(cli.cli.commands)


def test_the_readme_prints_the_commands_this_issue_fixed():
    commands = shell_commands(README)
    assert "spxdl health --simulate" in commands
    assert any(command.startswith("spxdl gaps --data-dir sim-data") for command in commands)


def test_the_archive_examples_run_right_after_the_demo(tmp_path):
    # the tiny profile: the examples read the archive's layout and columns, which every profile shares
    # (the realistic chain cost this test about 20 CPU-seconds, the tiny one a fraction of it)
    spxdl = [sys.executable, "-m", "spxdl"]
    demo = subprocess.run([*spxdl, "run", "--simulate", "--sim-profile", "tiny", "--days-back", "1"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stderr
    examples = code_blocks(section("Reading the archive"), "python")
    runnable = [example for example in examples if "import polars" not in example and "greeks_eod" not in example]
    assert len(runnable) == 2 and all("sim-data/greeks-1m" in example for example in runnable)
    daily = subprocess.run([*spxdl, "run", "--simulate", "--sim-profile", "tiny", "--days-back", "1", "--dataset",
                            "greeks_eod,open_interest,eod"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert daily.returncode == 0, daily.stderr
    joins = [example for example in examples if "greeks_eod" in example]
    assert len(joins) == 1 and "spxdl run --simulate --dataset greeks_eod,open_interest,eod" in section("Reading the archive")
    for example in runnable + joins:
        ran = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert ran.returncode == 0, example + ran.stderr
        assert re.search(r"\d{4}-\d\d-\d\d", ran.stdout), ran.stdout  # it found the demo's day
    optional = section("Reading the archive").split("```python")[3]
    assert "pip install polars" in section("Reading the archive") and "import polars" in optional
    assert "needs pandas" in section("Reading the archive")


def test_the_readme_says_what_each_check_means():
    table = section("Checks")
    for name in checks.CHECKS:
        assert f"| `{name}` |" in table, name
    for name in checks.OBSERVATIONS:
        assert re.search(rf"\| `{name}` \|[^\n]*observation", table), name


def test_the_scheduling_notes_cover_what_a_timer_needs():
    notes = section("Scheduling")
    assert "loginctl enable-linger" in notes
    assert "absolute" in notes and "data_dir = /srv/spx" in notes
    assert "CRON_TZ" in notes and "not by every cron" in notes
