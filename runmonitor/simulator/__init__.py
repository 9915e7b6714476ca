"""A faithful simulator of the five vendor APIs, as a real HTTP server on loopback.

Tests, benchmarks and the demo mode run against it. One module per service
(``simulator/<key>.py``, defining ``SIM``), found by :func:`~runmonitor.simulator.server.discover_sims`.
It imports nothing of the client's: its vendor strings are its own, from the vendors' docs.
"""

from runmonitor.simulator.engine import Fault, FaultKind, SimClock
from runmonitor.simulator.server import Simulator, running

__all__ = ["Fault", "FaultKind", "SimClock", "Simulator", "running"]
