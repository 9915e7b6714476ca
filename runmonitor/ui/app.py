"""Start the window on a qasync event loop, and shut it down cleanly."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

os.environ.setdefault("QT_API", "pyside6")

from PySide6.QtCore import QMessageLogContext, QSettings, QtMsgType, qInstallMessageHandler
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import QApplication, QStyleFactory

from runmonitor import APP_ID, APP_NAME, __version__
from runmonitor.app.context import AppContext
from runmonitor.app.reporter import REPORTER, Report, Reporter
from runmonitor.domain.redact import RedactingFilter
from runmonitor.storage.logs import setup_logging

if TYPE_CHECKING:
    from runmonitor.ui.main_window import MainWindow

log = logging.getLogger(__name__)


def make_application() -> QApplication:
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    app = QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setOrganizationName(APP_NAME)
    app.setDesktopFileName(APP_ID)
    app.setStyle(QStyleFactory.create("Fusion"))
    return app


def run_gui(
    *, demo: bool = False, screenshot: Path | None = None, after: float = 8.0, tab: str | None = None
) -> int:
    """Open the window (``demo``: on the embedded simulator). Returns the exit code."""
    import qasync

    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())
    app = make_application()
    with asyncio.Runner(loop_factory=qasync.QEventLoop) as runner:
        return runner.run(main(app, demo=demo, screenshot=screenshot, after=after, tab=tab))


_QT_LEVELS = {
    QtMsgType.QtDebugMsg: "debug",
    QtMsgType.QtInfoMsg: "info",
    QtMsgType.QtWarningMsg: "warning",
    QtMsgType.QtCriticalMsg: "critical",
}


def install_reporter(window: MainWindow, reporter: Reporter = REPORTER) -> Callable[[], None]:
    """Route every uncaught error (Python's hooks, the event loop, Qt's own messages) to the
    log, and show each as the "uncaught" banner of ``window``. Returns the undo."""

    def on_qt_message(kind: QtMsgType, context: QMessageLogContext, message: str) -> None:
        reporter.qt_message(_QT_LEVELS.get(kind, "critical"), message, f"Qt {context.category or ''}".strip())

    def show(report: Report) -> None:
        window.banners.show_message("uncaught", "error", report.text)

    reporter.install()
    reporter.watch_loop(asyncio.get_running_loop())
    previous_handler = qInstallMessageHandler(on_qt_message)
    stop_listening = reporter.add_listener(show)

    def undo() -> None:
        stop_listening()
        qInstallMessageHandler(previous_handler)
        asyncio.get_running_loop().set_exception_handler(None)
        reporter.uninstall()

    return undo


async def main(
    app: QApplication, *, demo: bool, screenshot: Path | None, after: float, tab: str | None = None
) -> int:
    from runmonitor.ui.main_window import MainWindow

    context = await AppContext.open(demo=demo)
    log_path = setup_logging(context.workspace.paths)
    log.info("RunMonitor %s started%s; log file %s", __version__, " (demo)" if demo else "", log_path)
    window = MainWindow(context)
    uninstall_reporter = install_reporter(window)
    ui_state = QSettings(str(context.workspace.paths.state_dir / "ui.ini"), QSettings.Format.IniFormat)
    window.restore_state(ui_state)
    shutdown = asyncio.Event()
    window.quit_requested.connect(shutdown.set)
    app.aboutToQuit.connect(shutdown.set)
    await window.load()
    await window.controller.start(desktop=screenshot is None)
    if window.tray is not None:
        window.tray.show()
    if tab:
        window.open_tab(tab)
    window.show()
    code = 0
    try:
        if screenshot is not None:
            code = await _screenshot(window, screenshot, after)
            shutdown.set()
        await shutdown.wait()
    finally:
        window.save_state(ui_state)
        ui_state.sync()
        window.stop()
        await window.controller.aclose()
        await context.close()
        uninstall_reporter()
        window.hide()
        window.deleteLater()
    return code


async def _screenshot(window: MainWindow, path: Path, after: float) -> int:
    """Wait for runs to progress, then save what the window shows (it must have painted)."""
    await asyncio.sleep(after)
    window.select_first_run()
    await asyncio.sleep(0.5)  # the details pane loads the timeline
    for _ in range(50):
        image = window.grab().toImage()
        if _has_content(image):
            break
        await asyncio.sleep(0.1)
    screen = QGuiApplication.primaryScreen()
    if screen is not None and QGuiApplication.platformName() not in ("offscreen", "minimal"):
        grabbed = screen.grabWindow(window.winId()).toImage()
        if _has_content(grabbed):
            image = grabbed
    path.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(path)):
        log.error("could not save the screenshot to %s", path)
        return 1
    print(f"screenshot saved to {path}")  # noqa: T201 - the CLI's answer
    return 0


def _has_content(image: QImage) -> bool:
    """More than one colour in a sample of pixels: the window has painted."""
    if image.isNull() or image.width() < 10:
        return False
    colours = set()
    for x in range(0, image.width(), max(1, image.width() // 40)):
        for y in range(0, image.height(), max(1, image.height() // 40)):
            colours.add(image.pixel(x, y))
            if len(colours) > 8:
                return True
    return False
