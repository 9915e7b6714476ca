"""Preferences, appearance, import/export and the status bar's connection health, in the real window."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QPalette

from runmonitor.engine import Health
from runmonitor.simulator import Fault, FaultKind, Simulator
from runmonitor.ui.banners import Banner
from runmonitor.ui.main_window import MainWindow
from tests.ui.conftest import run


def window_is_dark() -> bool:
    return QGuiApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128


def test_preferences_refuse_bad_values_beside_the_field_then_apply_good_ones(
    qtbot: Any, window: MainWindow
) -> None:
    workspace = window.context.workspace
    dialog = window.open_preferences()
    ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
    # Intervals must start at age 0: refused beside the field, on the page brought to the front.
    dialog.polling.set_values({**dialog.polling.values(), "steps": [[60, 2], [0, 5]]})
    dialog.pages.setCurrentIndex(0)
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    assert dialog.isVisible()
    assert "age 0" in dialog.polling.errors()["steps"]
    assert dialog.pages.currentIndex() == 1
    dialog.polling.set_values({**dialog.polling.values(), "steps": [[0, 2], [60, 5]]})
    # Quiet hours need both ends.
    dialog.notifications.set_values({**dialog.notifications.values(), "quiet_from": "22:00:00"})
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    assert dialog.isVisible()
    assert "quiet_until" in dialog.notifications.errors()[""]
    assert dialog.pages.currentIndex() == 2
    assert workspace.settings.polling.steps[0] == (0.0, 2.0)  # nothing saved so far
    assert len(workspace.settings.polling.steps) == 5
    dialog.notifications.set_values({**dialog.notifications.values(), "quiet_until": "07:00:00"})

    dialog.polling.set_values({**dialog.polling.values(), "watch_interval": 12.0})
    dialog.general.set_values({**dialog.general.values(), "appearance": "dark", "retention_days": 14})
    dialog.notifications.set_values({**dialog.notifications.values(), "on_success": True})
    was_dark = window_is_dark()
    qtbot.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Ok), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=5000)
    assert workspace.settings.polling.watch_interval == 12.0
    assert workspace.settings.retention_days == 14
    assert workspace.settings.notifications.on_success
    assert str(workspace.settings.notifications.quiet_until) == "07:00:00"
    assert workspace.settings.polling.steps == ((0.0, 2.0), (60.0, 5.0))
    assert window.context.engine.schedule.watch_interval == 12.0  # the engine uses it at once
    assert window.context.engine.retention_days == 14
    assert window_is_dark() and not was_dark
    saved = json.loads((workspace.paths.config_dir / "settings.json").read_text())
    assert saved["appearance"] == "dark" and saved["polling"]["watch_interval"] == 12.0
    window.theme.set_appearance("light")


def test_the_system_colour_scheme_is_followed_live(qtbot: Any, window: MainWindow) -> None:
    theme = window.theme
    theme.set_appearance("system")
    hints = QGuiApplication.styleHints()
    banner = window.banners.show_message("scheme", "info", "a message that recolours")
    assert isinstance(banner, Banner)
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    assert window_is_dark()
    qtbot.waitUntil(lambda: banner.dark, timeout=2000)  # the banner picked the dark colours
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Light)
    assert not window_is_dark()
    qtbot.waitUntil(lambda: not banner.dark, timeout=2000)
    theme.set_appearance("dark")
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Light)
    assert window_is_dark()  # a pinned appearance ignores the desktop
    theme.set_appearance("light")


def test_export_then_import_with_a_clash_decided_in_the_dialog(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    target = tmp_path / "profiles.json"
    run(qtbot, window.controller.export_to(target))
    exported = json.loads(target.read_text())
    assert len(exported["profiles"]) == 5
    assert "Exported 5 profiles" in (window.banners.text_of("export") or "")
    dialog = run(qtbot, window.controller.import_from(target))
    assert dialog is not None
    assert len(dialog.choices) == 5  # every profile clashes with itself (same id)
    cognite_row = next(i for i, p in enumerate(dialog.plan.profiles) if p.service == "cognite")
    for row in dialog.choices:
        dialog.choose(row, "rename" if row == cognite_row else "skip")
    qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Imported 1" in (window.banners.text_of("import") or ""), timeout=5000)
    names = sorted(p.name for p in window.context.profiles("cognite"))
    assert names == ["demo", "demo (2)"]
    tab = window.service_tabs["cognite"]
    assert tab.profile_box.count() == 2
    # The copy has no secrets (exports never carry them): it says so.
    assert "Enter the secrets" in (window.banners.text_of("import") or "")


def test_a_broken_import_file_is_refused_with_the_reason(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "something else"}')
    assert run(qtbot, window.controller.import_from(broken)) is None
    assert "not a RunMonitor profile export" in (window.banners.text_of("import") or "")
    assert len(window.context.profiles()) == 5


def test_status_bar_shows_health_next_check_and_an_outage_banner(qtbot: Any, window: MainWindow) -> None:
    sim: Simulator = window.context.simulator
    profile = window.context.profiles("marquez")[0]
    sim.force("marquez", "long")
    request = sim.demo_request("marquez")
    from runmonitor.services import get

    record = run(
        qtbot,
        window.context.engine.create_run(
            str(profile.id), get("marquez").request_model.model_validate(request)
        ),
    )
    window.run_changed(record)
    qtbot.waitUntil(lambda: window.controller.health[str(profile.id)].state is Health.OK, timeout=5000)
    assert window.next_check_label.text().startswith("Next check")
    assert any("demo · Marquez: OK" in line for line in window.health_strip.lines)

    plan = sim.faults("marquez").randomly(1.0, Fault(FaultKind.DROP))
    qtbot.waitUntil(
        lambda: window.controller.health[str(profile.id)].state is Health.UNREACHABLE, timeout=15000
    )
    host = window.controller.health[str(profile.id)].host
    assert host.startswith("127.0.0.1:")
    qtbot.waitUntil(lambda: f"down-{host}" in window.banners.keys(), timeout=3000)
    text = window.banners.text_of(f"down-{host}") or ""
    assert "unreachable since" in text and "Marquez 'demo'" in text
    # Profiles with nothing followed asked nothing: they are not called unreachable.
    assert "Cognite" not in text
    assert window.health_strip.lines[0].startswith("demo · Marquez: unreachable since")  # worst first
    tab = window.service_tabs["marquez"]
    assert tab.health.text().startswith("Unreachable since")
    plan.clear()
    qtbot.waitUntil(lambda: f"down-{host}" not in window.banners.keys(), timeout=15000)
    # Recovered (or, with this fast clock, already finished and no longer followed).
    assert window.controller.health[str(profile.id)].state in (Health.OK, Health.IDLE)
    assert not window.all_runs.model.record_at(0).stale


def test_pausing_polling_shows_in_the_status_bar(qtbot: Any, window: MainWindow) -> None:
    window.pause_action.trigger()
    assert window.paused_label.text() == "Polling paused"
    assert window.next_check_label.text() == "No checks due"
    window.pause_action.trigger()
    assert window.paused_label.text().startswith("Following")


def test_every_control_in_the_window_and_preferences_has_an_accessible_name(
    qtbot: Any, window: MainWindow
) -> None:
    from PySide6.QtWidgets import (
        QAbstractButton,
        QAbstractItemView,
        QAbstractSpinBox,
        QComboBox,
        QLineEdit,
        QWidget,
    )

    from tests.ui.conftest import accessible_name

    dialog = window.open_preferences()
    controls = (QAbstractButton, QAbstractItemView, QAbstractSpinBox, QComboBox, QLineEdit)
    unnamed = []
    checked = 0
    for root in (window, dialog):
        for widget in root.findChildren(QWidget):
            if (
                not isinstance(widget, controls)
                or widget.isHidden()
                or widget.window() is not root
                or widget.focusPolicy() == Qt.FocusPolicy.NoFocus
            ):
                continue
            if widget.objectName().startswith("qt_"):
                continue  # Qt's own inner parts (a spin box's line edit): the outer control speaks
            checked += 1
            if not accessible_name(widget).strip():
                unnamed.append(f"{type(widget).__name__} {widget.objectName()!r} in {type(root).__name__}")
    assert checked > 30
    assert not unnamed, unnamed
