"""The commands around the terminal and the settings: health, config show and sim."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import click

from spxdl import config, errors, health, logs
from spxdl.cli.base import EXIT_CODES_HELP, EXIT_TRY_LATER, Abort, cli, fix_hint, handle_errors
from spxdl.cli.options import (
    archive_defaults,
    archive_flags,
    build_settings,
    parse_cli_date,
    read_only,
    simulate_data_dir,
    simulate_options,
    simulated_terminal,
    terminal_options,
)
from spxdl.config import Settings


@cli.command("health", epilog=EXIT_CODES_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@simulate_options
@terminal_options
@click.pass_context
@handle_errors
def health_command(ctx: click.Context, as_json: bool, simulate: bool, sim_profile: str | None, sim_flavor: str,
                   terminal_url: str | None, api: str | None, source: str | None, data_dir: str | None,
                   ledger_dir: Path | None) -> None:
    """Is the terminal reachable and CONNECTED, and can the archive be written? Exit 0 healthy, 75 not.

    Also compares spxdl's trading calendar with the terminal's (v3) for this year and the next,
    naming every day where they differ; a difference is reported, not counted as unhealthy. With
    --simulate it checks spxdl itself against the built-in simulated terminal (and ./sim-data).
    """
    flags = archive_flags(terminal_url, api, simulate_data_dir(simulate, data_dir), source, ledger_dir)
    settings, profile = archive_defaults(build_settings(ctx, file_logging=False, **flags), sim_profile=sim_profile)
    with simulated_terminal(settings, simulate, profile, sim_flavor) as settings:
        report = health.health_report(settings)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        terminal = report.terminal
        if terminal.exception is not None:
            click.echo(f"{mark(terminal.ok)} terminal  {terminal.status}: {terminal.error}")
            click.echo(f"     {fix_hint(terminal.exception).lstrip('. ')}")
        elif terminal.api == "direct":
            shown = f"; {terminal.detail}" if terminal.detail else ""
            click.echo(f"{mark(terminal.ok)} source    {terminal.url}: {terminal.status}{shown}")
        else:
            source = "" if terminal.api is None else f" api {terminal.api}, {'simulated' if terminal.simulated else 'real'}"
            click.echo(f"{mark(terminal.ok)} terminal  {terminal.url}: {terminal.status}{source}")
        click.echo(f"{mark(report.data_dir.ok)} data dir  {report.data_dir.detail}")
        click.echo(f"{mark(report.disk.ok)} disk      {report.disk.detail}")
        if report.calendar is not None:
            click.echo(f"{'ok  ' if report.calendar.agrees else 'note'} calendar  {report.calendar.detail}")
    if not report.healthy:
        raise Abort("", EXIT_TRY_LATER)


def mark(ok: bool) -> str:
    return "ok  " if ok else "FAIL"


@cli.group("config")
def config_group() -> None:
    """Inspect the effective configuration."""


@config_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@handle_errors
@read_only()
def config_show_command(ctx: click.Context, as_json: bool, settings: Settings) -> None:
    """Every effective setting, its value and where it came from (default, file, env or flag)."""
    rows = config.describe(settings)
    if as_json:
        click.echo(json.dumps({key: {"value": value, "source": source} for key, value, source in rows}, indent=2))
        return
    width = max(len(key) for key, _, _ in rows)
    for key, value, source in rows:
        where = {"storage.data_dir": settings.data_dir, "storage.ledger_dir": settings.ledger_dir}.get(key)
        if isinstance(where, Path) and not where.is_absolute():
            value = f"{value} (= {where.absolute()})"  # cron and systemd start elsewhere
        click.echo(f"{key:<{width}}  {value or '(unset)':<28}  {source}")


def stop_on_signals() -> None:
    """SIGTERM (kill, systemd) and SIGINT stop a foreground server like Ctrl-C, so its counters print.

    SIGINT is set explicitly: a shell starts background jobs with it ignored.
    """

    def interrupt(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, interrupt)


@cli.command("sim")
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address to bind (only loopback is allowed).")
@click.option("--port", type=int, default=25503, show_default=True, help="Port; 0 picks a free one.")
@click.option("--profile", type=click.Choice(["tiny", "realistic", "dense"]), default="realistic", show_default=True,
              help="tiny: a few strikes (tests); realistic: full SPX chains; dense: 4x the strikes.")
@click.option("--seed", type=int, default=0, show_default=True, help="Market seed: same seed, same data.")
@click.option("--fail-rate", type=float, default=0.0, help="Shorthand: this probability for each of 429, 5xx and cut bodies.")
@click.option("--throttle-rate", type=float, help="Probability of a 429 with Retry-After (thetadatadx: a 503).")
@click.option("--error-rate", type=float, help="Probability of a 500/474/571 (thetadatadx: a 500 of an exhausted upstream).")
@click.option("--cut-rate", type=float, help="Probability of a body cut part-way.")
@click.option("--latency", type=float, default=0.0, help="Seconds added to every request.")
@click.option("--max-concurrent", type=int, help="Answer 429 above this many requests at once (thetadatadx: they queue).")
@click.option("--page-rows", type=int, help="Paginate v2 answers above this many rows.")
@click.option("--closure", "closures", multiple=True, metavar="YYYY-MM-DD",
              help="A closure only the simulator's calendar knows (repeatable): what health and doctor name.")
@click.option("--flavor", type=click.Choice(["terminal", "thetadatadx"]), default="terminal", show_default=True,
              help="Answer like the ThetaData Terminal, or like thetadatadx-server (v3 only; errors in its words, "
                   "503 with Retry-After, whole answers after a delay, no pages).")
@click.option("--tier", type=click.Choice(["free", "value", "standard", "pro"]), default="pro", show_default=True,
              help="The subscription served: datasets above it get the flavour's permission answer.")
@click.option("--check", is_flag=True, help="Start on a free port, check every endpoint family against the docs, exit.")
@click.pass_context
@handle_errors
def sim_command(ctx: click.Context, host: str, port: int, profile: str, seed: int, fail_rate: float,
                throttle_rate: float | None, error_rate: float | None, cut_rate: float | None, latency: float,
                max_concurrent: int | None, page_rows: int | None, closures: tuple[str, ...], flavor: str, tier: str,
                check: bool) -> None:
    """Serve the built-in simulated ThetaData Terminal (v2 and v3 on one port) until Ctrl-C.

    With --flavor thetadatadx it answers like thetadatadx-server instead (v3 only).

    \b
    Examples:
      spxdl sim                                  # 127.0.0.1:25503, realistic profile
      spxdl sim --port 25510 --fail-rate 0.05    # a flaky terminal
      spxdl sim --check                          # self-test every endpoint, then exit
      spxdl sim --closure 2026-12-24             # a calendar that differs from spxdl's (health, doctor)
      spxdl sim --flavor thetadatadx --tier value   # thetadatadx-server on a Value account
    """
    from spxdl.simulator import Faults, Simulator, check as check_simulator

    logs.configure(level="DEBUG" if ctx.obj.get("verbose") else "INFO")
    for name, rate in (("--fail-rate", fail_rate), ("--throttle-rate", throttle_rate), ("--error-rate", error_rate), ("--cut-rate", cut_rate)):
        if rate is not None and not 0.0 <= rate <= 1.0:
            raise errors.ConfigError(f"{name} {rate} is not a probability; use a number from 0 to 1")
    faults = Faults(
        throttle_rate=fail_rate if throttle_rate is None else throttle_rate,
        error_rate=fail_rate if error_rate is None else error_rate,
        cut_rate=fail_rate if cut_rate is None else cut_rate,
        latency=latency,
        max_concurrent=max_concurrent,
    )
    closed = {parse_cli_date(text, "--closure"): "a closure given to the simulator" for text in closures}
    if check and flavor != "terminal":
        raise errors.ConfigError("--check judges the terminal flavour's documented wire (v2 and v3); check the "
                                 f"{flavor} flavour with: spxdl doctor --simulate --sim-flavor {flavor}")
    if check:
        with Simulator(profile=profile, seed=seed, host=host, port=0, faults=faults, page_rows=page_rows) as sim:
            click.echo(f"simulated terminal at {sim.url} ({profile} profile, seed {seed})")
            for line in check_simulator(sim.url):
                click.echo(f"  ok  {line}")
            click.echo("every endpoint family answered as documented")
        return
    sim = Simulator(profile=profile, seed=seed, host=host, port=port, faults=faults, page_rows=page_rows,
                    calendar_closures=closed, flavor=flavor, tier=tier)
    stop_on_signals()
    who = "thetadatadx-server" if flavor == "thetadatadx" else "ThetaData Terminal"
    shown_tier = "" if tier == "pro" else f", {tier} tier"
    click.echo(f"simulated {who} at {sim.url} ({profile} profile, seed {seed}{shown_tier}); Ctrl-C stops it", err=True)
    data_dir = "sim-data" if (profile, seed) == ("realistic", 0) else f"sim-data-{profile}-{seed}"  # one shape each
    click.echo(f"  try: spxdl run --terminal-url {sim.url} --data-dir {data_dir} --days-back 1", err=True)
    try:
        sim.serve_forever()
    finally:
        click.echo("\n".join(sim.counter_lines()), err=True)
