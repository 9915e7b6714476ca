"""What every command shares for talking to its caller: exit codes, output lines, the progress
line, argument types and the one error for bad input.

Exit codes (documented in README):
  0    success (the run succeeded, or the command did what it was asked)
  1    the run failed or was cancelled; ``doctor`` found something broken
  2    bad input (a field, a file, an option, an unknown or ambiguous name or id)
  3    authentication or connection failure
  4    timed out waiting (``--wait --timeout``, ``watch --until-idle --timeout``)
  130  interrupted (Ctrl+C) while waiting; ``watch`` stops with 0 instead

Everything the command line writes goes through :func:`say` (stdout, what scripts read),
:func:`note` (stderr, for people) and :func:`err` (stderr, an error), so that the progress
line never mixes with real output.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import time
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from runmonitor.domain.errors import RunMonitorError
from runmonitor.domain.text import format_duration

EXIT_OK, EXIT_RUN_FAILED, EXIT_BAD_INPUT, EXIT_AUTH_OR_CONNECTION, EXIT_TIMEOUT = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130
#: Secrets come from ``RUNMONITOR_SECRET_<FIELD>``, never from the command line.
SECRET_ENV_PREFIX = "RUNMONITOR_SECRET_"


class UsageError(RunMonitorError):
    """Bad input on the command line: printed without a traceback, exit code 2."""


# -- lines ------------------------------------------------------------------------------------------
def err(message: str) -> None:
    """An error for people on stderr, as ``runmonitor: message``."""
    Progress.clear_current()
    print(f"runmonitor: {message}", file=sys.stderr, flush=True)


def say(text: str = "") -> None:
    """A line on stdout (the output scripts read); a progress line is cleared first."""
    Progress.clear_current()
    print(text, flush=True)
    Progress.redraw_current()


def say_json(data: Any, *, indent: int | None = None) -> None:
    """``data`` as JSON on stdout: one line, or a document with ``indent``."""
    say(json.dumps(data, indent=indent))


def note(text: str) -> None:
    """A line for people on stderr (never part of the output scripts parse)."""
    Progress.clear_current()
    print(text, file=sys.stderr, flush=True)
    Progress.redraw_current()


def prefixed(prefix: str, exc: BaseException | str | None) -> str:
    """``prefix: message``, without saying the prefix twice when the message starts with it."""
    text = str(exc or "").strip()
    if not text:
        return prefix
    if text.lower().startswith(prefix.lower()):
        text = text[len(prefix) :].lstrip(" :")
    return f"{prefix}: {text}"


def format_validation_error(error: ValidationError, *, prefix: str = "") -> str:
    """One indented line per invalid field: ``  field.path: message``."""
    lines = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "(input)"
        lines.append(f"  {prefix}{location}: {item['msg']}")
    return "\n".join(lines)


# -- the progress line ------------------------------------------------------------------------------
class Progress:
    """One updating line on stderr while a command waits: the elapsed time and the current status.

    Only when stderr is a terminal; otherwise it writes nothing at all. Lines printed with
    :func:`say` and :func:`note` clear it first and draw it again after, so it never mixes
    with real output. Use as ``async with Progress("waiting") as progress: progress.set(...)``.
    """

    _current: Progress | None = None
    INTERVAL = 0.5

    def __init__(self, status: str = "", *, stream: Any = None, enabled: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.status = status
        self.started = time.monotonic()
        self._shown = False
        self._active = False
        self._task: asyncio.Task[None] | None = None

    def set(self, status: str) -> None:
        self.status = status
        self.draw()

    def draw(self) -> None:
        """Show the line (only while waiting: inside ``async with``)."""
        if not (self.enabled and self._active):
            return
        width = max(20, shutil.get_terminal_size((80, 24)).columns - 1)
        text = f"[{format_duration(time.monotonic() - self.started)}] {self.status}"
        if len(text) > width:
            text = text[: width - 1] + "…"
        self.stream.write(f"\r\x1b[K{text}")
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self.enabled and self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False

    @classmethod
    def clear_current(cls) -> None:
        if cls._current is not None:
            cls._current.clear()

    @classmethod
    def redraw_current(cls) -> None:
        if cls._current is not None:
            cls._current.draw()

    async def _tick(self) -> None:
        while True:
            self.draw()
            await asyncio.sleep(self.INTERVAL)

    async def __aenter__(self) -> Progress:
        self.started = time.monotonic()
        self._active = True
        Progress._current = self
        if self.enabled:
            self._task = asyncio.create_task(self._tick(), name="runmonitor-progress")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.clear()
        self._active = False
        if Progress._current is self:
            Progress._current = None


# -- argument types ---------------------------------------------------------------------------------
def positive_float(text: str) -> float:
    """An argparse type: a number of seconds greater than zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number of seconds greater than 0")
    return value


def positive_int(text: str) -> int:
    """An argparse type: a whole number of 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def parse_assignments(pairs: Sequence[str], *, option: str) -> dict[str, Any]:
    """``key=value`` pairs into a dict.

    Values stay text (the request model converts "5" or "true" where a field wants a
    number or a flag); a value starting with ``{`` or ``[`` is read as JSON. Dotted
    keys build nested objects (``input.branch=main``).
    """
    result: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"{option} {pair!r}: expected key=value")
        key, raw = pair.split("=", 1)
        key = key.strip()
        if not key:
            raise UsageError(f"{option} {pair!r}: the key is empty")
        value: Any = raw
        if raw.lstrip().startswith(("{", "[")):
            try:
                value = json.loads(raw)
            except ValueError as exc:
                raise UsageError(
                    f"{option} {key}: the value looks like JSON but is not valid: {exc}"
                ) from None
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise UsageError(f"{option} {pair!r}: {part} is both a value and an object")
            node = child
        node[parts[-1]] = value
    return result
