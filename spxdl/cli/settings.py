"""The Settings a command runs with: from its flags, the archive's own window, the simulator for ``--simulate``.

Also when the log file opens (only once the command is about to change the archive), and what a
command that reads says when there is no archive yet.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Iterator

import click

from spxdl import config, errors, logs, shapes, storage
from spxdl.cli.suggesting import suggested

log = logging.getLogger(__name__)

# `--simulate` with nothing else asked is a demo: small enough to finish within about a minute.
SIM_DEMO_DAYS = 3
SIM_DEMO_MAX_DTE = 3
SIM_DEMO_MAX_DTE_BY_PROFILE = {"tiny": 7}  # the tiny profile lists Fridays only: any 8 days hold one
SIM_PROFILES = ("tiny", "realistic", "dense")
SIM_DEFAULT_PROFILE = "realistic"
SIM_DATA_DIR = Path("sim-data")


def archive_defaults(
    settings: config.Settings, *, simulate: bool = False, sim_profile: str | None = None
) -> tuple[config.Settings, str]:
    """``settings`` judged by the data dir's own archive, and the simulator profile to use.

    With no DTE window given (flag, env or file), a simulated archive's recorded window applies;
    failing that, ``--simulate`` picks its demo window. The profile is ``--sim-profile``, else the
    one the archive was made with, else realistic (another one is refused as a shape change).
    """
    recorded = recorded_shapes(settings)
    profile = sim_profile or next((shape["sim_profile"] for shape in recorded if shape.get("sim_profile")), None)
    profile = profile or SIM_DEFAULT_PROFILE
    window = next((shape[shapes.WINDOW] for shape in recorded if is_window(shape.get(shapes.WINDOW))), None)
    if not {"min_dte", "max_dte"} & set(settings.sources) and window:
        settings = settings.replace_from(f"archive {settings.data_dir_shown}", min_dte=window[0], max_dte=window[1])
    elif simulate and "max_dte" not in settings.sources:
        span = SIM_DEMO_MAX_DTE_BY_PROFILE.get(profile, SIM_DEMO_MAX_DTE)
        settings = settings.replace_from("--simulate (demo)", max_dte=settings.min_dte + span)
    return settings, profile


def is_window(value: Any) -> bool:
    """Whether ``value`` is a recorded ``[min_dte, max_dte]`` (a hand-edited one may not be)."""
    return (isinstance(value, list) and len(value) == 2 and all(type(dte) is int and dte >= 0 for dte in value)
            and value[0] <= value[1])


def recorded_shapes(settings: config.Settings) -> list[dict[str, Any]]:
    """The shapes recorded for the archives ``settings`` name in their data dir (an unreadable one is left
    for the run to report)."""
    found = []
    for archive in settings.archives():
        try:
            shape = shapes.recorded_shape(settings.ledger_path, archive)
        except errors.StorageError as exc:
            log.debug("ignoring %s", exc)
            continue
        if shape is not None:
            found.append(shape)
    return found


def is_simulated(settings: config.Settings) -> bool:
    """Whether the data dir's archive was made from the simulator."""
    return any(shape.get("source") == "simulator" for shape in recorded_shapes(settings))


def refuse_simulated_direct(settings: config.Settings) -> None:
    """``--simulate`` cannot stand in for ThetaData behind the SDK: one line saying why."""
    if settings.source == "direct":
        raise errors.ConfigError(
            "--simulate cannot serve [terminal] source = direct: the thetadatadx SDK reaches market data only over "
            "TLS, trusting only the public authorities compiled into it, so no loopback simulator can stand in "
            "for ThetaData (docs/direct.md); use --simulate with --source terminal (--sim-flavor thetadatadx "
            "answers like thetadatadx-server)",
            key="source",
        )


def comma_values(values: tuple[str, ...]) -> str | None:
    """Repeated and comma-separated option values as one comma list (``None`` if not given)."""
    items = [item.strip() for value in values for item in value.split(",") if item.strip()]
    return ",".join(items) if items else None


def build_settings(ctx: click.Context, *, file_logging: bool = True, **flags: Any) -> config.Settings:
    """Settings from the group's --config plus this command's flags (``None`` = not given).

    Commands that only read (status, gaps, health, config show) pass ``file_logging=False`` so
    that they create nothing on disk.
    """
    obj = ctx.obj or {}
    flag_values = {key: value for key, value in flags.items() if value is not None}
    settings = config.load(obj.get("config_path"), flags=flag_values)
    configure_logging(ctx, settings, file_logging=file_logging)
    return settings


