"""The commands the CLI suggests: ``spxdl COMMAND ARGS`` as a user can run it, carrying the user's flags.

A message that tells the user what to run next builds it with :func:`suggested`, so that what is
printed runs as printed: the group's ``--config``, the options given to this command that the
suggested one takes too, and ``--simulate`` for a simulated archive. Values are redacted.
"""

from __future__ import annotations

import shlex
from typing import Any

import click

from spxdl.urls import redact


def suggested(ctx: click.Context, command: str, *args: str, simulated: bool = False) -> str:
    """``spxdl COMMAND ARGS`` as a user can run it: with the group's ``--config`` and every option given to
    this command that COMMAND also takes, and ``--simulate`` for a simulated archive (unless a terminal URL
    was given).
    """
    root = ctx.find_root()
    target = root.command.get_command(root, command) if isinstance(root.command, click.Group) else None
    takes = {param.name for param in target.params} if target is not None else set()
    words = ["spxdl"]
    config_path = (root.obj or {}).get("config_path")
    if config_path is not None:
        words += ["--config", str(config_path)]
    words += [command, *args]
    for param in ctx.command.params:
        if param.name in takes and ctx.get_parameter_source(param.name) == click.core.ParameterSource.COMMANDLINE:
            words += _option_words(param, ctx.params[param.name])
    if simulated and "simulate" in takes and "--simulate" not in words and "--terminal-url" not in words:
        words.append("--simulate")
    return shlex.join(words)


def _option_words(param: click.Parameter, value: Any) -> list[str]:
    """An option and its value(s) as typed on a command line (an argument: its values alone)."""
    values = value if isinstance(value, (tuple, list)) else (value,)
    if isinstance(param, click.Argument):
        return [redact(str(item)) for item in values]
    name = next((opt for opt in param.opts if opt.startswith("--")), param.opts[0])
    if isinstance(param, click.Option) and param.is_flag:
        return [name] if value else []
    return [word for item in values for word in (name, redact(str(item)))]  # no credentials in a printed command
