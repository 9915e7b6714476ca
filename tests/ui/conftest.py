"""Shared fixtures for the widget tests (pytest-qt, offscreen).

``qloop`` runs asyncio on the Qt event loop for *synchronous* tests: a coroutine started with
``asyncio.ensure_future`` (as the widgets do from clicked handlers) makes progress while the
test waits with ``qtbot.waitUntil``. Never use it in ``async def`` tests (a blocking
``qtbot.wait*`` inside a running coroutine hangs).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("QT_API", "pyside6")

import qasync
from PySide6.QtGui import QAccessible, QColor
from PySide6.QtWidgets import QApplication, QWidget


@pytest.fixture
def qloop(qapp: QApplication) -> Iterator[asyncio.AbstractEventLoop]:
    """A qasync loop on the already running QApplication, as the current and running loop."""
    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        leftovers = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in leftovers:
            task.cancel()
        if leftovers:
            # Let the cancellations run so no task is destroyed while pending.
            deadline = 50
            while deadline and not all(task.done() for task in leftovers):
                qapp.processEvents()
                deadline -= 1
        # The threads behind asyncio.to_thread: qasync keeps its executor in a name-mangled
        # attribute; joining it avoids "QThread: Destroyed while thread is still running".
        executor = getattr(loop, "_QEventLoop__default_executor", None)
        if executor is not None:
            executor.shutdown(wait=True)
        try:
            qapp.aboutToQuit.disconnect(loop._after_run_forever)
        except (RuntimeError, TypeError):
            pass
        asyncio.events._set_running_loop(None)
        asyncio.set_event_loop(None)


def run(qtbot: Any, coro: Coroutine[Any, Any, Any], timeout: int = 15000) -> Any:
    """Run ``coro`` on the qasync loop while qtbot waits; its result."""
    task = asyncio.ensure_future(coro)
    qtbot.waitUntil(task.done, timeout=timeout)
    return task.result()


@pytest.fixture
def window(qtbot: Any, qloop: asyncio.AbstractEventLoop, tmp_path: Path) -> Iterator[Any]:
    """The main window on a demo workspace (no demo runs) against its own simulator."""
    from runmonitor.app.context import AppContext
    from runmonitor.simulator import Simulator
    from runmonitor.storage.paths import app_paths
    from runmonitor.ui.main_window import MainWindow

    sim = Simulator(seed=99, time_scale=20.0).start()
    paths = app_paths({"RUNMONITOR_HOME": str(tmp_path / "home")})
    context = run(qtbot, AppContext.open(demo=True, paths=paths, simulator=sim, demo_runs=False))
    main = MainWindow(context)
    qtbot.addWidget(main)
    run(qtbot, main.load())
    main.show()
    qtbot.waitExposed(main)
    try:
        yield main
    finally:
        run(qtbot, context.close())
        sim.stop()


def accessible_name(widget: QWidget) -> str:
    """The name assistive technology reads for ``widget``."""
    interface = QAccessible.queryAccessibleInterface(widget)
    assert interface is not None, f"{widget!r} has no accessible interface"
    return interface.text(QAccessible.Text.Name)


def contrast(a: QColor, b: QColor) -> float:
    """WCAG contrast ratio between two colours."""

    def luminance(colour: QColor) -> float:
        def channel(value: float) -> float:
            return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

        return (
            0.2126 * channel(colour.redF())
            + 0.7152 * channel(colour.greenF())
            + 0.0722 * channel(colour.blueF())
        )

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)
