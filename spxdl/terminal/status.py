"""What the terminal's answers mean: HTTP statuses, status words, error texts and failed connections.

The only place that decides what an answer means; everything else asks ``error_for_status`` (or
``empty_answer`` for a 200 without a body). An answer is judged by what it says as well as by its
code, so that one client serves the ThetaData Terminal and thetadatadx-server alike without asking
which it talks to: the server names the upstream gRPC status in its text (``gRPC status NotFound:
...`` in a 500) where the terminal has a status code of its own (472).
"""

from __future__ import annotations

import email.utils
import logging
import re
from datetime import datetime, timezone
from typing import Any, Mapping

import requests

from spxdl.errors import (
    BadRequest,
    InvalidSession,
    NoData,
    PageExpired,
    PermissionDenied,
    RequestTooLarge,
    TerminalError,
    TerminalUnavailable,
    Throttled,
)

log = logging.getLogger(__name__)

# Names an old terminal put in a 200 answer's header.error_type, mapped to their status code so
# that the one status mapping below also decides these.
ERROR_TYPE_STATUS = {
    "NO_IMPL": 404,
    "OS_LIMIT": 429,
    "GENERAL": 470,
    "PERMISSION": 471,
    "NO_DATA": 472,
    "INVALID_PARAMS": 473,
    "DISCONNECTED": 474,
    "TERMINAL_PARSE": 475,
    "WRONG_IP": 476,
    "NO_PAGE_FOUND": 477,
    "LARGE_REQUEST": 570,
    "SERVER_STARTING": 571,
    "UNCAUGHT_ERROR": 572,
    "INVALID_SESSION_ID": 478,
}

# thetadatadx-server puts the upstream gRPC status in its error texts: ``gRPC status NotFound: ...``
# (a 500), ``upstream is at capacity; retry shortly: gRPC status ResourceExhausted: ...`` (a 503).
GRPC_STATUS = re.compile(r"\bgRPC status (\w+)")


def error_for_status(
    status: int,
    *,
    endpoint: str,
    params: Mapping[str, Any] | None = None,
    body: str = "",
    retry_after: float | None = None,
) -> TerminalError:
    """The exception for an error answer of the terminal: by the gRPC status its text names, else by its code."""
    info: dict[str, Any] = {"endpoint": endpoint, "params": params, "status": status, "body": body}
    by_text = _error_for_grpc(grpc_status(body), info, retry_after)
    if by_text is not None:
        return by_text
    if status == 472:
        return NoData(f"no data for {_describe(endpoint, params)}", **info)
    if status == 429:
        return Throttled("the terminal is throttling requests (429 OS_LIMIT)", retry_after=retry_after, **info)
    if status == 503 and retry_after is not None:
        return Throttled("the server is at capacity (503 with Retry-After)", retry_after=retry_after, **info)
    if status in (471, 403):
        name = "471 PERMISSION" if status == 471 else "403 Forbidden"
        return PermissionDenied(
            f"the ThetaData subscription does not include {endpoint} ({name}): "
            "check the account's tier for this data",
            **info,
        )
    if status == 478:
        return InvalidSession(
            "another ThetaData Terminal is logged in with the same account (478 INVALID_SESSION_ID): "
            "stop the other terminal so that only one runs, then run spxdl again",
            **info,
        )
    if status == 570:
        return RequestTooLarge(
            "the terminal refused the request as too large (570 LARGE_REQUEST): "
            "use a coarser interval (for example 5m instead of 1m) or a shorter time window",
            **info,
        )
    if status == 477:
        return PageExpired("a page of a paginated answer is gone (477 NO_PAGE_FOUND)", **info)
    if status in (474, 571) or status >= 500:
        return TerminalUnavailable(_unavailable_reason(status), **info)
    return BadRequest(_bad_request_reason(status, body, params or {}), **info)


def grpc_status(body: str) -> str | None:
    """The gRPC status an error text names (``NotFound`` in ``gRPC status NotFound: ...``), if any."""
    match = GRPC_STATUS.search(body)
    return match.group(1) if match else None


def _error_for_grpc(code: str | None, info: dict[str, Any], retry_after: float | None) -> TerminalError | None:
    """What the upstream gRPC status named in a server's text means; None for the ones its code decides."""
    endpoint, params = info["endpoint"], info["params"]
    if code == "NotFound":
        return NoData(f"no data for {_describe(endpoint, params)} (gRPC status NotFound)", **info)
    if code == "PermissionDenied":
        return PermissionDenied(
            f"the ThetaData subscription does not include {endpoint} (gRPC status PermissionDenied): "
            "check the account's tier for this data",
            **info,
        )
    if code == "Unauthenticated":
        return PermissionDenied(
            "ThetaData did not accept the server's session (gRPC status Unauthenticated): check the "
            "credentials thetadatadx-server logs in with, then restart it",
            **info,
        )
    if code == "ResourceExhausted":
        return Throttled("the server's upstream is at capacity (gRPC status ResourceExhausted)",
                         retry_after=retry_after, **info)
    if code == "InvalidArgument":
        reason = "the server's upstream rejected the request's parameters (gRPC status InvalidArgument)"
        named = _named_params(info["body"], params or {})
        return BadRequest(f"{reason}; parameter {', '.join(named)}" if named else reason, **info)
    return None


