"""Black-Scholes-Merton prices and greeks for a call and a put sharing one strike and minute.

Units follow the terminal's samples (docs/wire.md 7.1): theta per calendar day; vega, rho and
epsilon per 1.00 of vol / rate / dividend yield; second-order greeks per year (a guess).
"""

from __future__ import annotations

import math
from typing import NamedTuple

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class Greeks(NamedTuple):
    """Price and greeks of one option."""

    price: float
    delta: float
    theta: float
    vega: float
    rho: float
    epsilon: float
    gamma: float
    vanna: float
    charm: float
    vomma: float
    veta: float


def norm_cdf(x: float) -> float:
    """Standard normal cumulative distribution."""
    return 0.5 * (1.0 + math.erf(x / _SQRT2))


def call_put(s: float, k: float, t: float, r: float, q: float, sigma: float) -> tuple[Greeks, Greeks]:
    """Call and put of strike ``k`` at spot ``s``, ``t`` years to expiry, volatility ``sigma``."""
    sqrt_t = math.sqrt(t)
    sig_t = sigma * sqrt_t
    d1 = (math.log(s / k) + (r - q + 0.5 * sigma * sigma) * t) / sig_t
    d2 = d1 - sig_t
    disc_q = math.exp(-q * t)
    disc_r = math.exp(-r * t)
    n_d1, n_d2 = norm_cdf(d1), norm_cdf(d2)
    pdf = _INV_SQRT_2PI * math.exp(-0.5 * d1 * d1)
    sq, kr = s * disc_q, k * disc_r

    gamma = disc_q * pdf / (s * sig_t)
    vega = sq * pdf * sqrt_t
    vanna = -disc_q * pdf * d2 / sigma
    vomma = vega * d1 * d2 / sigma
    veta = -sq * pdf * sqrt_t * (q + (r - q) * d1 / sig_t - (1.0 + d1 * d2) / (2.0 * t))
    charm_common = disc_q * pdf * (2.0 * (r - q) * t - d2 * sig_t) / (2.0 * t * sig_t)
    decay = -sq * pdf * sigma / (2.0 * sqrt_t)

    call = Greeks(
        price=sq * n_d1 - kr * n_d2,
        delta=disc_q * n_d1,
        theta=(decay - r * kr * n_d2 + q * sq * n_d1) / 365.0,
        vega=vega, rho=kr * t * n_d2, epsilon=-sq * t * n_d1,
        gamma=gamma, vanna=vanna, charm=q * disc_q * n_d1 - charm_common, vomma=vomma, veta=veta,
    )
    put = Greeks(
        price=kr * (1.0 - n_d2) - sq * (1.0 - n_d1),
        delta=-disc_q * (1.0 - n_d1),
        theta=(decay + r * kr * (1.0 - n_d2) - q * sq * (1.0 - n_d1)) / 365.0,
        vega=vega, rho=-kr * t * (1.0 - n_d2), epsilon=sq * t * (1.0 - n_d1),
        gamma=gamma, vanna=vanna, charm=-q * disc_q * (1.0 - n_d1) - charm_common, vomma=vomma,
        veta=veta,
    )
    return call, put


def higher_order(s: float, k: float, t: float, r: float, q: float, sigma: float, right: str) -> dict[str, float]:
    """The greeks that only the end-of-day greeks carry: third order, d1, d2 and the dual greeks.

    Per year and per 1.00, like the second-order greeks (a guess: docs/simulator.md).
    """
    sqrt_t = math.sqrt(t)
    sig_t = sigma * sqrt_t
    d1 = (math.log(s / k) + (r - q + 0.5 * sigma * sigma) * t) / sig_t
    d2 = d1 - sig_t
    disc_q, disc_r = math.exp(-q * t), math.exp(-r * t)
    pdf1 = _INV_SQRT_2PI * math.exp(-0.5 * d1 * d1)
    pdf2 = _INV_SQRT_2PI * math.exp(-0.5 * d2 * d2)
    gamma = disc_q * pdf1 / (s * sig_t)
    vega = s * disc_q * pdf1 * sqrt_t
    n_d2 = norm_cdf(d2)
    return {
        "vera": -k * t * disc_r * pdf2 * d1 / sigma,
        "speed": -gamma / s * (d1 / sig_t + 1.0),
        "zomma": gamma * (d1 * d2 - 1.0) / sigma,
        "color": -disc_q * pdf1 / (2.0 * s * t * sig_t)
        * (2.0 * q * t + 1.0 + (2.0 * (r - q) * t - d2 * sig_t) / sig_t * d1),
        "ultima": -vega / (sigma * sigma) * (d1 * d2 * (1.0 - d1 * d2) + d1 * d1 + d2 * d2),
        "d1": d1,
        "d2": d2,
        "dual_delta": -disc_r * n_d2 if right == "C" else disc_r * (1.0 - n_d2),
        "dual_gamma": disc_r * pdf2 / (k * sig_t),
    }
