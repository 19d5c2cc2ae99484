"""Ways a real terminal might answer differently from the documented wire, one at a time, on demand.

Nobody building spxdl can reach a real terminal; ``spxdl doctor`` must still be shown to name each
difference it claims to see. ``Quirks`` rewrites the simulator's CSV answers (200, ``text/csv``)
after they are rendered: lines ending LF instead of CRLF, no line ending after the last line,
strikes in the other API's unit (v3 in 1/10 cent, v2 in dollars), renamed header columns, text
fields in double quotes (as third parties saw v3 CSV), and bad rows (every Nth quote crossed: the
bid above the ask, which spxdl's checks count). The default changes nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from spxdl.errors import ConfigError

LINE_ENDS = {"crlf": "\r\n", "lf": "\n"}
STRIKE_UNITS = ("native", "swapped")


@dataclass(frozen=True)
class Quirks:
    """How the simulator's CSV answers differ from the documented wire; the default: not at all."""

    line_end: str = "crlf"  # "lf": every line ends with a bare LF
    final_newline: bool = True  # False: the last line has no line ending
    strike_units: str = "native"  # "swapped": v3 strikes in 1/10 cent, v2 strikes in dollars
    renamed: tuple[tuple[str, str], ...] = ()  # header columns renamed, (old, new) pairs
    quoted_text: bool = False  # True: every value that is not a number in double quotes
    crossed_every: int = 0  # N > 0: every Nth row of an answer with bid and ask has its bid 0.05 above its ask

    def __post_init__(self) -> None:
        if self.line_end not in LINE_ENDS:
            raise ConfigError(f"quirk line_end must be one of {', '.join(LINE_ENDS)}", key="line_end")
        if self.strike_units not in STRIKE_UNITS:
            raise ConfigError(f"quirk strike_units must be one of {', '.join(STRIKE_UNITS)}", key="strike_units")
        if self.crossed_every < 0:
            raise ConfigError("quirk crossed_every must be 0 (none) or more", key="crossed_every")
        object.__setattr__(self, "renamed", tuple(tuple(pair) for pair in self.renamed))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "Quirks":
        """Quirks from a JSON object; ConfigError for unknown names or bad values."""
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown quirk(s) {', '.join(sorted(unknown))}")
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"bad quirk values: {exc}") from None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def active(self) -> bool:
        return self != Quirks()

    def apply(self, path: str, body: bytes) -> bytes:
        """The CSV ``body`` answered for ``path`` as this terminal would send it."""
        if not self.active or not body:
            return body
        lines = body.decode("ascii").split("\r\n")
        if lines and lines[-1] == "":
            lines.pop()
        header = lines[0].split(",")
        if self.strike_units == "swapped" and "strike" in header:
            index = header.index("strike")
            lines[1:] = [_swap_strike(line, index, v3=path.startswith("/v3/")) for line in lines[1:]]
        if self.crossed_every and {"bid", "ask"} <= set(header):
            bid, ask = header.index("bid"), header.index("ask")
            lines[1:] = [_crossed(line, bid, ask) if number % self.crossed_every == 0 else line
                         for number, line in enumerate(lines[1:], start=1)]
        if self.quoted_text:
            lines[1:] = [",".join(_quoted(cell) for cell in line.split(",")) for line in lines[1:]]
        renames = dict(self.renamed)
        lines[0] = ",".join(renames.get(name, name) for name in header)
        end = LINE_ENDS[self.line_end]
        return (end.join(lines) + (end if self.final_newline else "")).encode("ascii")


def _quoted(cell: str) -> str:
    try:
        float(cell)
        return cell
    except ValueError:
        return f'"{cell}"' if cell else cell


def _crossed(line: str, bid: int, ask: int) -> str:
    cells = line.split(",")
    cells[bid] = "%.2f" % (float(cells[ask]) + 0.05)
    return ",".join(cells)


def _swap_strike(line: str, index: int, *, v3: bool) -> str:
    cells = line.split(",")
    value = float(cells[index])
    cells[index] = str(round(value * 1000)) if v3 else "%.3f" % (value / 1000)
    return ",".join(cells)
