"""The log file: ``<log dir>/runmonitor.log``, rotated, with secrets scrubbed from every line.

The window logs here (INFO and up; DEBUG with ``RUNMONITOR_DEBUG=1``); warnings also go to
stderr. Every handler carries the :class:`~runmonitor.domain.redact.RedactingFilter`, so a
secret that reaches a message or an exception text is masked before it is written.
"""

from __future__ import annotations

import logging
import os
from logging.handlers import RotatingFileHandler
from pathlib import Path

from runmonitor.domain.redact import RedactingFilter
from runmonitor.storage.paths import AppPaths, ensure_private_dir

LOG_NAME = "runmonitor.log"
MAX_BYTES = 1_000_000
BACKUPS = 3
FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def log_file(paths: AppPaths) -> Path:
    return paths.log_dir / LOG_NAME


def setup_logging(paths: AppPaths, *, debug: bool | None = None) -> Path | None:
    """Log to the rotating file (and warnings to stderr); returns the file, or None when the
    folder cannot be written (logging then goes to stderr only)."""
    if debug is None:
        debug = os.environ.get("RUNMONITOR_DEBUG", "") not in ("", "0")
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for handler in list(root.handlers):
        if getattr(handler, "_runmonitor", False):
            root.removeHandler(handler)
            handler.close()
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING)
    console.setFormatter(logging.Formatter("runmonitor: %(levelname)s %(name)s: %(message)s"))
    handlers: list[logging.Handler] = [console]
    target: Path | None = None
    try:
        ensure_private_dir(paths.log_dir)
        target = log_file(paths)
        file_handler = RotatingFileHandler(target, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
        file_handler.setFormatter(logging.Formatter(FORMAT))
        handlers.append(file_handler)
    except OSError as exc:
        console.handle(
            logging.LogRecord("runmonitor", logging.WARNING, __file__, 0, f"no log file: {exc}", None, None)
        )
        target = None
    for handler in handlers:
        handler.addFilter(RedactingFilter())
        handler._runmonitor = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    # desktop-notifier logs a traceback for every failed send; the channel says it in one line.
    logging.getLogger("desktop_notifier").setLevel(logging.ERROR)
    return target
