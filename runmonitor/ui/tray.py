"""The tray icon: the worst current state at a glance, and a menu rebuilt each time it opens.

The icon's *shape* tells the state, its colour repeats it (never colour alone): a cross for
failing, a question mark for sign-in needed, a play sign while runs go, a check mark when all
is well, a hollow ring when nothing is followed. Where there is no tray (GNOME without the
AppIndicator extension, offscreen), :func:`tray_available` says so and the window carries
the state in its title instead.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import QMenu, QSystemTrayIcon, QWidget

from runmonitor import APP_NAME
from runmonitor.app.overview import Overall, Overview
from runmonitor.domain.status import RunStatus
from runmonitor.notify.policy import until_tomorrow
from runmonitor.ui import resources
from runmonitor.ui.icons import status_label, status_pixmap

if TYPE_CHECKING:
    from runmonitor.storage.history import RunRecord
    from runmonitor.ui.controller import Controller

STATE_ICONS: dict[Overall, RunStatus] = {
    Overall.FAILING: RunStatus.FAILED,
    Overall.SIGN_IN: RunStatus.UNKNOWN,
    Overall.RUNNING: RunStatus.RUNNING,
    Overall.OK: RunStatus.SUCCEEDED,
    Overall.NOTHING: RunStatus.PENDING,
}
#: How many recent runs the menu lists.
RECENT_RUNS = 8


def tray_available() -> bool:
    return QSystemTrayIcon.isSystemTrayAvailable()


def state_icon(state: Overall) -> QIcon:
    """The app icon with the state's badge (from the icon set in resources/, compiled into Qt
    resources), for the tray."""
    return resources.state_icon(state.value)


def tooltip(overview: Overview, paused: bool, muted_until: datetime | None) -> str:
    lines = [f"{APP_NAME}: {overview.summary()}"]
    if overview.last_ok is not None:
        lines.append(f"Last good check {overview.last_ok.astimezone().strftime('%H:%M:%S')}")
    if paused:
        lines.append("Polling paused")
    if muted_until is not None:
        lines.append(f"Notifications paused until {muted_until.astimezone().strftime('%a %H:%M')}")
    return "\n".join(lines)


class Tray:
    """The tray icon and its menu for one window (``parent``); it acts through the window's
    controller and follows its status."""

    def __init__(
        self, controller: Controller, *, parent: QWidget, recent: Callable[[], list[RunRecord]]
    ) -> None:
        self.controller = controller
        self.parent = parent
        self.recent = recent
        self.icon = QSystemTrayIcon(parent)
        self.menu = QMenu(parent)
        self.menu.setAccessibleName("RunMonitor tray menu")
        self.menu.aboutToShow.connect(self.rebuild)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        self.state: Overall | None = None
        self.rebuild()
        controller.status_changed.connect(lambda: self.update(controller.overview))

    def show(self) -> None:
        self.icon.show()

    def update(self, overview: Overview) -> None:
        if overview.state is not self.state:
            self.state = overview.state
            self.icon.setIcon(state_icon(overview.state))
        self.icon.setToolTip(tooltip(overview, self.controller.is_paused(), self.controller.muted_until()))

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger, QSystemTrayIcon.ActivationReason.DoubleClick):
            self.controller.toggle_window()

    def rebuild(self) -> None:
        """The menu as it should be now (called each time it opens)."""
        controller = self.controller
        menu = self.menu
        menu.clear()
        records = self.recent()[:RECENT_RUNS]
        heading = menu.addAction("Recent runs" if records else "No runs yet")
        heading.setEnabled(False)
        for record in records:
            text = f"{status_label(record.status)} · {record.ref.target} · {record.ref.run_id[:12]}"
            action = menu.addAction(text)
            action.setIcon(QIcon(status_pixmap(record.status, stale=record.stale, size=16)))
            action.triggered.connect(lambda *_, rid=record.id: controller.open_run(rid))
        menu.addSeparator()
        notify = menu.addMenu("Pause &notifications")
        muted = controller.muted_until()
        if muted is not None:
            resume = notify.addAction(f"Resume (paused until {muted.astimezone().strftime('%a %H:%M')})")
            resume.triggered.connect(lambda *_: controller.mute_notifications(None))
            notify.addSeparator()
        hour = notify.addAction("For 1 hour")
        mute = controller.mute_notifications
        hour.triggered.connect(lambda *_: mute(datetime.now(UTC) + timedelta(hours=1)))
        tomorrow = notify.addAction("Until tomorrow morning")
        tomorrow.triggered.connect(lambda *_: mute(until_tomorrow(datetime.now(UTC))))
        polling = menu.addAction("Pause &polling")
        polling.setCheckable(True)
        polling.setChecked(controller.is_paused())
        polling.triggered.connect(lambda *_: controller.toggle_pause())
        menu.addSeparator()
        shown = menu.addAction("&Hide window" if self.parent.isVisible() else "&Show window")
        shown.triggered.connect(lambda *_: controller.toggle_window())
        quit_action = QAction("&Quit", menu)
        quit_action.triggered.connect(lambda *_: controller.quit())
        menu.addAction(quit_action)

    def hide(self) -> None:
        self.icon.hide()
