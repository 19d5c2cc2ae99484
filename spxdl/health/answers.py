"""One answer of the terminal, kept whole, and what spxdl expects of its bytes.

``Recorder`` is the terminal observer ``spxdl doctor`` gives its client: it keeps every answer's
head and body (doctor's requests are small). The functions below judge one answer at a time and
return ``Finding`` lines: its framing, content type, line ends, quoting and header; the rows of a
history answer (rights, strike units, expirations, timestamps) come in ``rows.py``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from spxdl.health.checks import Finding, Verdict
from spxdl.terminal import AnswerHead, BodySink
from spxdl.urls import origin


@dataclass
class Answer:
    """One answer as the client received it: its head, its body, and whether the body arrived whole."""

    head: AnswerHead
    body: bytearray = field(default_factory=bytearray)
    whole: bool = False

    def header(self, name: str) -> str:
        return next((value for key, value in self.head.headers.items() if key.lower() == name.lower()), "")

    @property
    def text(self) -> str:
        return bytes(self.body).decode("utf-8", "replace")

    def lines(self) -> list[str]:
        """The body's lines without their line ends (the last one even without one)."""
        return self.text.splitlines()

    def table(self) -> list[dict[str, str]]:
        """The rows of a CSV body keyed by its header's names."""
        return list(csv.DictReader(io.StringIO(self.text)))


class _AnswerSink:
    def __init__(self, answer: Answer) -> None:
        self.answer = answer

    def write(self, chunk: bytes) -> None:
        self.answer.body += chunk

    def finish(self, complete: bool) -> None:
        self.answer.whole = complete


class Recorder:
    """A terminal observer that keeps every answer (and passes it on to ``then``, a capture, if given)."""

    def __init__(self, then: object | None = None) -> None:
        self.answers: list[Answer] = []
        self._then = then

    def __call__(self, head: AnswerHead) -> BodySink | None:
        answer = Answer(head)
        self.answers.append(answer)
        mine = _AnswerSink(answer)
        other = self._then(head) if callable(self._then) else None
        return mine if other is None else _Both(mine, other)

    def mark(self) -> int:
        return len(self.answers)

    def since(self, mark: int, endpoint: str | None = None) -> list[Answer]:
        """Answers recorded after ``mark`` (of ``endpoint`` only, when given)."""
        return [a for a in self.answers[mark:] if endpoint is None or a.head.endpoint == endpoint]


class _Both:
    def __init__(self, first: BodySink, second: BodySink) -> None:
        self.sinks = (first, second)

    def write(self, chunk: bytes) -> None:
        for sink in self.sinks:
            sink.write(chunk)

    def finish(self, complete: bool) -> None:
        for sink in self.sinks:
            sink.finish(complete)


# -- judging one answer's bytes ------------------------------------------------------------------


def framing(check: str, answer: Answer) -> list[Finding]:
    """Content-Length or chunked: either lets spxdl tell a whole body from a cut one."""
    if answer.header("Content-Length") or "chunked" in answer.header("Transfer-Encoding").lower():
        return []
    return [Finding(check, Verdict.DIFFERS, "the answer has neither Content-Length nor chunked encoding: a body cut "
                                            "at a line end cannot be told from a whole one")]


def content_type(check: str, answer: Answer, expected: str) -> list[Finding]:
    found = answer.header("Content-Type").split(";")[0].strip().lower()
    if found == expected:
        return []
    return [Finding(check, Verdict.TOLERATED, f"content type {found or '(none)'} where {expected} was expected; "
                                              "spxdl reads the body by its content, not its type")]


def line_ends(check: str, answer: Answer, *, final_required: bool) -> list[Finding]:
    """CRLF after every line, the last one included (docs/wire.md): LF is read too, a missing last one is not."""
    body = bytes(answer.body)
    found = []
    crlf, bare = body.count(b"\r\n"), body.count(b"\n") - body.count(b"\r\n")
    if bare and not crlf:
        found.append(Finding(check, Verdict.TOLERATED, "lines end with LF where the documented wire uses CRLF; "
                                                       "spxdl reads both"))
    elif bare and crlf:
        found.append(Finding(check, Verdict.TOLERATED, f"lines end with CRLF ({crlf}) and LF ({bare}) mixed; "
                                                       "spxdl reads both"))
    if body and not body.endswith(b"\n"):
        verdict = Verdict.DIFFERS if final_required else Verdict.TOLERATED
        found.append(Finding(check, verdict, f"no line ending after the last line ({body[-20:]!r}): spxdl reads "
                                             "that as a body cut in the middle of a line"
                             + (" and fetches it again until it gives up" if final_required else "")))
    return found


def quoting(check: str, answer: Answer) -> list[Finding]:
    if b'"' not in answer.body:
        return []
    return [Finding(check, Verdict.TOLERATED, "text fields come in double quotes where the vendor's examples have "
                                              "none; spxdl reads both")]


def header_columns(check: str, answer: Answer, pinned: tuple[str, ...]) -> list[Finding]:
    """The header holds every pinned column (a missing one is named, with what came instead)."""
    lines = answer.lines()
    header = [name.strip().strip('"') for name in (lines[0].split(",") if lines else [])]
    missing = [name for name in pinned if name not in header]
    extra = [name for name in header if name not in pinned]
    if missing:
        instead = f"; instead: {', '.join(extra)}" if extra else ""
        return [Finding(check, Verdict.DIFFERS, f"the header lacks {', '.join(missing)}{instead} (header: "
                                                f"{','.join(header)[:160]})")]
    if extra:
        return [Finding(check, Verdict.TOLERATED, f"the header adds {', '.join(extra)}: stored without it")]
    return []


def pagination(check: str, answer: Answer, api: str) -> list[Finding]:
    """v2 names the next page in ``Next-Page`` (null on the last); a next page elsewhere is refused."""
    value = answer.header("Next-Page")
    if not value:
        if api == "v2":
            return [Finding(check, Verdict.TOLERATED, "no Next-Page header: read as the last page")]
        return []
    if value.strip().lower() != "null" and value.startswith("http") and origin(value) != origin(answer.head.url):
        return [Finding(check, Verdict.DIFFERS, f"Next-Page {value} is on another host or port than the terminal: "
                                                "spxdl does not follow it")]
    return []


def csv_answer(check: str, answer: Answer, *, final_required: bool = True) -> list[Finding]:
    """Everything about a CSV answer's bytes: framing, type, line ends, quoting."""
    return (framing(check, answer) + content_type(check, answer, "text/csv")
            + line_ends(check, answer, final_required=final_required) + quoting(check, answer))
