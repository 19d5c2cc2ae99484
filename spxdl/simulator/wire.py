"""Rendering rows and lists as the terminal's bytes: v2 CSV and JSON, v3 CSV and JSON.

Row templates are built once per (dataset, API, format) from the column lists; numbers print
with the same directive in every format (prices 2 decimals, greeks 4), so the same row tuple
yields the same number text everywhere.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from operator import itemgetter
from typing import Callable, Iterable, Sequence

from spxdl.simulator.columns import FIELD_KINDS, GREEK, PRICE, TIME, DatasetColumns
from spxdl.simulator.rows import Block, yyyymmdd

CRLF = "\r\n"
RIGHT_WORDS = {"C": "CALL", "P": "PUT"}
_DIRECTIVE = {PRICE: "%.2f", GREEK: "%.4f"}


def _field_index(ds: DatasetColumns, name: str) -> int:
    """Position of a wire column in the row tuple (the v2 date comes last)."""
    canonical = ds.canonical(name)
    return len(ds.fields) if canonical == "date" else ds.fields.index(canonical)


def _directive(ds: DatasetColumns, name: str) -> str:
    return _DIRECTIVE.get(FIELD_KINDS.get(ds.canonical(name), ""), "%s")


@lru_cache(maxsize=64)
def row_format(ds: DatasetColumns, api: str, fmt: str) -> tuple[str, Callable | None]:
    """(%-template of one row without contract columns, getter putting a row in wire order)."""
    if fmt == "csv":
        names = ds.v2_format if api == "v2" else ds.v3_columns[4:]
        template = ",".join(_directive(ds, n) for n in names) + CRLF
    elif api == "v2":
        names = ds.v2_format
        template = "[" + ",".join(_directive(ds, n) for n in names) + "]"
    else:
        names = ds.v3_json_keys
        quoted = ['"%s"' if FIELD_KINDS.get(ds.canonical(n)) == TIME else _directive(ds, n) for n in names]
        template = "{" + ",".join('"%s":%s' % (n, d) for n, d in zip(names, quoted)) + "}"
    order = [_field_index(ds, n) for n in names]
    row_length = len(ds.fields) + (1 if api == "v2" else 0)
    return template, None if order == list(range(row_length)) else itemgetter(*order)


def render_rows(ds: DatasetColumns, api: str, fmt: str, prefix: str, rows: Sequence[tuple]) -> list[str]:
    """Rows as wire text, each preceded by ``prefix`` (the contract columns, if any)."""
    template, getter = row_format(ds, api, fmt)
    line = prefix.replace("%", "%%") + template
    return list(map(line.__mod__, rows if getter is None else map(getter, rows)))


# -- contracts -------------------------------------------------------------------------------

def v2_csv_prefix(b: Block) -> str:
    return "%s,%d,%d,%s," % (b.root, yyyymmdd(b.expiration), b.strike * 1000, b.right)


def v3_csv_prefix(b: Block) -> str:
    return "%s,%s,%.3f,%s," % (b.root, b.expiration.isoformat(), b.strike, RIGHT_WORDS[b.right])


def v2_json_contract(b: Block) -> str:
    return '{"root":"%s","expiration":%d,"strike":%d,"right":"%s"}' % (
        b.root, yyyymmdd(b.expiration), b.strike * 1000, b.right)


def v3_json_contract(b: Block) -> str:
    """The recorded contract line: key order symbol, expiration, right, strike."""
    return '{"symbol":"%s","expiration":"%s","right":"%s","strike":%.3f}' % (
        b.root, b.expiration.isoformat(), RIGHT_WORDS[b.right], b.strike)


# -- history bodies --------------------------------------------------------------------------

def v2_csv(ds: DatasetColumns, blocks: Sequence[Block]) -> bytes:
    """v2 bulk CSV: header line, contract columns first, CRLF after every line."""
    out = [",".join(ds.v2_columns) + CRLF]
    for b in blocks:
        out.extend(render_rows(ds, "v2", "csv", v2_csv_prefix(b), b.rows))
    return "".join(out).encode("ascii")


def v3_csv(ds: DatasetColumns, blocks: Sequence[Block]) -> bytes:
    """v3 CSV: header line, ISO times, strike with 3 decimals, CALL/PUT, CRLF."""
    out = [",".join(ds.v3_columns) + CRLF]
    for b in blocks:
        out.extend(render_rows(ds, "v3", "csv", v3_csv_prefix(b), b.rows))
    return "".join(out).encode("ascii")


def v3_json_body(contract_blocks: Iterable[tuple[str, Sequence[str]]], one_line: bool = False) -> bytes:
    """The recorded v3 layout from rendered pieces: (contract object, data row objects) pairs.

    ``one_line`` is the option EOD quirk: rows joined by ",\\t\\t\\t\\t" on one line.
    """
    row_sep = ",\t\t\t\t" if one_line else ",\n\t\t\t\t"
    items = []
    for contract, data in contract_blocks:
        items.append('\t\t{\n\t\t\t"contract": ' + contract + ',\n\t\t\t"data": [\n\t\t\t\t'
                     + row_sep.join(data) + "\n\t\t\t]\n\t\t}")
    return ('{\n\t"response": [\n' + ",\n".join(items) + "\n\t]\n}\n\n").encode("ascii")


def v3_json(ds: DatasetColumns, blocks: Sequence[Block]) -> bytes:
    """v3 JSON of history rows."""
    pieces = ((v3_json_contract(b), render_rows(ds, "v3", "json", "", b.rows)) for b in blocks)
    return v3_json_body(pieces, one_line=ds.name == "eod")


def v2_json_head(ds_format: Sequence[str], next_page: str, latency_ms: int) -> bytes:
    """v2 JSON envelope up to the response list (the next page differs per page)."""
    fmt = ",".join('"%s"' % f for f in ds_format)
    return ('{\n\t"header": {\n\t\t"latency_ms": %d,\n\t\t"next_page": "%s",\n\t\t"format": [%s]'
            '\n \t},\n\t"response": [\n' % (latency_ms, next_page, fmt)).encode("ascii")


def v2_json_tail(items: Sequence[str]) -> bytes:
    """v2 JSON response items and the envelope's end (a stray space, no final newline)."""
    return (",\n".join("\t\t" + i for i in items) + "\n \t]\n}").encode("ascii")


