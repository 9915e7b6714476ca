"""Drills that prove nothing is lost: the fault storm drives the whole app against the simulator.

Sits above ``app``; used by the tests and benchmarks, never by the window or the CLI."""
