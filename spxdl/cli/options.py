"""Options shared by commands, the settings they build, and the dates they take.

Also what ties a command to its data dir (the archive's own window and simulator profile, the
built-in simulator for ``--simulate``), when the log file opens, and the commands the CLI
suggests (``suggested``: they carry the user's flags, so they run as printed).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import shlex
from datetime import date
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import click

from spxdl import calendars, config, errors, logs, shapes, storage, trading_calendar
from spxdl.engine.planning import days_back_range
from spxdl.engine.shared import client_for
from spxdl.urls import redact

log = logging.getLogger(__name__)

SELECTION_FIELDS = ("roots", "datasets", "interval", "min_dte", "max_dte")
CONFIRM_TRADING_DAYS = 30
# `--simulate` with nothing else asked is a demo: small enough to finish within about a minute.
SIM_DEMO_DAYS = 3
SIM_DEMO_MAX_DTE = 3
SIM_DEMO_MAX_DTE_BY_PROFILE = {"tiny": 7}  # the tiny profile lists Fridays only: any 8 days hold one
SIM_PROFILES = ("tiny", "realistic", "dense")
SIM_DEFAULT_PROFILE = "realistic"
SIM_DATA_DIR = Path("sim-data")


def terminal_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--terminal-url``, ``--api``, ``--source``, ``--data-dir`` and ``--ledger-dir``: every command that touches
    the terminal or archive."""
    func = click.option("--ledger-dir", type=click.Path(path_type=Path),
                        help="Where the ledger lives (lock, status, runs, logs): a local or shared POSIX directory; "
                             "default: the data dir, which must then be local [storage] ledger_dir.")(func)
    func = click.option("--data-dir",
                        help="Archive directory, or an object store such as s3://bucket/prefix (credentials from "
                             "AWS_* variables or ~/.aws) [storage] data_dir.")(func)
    func = click.option("--source", type=click.Choice(["terminal", "direct"]),
                        help="Where data comes from: a terminal (or thetadatadx-server), or ThetaData directly "
                             "through the thetadatadx-py SDK [terminal] source.")(func)
    func = click.option("--api", type=click.Choice(["auto", "v2", "v3"]), help="Terminal API version [terminal] api.")(func)
    func = click.option("--terminal-url", help="Terminal base URL, e.g. http://127.0.0.1:25503 [terminal] url.")(func)
    return func


def selection_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Which part of the archive: roots, datasets, interval and DTE window."""
    options = [
        click.option("--root", "roots", multiple=True, help="Root(s): SPXW, SPX; repeat or comma-separate."),
        click.option("--dataset", "datasets", multiple=True, help="Dataset(s): greeks, quote, ohlc, open_interest, eod, greeks_second_order."),
        click.option("--interval", help="Bar interval, e.g. 1m."),
        click.option("--min-dte", type=int, help="Keep expirations at least N days after the trade date."),
        click.option("--max-dte", type=int, help="Keep expirations at most N days after the trade date."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def download_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """What to download and how hard to work: shared by run, backfill, update and resume."""
    options = [
        click.option("--workers", type=int, help="Worker processes (default: from --max-in-flight)."),
        click.option("--threads", type=int, help="Download threads per worker (default: 2, or from --max-in-flight with --workers)."),
        click.option("--max-in-flight", type=int, help="Requests in flight across all workers (terminal's limit)."),
        click.option("--executor", help="Where the tasks run: process (this machine's worker processes) or "
                                        "dask://HOST:PORT (that Dask scheduler's workers) [engine] executor."),
        click.option("--force", is_flag=True, help="Download again even what is complete; files are replaced atomically."),
        click.option("--dry-run", is_flag=True, help="Print the plan with estimated requests, rows and bytes; write nothing."),
        click.option("--yes", "-y", is_flag=True, help=f"Do not ask before ranges over {CONFIRM_TRADING_DAYS} trading days."),
    ]
    for option in reversed(options):
        func = option(func)
    return terminal_options(selection_options(simulate_options(func)))


def simulate_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--simulate``, ``--sim-profile`` and ``--sim-flavor``: the built-in simulated terminal instead of a real one."""
    func = sim_flavor_option()(func)
    func = click.option(
        "--sim-profile", type=click.Choice(SIM_PROFILES),
        help="Simulator profile: tiny (a few strikes), realistic (full SPX chains) or dense (4x the strikes). "
             f"Default: the one the data dir was made with, else {SIM_DEFAULT_PROFILE}.")(func)
    func = click.option(
        "--simulate", is_flag=True,
        help=f"Use the built-in simulated terminal, with ./sim-data as the data dir (with no dates or DTE given: "
             f"the last {SIM_DEMO_DAYS} sessions, DTE 0..{SIM_DEMO_MAX_DTE}, 0..7 for the tiny profile).")(func)
    return func


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


