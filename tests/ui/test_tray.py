"""Tray, no-tray path and notifications in the real window (offscreen; a private D-Bus for the
desktop notification test)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from runmonitor.app.context import AppContext
from runmonitor.domain.events import EventKind
from runmonitor.domain.status import RunStatus
from runmonitor.services import get
from runmonitor.simulator import Simulator
from runmonitor.storage.paths import app_paths
from runmonitor.ui.main_window import MainWindow
from tests.fake_notifd import PrivateBus, dbus_daemon, serve_fake
from tests.ui.conftest import run


def create(qtbot: Any, window: MainWindow, service: str, scenario: str) -> Any:
    sim: Simulator = window.context.simulator
    sim.force(service, scenario)
    profile = window.context.profiles(service)[0]
    request = get(service).request_model.model_validate(sim.demo_request(service))
    record = run(qtbot, window.context.engine.create_run(str(profile.id), request))
    window.run_changed(record)
    return record


@pytest.fixture
def tray_window(qtbot: Any, qloop: asyncio.AbstractEventLoop, tmp_path: Path) -> Iterator[MainWindow]:
    """The window with a tray icon (offscreen has no tray: forced on, as on a desktop with one)."""
    sim = Simulator(seed=7, time_scale=20.0).start()
    paths = app_paths({"RUNMONITOR_HOME": str(tmp_path / "home")})
    context = run(qtbot, AppContext.open(demo=True, paths=paths, simulator=sim, demo_runs=False))
    main = MainWindow(context, tray=True)
    qtbot.addWidget(main)
    run(qtbot, main.load())
    main.show()
    qtbot.waitExposed(main)
    try:
        yield main
    finally:
        if main.notifications is not None:
            run(qtbot, main.notifications.aclose())
        run(qtbot, context.close())
        sim.stop()


# -- no tray ------------------------------------------------------------------------------------


def test_without_a_tray_closing_asks_and_the_answer_can_be_remembered(qtbot: Any, window: MainWindow) -> None:
    assert window.tray is None  # offscreen: no tray, as on GNOME without the extension
    assert "no tray" in window.diagnostics().lower() or "none on this desktop" in window.diagnostics()
    window.close()
    dialog = window.close_dialog
    assert dialog.isVisible()
    keep, _, remember = window.close_buttons
    remember.setChecked(True)
    qtbot.mouseClick(keep, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.context.workspace.settings.close_to_tray == "background", timeout=3000)
    assert window.isMinimized()  # still running, in the taskbar
    window.showNormal()
    window.close()  # remembered: no question this time
    assert window.isMinimized()
    assert not window.close_dialog.isVisible()

    window.showNormal()
    run(qtbot, window.context.workspace.update_preferences({"close_to_tray": "ask"}))
    window.close()
    with qtbot.waitSignal(window.quit_requested, timeout=2000):
        qtbot.mouseClick(window.close_buttons[1], Qt.MouseButton.LeftButton)


def test_quit_from_the_menu_never_asks(qtbot: Any, window: MainWindow) -> None:
    with qtbot.waitSignal(window.quit_requested, timeout=2000):
        window.quit()


def test_the_title_carries_the_state_and_notifications_fall_back_to_banners(
    qtbot: Any, window: MainWindow
) -> None:
    assert window.windowTitle().endswith("nothing followed")
    center = window.notifications
    assert center is not None
    run(qtbot, center.start(desktop=False))
    assert center.channel == "banner" and "no tray" in center.describe()
    record = create(qtbot, window, "invision", "failure")
    qtbot.waitUntil(lambda: "1 failing" in window.windowTitle(), timeout=15000)
    qtbot.waitUntil(lambda: any(k.startswith("notify-") for k in window.banners.keys()), timeout=10000)
    key = next(k for k in window.banners.keys() if k.startswith("notify-"))
    text = window.banners.text_of(key) or ""
    assert "failed" in text.lower() and "demo" in text
    assert center.delivered[-1][0] == "banner"
    assert center.delivered[-1][1].run_ids == (record.id,)


# -- tray ---------------------------------------------------------------------------------------


def menu_texts(menu: Any) -> list[str]:
    return [a.text() for a in menu.actions() if not a.isSeparator()]


def test_tray_menu_is_rebuilt_with_recent_runs_pauses_and_quit(qtbot: Any, tray_window: MainWindow) -> None:
    window = tray_window
    tray = window.tray
    assert tray is not None
    assert tray.state is not None
    record = create(qtbot, window, "codestream", "failure")
    qtbot.waitUntil(lambda: window.all_runs.model.record_at(0).status is RunStatus.FAILED, timeout=15000)
    window.controller.update_status()
    assert tray.state.value == "failing"
    assert "1 failing" in tray.icon.toolTip()
    tray.menu.aboutToShow.emit()
    texts = menu_texts(tray.menu)
    assert texts[0] == "Recent runs"
    assert any(record.ref.run_id[:12] in t and t.startswith("Failed") for t in texts)
    assert {"Pause &notifications", "Pause &polling", "&Hide window", "&Quit"} <= set(texts)

    # A recent run opens the window on that run.
    window.tabs.setCurrentWidget(window.all_runs)
    next(a for a in tray.menu.actions() if record.ref.run_id[:12] in a.text()).trigger()
    tab = window.service_tabs["codestream"]
    assert window.tabs.currentWidget() is tab
    assert tab.view.selected() is not None and tab.view.selected().id == record.id

    # Pause notifications for an hour: remembered, shown, and resumable from the same menu.
    pause_menu = next(a.menu() for a in tray.menu.actions() if a.text() == "Pause &notifications")
    next(a for a in pause_menu.actions() if a.text() == "For 1 hour").trigger()
    muted = window.notifications.muted_until if window.notifications else None
    assert muted is not None and timedelta(minutes=59) < muted - datetime.now(UTC) <= timedelta(hours=1)
    settings = window.context.workspace
    qtbot.waitUntil(lambda: settings.settings.notifications_muted_until is not None, timeout=3000)
    assert "notifications paused" in window.windowTitle()
    tray.menu.aboutToShow.emit()
    pause_menu = next(a.menu() for a in tray.menu.actions() if a.text() == "Pause &notifications")
    resume = next(a for a in pause_menu.actions() if a.text().startswith("Resume"))
    resume.trigger()
    assert window.notifications is not None and window.notifications.muted_until is None

    # Pause polling from the tray is the same switch as the window's.
    next(a for a in tray.menu.actions() if a.text() == "Pause &polling").trigger()
    assert window.context.engine.is_paused()
    window.controller.toggle_pause()

    # Closing the window hides it to the tray; the app keeps running.
    with qtbot.assertNotEmitted(window.quit_requested):
        window.close()
    assert not window.isVisible()
    tray.menu.aboutToShow.emit()
    assert "&Show window" in menu_texts(tray.menu)
    window.toggle_visible()
    assert window.isVisible()
    with qtbot.waitSignal(window.quit_requested, timeout=2000):
        next(a for a in tray.menu.actions() if a.text() == "&Quit").trigger()


# -- desktop notifications over a real D-Bus ----------------------------------------------------


@pytest.fixture
def private_bus(monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivateBus]:
    if dbus_daemon() is None:
        if os.environ.get("RUNMONITOR_REQUIRE_DBUS"):
            pytest.fail("dbus-daemon is missing but RUNMONITOR_REQUIRE_DBUS is set")
        pytest.skip("dbus-daemon is not installed (Debian/Ubuntu: apt-get install dbus-daemon)")
    with PrivateBus() as bus:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bus.address)
        yield bus


def test_a_failed_run_reaches_the_desktop_notification_server_and_a_click_opens_it(
    qtbot: Any, window: MainWindow, private_bus: PrivateBus
) -> None:
    server_cm = serve_fake(private_bus.address)
    fake = run(qtbot, server_cm.__aenter__())
    try:
        center = window.notifications
        assert center is not None
        run(qtbot, center.start())
        assert center.channel == "desktop", center.describe()
        assert "fake-notifd" in window.diagnostics()
        create(qtbot, window, "marquez", "completed")  # successes are off by default: not notified
        record = create(qtbot, window, "invision", "failure")
        qtbot.waitUntil(lambda: bool(fake.notifications), timeout=20000)
        received = fake.notifications[0]
        assert received.app_name == "RunMonitor"
        assert "failed" in received.summary.lower()
        assert "demo" in received.summary + received.body
        assert received.urgency == 2  # critical: failures stay until dismissed
        assert received.expire_timeout == 0
        assert len(fake.notifications) == 1, [n.summary for n in fake.notifications]
        # A click brings the window up on that run.
        window.tabs.setCurrentWidget(window.all_runs)
        fake.click(received.id)
        tab = window.service_tabs["invision"]
        qtbot.waitUntil(lambda: window.tabs.currentWidget() is tab, timeout=5000)
        assert tab.view.selected() is not None and tab.view.selected().id == record.id
        assert EventKind.FAILED.value == center.delivered[-1][1].kind
    finally:
        run(qtbot, server_cm.__aexit__(None, None, None))
