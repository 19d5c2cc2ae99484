"""How a request is spelled to the SDK: which market-data method, and its parameters.

The direct source's counterpart of ``terminal/wire.py``. A history request is the dataset's SDK
method (``Dataset.direct_call``) through its fluent builder, with the parameters the terminal's v3
request carries: the day (``date``, or ``start_date`` and ``end_date`` where the method has no
``date``), the interval and time window where the dataset has them, the greeks' rate (named in
lower case, its value in percent) and dividend, and one contract when a strike and right are given.
``*`` asks every expiration of the day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from spxdl.datasets import Dataset

ALL_EXPIRATIONS = "*"
RIGHTS = {"C": "call", "P": "put"}
# The parameters each SDK builder takes as arguments (the others are set one by one).
BUILDER_ARGUMENTS = {
    "option_history_eod": ("symbol", "expiration", "start_date", "end_date"),
    "option_history_greeks_eod": ("symbol", "expiration", "start_date", "end_date"),
    "index_history_price": ("symbol",),
}
CONTRACT_ARGUMENTS = ("symbol", "expiration")


@dataclass(frozen=True)
class HistoryCall:
    """One history request as the SDK's method name and parameters (for errors and log lines)."""

    name: str
    params: dict[str, str]

    def builder(self, market_data: Any) -> Any:
        """The SDK builder of this request, every parameter set."""
        params = dict(self.params)
        arguments = [params.pop(name) for name in BUILDER_ARGUMENTS.get(self.name, CONTRACT_ARGUMENTS)]
        builder = getattr(market_data, f"{self.name}_builder")(*arguments)
        for name, value in params.items():
            builder = getattr(builder, name)(_typed(name, value))
        return builder


def _typed(name: str, value: str) -> Any:
    return float(value) if name in ("rate_value", "annual_dividend") else value


def sdk_date(day: date) -> str:
    return day.strftime("%Y%m%d")


def sdk_time(ms: int) -> str:
    """ms of day as ``HH:MM:SS`` (``.SSS`` when not whole seconds)."""
    seconds, millis = divmod(ms, 1000)
    text = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return f"{text}.{millis:03d}" if millis else text


def history_call(
    dataset: Dataset,
    root: str,
    expiration: date | None,
    trade_date: date,
    *,
    interval: str,
    start_ms: int,
    end_ms: int,
    rate: str | None = None,
    rate_value: float | None = None,
    annual_div: float | None = None,
    strike: float | None = None,
    right: str | None = None,
) -> HistoryCall:
    """The SDK request of one history answer (``expiration`` None: every expiration, or an index)."""
    if dataset.direct_call is None:
        raise ValueError(f"dataset {dataset.name} has no SDK method")
    params: dict[str, str] = {"symbol": root}
    if not dataset.is_index:
        params["expiration"] = ALL_EXPIRATIONS if expiration is None else sdk_date(expiration)
    day = sdk_date(trade_date)
    params.update({"start_date": day, "end_date": day} if dataset.v3_date_range else {"date": day})
    if dataset.uses_interval:
        params.update(interval=interval, start_time=sdk_time(start_ms), end_time=sdk_time(end_ms))
    if dataset.greeks_params:
        if rate is not None:
            params["rate_type"] = rate.lower()
        if rate_value is not None:
            params["rate_value"] = plain_number(rate_value * 100)  # percent, as the terminal's v3
        if annual_div is not None:
            params["annual_dividend"] = plain_number(annual_div)
    if strike is not None and not dataset.is_index:
        params["strike"] = f"{strike:.3f}"
        if right is not None:
            params["right"] = RIGHTS[right]
    return HistoryCall(dataset.direct_call, params)


def plain_number(value: float) -> str:
    """A decimal without exponent and without trailing zeros (5.33, not 5.329999999999999)."""
    text = f"{value:.10f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"
