"""The built-in simulated ThetaData Terminal: a synthetic SPX market over loopback HTTP (v2 and v3)."""

from spxdl.simulator.check import check
from spxdl.simulator.counters import counter_lines
from spxdl.simulator.faults import Faults
from spxdl.simulator.model import PROFILES, SessionRules
from spxdl.simulator.quirks import Quirks
from spxdl.simulator.server import SIMULATOR_HEADER, Simulator

__all__ = ["Simulator", "Faults", "Quirks", "SessionRules", "PROFILES", "SIMULATOR_HEADER", "check", "counter_lines"]