def empty_answer(endpoint: str, params: Mapping[str, Any] | None = None) -> NoData:
    """A 200 without a byte of body to a history request: no data (thetadatadx-server's answer of zero rows)."""
    return NoData(f"no data for {_describe(endpoint, params)} (200 with an empty body)", endpoint=endpoint,
                  params=params, status=200)


def error_for_error_type(
    error_type: str, *, endpoint: str, params: Mapping[str, Any] | None = None, body: str = ""
) -> TerminalError:
    """The exception for an old terminal's ``header.error_type``: that of its status (470 if unknown)."""
    status = ERROR_TYPE_STATUS.get(error_type.upper(), 470)
    return error_for_status(status, endpoint=endpoint, params=params, body=body)


def _unavailable_reason(status: int) -> str:
    reasons = {
        474: "the terminal lost its connection to ThetaData's servers (474 DISCONNECTED)",
        571: "the terminal is starting (571 SERVER_STARTING)",
        572: "the terminal hit an internal error (572 UNCAUGHT_ERROR)",
    }
    return reasons.get(status, f"the terminal answered with a server error ({status})")


def _bad_request_reason(status: int, body: str, params: Mapping[str, Any]) -> str:
    reasons = {
        400: "the server rejected the request's parameters (400 Bad Request)",
        404: "the terminal does not know this request (404 NO_IMPL: wrong path or an outdated terminal)",
        410: "the terminal rejected parameters of another API version (410)",
        470: "the terminal rejected the request (470 GENERAL)",
        473: "the terminal rejected the request's parameters (473 INVALID_PARAMS)",
        475: "the terminal could not parse the request (475 TERMINAL_PARSE)",
        476: "the terminal saw two spellings of its host, such as 127.0.0.1 and localhost (476 WRONG_IP): "
        "use one spelling in every request",
    }
    reason = reasons.get(status, f"the terminal rejected the request ({status})")
    named = _named_params(body, params)
    return f"{reason}; parameter {', '.join(named)}" if named else reason


def _named_params(text: str, params: Mapping[str, Any]) -> list[str]:
    """Parameters the terminal's text names: renames first (``exp -> expiration``), else a missing one
    (``missing required parameter: 'start_date'``) and ours that it mentions."""
    renames = re.findall(r"^\s*(\w+)\s*->\s*(\w+)", text, flags=re.MULTILINE)
    if renames:
        return [f"{old} (this API calls it {new})" for old, new in renames]
    quoted = re.findall(r"parameter:?\s+'(\w+)'", text)
    mentioned = [name for name in params if re.search(rf"\b{re.escape(name)}\b", text)]
    return list(dict.fromkeys(quoted + mentioned))


def _describe(endpoint: str, params: Mapping[str, Any] | None) -> str:
    query = " ".join(f"{key}={value}" for key, value in (params or {}).items())
    return f"{endpoint} {query}".strip()


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def unavailable_from(exc: requests.RequestException, endpoint: str, params: Mapping[str, Any]) -> TerminalUnavailable:
    """TerminalUnavailable for a request that got no answer (refused, timed out, reset)."""
    if isinstance(exc, requests.ConnectTimeout):
        reason = "connecting to the terminal timed out"
    elif isinstance(exc, requests.Timeout):
        reason = "the terminal did not answer within the read timeout"
    elif isinstance(exc, requests.ConnectionError):
        reason = "the terminal refused or dropped the connection (is it running?)"
    else:
        reason = "the request to the terminal failed"
    log.debug("%s: %r", endpoint, exc)  # urllib3's full story, for --verbose
    return TerminalUnavailable(reason, endpoint=endpoint, params=params)


def raise_for_status_word(word: str, endpoint: str) -> None:
    """Return for CONNECTED; PermissionDenied for UNVERIFIED; TerminalUnavailable for any other word."""
    if word == "CONNECTED":
        return
    if word == "UNVERIFIED":
        raise PermissionDenied(
            "the terminal is connected but ThetaData rejected its credentials (status UNVERIFIED): "
            "check the account's login and subscription",
            endpoint=endpoint,
            status=200,
            body=word,
        )
    raise TerminalUnavailable(
        f"the terminal is not connected to ThetaData (status {word or 'empty'})",
        endpoint=endpoint,
        status=200,
        body=word,
    )
