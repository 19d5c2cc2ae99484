"""Profiles, session rules and the market model: lazily built chains in a byte-bounded cache."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date
from typing import Callable

from spxdl.errors import ConfigError
from spxdl.simulator import listing
from spxdl.trading_calendar import TradingCalendar
from spxdl.simulator.market import Chain, open_level

MB = 1 << 20


@dataclass(frozen=True)
class Profile:
    """How big the simulated market is."""

    name: str
    weekdays: tuple[int, ...]               # SPXW series served (SPX monthlies always)
    strikes: Callable[[float], list[int]]
    chain_cache_bytes: int
    body_cache_bytes: int
    max_rows: int                           # larger answers get 570 LARGE_REQUEST


PROFILES: dict[str, Profile] = {
    "tiny": Profile("tiny", (listing.FRI,), listing.tiny_strikes, 32 * MB, 32 * MB, 2_000_000),
    "realistic": Profile("realistic", (listing.MON, listing.TUE, listing.WED, listing.THU, listing.FRI),
                         listing.realistic_strikes, 256 * MB, 256 * MB, 20_000_000),
    # about 4x the realistic strikes: shows that a client's memory stays flat as chains grow
    "dense": Profile("dense", (listing.MON, listing.TUE, listing.WED, listing.THU, listing.FRI),
                     listing.dense_strikes, 512 * MB, 512 * MB, 20_000_000),
}


def get_profile(name: str) -> Profile:
    """The named profile; ConfigError naming the known ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(f"unknown simulator profile {name!r}; use one of {', '.join(PROFILES)}",
                          key="profile") from None


@dataclass(frozen=True)
class SessionRules:
    """What the simulator serves where the real terminal's behaviour is undocumented."""

    late_window: bool = True            # rows 16:00-16:15 when a request's window reaches them
    early_close_ms: int = 47_700_000    # 13:15 ET: SPX options on early-close days
    early_close_rows: str = "stop"      # "stop": no rows after the early close; "flat": last values


class MarketModel:
    """Expirations, strikes and chains of one (profile, seed); chains built on first use."""

    def __init__(self, profile: Profile, seed: int, session: SessionRules = SessionRules(),
                 calendar: TradingCalendar | None = None) -> None:
        self.profile = profile
        self.seed = seed
        self.session = session
        self.calendar = calendar or TradingCalendar()  # what the calendar endpoints answer
        self._chains: OrderedDict[tuple, tuple[Chain, int]] = OrderedDict()
        self._chain_bytes = 0
        self._lock = threading.Lock()
        self._building: dict[tuple, threading.Lock] = {}

    def expirations(self, root: str) -> tuple[listing.Expiration, ...]:
        """Every expiration of ``root`` this profile lists."""
        return listing.expirations(root, self.profile.weekdays)

    def expiration(self, root: str, exp: date) -> listing.Expiration | None:
        """The expiration of ``root`` dated ``exp``, or None."""
        return listing.find_expiration(root, exp, self.profile.weekdays)

    def strikes(self, e: listing.Expiration) -> list[int]:
        """Strikes (dollars) of an expiration, centred on the index a month before it ends."""
        return self.profile.strikes(open_level(self.seed, listing.strike_reference_day(e)))

    def chain(self, e: listing.Expiration, day: date) -> Chain:
        """The chain of ``e`` on ``day``, built once and kept while the cache has room."""
        key = (e.root, e.exp, day)
        with self._lock:
            if key in self._chains:
                self._chains.move_to_end(key)
                return self._chains[key][0]
            build_lock = self._building.setdefault(key, threading.Lock())
        with build_lock:  # one thread builds a chain; others asking for it wait for that one
            with self._lock:
                if key in self._chains:
                    return self._chains[key][0]
            chain = Chain(self.seed, e, day, self.strikes(e))
            with self._lock:
                self._store(key, chain)
                self._building.pop(key, None)
            return chain

    def cached(self) -> tuple[int, int]:
        """(chains held, their bytes)."""
        with self._lock:
            return len(self._chains), self._chain_bytes

    def _store(self, key: tuple, chain: Chain) -> None:
        size = chain.size_bytes()
        self._chains[key] = (chain, size)
        self._chain_bytes += size
        while self._chain_bytes > self.profile.chain_cache_bytes and len(self._chains) > 1:
            _, (_, old_size) = self._chains.popitem(last=False)
            self._chain_bytes -= old_size
