"""The main window, a view: an All runs tab and one tab per service, menus, banners and a status bar.

What the views do is the :class:`~runmonitor.ui.controller.Controller`'s: the window lays out the
tabs, menus, status bar and banners, shows the controller's state and signals, and handles its
own showing, hiding and closing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QMainWindow,
    QSystemTrayIcon,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from runmonitor import APP_NAME, __version__
from runmonitor.app.context import AppContext
from runmonitor.engine import RunEvent
from runmonitor.services import registry
from runmonitor.storage.history import DurationStats, RunRecord
from runmonitor.ui.banners import BannerArea
from runmonitor.ui.controller import Controller
from runmonitor.ui.health_strip import Entry, HealthStrip, next_check_text
from runmonitor.ui.icons import app_icon
from runmonitor.ui.notifications import NotificationCenter
from runmonitor.ui.preferences import PreferencesDialog
from runmonitor.ui.runs_view import RunsView
from runmonitor.ui.service_tab import ServiceTab
from runmonitor.ui.theme import Theme, app_instance
from runmonitor.ui.tray import Tray, tray_available


class MainWindow(QMainWindow):
    quit_requested = Signal()

    def __init__(self, context: AppContext, *, tray: bool | None = None) -> None:
        """``tray``: use a tray icon (None: when the desktop has a tray)."""
        super().__init__()
        self.context = context
        self._title = f"{APP_NAME}{' (demo)' if context.demo else ''}"
        self.setWindowTitle(self._title)
        self.setWindowIcon(app_icon())
        self.setAccessibleName(APP_NAME)
        self.banners = BannerArea()
        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Services")
        self.tabs.setDocumentMode(True)
        self.all_runs = RunsView(show_service=True, name="all services")
        controller = Controller(context, banners=self.banners, window=self, runs=self.all_runs.model.records)
        self.controller = controller
        self.all_runs.selection_changed.connect(
            lambda record: controller.show_details(self.all_runs.details, record)
        )
        self.tabs.addTab(self.all_runs, "All runs")
        self.service_tabs: dict[str, ServiceTab] = {}
        for key, service in registry().items():
            tab = ServiceTab(controller, service)
            self.service_tabs[key] = tab
            self.tabs.addTab(tab, service.display_name)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.banners)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        self.paused_label = QLabel()
        self.paused_label.setAccessibleName("Polling state")
        self.next_check_label = QLabel()
        self.next_check_label.setAccessibleName("Next check")
        self.health_strip = HealthStrip()
        self.statusBar().addWidget(self.health_strip, 1)
        self.statusBar().addPermanentWidget(self.next_check_label)
        self.statusBar().addPermanentWidget(self.paused_label)
        self.theme = Theme(app_instance(), context.workspace.settings.appearance, parent=self)
        self._build_menus()
        self._quitting = False
        self.tray: Tray | None = None
        if tray if tray is not None else tray_available():
            self.tray = Tray(controller, parent=self, recent=self.recent_runs)

        controller.event_received.connect(self.on_event)
        controller.run_updated.connect(self.run_changed)
        controller.status_changed.connect(self._show_status)
        controller.profile_names_changed.connect(self._set_profile_names)
        controller.preferences_changed.connect(lambda new: self.theme.set_appearance(new.appearance))
        controller.note.connect(lambda note: self.statusBar().showMessage(note, 8000))
        controller.run_opened.connect(self.show_run)
        controller.raise_requested.connect(self.bring_up)
        controller.visibility_toggled.connect(self.toggle_visible)
        controller.quit_requested.connect(self.quit_requested)
        controller.attach(self.tray.icon if self.tray is not None else None)
        self.ticker = QTimer(self)
        self.ticker.setInterval(1000)
        self.ticker.timeout.connect(self._tick)
        self.ticker.start()
        # Events come in bursts (a catch-up round answers hundreds of checks): the status bar is
        # refreshed at most once per 200 ms for them, not once per event.
        self.status_soon = QTimer(self)
        self.status_soon.setSingleShot(True)
        self.status_soon.setInterval(200)
        self.status_soon.timeout.connect(controller.update_status)
        self.resize(1200, 760)
        controller.show_startup_notices()

    @property
    def notifications(self) -> NotificationCenter | None:
        return self.controller.notifications

    # -- menus ---------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        controller = self.controller
        file_menu = self.menuBar().addMenu("&File")
        self._menu_action(file_menu, "&New run…", "Ctrl+N", self._new_run)
        self._menu_action(
            file_menu, "New &profile…", None, lambda: self._current_service_tab_call("new_profile")
        )
        file_menu.addSeparator()
        self._menu_action(file_menu, "&Import profiles…", None, controller.import_profiles)
        self._menu_action(file_menu, "&Export profiles…", None, controller.export_profiles)
        file_menu.addSeparator()
        self._menu_action(file_menu, "&Quit", "Ctrl+Q", self.quit)
        edit = self.menuBar().addMenu("&Edit")
        self.preferences_action = self._menu_action(edit, "&Preferences…", "Ctrl+,", self.open_preferences)
        self.preferences_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        view = self.menuBar().addMenu("&View")
        self._menu_action(view, "&Refresh", "F5", controller.refresh)
        self._menu_action(view, "&Find", "Ctrl+F", self._find)
        view.addSeparator()
        for index in range(self.tabs.count()):
            title = self.tabs.tabText(index)
            self._menu_action(
                view, f"{title}", f"Ctrl+{index + 1}", lambda i=index: self.tabs.setCurrentIndex(i)
            )
        polling = self.menuBar().addMenu("&Polling")
        self.pause_action = self._menu_action(polling, "&Pause all polling", None, controller.toggle_pause)
        self.pause_action.setCheckable(True)
        help_menu = self.menuBar().addMenu("&Help")
        self._menu_action(help_menu, "&About RunMonitor", None, self._about)

    def _menu_action(self, menu: Any, title: str, keys: str | None, slot: Any) -> QAction:
        action = QAction(title, self)
        if keys:
            action.setShortcut(QKeySequence(keys))
        action.triggered.connect(lambda *_: slot())
        menu.addAction(action)
        return action

    def _current_service_tab(self) -> ServiceTab | None:
        widget = self.tabs.currentWidget()
        return widget if isinstance(widget, ServiceTab) else None

    def _current_service_tab_call(self, name: str) -> None:
        tab = self._current_service_tab() or next(iter(self.service_tabs.values()))
        getattr(tab, name)()

    def _new_run(self) -> None:
        tab = self._current_service_tab()
        if tab is None:
            self.tabs.setCurrentWidget(next(iter(self.service_tabs.values())))
            tab = self._current_service_tab()
        if tab is not None:
            tab.new_run()

    def _current_view(self) -> RunsView:
        widget = self.tabs.currentWidget()
        return widget.view if isinstance(widget, ServiceTab) else self.all_runs

    def _find(self) -> None:
        self._current_view().focus_filter()

    def _about(self) -> None:
        dialog = QDialog(self)
        dialog.setWindowTitle("About RunMonitor")
        text = QLabel(self.diagnostics())
        text.setTextFormat(Qt.TextFormat.PlainText)
        text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dialog.reject)
        layout = QVBoxLayout(dialog)
        layout.addWidget(text)
        layout.addWidget(buttons)
        self.controller.keep(dialog)
        dialog.open()

    def diagnostics(self) -> str:
        """What About shows: versions, where things are, the tray and the notification channel."""
        workspace = self.context.workspace
        tray = "yes" if self.tray is not None else "none on this desktop (status is in the window title)"
        channel = self.notifications.describe() if self.notifications is not None else "off"
        return (
            f"{APP_NAME} {__version__}\nStart and watch runs on Cognite, Marquez, InVision, Connhex and "
            f"Code Stream.\n\nSecrets: {workspace.secrets.backend}\nSettings: {workspace.store.path}\n"
            f"History: {self.context.history.path}\nTray icon: {tray}\nNotifications: {channel}"
        )

    def open_preferences(self) -> PreferencesDialog:
        dialog = PreferencesDialog(self.context.workspace.settings, self.controller.apply_preferences, self)
        dialog.applied.connect(lambda note: self.statusBar().showMessage(note, 8000))
        self.controller.keep(dialog)
        dialog.open()
        return dialog

    # -- visibility ----------------------------------------------------------------------------
    def recent_runs(self) -> list[RunRecord]:
        records = self.all_runs.model.records()
        return sorted(records, key=lambda r: r.snapshot.ended_at or r.first_seen_at, reverse=True)

    def show_run(self, run_id: int) -> bool:
        """Bring the window up on run ``run_id`` (its service tab, else All runs)."""
        self.bring_up()
        row = self.all_runs.model.row_of(run_id)
        if row is None:
            return False
        record = self.all_runs.model.record_at(row)
        tab = self.service_tabs.get(record.ref.service)
        if tab is not None:
            index = tab.profile_box.findData(record.profile_id)
            if index >= 0:
                tab.profile_box.setCurrentIndex(index)
            self.tabs.setCurrentWidget(tab)
            tab.view.proxy.set_text("")
            if tab.view.select_run(run_id):
                return True
        self.tabs.setCurrentWidget(self.all_runs)
        self.all_runs.proxy.set_text("")
        return self.all_runs.select_run(run_id)

    def bring_up(self) -> None:
        if self.isMinimized():
            self.showNormal()
        self.show()
        self.raise_()
        self.activateWindow()

    def toggle_visible(self) -> None:
        if self.isVisible() and not self.isMinimized():
            self.hide()
        else:
            self.bring_up()

    # -- data ----------------------------------------------------------------------------------
    def _views(self) -> list[RunsView]:
        return [self.all_runs, *(t.view for t in self.service_tabs.values())]

    async def load(self) -> None:
        """Fill the tables from the history and select each tab's first profile."""
        names = self.controller.profile_names()
        records = await self.controller.history()
        self._set_profile_names(names)
        self.all_runs.model.set_records(records)
        for key, tab in self.service_tabs.items():
            tab.view.model.set_records([r for r in records if r.ref.service == key])
            tab.reload_profiles()
        self._set_durations(await self.controller.durations(records))
        self.controller.update_status()

    def _set_profile_names(self, names: dict[str, str]) -> None:
        for view in self._views():
            view.model.set_profile_names(names)
            view.details.set_profile_names(names)

    def _set_durations(self, durations: dict[tuple[str, str], DurationStats]) -> None:
        for view in self._views():
            view.model.set_durations(durations)

    def run_changed(self, record: RunRecord) -> None:
        self.all_runs.upsert(record)
        tab = self.service_tabs.get(record.ref.service)
        if tab is not None:
            tab.view.upsert(record)

    def on_event(self, event: RunEvent) -> None:
        """An engine event (from the controller): its row, and a status refresh soon."""
        if event.run is not None:
            self.run_changed(event.run)
        if not self.status_soon.isActive():
            self.status_soon.start()

    # -- status --------------------------------------------------------------------------------
    def _tick(self) -> None:
        for view in self._views():
            view.model.tick()
        self.controller.update_status()

    def _show_status(self) -> None:
        """The controller's health and overview in the status bar, the title and the tray."""
        controller = self.controller
        engine = self.context.engine
        now = datetime.now(UTC)
        health = controller.health
        names = {key: service.display_name for key, service in registry().items()}
        entries = [
            Entry(str(p.id), f"{p.name} · {names.get(p.service, p.service)}", health[str(p.id)])
            for p in self.context.profiles()
        ]
        self.health_strip.show_entries(entries, now)
        followed = len(engine.followed())
        self.paused_label.setText("Polling paused" if engine.is_paused() else f"Following {followed} runs")
        self.pause_action.setChecked(engine.is_paused())
        upcoming = [h.next_check for h in health.values() if h.next_check is not None]
        self.next_check_label.setText(next_check_text(min(upcoming) if upcoming else None, now))
        title = f"{self._title} — {controller.overview.summary()}"
        if controller.muted_until() is not None:
            title += " · notifications paused"
        if self.windowTitle() != title:
            self.setWindowTitle(title)

    # -- state and closing ---------------------------------------------------------------------
    def save_state(self, settings: QSettings) -> None:
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState())
        settings.setValue("window/tab", self.tabs.currentIndex())
        for name, view in [("all", self.all_runs), *self.service_tabs_views()]:
            settings.setValue(f"{name}/splitter", view.splitter.saveState())
            settings.setValue(f"{name}/header", view.table.horizontalHeader().saveState())

    def restore_state(self, settings: QSettings) -> None:
        geometry = settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = settings.value("window/state")
        if state is not None:
            self.restoreState(state)
        tab = settings.value("window/tab")
        if tab is not None:
            self.tabs.setCurrentIndex(int(tab))
        for name, view in [("all", self.all_runs), *self.service_tabs_views()]:
            splitter = settings.value(f"{name}/splitter")
            if splitter is not None:
                view.splitter.restoreState(splitter)
            header = settings.value(f"{name}/header")
            if header is not None:
                view.table.horizontalHeader().restoreState(header)

    def open_tab(self, key: str) -> None:
        """Show the tab of a service key ('all' for All runs)."""
        if key in self.service_tabs:
            self.tabs.setCurrentWidget(self.service_tabs[key])
        else:
            self.tabs.setCurrentWidget(self.all_runs)

    def select_first_run(self) -> None:
        """Select the first row of the current tab (for screenshots and a quick look)."""
        view = self._current_view()
        if view.proxy.rowCount():
            view.table.selectRow(0)

    def service_tabs_views(self) -> list[tuple[str, RunsView]]:
        return [(key, tab.view) for key, tab in self.service_tabs.items()]

    def stop(self) -> None:
        """The app is shutting down: stop the timers and take the tray icon away."""
        self.ticker.stop()
        self.status_soon.stop()
        if self.tray is not None:
            self.tray.hide()

    def quit(self) -> None:
        """Really close (Quit in a menu): the app shuts down."""
        self._quitting = True
        self.quit_requested.emit()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing the window: to the tray where there is one; else ask (once, if wanted)
        whether to keep running minimised in the taskbar or to quit."""
        event.ignore()
        choice = self.context.workspace.settings.close_to_tray
        if self._quitting or choice == "quit":
            self.quit()
            return
        if self.tray is not None:
            self.hide()
            if choice == "ask":
                self.tray.icon.showMessage(
                    APP_NAME,
                    "RunMonitor keeps following your runs here. Quit from this icon's menu.",
                    QSystemTrayIcon.MessageIcon.Information,
                    8000,
                )
                self.controller.remember_close(True)
            return
        if choice == "background":
            self.showMinimized()
            return
        self.ask_on_close()

    def ask_on_close(self) -> QDialog:
        dialog = QDialog(self)
        dialog.setWindowTitle("Keep RunMonitor running?")
        text = QLabel(
            "There is no tray on this desktop. RunMonitor can keep following your runs in the "
            "background, minimised in the taskbar (its title shows how things stand), or quit. "
            "Followed runs are kept either way."
        )
        text.setTextFormat(Qt.TextFormat.PlainText)
        text.setWordWrap(True)
        remember = QCheckBox("Do this every time (change it in Preferences → General)")
        buttons = QDialogButtonBox()
        keep = buttons.addButton("Keep running", QDialogButtonBox.ButtonRole.AcceptRole)
        quit_button = buttons.addButton("Quit", QDialogButtonBox.ButtonRole.DestructiveRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        keep.setDefault(True)

        def keep_running() -> None:
            if remember.isChecked():
                self.controller.remember_close(True)
            dialog.accept()
            self.showMinimized()

        def quit_now() -> None:
            if remember.isChecked():
                self.controller.remember_close(False)
            dialog.accept()
            self.quit()

        keep.clicked.connect(keep_running)
        quit_button.clicked.connect(quit_now)
        buttons.rejected.connect(dialog.reject)
        layout = QVBoxLayout(dialog)
        layout.addWidget(text)
        layout.addWidget(remember)
        layout.addWidget(buttons)
        self.close_dialog = dialog
        self.close_buttons = (keep, quit_button, remember)
        self.controller.keep(dialog)
        dialog.open()
        return dialog