def sim_flavor_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--sim-flavor``: whom the simulator of ``--simulate`` answers like."""
    return click.option("--sim-flavor", type=click.Choice(["terminal", "thetadatadx"]), default="terminal",
                        show_default=True, help="For --simulate: answer like the ThetaData Terminal or like "
                                                "thetadatadx-server (v3 only).")


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


def parse_cli_date(text: str, option: str) -> date:
    """A date given on the command line, or a one-line error naming the option."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise errors.ConfigError(f"{option} {text!r} is not a date; write it as YYYY-MM-DD, e.g. 2024-03-14") from None


def check_range(cal: trading_calendar.TradingCalendar, start: date, end: date, last_session: date) -> tuple[date, date]:
    """Refuse reversed, wholly future or sessionless ranges; clamp an end past the last complete session."""
    if start > last_session:
        raise errors.ConfigError(
            f"{start} has no complete session yet (the latest is {last_session}, New York time); "
            "pick dates up to that day"
        )
    if end < start:
        raise errors.ConfigError(f"the end date {end} is before the start date {start}; swap them")
    if end > last_session:
        log.info("end date %s is after the latest complete session; using %s", end, last_session)
        end = last_session
    if not cal.trading_days(start, end):
        raise errors.ConfigError(no_session_message(cal, start, end, last_session))
    return start, end


def no_session_message(cal: trading_calendar.TradingCalendar, start: date, end: date, last_session: date) -> str:
    """Why ``start..end`` holds no session, and the sessions on either side of it."""
    if start == end:
        holiday = cal.holiday_name(start)
        why = f"markets closed: {holiday}" if holiday else f"a {start:%A}"
        what = f"{start} is not a trading day ({why})"
    else:
        what = f"{start} .. {end} holds no trading day"
    before = cal.previous_trading_day(start)
    after = cal.next_trading_day(end)
    around = f"{before} and {after}" if after <= last_session else f"{before} (the latest complete one)"
    return f"{what}; the sessions around it are {around}"


def resolve_run_dates(
    cal: trading_calendar.TradingCalendar,
    last_session: date,
    *,
    on: str | None,
    start: str | None,
    end: str | None,
    days_back: int | None,
) -> tuple[date, date] | None:
    """The range ``run`` was asked for, or ``None`` when no dates were given (update's case)."""
    given = [name for name, value in (("--date", on), ("--start", start), ("--days-back", days_back)) if value is not None]
    if len(given) > 1:
        raise errors.ConfigError(f"use only one of {', '.join(given)}")
    if end is not None and start is None:
        raise errors.ConfigError("--end needs --start")
    if on is not None:
        day = parse_cli_date(on, "--date")
        return check_range(cal, day, day, last_session)
    if start is not None:
        first = parse_cli_date(start, "--start")
        last = parse_cli_date(end, "--end") if end is not None else last_session
        return check_range(cal, first, last, last_session)
    if days_back is not None:
        if days_back < 1:
            raise errors.ConfigError("--days-back must be 1 or more")
        return days_back_range(cal, last_session, days_back)
    return None


def calendar_for(settings: config.Settings) -> trading_calendar.TradingCalendar:
    return settings.calendar()


def terminal_calendar(settings: config.Settings, years: Iterable[int], *, required: bool = True) -> config.Settings:
    """``settings`` with the terminal's calendar in charge of ``years`` when ``[calendar] source = terminal``.

    A command that only reads (``required=False``) goes on with spxdl's calendar, saying so, when
    the terminal cannot be asked.
    """
    if settings.calendar_source != "terminal":
        return settings
    try:
        with client_for(settings, threads=1) as client:
            return calendars.with_terminal_calendar(settings, client, years)
    except errors.TerminalError as exc:
        if required:
            raise
        log.warning("[calendar] source = terminal, but the terminal could not be asked (%s); "
                    "using spxdl's calendar", exc)
        return settings


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


def read_only(selection: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options and settings of a command that only reads: ``--terminal-url``, ``--api``, ``--source``, ``--data-dir``
    (and the selection options with ``selection``), loaded into a ``settings`` argument.

    Nothing is created on disk (no log file): reading an archive must not change it.
    """

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, terminal_url: str | None, api: str | None, source: str | None, data_dir: str | None,
                    ledger_dir: Path | None, **kwargs: Any) -> Any:
            picked = {name: kwargs.pop(name) for name in SELECTION_FIELDS if name in kwargs} if selection else {}
            flags = download_flags(terminal_url=terminal_url, api=api, source=source, data_dir=data_dir,
                                   ledger_dir=ledger_dir, **picked)
            settings = build_settings(click.get_current_context(), file_logging=False, **flags)
            settings, _ = archive_defaults(settings)
            return func(*args, settings=settings, **kwargs)

        wrapper = terminal_options(wrapper)
        return selection_options(wrapper) if selection else wrapper

    return decorate


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


def is_simulated(settings: config.Settings) -> bool:
    """Whether the data dir's archive was made from the simulator."""
    return any(shape.get("source") == "simulator" for shape in recorded_shapes(settings))
