"""What the checks found, as a user reads it: counts with their share of the rows, and a stored file's
counts against the ledger's.

The ledger keeps, per file, what each check counted in the rows received (``_day.json``), the
rows ``[validation] mode = drop`` left out, and sums of both per task and archive
(``inventory.json``). ``check_lines`` turns such counts into lines with the share of the rows
each touched; ``content_differences`` says where a file's rows, checked again
(``convert.recount``), disagree with what the ledger recorded when the file was written.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Mapping

from spxdl import checks

if TYPE_CHECKING:
    from spxdl.convert import Recount  # here only: status and gaps never load the converter

CONTRACT_CHECKS = frozenset({"contracts_short", "contracts_long"})  # count contracts, not rows
DEFAULT_MODE = "flag"  # what a file written before modes were recorded was (the default then too)


@dataclass(frozen=True)
class CheckLine:
    """One check's count: ``share`` of the rows received (None for the checks that count contracts)."""

    name: str
    count: int
    share: float | None
    observation: bool
    counts: str  # "rows" or "contracts"
    what: str  # checks.CHECKS' sentence

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_lines(counts: Mapping[str, int], rows: int, dropped: int = 0) -> list[CheckLine]:
    """The checks that counted something, in ``checks.CHECKS``' order; ``rows`` stored plus ``dropped``
    are the rows received, the base of each share."""
    received = rows + dropped
    lines = []
    for name, what in checks.CHECKS.items():
        count = counts.get(name, 0)
        if not count:
            continue
        per_contract = name in CONTRACT_CHECKS
        share = None if per_contract or not received else count / received
        lines.append(CheckLine(name, count, share, name in checks.OBSERVATIONS,
                               "contracts" if per_contract else "rows", what))
    return lines


def expected_in_file(name: str, recorded: int, mode: str) -> int:
    """What the rows of a file should count for check ``name``, given the ledger's count and the mode.

    ``drop`` left the rows a check flagged out of the file, so it holds none of them;
    observations and the contract checks describe the rows stored in every mode.
    """
    if mode == "drop" and name not in checks.OBSERVATIONS and name not in CONTRACT_CHECKS:
        return 0
    return recorded


def content_differences(found: Recount, recorded: Mapping[str, int], archive_mode: str | None) -> list[str]:
    """One ``check: N in the file, M expected (...)`` per check whose recount disagrees with the ledger.

    The file's own mode wins over the archive's (``archive_mode``); an unnamed one is ``flag``.
    """
    mode = found.validation or archive_mode or DEFAULT_MODE
    differences = []
    for name in sorted(set(found.counts) | set(recorded)):
        if name in found.not_rechecked:
            continue
        counted, ledger = found.counts.get(name, 0), recorded.get(name, 0)
        expected = expected_in_file(name, ledger, mode)
        if counted != expected:
            why = f"the ledger counted {ledger:,} when it was written"
            why += f", dropped in {mode} mode" if expected != ledger else ""
            differences.append(f"{name}: {counted:,} in the file, {expected:,} expected ({why})")
    return differences
