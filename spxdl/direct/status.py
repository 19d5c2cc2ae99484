"""What the SDK's answers mean: its exceptions (and an answer without a row) as spxdl's errors.

The direct source's counterpart of ``terminal/status.py``, and the only place that decides what an
SDK failure means. The SDK's exceptions are matched by class name (they live in its compiled
extension, which this module never imports): ``NotFoundError`` is no data, ``SubscriptionError``
and refused credentials a permission answer that stops the run, ``RateLimitError`` a throttle
(waited out by the source, outside the retry budget), unavailability, network errors and deadlines ``TerminalUnavailable``
(fetched again by the engine), a stream that breaks mid-way ``BodyTruncated``.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from spxdl.errors import (
    BadRequest,
    BodyTruncated,
    ConfigError,
    NoData,
    PermissionDenied,
    SchemaMismatch,
    SpxdlError,
    TerminalUnavailable,
    Throttled,
)

SDK_MODULE = "thetadatadx"
GRPC_STATUS = re.compile(r"\bgRPC status (\w+)")
SOURCE = "the direct source (thetadatadx SDK)"
SAID_BY = "the SDK"


def is_sdk_error(exc: BaseException) -> bool:
    """Whether ``exc`` is one of the SDK's own exceptions."""
    return any(kind.__module__.split(".")[0] == SDK_MODULE for kind in type(exc).__mro__[:-1])


def _names(exc: BaseException) -> set[str]:
    return {kind.__name__ for kind in type(exc).__mro__}


def _describe(call: str, params: Mapping[str, Any] | None) -> str:
    return " ".join([call, *(f"{key}={value}" for key, value in (params or {}).items())])


def error_for(exc: BaseException, *, call: str, params: Mapping[str, Any] | None = None) -> SpxdlError:
    """The spxdl error for one of the SDK's exceptions raised by ``call`` with ``params``."""
    names, text = _names(exc), str(exc)
    info: dict[str, Any] = {"endpoint": call, "params": params, "body": text, "said_by": SAID_BY}
    if names & {"NotFoundError", "NoDataFoundError"}:
        return NoData(f"no data for {_describe(call, params)}", **info)
    if "SubscriptionError" in names:
        return PermissionDenied(f"the ThetaData subscription does not include {call} ({SOURCE}): check the "
                                "account's tier for this data", **info)
    if "InvalidCredentialsError" in names or ("AuthenticationError" in names and "NetworkError" not in text):
        return PermissionDenied(f"ThetaData refused the credentials ({SOURCE}): check THETADATA_API_KEY, the "
                                ".env or creds.txt spxdl found (spxdl health names which)", **info)
    if "RateLimitError" in names:
        return Throttled(f"ThetaData is throttling requests ({SOURCE})",
                         retry_after=getattr(exc, "retry_after", None), **info)
    if "StreamError" in names:
        return BodyTruncated(f"the answer's stream broke part-way ({SOURCE})", **info)
    if "InvalidParameterError" in names or _grpc_status(text) == "InvalidArgument":
        return BadRequest(f"ThetaData rejected the request's parameters ({SOURCE})", **info)
    if "ConfigError" in names:
        return ConfigError(f"the thetadatadx SDK refused its configuration: {text}", key="source")
    if names & {"SchemaMismatchError", "ParseError"}:
        return SchemaMismatch(f"the SDK could not read ThetaData's answer to {call}: {text}")
    return TerminalUnavailable(_unavailable_reason(names, text), **info)


def _grpc_status(text: str) -> str | None:
    match = GRPC_STATUS.search(text)
    return match.group(1) if match else None


def _unavailable_reason(names: set[str], text: str) -> str:
    if names & {"DeadlineExceededError", "TimeoutError"}:
        return f"ThetaData did not answer within the request deadline ({SOURCE})"
    if "invalid peer certificate" in text:
        return (f"the TLS handshake with the market-data server failed ({SOURCE}): its certificate is not one "
                "the SDK trusts")
    if "NetworkError" in names or "NetworkError" in text:
        return f"ThetaData's servers could not be reached ({SOURCE}): check the network"
    return f"ThetaData's servers are unavailable, after the SDK's own retries ({SOURCE})"


def no_rows(call: str, params: Mapping[str, Any] | None = None) -> NoData:
    """An answer that ended without a row (the SDK's empty table): no data."""
    return NoData(f"no data for {_describe(call, params)} (an answer without rows)", endpoint=call, params=params,
                  said_by=SAID_BY)
