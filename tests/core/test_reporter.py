"""The last-resort reporter: uncaught errors are logged once, with their traceback, and told."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from runmonitor.app.reporter import Report, Reporter
from runmonitor.domain.errors import AuthFailed
from runmonitor.domain.redact import RedactingFilter, secret_registry


@pytest.fixture
def reporter() -> Iterator[tuple[Reporter, list[Report]]]:
    reporter, told = Reporter(), []
    reporter.add_listener(told.append)
    yield reporter, told
    reporter.uninstall()


def _raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def test_a_bug_is_logged_with_its_traceback_and_told_as_a_bug(
    reporter: tuple[Reporter, list[Report]], caplog: pytest.LogCaptureFixture
) -> None:
    rep, told = reporter
    with caplog.at_level(logging.ERROR, logger="runmonitor.app.reporter"):
        rep.report(_raised(ZeroDivisionError("division by zero")), "the main thread")
    assert [(r.where, r.bug) for r in told] == [("the main thread", True)]
    assert "ZeroDivisionError: division by zero" in told[0].text and "log file" in told[0].text
    (record,) = caplog.records
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError


def test_an_error_raised_on_purpose_is_told_as_its_message(reporter: tuple[Reporter, list[Report]]) -> None:
    rep, told = reporter
    rep.report(AuthFailed("The API key was refused."), "task refresh")
    assert told == [Report("task refresh", "The API key was refused.", False)]


def test_sys_excepthook_and_threads_reach_the_reporter_until_uninstalled(
    reporter: tuple[Reporter, list[Report]],
) -> None:
    rep, told = reporter
    before = (sys.excepthook, threading.excepthook)
    rep.install()
    exc = _raised(KeyError("gone"))
    sys.excepthook(type(exc), exc, exc.__traceback__)
    worker = threading.Thread(target=lambda: 1 / 0, name="history-writer")
    worker.start()
    worker.join()
    assert [(r.where, r.bug) for r in told] == [("the main thread", True), ("thread history-writer", True)]
    rep.uninstall()
    assert (sys.excepthook, threading.excepthook) == before


async def test_an_unhandled_error_in_an_event_loop_callback_is_reported(
    reporter: tuple[Reporter, list[Report]],
) -> None:
    rep, told = reporter
    loop = asyncio.get_running_loop()
    rep.watch_loop(loop)
    try:

        def broken() -> None:
            raise RuntimeError("callback broke")

        loop.call_soon(broken)
        for _ in range(3):
            await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert [(r.where, r.bug) for r in told] == [("an event-loop callback", True)]
    assert "callback broke" in told[0].text


def test_a_failing_listener_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    first: list[Report] = []

    def broken(report: Report) -> None:
        raise OSError("the banner is gone")

    rep = Reporter()
    rep.add_listener(broken)
    stop = rep.add_listener(first.append)
    rep.report(_raised(ValueError("x")), "here")
    stop()
    rep.report(_raised(ValueError("y")), "here")
    assert len(first) == 1
    assert any("listener" in r.getMessage() and r.exc_info for r in caplog.records)


def test_no_secret_reaches_the_log_file_or_the_banner(
    reporter: tuple[Reporter, list[Report]], tmp_path: Path
) -> None:
    rep, told = reporter
    secret = "audit-secret-7Qx2-kept-out-of-files"
    secret_registry.register([secret])
    log_path = tmp_path / "runmonitor.log"
    handler = logging.FileHandler(log_path, encoding="utf-8")
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("runmonitor.app.reporter")
    logger.addHandler(handler)
    try:
        rep.report(_raised(ValueError(f"bad header Bearer {secret}")), "the main thread")
    finally:
        logger.removeHandler(handler)
        handler.close()
    written = log_path.read_text(encoding="utf-8")
    assert "ValueError" in written and "Traceback" in written
    assert secret not in written
    assert secret not in told[0].text and "***" in told[0].text
