"""The last resort: where an error nobody caught ends up.

An exception that escapes everything (the main thread, another thread, an asyncio task or
callback) would otherwise print a traceback to a console nobody looks at, or vanish. The
:class:`Reporter` catches it once, logs it with its traceback (the log file's handlers mask
secrets, and so does the one plain line it then tells its listeners): the window shows that
line in a banner, the command line prints it. Errors RunMonitor raises on purpose (:class:`RunMonitorError`)
are told as their message; anything else is a bug, told as such.

Qt-free: the window adds Qt's own message handler through :meth:`Reporter.qt_message`.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from runmonitor.domain.errors import RunMonitorError
from runmonitor.domain.redact import secret_registry

log = logging.getLogger(__name__)

#: What a Qt message's level is called (the window maps QtMsgType onto these).
QT_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "critical": logging.ERROR,
}


@dataclass(frozen=True)
class Report:
    """One uncaught error, as a person is told about it."""

    where: str
    text: str
    #: False for a RunMonitorError (an expected failure nobody handled), True for a bug.
    bug: bool


Listener = Callable[[Report], None]


class Reporter:
    """Logs every uncaught exception once and tells the listeners; see the module docstring."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._previous: tuple[Any, Any] | None = None
        self._reporting = threading.local()

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` for every report from now on; returns a function that stops that."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def report(self, exc: BaseException, where: str) -> Report:
        """Log ``exc`` with its traceback and tell every listener. Never raises."""
        bug = not isinstance(exc, RunMonitorError)
        text = str(exc) or type(exc).__name__
        if bug:
            text = f"Something went wrong ({type(exc).__name__}: {text}). Details are in the log file."
        report = Report(where, secret_registry.scrub(text), bug)
        log.error("uncaught error in %s", where, exc_info=(type(exc), exc, exc.__traceback__))
        if getattr(self._reporting, "active", False):  # a listener failed while reporting: log only
            return report
        self._reporting.active = True
        try:
            for listener in list(self._listeners):
                try:
                    listener(report)
                except Exception:
                    log.exception("the error reporter's listener %r failed", listener)
        finally:
            self._reporting.active = False
        return report

    # -- the hooks ---------------------------------------------------------------------------

    def install(self) -> None:
        """Become ``sys.excepthook`` and ``threading.excepthook`` (until :meth:`uninstall`)."""
        if self._previous is None:
            self._previous = (sys.excepthook, threading.excepthook)
        sys.excepthook = self._excepthook
        threading.excepthook = self._thread_excepthook

    def uninstall(self) -> None:
        if self._previous is not None:
            sys.excepthook, threading.excepthook = self._previous
            self._previous = None

    def watch_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Report what an asyncio task or callback on ``loop`` leaves unhandled."""
        loop.set_exception_handler(self._loop_exception)

    def qt_message(self, level: str, message: str, where: str = "Qt") -> None:
        """A message from Qt's own message handler: logged at its level, never shown."""
        log.log(QT_LEVELS.get(level, logging.ERROR), "%s: %s", where, message)

    def _excepthook(self, kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt) and self._previous is not None:
            self._previous[0](kind, exc, tb)
            return
        self.report(exc.with_traceback(tb), "the main thread")

    def _thread_excepthook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None or issubclass(args.exc_type, SystemExit):
            return
        name = args.thread.name if args.thread is not None else "a thread"
        self.report(args.exc_value, f"thread {name}")

    def _loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        message = str(context.get("message") or "")
        if not isinstance(exc, BaseException):
            log.error("event loop: %s", message or context)
            return
        task = context.get("task") or context.get("future")
        where = f"task {task.get_name()}" if isinstance(task, asyncio.Task) else "an event-loop callback"
        self.report(exc, where)


#: The reporter of this process (the window and the command line install it at start-up).
REPORTER = Reporter()
