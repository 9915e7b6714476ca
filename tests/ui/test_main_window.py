"""The main window, clicked through against the simulator: profile, form, create, follow, cancel."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLineEdit

from runmonitor.domain.status import RunStatus
from runmonitor.services import get
from runmonitor.simulator import Simulator
from runmonitor.ui.banners import BannerArea
from runmonitor.ui.controller import Controller
from runmonitor.ui.create_dialog import CreateRunDialog
from runmonitor.ui.main_window import MainWindow
from runmonitor.ui.service_tab import ServiceTab


def open_tab(window: MainWindow, key: str) -> Any:
    tab = window.service_tabs[key]
    window.tabs.setCurrentWidget(tab)
    return tab


def test_every_service_has_a_tab_with_its_demo_profile(window: MainWindow) -> None:
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert titles[0] == "All runs"
    assert len(titles) == 6
    for tab in window.service_tabs.values():
        assert tab.profile_box.currentText() == "demo"
        assert tab.new_action.isEnabled()
        assert tab.profile_box.accessibleName()


def test_a_service_tab_needs_only_the_controller(qtbot: Any, window: MainWindow) -> None:
    """A tab built on a bare controller (no MainWindow) lists its profiles, shows health and
    reports failures in the controller's banners."""
    from PySide6.QtWidgets import QWidget

    host = QWidget()
    qtbot.addWidget(host)
    banners = BannerArea(host)
    controller = Controller(window.context, banners=banners, window=host, runs=list)
    tab = ServiceTab(controller, get("marquez"))
    tab.reload_profiles()
    assert tab.profile_box.currentText() == "demo"
    assert tab.new_action.isEnabled()
    tab.health.clear()
    controller.update_status()  # the tab follows the controller's status
    assert tab.health.text() == "Connected; no runs followed yet"
    tab._report(RuntimeError("the service said no"))
    assert banners.text_of("action-marquez") == "the service said no"
    assert not window.banners.text_of("action-marquez")


def test_bad_input_is_refused_beside_the_field_then_a_good_run_is_followed(
    qtbot: Any, window: MainWindow
) -> None:
    sim: Simulator = window.context.simulator
    sim.force("invision", "success")
    tab = open_tab(window, "invision")
    dialog = tab.new_run()
    assert isinstance(dialog, CreateRunDialog)
    field = dialog.form.field_widget("data_flow_id")
    editor = field if isinstance(field, QLineEdit) else field.findChild(QLineEdit)
    assert editor is not None
    editor.setText("not-a-guid")
    qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    assert dialog.isVisible()
    assert sim.creates("invision") == 0  # nothing was sent
    errors = [w.text() for w in dialog.form.findChildren(type(dialog.outcome)) if w.isVisible() and w.text()]
    assert any("UUID" in text or "uuid" in text for text in errors), errors

    editor.setText(sim.demo_request("invision")["data_flow_id"])
    qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=10000)
    assert sim.creates("invision") == 1
    model = tab.view.model
    assert model.rowCount() == 1
    qtbot.waitUntil(lambda: model.record_at(0).status is RunStatus.SUCCEEDED, timeout=15000)
    # The All runs tab shows it too, and the details pane opens on selection.
    assert window.all_runs.model.rowCount() == 1
    tab.view.table.selectRow(0)
    qtbot.waitUntil(lambda: tab.view.details.record() is not None, timeout=5000)
    assert tab.view.details.record().ref.run_id == model.record_at(0).ref.run_id


def test_cancel_a_running_code_stream_execution(qtbot: Any, window: MainWindow) -> None:
    sim: Simulator = window.context.simulator
    sim.force("codestream", "approval")  # waits for a person: plenty of time to cancel
    tab = open_tab(window, "codestream")
    dialog = tab.new_run()
    qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.view.model.rowCount() == 1, timeout=10000)
    qtbot.waitUntil(lambda: tab.view.model.record_at(0).status is RunStatus.RUNNING, timeout=15000)
    tab.view.table.selectRow(0)
    assert tab.cancel_action is not None
    qtbot.waitUntil(tab.cancel_action.isEnabled, timeout=5000)
    tab.cancel_action.trigger()
    qtbot.waitUntil(lambda: tab.view.model.record_at(0).status is RunStatus.CANCELLED, timeout=15000)
    assert tab.view.model.record_at(0).snapshot.vendor_status == "CANCELED"
    assert not tab.cancel_action.isEnabled()


def test_a_created_run_can_be_run_again_with_the_same_parameters(qtbot: Any, window: MainWindow) -> None:
    tab = open_tab(window, "marquez")
    dialog = tab.new_run()
    qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.view.model.rowCount() == 1, timeout=10000)
    tab.view.table.selectRow(0)
    qtbot.waitUntil(tab.rerun_action.isEnabled, timeout=5000)
    again = tab.new_run(values=dict(tab.view.selected().request))
    assert again is not None
    assert again.form.values()["job"] == tab.view.selected().request["job"]


def test_find_focuses_the_filter_and_filters(qtbot: Any, window: MainWindow) -> None:
    tab = open_tab(window, "invision")
    dialog = tab.new_run()
    qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.view.model.rowCount() == 1, timeout=10000)
    window.activateWindow()
    window._find()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is tab.view.filter_edit, timeout=2000)
    tab.view.filter_edit.setText("no-such-run-anywhere")
    assert tab.view.proxy.rowCount() == 0
    tab.view.filter_edit.clear()
    assert tab.view.proxy.rowCount() == 1


def test_demo_screenshot_from_the_command_line(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from PySide6.QtGui import QImage

    shot = tmp_path / "window.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run(
        [sys.executable, "-m", "runmonitor", "--demo", "--screenshot", str(shot), "--after", "3"],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    image = QImage(str(shot))
    assert image.width() >= 800
    assert image.height() >= 500
    colours = {image.pixel(x, y) for x in range(0, image.width(), 37) for y in range(0, image.height(), 23)}
    assert len(colours) > 10  # a painted window, not a blank one


def test_demo_without_a_display_follows_runs_in_the_terminal() -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run(
        [sys.executable, "-m", "runmonitor", "--demo"], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no display found" in result.stderr
    summary = result.stdout.strip().splitlines()[-5:]
    assert [line.split()[0] for line in summary] == [
        "cognite",
        "marquez",
        "invision",
        "connhex",
        "codestream",
    ]


def test_an_uncaught_error_in_a_slot_is_logged_and_shown_as_a_banner(
    qtbot: Any, window: MainWindow, caplog: pytest.LogCaptureFixture
) -> None:
    from PySide6.QtCore import QTimer, qWarning

    from runmonitor.app.reporter import Reporter
    from runmonitor.ui.app import install_reporter

    def broken_slot() -> None:
        raise ZeroDivisionError("a slot broke")

    undo = install_reporter(window, Reporter())
    try:
        with caplog.at_level(logging.WARNING):
            QTimer.singleShot(0, broken_slot)
            qtbot.waitUntil(lambda: "uncaught" in window.banners.keys(), timeout=5000)
            qWarning("a Qt warning")
    finally:
        undo()
    assert "ZeroDivisionError: a slot broke" in (window.banners.text_of("uncaught") or "")
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)
    assert any("a Qt warning" in r.getMessage() for r in caplog.records)
