"""The main window: an All runs tab and one tab per service, menus, banners and a status bar."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QLabel,
    QMainWindow,
    QSystemTrayIcon,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from runmonitor import APP_NAME, __version__
from runmonitor.app.context import AppContext
from runmonitor.app.overview import overview
from runmonitor.domain.errors import ServiceError, check_outcome
from runmonitor.domain.events import EventKind
from runmonitor.engine import Health, ProfileHealth, RunEvent
from runmonitor.services import registry
from runmonitor.storage.history import RunRecord
from runmonitor.storage.settings.model import Profile
from runmonitor.storage.settings.store import (
    ImportPlan,
    SettingsError,
    export_profiles,
    plan_import,
    read_import,
)
from runmonitor.ui.banners import BannerArea
from runmonitor.ui.health_strip import Entry, HealthStrip, clock, describe, next_check_text
from runmonitor.ui.icons import app_icon
from runmonitor.ui.import_dialog import ImportDialog
from runmonitor.ui.notifications import NotificationCenter
from runmonitor.ui.preferences import PreferencesDialog
from runmonitor.ui.profile_dialog import ProfileDialog
from runmonitor.ui.runs_view import RunsView, spawn
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
        self.all_runs.selection_changed.connect(lambda record: self.show_details(self.all_runs, record))
        self.tabs.addTab(self.all_runs, "All runs")
        self.service_tabs: dict[str, ServiceTab] = {}
        for key, service in registry().items():
            tab = ServiceTab(self, service)
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
        self._dialogs: list[QDialog] = []
        self.health: dict[str, ProfileHealth] = {}
        self.overview = overview([])
        self._quitting = False
        self.tray: Tray | None = None
        self.notifications: NotificationCenter | None = None
        if tray if tray is not None else tray_available():
            self.tray = Tray(self, recent=self.recent_runs)
        self.notifications = NotificationCenter(
            context,
            show_banner=self._notification_banner,
            open_runs=self._open_notification,
            tray=self.tray.icon if self.tray is not None else None,
            parent=self,
        )

        self.context.engine.subscribe(self.on_event)
        self.ticker = QTimer(self)
        self.ticker.setInterval(1000)
        self.ticker.timeout.connect(self._tick)
        self.ticker.start()
        # Events come in bursts (a catch-up round answers hundreds of checks): the status bar is
        # refreshed at most once per 200 ms for them, not once per event.
        self.status_soon = QTimer(self)
        self.status_soon.setSingleShot(True)
        self.status_soon.setInterval(200)
        self.status_soon.timeout.connect(self._update_status)
        self.resize(1200, 760)
        self._show_startup_notices()

    # -- menus ---------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._menu_action(file_menu, "&New run…", "Ctrl+N", self._new_run)
        self._menu_action(
            file_menu, "New &profile…", None, lambda: self._current_service_tab_call("new_profile")
        )
        file_menu.addSeparator()
        self._menu_action(file_menu, "&Import profiles…", None, self.import_profiles)
        self._menu_action(file_menu, "&Export profiles…", None, self.export_profiles)
        file_menu.addSeparator()
        self._menu_action(file_menu, "&Quit", "Ctrl+Q", self.quit)
        edit = self.menuBar().addMenu("&Edit")
        self.preferences_action = self._menu_action(edit, "&Preferences…", "Ctrl+,", self.open_preferences)
        self.preferences_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        view = self.menuBar().addMenu("&View")
        self._menu_action(view, "&Refresh", "F5", lambda: self.context.engine.refresh())
        self._menu_action(view, "&Find", "Ctrl+F", self._find)
        view.addSeparator()
        for index in range(self.tabs.count()):
            title = self.tabs.tabText(index)
            self._menu_action(
                view, f"{title}", f"Ctrl+{index + 1}", lambda i=index: self.tabs.setCurrentIndex(i)
            )
        polling = self.menuBar().addMenu("&Polling")
        self.pause_action = self._menu_action(polling, "&Pause all polling", None, self.toggle_pause)
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

    def _find(self) -> None:
        widget = self.tabs.currentWidget()
        view = widget.view if isinstance(widget, ServiceTab) else self.all_runs
        view.focus_filter()

    def toggle_pause(self) -> None:
        if self.context.engine.is_paused():
            self.context.engine.resume()
        else:
            self.context.engine.pause()
        self._update_status()

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
        self._keep(dialog)
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

    # -- tray, notifications, visibility -------------------------------------------------------
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

    def mute_notifications(self, until: datetime | None) -> None:
        if self.notifications is None:
            return
        held = self.notifications.mute_until(until)
        if until is None:
            note = "Notifications resumed"
            note += f" ({held} held back while paused)." if held else "."
        else:
            note = f"Notifications paused until {until.astimezone().strftime('%a %H:%M')}."
        self.statusBar().showMessage(note, 8000)
        self._update_status()

    def _notification_banner(self, notification: Any, clicked: Any) -> None:
        level = "error" if notification.urgency == "critical" else "info"
        actions = [("Show run", clicked)] if notification.run_ids else None
        self.banners.show_message(
            f"notify-{notification.key}", level, f"{notification.title} — {notification.body}", actions
        )

    def _open_notification(self, notification: Any) -> None:
        if notification.run_ids:
            self.show_run(notification.run_ids[0])
        else:
            self.bring_up()

    # -- data ----------------------------------------------------------------------------------
    async def load(self) -> None:
        """Fill the tables from the history and select each tab's first profile."""
        names = {str(p.id): f"{p.name}" for p in self.context.profiles()}
        records, _ = await self.context.history.query_runs(limit=5000)
        self._set_profile_names(names)
        self.all_runs.model.set_records(records)
        for key, tab in self.service_tabs.items():
            tab.view.model.set_records([r for r in records if r.ref.service == key])
            tab.reload_profiles()
        await self._load_durations(records)
        self._update_status()

    def _set_profile_names(self, names: dict[str, str]) -> None:
        for view in [self.all_runs, *(t.view for t in self.service_tabs.values())]:
            view.model.set_profile_names(names)
            view.details.set_profile_names(names)

    async def _load_durations(self, records: list[RunRecord]) -> None:
        durations = {}
        for service, profile, target in {(r.ref.service, r.profile_id, r.ref.target) for r in records}:
            stats = await self.context.history.duration_stats(service, profile, target)
            if stats is not None:
                durations[(service, target)] = stats
        self.all_runs.model.set_durations(durations)
        for tab in self.service_tabs.values():
            tab.view.model.set_durations(durations)

    def run_changed(self, record: RunRecord) -> None:
        self.all_runs.upsert(record)
        tab = self.service_tabs.get(record.ref.service)
        if tab is not None:
            tab.view.upsert(record)

    def on_event(self, event: RunEvent) -> None:
        if event.run is not None:
            self.run_changed(event.run)
        if event.kind is EventKind.AUTH_NEEDED:
            profile = self._profile(event.profile_id)
            name = profile.name if profile else event.profile_id
            self.banners.show_message(
                f"auth-{event.profile_id}",
                "error",
                f"Sign-in needed for {event.service} profile {name!r}: {event.message}",
                [("Edit profile…", lambda: self.open_profile_dialog(event.service, profile))],
            )
        elif event.kind is EventKind.CREATE_UNCONFIRMED and event.intent is not None:
            intent = event.intent
            self.banners.show_message(
                f"intent-{intent.id}",
                "warning",
                f"A {intent.service} run on {intent.target!r} may or may not have been created "
                f"({event.message}).",
                [
                    ("Look it up", lambda: self._spawn(self._lookup(intent.id))),
                    ("Discard", lambda: self._spawn(self._discard(intent.id))),
                ],
            )
        elif event.kind is EventKind.CREATE_QUEUED and event.intent is not None:
            self.banners.show_message(f"queued-{event.intent.id}", "info", event.message or "Create queued")
        if not self.status_soon.isActive():
            self.status_soon.start()

    async def _lookup(self, intent_id: str) -> None:
        found = await self.context.engine.lookup_intent(intent_id)
        if len(found) == 1:
            record = await self.context.engine.adopt_intent(intent_id, found[0])
            self.run_changed(record)
            self.banners.dismiss(f"intent-{intent_id}")
            self.banners.show_message("lookup", "info", f"Found it: run {record.ref.run_id} is followed now.")
        elif not found:
            self.banners.show_message(
                "lookup", "info", "The service has no such run: it was not created. You may discard it."
            )
        else:
            ids = ", ".join(s.ref.run_id for s in found[:5])
            self.banners.show_message(
                "lookup", "info", f"Several runs could be it ({ids}); check the run list."
            )

    async def _discard(self, intent_id: str) -> None:
        await self.context.engine.discard_intent(intent_id)
        self.banners.dismiss(f"intent-{intent_id}")

    def _spawn(self, coro: Any) -> None:
        spawn(coro, self._error)

    def _error(self, error: BaseException) -> None:
        self.banners.show_message("error", "error", str(error))

    def show_details(self, view: RunsView, record: RunRecord | None) -> None:
        if record is None:
            view.details.show_record(None, [], run_url=None, actions=[], service_name="")
            return
        spawn(self._details(view, record), self._error)

    async def _details(self, view: RunsView, record: RunRecord) -> None:
        timeline = await self.context.history.timeline(record.id)
        service = registry().get(record.ref.service)
        url = None
        try:
            client = self.context.workspace.cached_client(record.profile_id)
            url = client.run_url(record.ref)
        except KeyError:
            pass
        actions = list(service.actions) if service is not None else []
        name = service.display_name if service is not None else record.ref.service
        view.details.show_record(
            record,
            timeline,
            run_url=url,
            actions=actions,
            service_name=name,
            target_label=service.target_label if service is not None else "Target",
        )

    # -- profiles ------------------------------------------------------------------------------
    def _profile(self, profile_id: str) -> Profile | None:
        return next((p for p in self.context.profiles() if str(p.id) == profile_id), None)

    def health_text(self, profile: Profile) -> str:
        reason = self.context.sign_in_needed.get(str(profile.id))
        if reason:
            return f"Sign-in needed: {reason}"
        health = self.health.get(str(profile.id))
        if health is None:
            health = self.context.engine.health([str(profile.id)])[str(profile.id)]
        now = datetime.now(UTC)
        if health.state is Health.IDLE:
            return "Connected; no runs followed yet"
        text = describe(health, now)
        text = text[:1].upper() + text[1:]
        if health.state is Health.OK:
            text += f" · {health.followed} followed · {next_check_text(health.next_check, now).lower()}"
        if health.detail and health.state in (Health.UNREACHABLE, Health.STALE):
            text += f" · {health.detail}"
        return text

    def open_profile_dialog(self, service: str, profile: Profile | None) -> None:
        spawn(self._open_profile_dialog(service, profile), self._error)

    async def _open_profile_dialog(self, service: str, profile: Profile | None) -> None:
        stored = await self.context.workspace.stored_secrets(profile) if profile is not None else {}
        dialog = ProfileDialog(
            service,
            profile=profile,
            stored_secrets=stored,
            secret_warning=self.context.workspace.secrets.warning,
            default_notifications=self.context.workspace.settings.notifications,
            tester=self._tester(profile),
            parent=self,
        )

        def saved() -> None:
            spawn(
                self._save_profile(dialog.result_profile(), dialog.result_secrets(), is_new=profile is None),
                self._error,
            )

        dialog.saved.connect(saved)
        self._keep(dialog)
        dialog.open()

    def _tester(self, existing: Profile | None) -> Any:
        async def test(draft: Profile, typed: dict[str, str]) -> str:
            secrets: dict[str, str | None] = {}
            if existing is not None:
                secrets.update(
                    await self.context.workspace.secrets.get_all(str(existing.id), existing.secret_fields())
                )
            secrets.update(typed)
            from runmonitor.services import get

            config = draft.config(secrets)
            async with get(draft.service)(config) as client:
                return str(await client.check_connection())

        return test

    async def _save_profile(self, profile: Profile, secrets: dict[str, str], *, is_new: bool) -> None:
        workspace = self.context.workspace
        if is_new:
            saved = await workspace.add_profile(profile, secrets)
        else:
            saved = await workspace.update_profile(profile, secrets)
        await self.context.profile_saved(saved)
        self.banners.dismiss(f"auth-{saved.id}")
        self._set_profile_names({str(p.id): p.name for p in self.context.profiles()})
        self.service_tabs[saved.service].reload_profiles(select=str(saved.id))
        self._update_status()

    def test_profile(self, profile: Profile) -> None:
        spawn(self._test_profile(profile), self._error)

    async def _test_profile(self, profile: Profile) -> None:
        key = f"test-{profile.id}"
        try:
            client = await self.context.workspace.client(profile)
            text = await client.check_connection()
        except ServiceError as exc:
            self.banners.show_message(key, "error", f"{profile.name}: {check_outcome(exc)[1]}")
        else:
            self.banners.show_message(key, "info", f"{profile.name}: OK — {text}")

    def confirm_remove_profile(self, profile: Profile) -> None:
        dialog = QDialog(self)
        dialog.setWindowTitle("Remove profile")
        text = QLabel(f"Remove the {profile.service} profile {profile.name!r} and delete its stored secrets?")
        text.setTextFormat(Qt.TextFormat.PlainText)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Yes | QDialogButtonBox.StandardButton.No)
        buttons.accepted.connect(dialog.accept)
        buttons.rejected.connect(dialog.reject)
        layout = QVBoxLayout(dialog)
        layout.addWidget(text)
        layout.addWidget(buttons)
        dialog.accepted.connect(lambda: self._spawn(self._remove_profile(profile)))
        self._keep(dialog)
        dialog.open()

    async def _remove_profile(self, profile: Profile) -> None:
        for record in self.context.engine.followed():
            if record.profile_id == str(profile.id):
                await self.context.engine.forget(record.id)
        await self.context.workspace.remove_profile(profile)
        self.service_tabs[profile.service].reload_profiles()

    # -- status --------------------------------------------------------------------------------
    def _tick(self) -> None:
        for view in [self.all_runs, *(t.view for t in self.service_tabs.values())]:
            view.model.tick()
        self._update_status()

    def _update_status(self) -> None:
        engine = self.context.engine
        now = datetime.now(UTC)
        profiles = self.context.profiles()
        self.health = engine.health([str(p.id) for p in profiles])
        for profile_id in self.context.sign_in_needed:
            if profile_id in self.health:
                self.health[profile_id] = replace(self.health[profile_id], state=Health.SIGN_IN)
        names = {key: service.display_name for key, service in registry().items()}
        entries = [
            Entry(str(p.id), f"{p.name} · {names.get(p.service, p.service)}", self.health[str(p.id)])
            for p in profiles
        ]
        self.health_strip.show_entries(entries, now)
        followed = len(engine.followed())
        self.paused_label.setText("Polling paused" if engine.is_paused() else f"Following {followed} runs")
        self.pause_action.setChecked(engine.is_paused())
        upcoming = [h.next_check for h in self.health.values() if h.next_check is not None]
        self.next_check_label.setText(next_check_text(min(upcoming) if upcoming else None, now))
        self._health_banners(profiles)
        for tab in self.service_tabs.values():
            tab.update_health()
        sign_in = sum(1 for h in self.health.values() if h.state is Health.SIGN_IN)
        self.overview = overview(self.all_runs.model.records(), sign_in=sign_in)
        title = f"{self._title} — {self.overview.summary()}"
        if self.notifications is not None and self.notifications.muted_until is not None:
            title += " · notifications paused"
        if self.windowTitle() != title:
            self.setWindowTitle(title)
        if self.tray is not None:
            self.tray.update(self.overview)

    def _health_banners(self, profiles: list[Profile]) -> None:
        """One banner per host that is down or rate limiting us; gone when it recovers."""
        names = {key: service.display_name for key, service in registry().items()}
        troubled: dict[tuple[Health, str], list[tuple[Profile, ProfileHealth]]] = {}
        for profile in profiles:
            health = self.health[str(profile.id)]
            if health.state in (Health.UNREACHABLE, Health.RATE_LIMITED):
                troubled.setdefault((health.state, health.host), []).append((profile, health))
        wanted: set[str] = set()
        for (state, host), members in troubled.items():
            who = ", ".join(f"{names.get(p.service, p.service)} {p.name!r}" for p, _ in members)
            first = members[0][1]
            if state is Health.UNREACHABLE:
                key = f"down-{host}"
                detail = f" ({first.detail})" if first.detail else ""
                text = (
                    f"{host} ({who}) is unreachable since {clock(first.since)}{detail}. "
                    f"RunMonitor keeps trying, gently; next try {clock(first.until)}."
                )
                actions = None if key in self.banners.keys() else [("Retry now", self._retry_now)]
                self.banners.show_message(key, "warning", text, actions)
            else:
                key = f"limited-{host}"
                text = f"{host} ({who}) asked us to slow down; checks resume at {clock(first.until)}."
                self.banners.show_message(key, "info", text)
            wanted.add(key)
        for key in self.banners.keys():
            if key.startswith(("down-", "limited-")) and key not in wanted:
                self.banners.dismiss(key)

    def _retry_now(self) -> None:
        self.context.engine.refresh()

    def _show_startup_notices(self) -> None:
        for index, notice in enumerate(self.context.workspace.notices):
            self.banners.show_message(f"notice-{notice.topic}-{index}", notice.level, notice.text)
        for profile_id, reason in self.context.sign_in_needed.items():
            profile = self._profile(profile_id)
            if profile is not None:
                self.banners.show_message(
                    f"auth-{profile_id}",
                    "error",
                    f"Sign-in needed for {profile.service} profile {profile.name!r}: {reason}",
                    [("Edit profile…", partial(self.open_profile_dialog, profile.service, profile))],
                )

    def _keep(self, dialog: QDialog) -> None:
        self._dialogs.append(dialog)
        dialog.finished.connect(lambda *_: self._dialogs.remove(dialog) if dialog in self._dialogs else None)

    # -- preferences, import and export ---------------------------------------------------------
    def open_preferences(self) -> PreferencesDialog:
        dialog = PreferencesDialog(self.context.workspace.settings, self._apply_preferences, self)
        dialog.applied.connect(lambda note: self.statusBar().showMessage(note, 8000))
        self._keep(dialog)
        dialog.open()
        return dialog

    async def _apply_preferences(self, changes: dict[str, Any], storage: str | None) -> str | None:
        workspace = self.context.workspace
        notes: list[str] = []
        if changes:
            settings = await workspace.update_preferences(changes)
            self.context.preferences_changed()
            self.theme.set_appearance(settings.appearance)
            if self.notifications is not None:
                self.notifications.settings_changed(settings)
        if storage is not None:
            notes += await workspace.change_secret_storage(storage)  # type: ignore[arg-type]
            for key in self.banners.keys():
                if key.startswith(("notice-secrets-", "secrets-")):
                    self.banners.dismiss(key)
            for index, note in enumerate(notes):
                self.banners.show_message(f"secrets-{index}", "warning", note)
            notes = [f"Secrets moved to {workspace.secrets.backend}."]
        return " ".join(["Preferences saved.", *notes])

    def export_profiles(self) -> None:
        if not self.context.profiles():
            self.banners.show_message("export", "info", "There are no profiles to export yet.")
            return
        dialog = QFileDialog(self, "Export profiles", str(Path.home() / "runmonitor-profiles.json"))
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilter("Profile exports (*.json)")
        dialog.setDefaultSuffix("json")
        dialog.fileSelected.connect(lambda path: self._spawn(self._export_to(Path(path))))
        self._keep(dialog)
        dialog.open()

    async def _export_to(self, path: Path) -> None:
        try:
            count = await asyncio.to_thread(export_profiles, self.context.workspace.settings, path)
        except (SettingsError, OSError) as exc:
            self.banners.show_message("export", "error", f"Profiles not exported to {path}: {exc}")
            return
        self.banners.show_message(
            "export",
            "info",
            f"Exported {count} profile(s) to {path}. Secrets are not in the file: whoever imports it "
            "enters them.",
        )

    def import_profiles(self) -> None:
        dialog = QFileDialog(self, "Import profiles", str(Path.home()))
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptOpen)
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setNameFilter("Profile exports (*.json);;All files (*)")
        dialog.fileSelected.connect(lambda path: self._spawn(self.import_from(Path(path))))
        self._keep(dialog)
        dialog.open()

    async def import_from(self, path: Path) -> ImportDialog | None:
        """Read an export; profiles that clash with existing ones are decided in a dialog."""
        try:
            imported = await asyncio.to_thread(read_import, path)
        except SettingsError as exc:
            self.banners.show_message("import", "error", f"Nothing imported: {exc}")
            return None
        plan = plan_import(self.context.workspace.settings, imported, "ask")
        dialog = ImportDialog(path, plan, self)
        dialog.accepted.connect(lambda: self._spawn(self._finish_import(plan)))
        self._keep(dialog)
        dialog.open()
        return dialog

    async def _finish_import(self, plan: ImportPlan) -> None:
        try:
            outcome = await self.context.workspace.import_profiles(plan)
        except SettingsError as exc:
            self.banners.show_message("import", "error", f"Nothing imported: {exc}")
            return
        for profile in [*outcome.added, *outcome.replaced]:
            await self.context.profile_saved(profile)
        self._set_profile_names({str(p.id): p.name for p in self.context.profiles()})
        for tab in self.service_tabs.values():
            tab.reload_profiles()
        changed = [*outcome.added, *outcome.replaced]
        needing = [p.name for p in changed if str(p.id) in self.context.sign_in_needed]
        text = (
            f"Imported {len(outcome.added)} profile(s), replaced {len(outcome.replaced)}, "
            f"skipped {outcome.skipped}."
        )
        if needing:
            text += f" Enter the secrets of {', '.join(repr(n) for n in needing)} (Manage profiles…)."
        self.banners.show_message("import", "info", text)
        self._update_status()

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
        widget = self.tabs.currentWidget()
        view = widget.view if isinstance(widget, ServiceTab) else self.all_runs
        if view.proxy.rowCount():
            view.table.selectRow(0)

    def service_tabs_views(self) -> list[tuple[str, RunsView]]:
        return [(key, tab.view) for key, tab in self.service_tabs.items()]

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
                self._remember_close(True)
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
                self._remember_close(True)
            dialog.accept()
            self.showMinimized()

        def quit_now() -> None:
            if remember.isChecked():
                self._remember_close(False)
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
        self._keep(dialog)
        dialog.open()
        return dialog

    def _remember_close(self, keep_running: bool) -> None:
        choice = "background" if keep_running else "quit"
        self._spawn(self.context.workspace.update_preferences({"close_to_tray": choice}))
