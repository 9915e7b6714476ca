"""The ``runmonitor`` command line: the parser and the dispatch to one command, with the mapping of
errors to exit codes (see :mod:`runmonitor.cli.output`). Imports no Qt (only the window does).

Each command group lives in its own module and builds its own sub-parser: ``services``,
``profiles``, ``simulate`` (``demo``), ``run create`` (``run``), ``run status``
(``run_status``), ``runs``, ``watch`` and ``doctor``; without a command, ``window`` opens the
window. Those modules never import this one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Sequence

from runmonitor import __version__
from runmonitor.cli import demo, doctor, profiles, run, runs, services, watch, window
from runmonitor.cli.output import (
    EXIT_AUTH_OR_CONNECTION,
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_RUN_FAILED,
    Progress,
    UsageError,
    err,
    prefixed,
)
from runmonitor.domain.errors import (
    AuthFailed,
    ConnectionFailed,
    Forbidden,
    InvalidRequest,
    NotFound,
    ProfileGone,
    RunMonitorError,
    ServiceError,
    TimedOut,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runmonitor",
        description="Start and watch runs on Cognite, Marquez, InVision, Connhex and Code Stream.",
        epilog="Exit codes: 0 ok, 1 run failed or cancelled (doctor: something is broken), "
        "2 bad input, 3 auth or connection failure, 4 timed out, 130 interrupted. "
        "Every command has --help.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    window.add_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in (services, profiles, demo, run, runs, watch, doctor):
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        handler = getattr(args, "handler", window.open_window)
        if asyncio.iscoroutinefunction(handler):
            return int(asyncio.run(handler(args)))
        return int(handler(args))
    except Exception as exc:
        return _exit_code(exc)
    except KeyboardInterrupt:
        Progress.clear_current()
        return EXIT_INTERRUPTED


def _exit_code(exc: Exception) -> int:
    """Report an error that ended a command (one line, no traceback) and give its exit code."""
    if isinstance(exc, UsageError):
        err(str(exc))
        return EXIT_BAD_INPUT
    if isinstance(exc, (KeyError, ProfileGone)):  # an unknown profile name or id
        err(str(exc.args[0]) if exc.args else "not found")
        return EXIT_BAD_INPUT
    if isinstance(exc, (AuthFailed, Forbidden)):
        err(prefixed("sign-in needed", exc))
        return EXIT_AUTH_OR_CONNECTION
    if isinstance(exc, (ConnectionFailed, TimedOut)):
        err(prefixed("cannot reach the service", exc))
        return EXIT_AUTH_OR_CONNECTION
    if isinstance(exc, BrokenPipeError):  # the reader went away (``| head``): nothing more to say
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_RUN_FAILED
    if isinstance(exc, (InvalidRequest, NotFound)):  # the service refused what it was given
        err(f"the service refused the request: {exc}")
        return EXIT_BAD_INPUT
    if isinstance(exc, ServiceError):
        err(str(exc))
        return EXIT_RUN_FAILED
    if isinstance(exc, OSError):  # a file that cannot be read or written
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        err(f"cannot use{where}: {exc.strerror or exc}")
        return EXIT_BAD_INPUT
    return _other_error(exc)


def _other_error(exc: Exception) -> int:
    from runmonitor.domain.redact import secret_registry

    # Settings, keyring, history and every other error RunMonitor raises on purpose carry a
    # message meant for people (the one root error type).
    if isinstance(exc, RunMonitorError):
        err(str(exc))
        return EXIT_RUN_FAILED
    if os.environ.get("RUNMONITOR_DEBUG", "") not in ("", "0"):
        raise exc
    # A bug: one line, not a traceback (RUNMONITOR_DEBUG=1 shows it).
    err(
        f"internal error: {type(exc).__name__}: {secret_registry.scrub(str(exc))} "
        "(run again with RUNMONITOR_DEBUG=1 for the details)"
    )
    return EXIT_RUN_FAILED


if __name__ == "__main__":
    sys.exit(main())
