"""The ``runmonitor`` command line: ``main`` (parser and dispatch), one module per command group,
shared helpers in ``output``, ``opening``, ``follow`` and ``render``; no Qt outside ``window``."""
