"""What the terminal's answers mean: HTTP statuses, status words and failed connections.

The only place that decides what a status means; everything else asks ``error_for_status``.
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


def error_for_status(
    status: int,
    *,
    endpoint: str,
    params: Mapping[str, Any] | None = None,
    body: str = "",
    retry_after: float | None = None,
) -> TerminalError:
    """The exception for an HTTP status of the terminal (the only place statuses are decided)."""
    info: dict[str, Any] = {"endpoint": endpoint, "params": params, "status": status, "body": body}
    if status == 472:
        return NoData(f"no data for {_describe(endpoint, params)}", **info)
    if status == 429:
        return Throttled("the terminal is throttling requests (429 OS_LIMIT)", retry_after=retry_after, **info)
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
    """Names of our parameters that the terminal's text mentions, renames first (``exp -> expiration``)."""
    renames = re.findall(r"^\s*(\w+)\s*->\s*(\w+)", text, flags=re.MULTILINE)
    if renames:
        return [f"{old} (this API calls it {new})" for old, new in renames]
    return [name for name in params if re.search(rf"\b{re.escape(name)}\b", text)]


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
