"""``spxdl doctor``: does this terminal answer the way spxdl expects? One line per check."""

from __future__ import annotations

import json
from pathlib import Path

import click

from spxdl import health
from spxdl.cli.base import EXIT_INCOMPLETE, EXIT_TRY_LATER, Abort, cli, fix_hint, handle_errors
from spxdl.cli.options import read_only, refuse_simulated_direct, sim_flavor_option
from spxdl.config import Settings

DOCTOR_EXIT_HELP = """\b
Exit codes:
  0    everything spxdl needs works (differences it reads all the same are
       listed as tolerated)
  1    something differs from what spxdl expects, or a dataset your config
       asks for is not in your subscription
  2    usage or configuration error
  75   no terminal answers"""
SEND = "spxdl doctor --capture ~/spxdl-capture"


@cli.command("doctor", epilog=DOCTOR_EXIT_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--capture", type=click.Path(path_type=Path, file_okay=False),
              help="Also write every answer byte for byte, its request and a manifest into this directory "
                   "(the host becomes 127.0.0.1); send it with a report.")
@click.option("--simulate", is_flag=True, help="Check the built-in simulated terminal instead (every check passes).")
@click.option("--sim-profile", type=click.Choice(["tiny", "realistic", "dense"]), default="realistic",
              show_default=True, help="Simulator profile for --simulate.")
@sim_flavor_option()
@click.pass_context
@handle_errors
@read_only()
def doctor_command(ctx: click.Context, as_json: bool, capture: Path | None, simulate: bool, sim_profile: str,
                   sim_flavor: str, settings: Settings) -> None:
    """Check, in seconds, that the terminal answers the way spxdl expects.

    One small request per endpoint family and dataset (status; SPXW's expirations and strikes; a
    few minutes of one strike of each dataset on the latest complete session; the calendar), each
    answer checked byte by byte: status, content type, framing, line ends, quoting, header
    columns, strike units, rights, timestamps, pagination. One line per check: ok, differs (what
    and how), tolerated (differs, and spxdl reads it anyway), not in your subscription.

    \b
    Examples:
      spxdl doctor                             # the terminal of your config (or 127.0.0.1:25503, :25510)
      spxdl doctor --capture ~/spxdl-capture   # and keep every answer, to send with a report
      spxdl doctor --simulate                  # what a terminal answering as documented looks like
      spxdl doctor --simulate --sim-flavor thetadatadx   # ... and thetadatadx-server
    """
    if simulate:
        refuse_simulated_direct(settings)
        from spxdl.simulator import Simulator  # only here: the download path never imports the simulator

        with Simulator(profile=sim_profile, flavor=sim_flavor) as sim:
            report = health.doctor_report(settings.replace(terminal_url=sim.url), capture_dir=capture)
    else:
        report = health.doctor_report(settings, capture_dir=capture)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        render(report)
    if report.unreachable is not None:
        if not as_json:
            click.echo(f"spxdl: error: {report.unreachable}{fix_hint(report.unreachable)}", err=True)
        raise Abort("", EXIT_TRY_LATER)
    if report.outcome != health.Verdict.OK:
        raise Abort("", EXIT_INCOMPLETE)


def render(report: health.DoctorReport) -> None:
    """One line per check, then a summary that says what to do."""
    if report.unreachable is not None:
        click.echo(f"spxdl doctor: no terminal answered at {report.url}" if report.api != "direct"
                   else f"spxdl doctor: {report.url} could not reach ThetaData")
        return
    source = "spxdl simulator" if report.simulated else "ThetaData Terminal"
    api = f"API {report.api}" if report.api else "API unknown"
    if report.api == "direct":
        api, source = "direct source", "no terminal"
    click.echo(f"spxdl doctor: {report.url}, {api} ({source}), latest complete session {report.session or 'not asked'}")
    width = max(len(finding.check) for finding in report.findings) if report.findings else 0
    for finding in report.findings:
        shown = health.Verdict.SHOWN[finding.verdict]
        click.echo(f"  {shown:<10} {finding.check:<{width}}  {finding.detail}")
    counts = ", ".join(f"{count} {health.Verdict.SHOWN[verdict]}" for verdict, count in report.counts().items())
    click.echo(f"{len(report.findings)} checks: {counts}.")
    if report.outcome != health.Verdict.OK:
        blocking = ", ".join(dict.fromkeys(finding.check for finding in report.blocking()))
        click.echo(f"spxdl does not work as it should with this terminal ({blocking}). Run `{SEND}` and send that "
                   "directory with a report (README: Troubleshooting).")
    elif report.counts().get(health.Verdict.TOLERATED):
        click.echo(f"spxdl works with this terminal. It differs from the documented wire where marked tolerated: "
                   f"`{SEND}` and a report help the next release.")
    else:
        click.echo("spxdl works with this terminal.")
    if report.capture_dir is not None:
        click.echo(f"Every answer is in {report.capture_dir} (manifest.json, doctor.json).")