def v2_json_items(ds: DatasetColumns, blocks: Sequence[Block]) -> list[str]:
    """Bulk items: {"ticks":[...],"contract":{...}} per contract."""
    return ['{"ticks":[' + ",".join(render_rows(ds, "v2", "json", "", b.rows)) + '],"contract":'
            + v2_json_contract(b) + "}" for b in blocks if b.rows]


def paginate(blocks: Sequence[Block], page_rows: int | None) -> list[list[Block]]:
    """Split blocks into pages of at most ``page_rows`` rows (a contract may span pages)."""
    if not page_rows:
        return [list(blocks)]
    pages: list[list[Block]] = [[]]
    room = page_rows
    for b in blocks:
        rows = b.rows
        while rows:
            if room == 0:
                pages.append([])
                room = page_rows
            take, rows = rows[:room], rows[room:]
            pages[-1].append(Block(b.root, b.expiration, b.strike, b.right, take))
            room -= len(take)
    return pages


# -- list bodies -----------------------------------------------------------------------------

def csv_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """A small CSV with CRLF line ends."""
    lines = [",".join(header)] + [",".join(str(v) for v in r) for r in rows]
    return (CRLF.join(lines) + CRLF).encode("ascii")


def v3_json_list(objects: Iterable[str]) -> bytes:
    """v3 list JSON: one compact object per line (recorded layout)."""
    body = ",\n".join("\t\t" + o for o in objects)
    return ('{\n\t"response": [\n' + body + "\n\t]\n}\n\n").encode("ascii")


def v2_json_list(name: str, values: Sequence[object]) -> bytes:
    """v2 list JSON: the envelope with one value per line."""
    items = ['"%s"' % v if isinstance(v, str) else str(v) for v in values]
    return v2_json_head((name,), "null", 0) + v2_json_tail(items)


def expirations_body(api: str, fmt: str, root: str, exps: Sequence[date]) -> bytes:
    """list/expirations in the API's form."""
    if api == "v2":
        ints = [yyyymmdd(e) for e in exps]
        return csv_table(("date",), ([i] for i in ints)) if fmt == "csv" else v2_json_list("date", ints)
    if fmt == "csv":
        return csv_table(("symbol", "expiration"), ((root, e.isoformat()) for e in exps))
    return v3_json_list('{"symbol":"%s","expiration":"%s"}' % (root, e.isoformat()) for e in exps)


def strikes_body(api: str, fmt: str, root: str, strikes: Sequence[int]) -> bytes:
    """list/strikes: v2 in 1/10 cent, v3 in dollars with 3 decimals."""
    if api == "v2":
        tenths = [k * 1000 for k in strikes]
        return csv_table(("strike",), ([k] for k in tenths)) if fmt == "csv" else v2_json_list("strike", tenths)
    if fmt == "csv":
        return csv_table(("symbol", "strike"), ((root, "%.3f" % k) for k in strikes))
    return v3_json_list('{"symbol":"%s","strike":%.3f}' % (root, k) for k in strikes)


def dates_body(api: str, fmt: str, days: Sequence[date]) -> bytes:
    """list/dates: v2 YYYYMMDD ints, v3 ISO dates."""
    if api == "v2":
        ints = [yyyymmdd(d) for d in days]
        return csv_table(("date",), ([i] for i in ints)) if fmt == "csv" else v2_json_list("date", ints)
    if fmt == "csv":
        return csv_table(("date",), ([d.isoformat()] for d in days))
    return v3_json_list('{"date":"%s"}' % d.isoformat() for d in days)


def roots_body(fmt: str, roots: Sequence[str]) -> bytes:
    """v2 list/roots/option."""
    return csv_table(("root",), ([r] for r in roots)) if fmt == "csv" else v2_json_list("root", list(roots))
