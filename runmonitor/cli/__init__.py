"""The ``runmonitor`` command line: one module per command group, no Qt outside ``gui``."""