def configure_logging(ctx: click.Context, settings: config.Settings, *, file_logging: bool = True) -> None:
    """Console logging for this invocation; with ``file_logging``, the log file :func:`open_log_file` opens."""
    obj = ctx.obj if ctx.obj is not None else {}
    level = "DEBUG" if obj.get("verbose") else settings.log_level
    console = "WARNING" if obj.get("quiet") else level
    fmt = "json" if obj.get("log_json") else settings.log_format
    obj["console_level"] = console
    obj["log_file"] = (settings.log_file or storage.logs_dir(settings.ledger_path) / "spxdl.log") if file_logging else None
    obj["log_format"] = fmt
    logs.configure(level=level, console_level=console, fmt=fmt)


def open_log_file(ctx: click.Context) -> None:
    """Start writing the log file, once the command is about to change the archive (nothing before: a
    usage error leaves no trace on disk); it gets what was logged so far too."""
    obj = ctx.obj or {}
    log_file = obj.get("log_file")
    if log_file is None:
        return
    try:
        logs.attach_file(log_file, fmt=obj.get("log_format", "text"))
    except OSError as exc:
        raise errors.ConfigError(
            f"cannot create the log directory {log_file.parent}: {exc.strerror}; "
            "choose a writable --data-dir (or --ledger-dir) or [logging] file"
        ) from None
    obj["log_file"] = None


def download_flags(
    *,
    terminal_url: str | None,
    api: str | None,
    data_dir: Path | str | None,
    source: str | None = None,
    ledger_dir: Path | None = None,
    roots: tuple[str, ...] = (),
    datasets: tuple[str, ...] = (),
    interval: str | None = None,
    min_dte: int | None = None,
    max_dte: int | None = None,
    workers: int | None = None,
    threads: int | None = None,
    max_in_flight: int | None = None,
    executor: str | None = None,
) -> dict[str, Any]:
    """Command-line values keyed by Settings field; strings go through the config parsers."""
    as_text = lambda value: None if value is None else str(value)  # noqa: E731 - parse like file values
    return {
        "terminal_url": terminal_url,
        "terminal_api": api,
        "source": source,
        "data_dir": as_text(data_dir),
        "ledger_dir": as_text(ledger_dir),
        "roots": comma_values(roots),
        "datasets": comma_values(datasets),
        "interval": interval,
        "min_dte": as_text(min_dte),
        "max_dte": as_text(max_dte),
        "workers": as_text(workers),
        "threads": as_text(threads),
        "max_in_flight": as_text(max_in_flight),
        "executor": executor,
    }


def archive_flags(terminal_url: str | None, api: str | None, data_dir: Path | str | None,
                  source: str | None = None, ledger_dir: Path | None = None) -> dict[str, Any]:
    """The flags of ``terminal_options`` keyed by Settings field."""
    return download_flags(terminal_url=terminal_url, api=api, data_dir=data_dir, source=source, ledger_dir=ledger_dir)


def require_archive(settings: config.Settings) -> None:
    """Commands that read the archive say clearly when there is none yet (and how to make it)."""
    if settings.ledger_path.is_dir():
        return
    run = suggested(click.get_current_context(), "run")
    if settings.data_is_local:
        raise errors.ConfigError(f"no archive at {settings.data_dir}; download something first ({run}), "
                                 "or point --data-dir at an existing one")
    raise errors.ConfigError(
        f"no ledger at {settings.ledger_path} for {settings.data_dir_shown}; download something first ({run}), or "
        "point --ledger-dir at this archive's ledger (a new one for an existing archive: spxdl verify --repair)")


@contextlib.contextmanager
def simulated_terminal(settings: config.Settings, enabled: bool, profile: str = SIM_DEFAULT_PROFILE,
                       flavor: str = "terminal") -> Iterator[config.Settings]:
    """``settings``, pointed at the built-in simulator on a free loopback port for ``--simulate``.

    The simulator speaks both APIs on one port, so ``--api`` (or the config's) still decides; the
    thetadatadx flavour speaks v3 only.
    """
    if not enabled:
        yield settings
        return
    refuse_simulated_direct(settings)
    from spxdl.simulator import Simulator  # only here: the download path never imports the simulator

    with Simulator(profile=profile, flavor=flavor) as sim:
        who = "thetadatadx-server" if flavor == "thetadatadx" else "terminal"
        log.info("simulated %s (%s profile) at %s", who, profile, sim.url)
        yield settings.replace(terminal_url=sim.url)


def simulate_data_dir(simulate: bool, data_dir: Path | str | None) -> Path | str | None:
    """Simulated data never shares a directory with real data: ``--simulate`` defaults to ./sim-data."""
    if simulate and data_dir is None:
        return SIM_DATA_DIR
    return data_dir
