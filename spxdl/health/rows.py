"""The rows of one history answer against what spxdl asked: rights, strike units, expirations, times.

Strike units are judged by magnitude against the strikes the terminal itself listed: v3 sends
dollars (``5150.000``), v2 tenths of a cent (``5150000``). Times must parse and fall on the trade
date, inside the asked window for the interval datasets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from spxdl.datasets import Dataset
from spxdl.health.answers import Answer
from spxdl.health.checks import Finding, Verdict

V3_RIGHTS = {"CALL": "C", "PUT": "P"}
SHOWN = 3  # values quoted in one finding


@dataclass(frozen=True)
class Asked:
    """What one doctor request asked for, and what the terminal listed before it."""

    dataset: Dataset
    api: str
    root: str
    trade_date: date
    expiration: date | None  # None: every expiration (daily datasets) or none (an index)
    strike: float | None  # dollars; v3 asks one strike, v2 bulk gets the chain
    right: str | None  # "C"
    start_ms: int
    end_ms: int
    listed_strikes: frozenset[float]
    listed_expirations: frozenset[date]


def judge_rows(check: str, answer: Answer, asked: Asked) -> list[Finding]:
    """Findings about the rows of ``answer`` (empty when every row is what spxdl expects)."""
    rows = answer.table()
    if not rows:
        return []
    found = times(check, rows, asked)
    if not asked.dataset.is_index:
        found += rights(check, rows, asked) + strikes(check, rows, asked) + expirations(check, rows, asked)
    return found


def _few(values: list[str]) -> str:
    distinct = list(dict.fromkeys(values))
    return ", ".join(distinct[:SHOWN]) + (" ..." if len(distinct) > SHOWN else "")


def rights(check: str, rows: list[dict[str, str]], asked: Asked) -> list[Finding]:
    values = [row.get("right", "") for row in rows]
    if asked.api == "v3":
        short = [V3_RIGHTS.get(value, value) for value in values]
        if set(values) - set(V3_RIGHTS) and not set(short) - {"C", "P"}:
            return [Finding(check, Verdict.TOLERATED, f"rights as {_few(values)} where v3 sends CALL/PUT; "
                                                      "spxdl reads both")]
    else:
        short = values
    bad = [value for value, right in zip(values, short) if right not in ("C", "P")]
    if bad:
        return [Finding(check, Verdict.DIFFERS, f"rights {_few(bad)} are neither C/P nor CALL/PUT")]
    if asked.right and any(right != asked.right for right in short):
        return [Finding(check, Verdict.DIFFERS, f"asked for right {asked.right} only, got {_few(values)}")]
    return []


def strikes(check: str, rows: list[dict[str, str]], asked: Asked) -> list[Finding]:
    """Each row's strike in the API's unit (by magnitude), the one asked, and one the terminal listed."""
    try:
        values = [float(row["strike"]) for row in rows]
    except (KeyError, ValueError):
        return [Finding(check, Verdict.DIFFERS, f"strikes that are not numbers: {_few([r.get('strike', '') for r in rows])}")]
    wrong_unit = _magnitude(check, [row["strike"].strip() for row in rows], asked.api)
    if wrong_unit:
        return wrong_unit
    dollars = {value / (1000.0 if asked.api == "v2" else 1.0) for value in values}
    if asked.strike is not None and asked.api == "v3" and dollars != {asked.strike}:
        return [Finding(check, Verdict.DIFFERS, f"asked for strike {asked.strike:.3f}, got {_few([str(v) for v in values])}")]
    if asked.listed_strikes and asked.expiration is not None and not dollars <= asked.listed_strikes:
        return [Finding(check, Verdict.DIFFERS, f"strikes {_few([str(v) for v in sorted(dollars)])} are not among "
                                                "the strikes the terminal listed")]
    return []


def _magnitude(check: str, texts: list[str], api: str) -> list[Finding]:
    """SPX strikes lie between $100 and $100,000: v2's tenths of a cent are 1000x that."""
    dollars = [float(text) / (1000.0 if api == "v2" else 1.0) for text in texts]
    if all(100.0 <= value < 100_000.0 for value in dollars):
        return []
    unit, expected = ("dollars", "1/10 cent (5150000)") if api == "v2" else ("1/10 cent", "dollars (5150.000)")
    return [Finding(check, Verdict.DIFFERS, f"strikes look like {unit} ({_few(texts)}) where API {api} sends "
                                            f"{expected}: every strike would be stored wrong")]


def list_strike_units(check: str, raw: list[str], api: str) -> list[Finding]:
    """The strikes list's own values in the API's unit, by magnitude."""
    try:
        return _magnitude(check, [value.strip() for value in raw], api)
    except ValueError:
        return [Finding(check, Verdict.DIFFERS, f"strikes that are not numbers: {_few(raw)}")]


def expirations(check: str, rows: list[dict[str, str]], asked: Asked) -> list[Finding]:
    try:
        values = [_wire_date(row["expiration"]) for row in rows]
    except (KeyError, ValueError):
        return [Finding(check, Verdict.DIFFERS, f"expirations that are not dates: {_few([r.get('expiration', '') for r in rows])}")]
    if asked.expiration is not None and set(values) != {asked.expiration}:
        return [Finding(check, Verdict.DIFFERS, f"asked for expiration {asked.expiration}, got "
                                                f"{_few([str(v) for v in values])}")]
    unlisted = [str(v) for v in values if asked.listed_expirations and v not in asked.listed_expirations]
    if asked.expiration is None and unlisted and asked.root == "SPXW":
        return [Finding(check, Verdict.TOLERATED, f"expirations the terminal does not list: {_few(unlisted)}")]
    return []


def times(check: str, rows: list[dict[str, str]], asked: Asked) -> list[Finding]:
    """Every row's time parses and lies on the trade date (inside the window for interval datasets)."""
    try:
        stamps = [_row_time(row, asked.api) for row in rows]
    except (KeyError, ValueError) as exc:
        return [Finding(check, Verdict.DIFFERS, f"a time that does not parse ({exc})")]
    off_day = [stamp for stamp in stamps if stamp.date() != asked.trade_date]
    if off_day:
        return [Finding(check, Verdict.DIFFERS, f"rows dated {_few([s.isoformat() for s in off_day])}, asked for "
                                                f"{asked.trade_date}")]
    if asked.dataset.uses_interval:
        ms = [((s.hour * 60 + s.minute) * 60 + s.second) * 1000 + s.microsecond // 1000 for s in stamps]
        outside = [s.isoformat() for s, m in zip(stamps, ms) if not asked.start_ms <= m <= asked.end_ms]
        if outside:
            return [Finding(check, Verdict.DIFFERS, f"rows at {_few(outside)}, outside the asked window")]
    return []


def _wire_date(text: str) -> date:
    text = text.strip().strip('"')
    return date.fromisoformat(text[:10]) if "-" in text else datetime.strptime(text, "%Y%m%d").date()


def _row_time(row: dict[str, str], api: str) -> datetime:
    if api == "v3":
        text = row.get("timestamp") or row["created"]
        return datetime.fromisoformat(text.strip().strip('"'))
    day = _wire_date(row["date"])
    ms = int(row["ms_of_day"])
    return datetime(day.year, day.month, day.day, ms // 3_600_000, ms // 60_000 % 60, ms // 1000 % 60,
                    ms % 1000 * 1000)
