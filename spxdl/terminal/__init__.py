"""The ThetaData Terminal client: one pooled session, retries, a circuit breaker, pagination.

Laid out one responsibility per module, each importing only those above it in this list:

- ``status``: what an HTTP status, a status word or a failed connection means (``error_for_status``);
- ``page``: ``Page``, the streamed body of one page, and its framing checks;
- ``breaker``: ``CircuitBreaker``;
- ``urls``: ``check_terminal_url``, the one check of a terminal URL (``config`` uses it too);
- ``wire``: paths, ``YYYYMMDD``/ISO/time strings, request parameters, list bodies;
- ``adapter``: ``Request``, the record of one page's request, and ``TerminalAdapter``, which sends it
  once over the pooled session, holding an in-flight slot;
- ``connection``: ``TerminalConnection``, the client's base: detection, the retry loop, the breaker's probes;
- ``client``: ``TerminalClient``: status, lists, history and calendar calls, pagination.

Every name below is importable from ``spxdl.terminal``.
"""

from spxdl.terminal.adapter import Request, TerminalAdapter
from spxdl.terminal.breaker import CircuitBreaker
from spxdl.terminal.client import TerminalClient
from spxdl.terminal.connection import TerminalConnection
from spxdl.terminal.page import (
    BODY_IN_ERROR,
    BODY_READ_ERRORS,
    ERROR_BODY_BYTES,
    AnswerHead,
    BodySink,
    Observer,
    Page,
    null_to_none,
)
from spxdl.terminal.status import (
    ERROR_TYPE_STATUS,
    empty_answer,
    error_for_error_type,
    error_for_status,
    grpc_status,
    parse_retry_after,
    raise_for_status_word,
)
from spxdl.urls import check_terminal_url
from spxdl.terminal.wire import (
    CALENDAR_PATHS,
    DAY_MS,
    DEFAULT_URLS,
    LIST_PATHS,
    RTH_END_MS,
    RTH_START_MS,
    SIMULATOR_HEADER,
    STATUS_PATHS,
    V2_ALL_EXPIRATIONS,
    V3_ALL_EXPIRATIONS,
    CalendarDay,
    HistoryQuery,
    calendar_params,
    list_params,
    parse_calendar_body,
    parse_list_body,
    parse_wire_date,
    plain_number,
    simulator_facts,
    v2_history_params,
    v3_history_params,
    v3_time,
    wire_date,
)

__all__ = [
    "CALENDAR_PATHS",
    "V2_ALL_EXPIRATIONS",
    "V3_ALL_EXPIRATIONS",
    "AnswerHead",
    "BodySink",
    "CalendarDay",
    "Observer",
    "calendar_params",
    "parse_calendar_body",
    "BODY_IN_ERROR",
    "BODY_READ_ERRORS",
    "DAY_MS",
    "DEFAULT_URLS",
    "ERROR_BODY_BYTES",
    "ERROR_TYPE_STATUS",
    "LIST_PATHS",
    "RTH_END_MS",
    "RTH_START_MS",
    "SIMULATOR_HEADER",
    "STATUS_PATHS",
    "CircuitBreaker",
    "HistoryQuery",
    "Page",
    "Request",
    "TerminalAdapter",
    "TerminalClient",
    "TerminalConnection",
    "check_terminal_url",
    "empty_answer",
    "error_for_error_type",
    "error_for_status",
    "grpc_status",
    "list_params",
    "null_to_none",
    "parse_list_body",
    "parse_retry_after",
    "parse_wire_date",
    "plain_number",
    "simulator_facts",
    "raise_for_status_word",
    "v2_history_params",
    "v3_history_params",
    "v3_time",
    "wire_date",
]
