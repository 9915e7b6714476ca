"""A faithful simulator of the five vendor APIs, as a real HTTP server on loopback.

Tests, benchmarks and the demo mode run against it. One module per service
(``simulator/<key>.py``, defining ``SIM``), discovered from the service registry.
"""

from runmonitor.simulator.engine import Fault, FaultKind, SimClock
from runmonitor.simulator.server import Simulator, running

__all__ = ["Fault", "FaultKind", "SimClock", "Simulator", "running"]
