"""The window's controller: what the tabs, the tray, the details pane and the dialogs talk to.

It holds the :class:`~runmonitor.app.context.AppContext` and acts on it (create, cancel and act
on runs, watch, open a run, pause polling or notifications, profiles saved, preferences changed,
profiles imported and exported), keeps the health and overview state, and fans the engine's
events out as Qt signals the views connect to. It lays nothing out: the main window does that,
and shows the controller's messages in its banner area.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QLabel,
    QSystemTrayIcon,
    QVBoxLayout,
    QWidget,
)

from runmonitor.app.context import AppContext
from runmonitor.app.overview import Overview, overview
from runmonitor.domain.errors import ProfileGone, ServiceError, check_outcome
from runmonitor.domain.events import EventKind
from runmonitor.domain.models import RunAction
from runmonitor.domain.text import plural
from runmonitor.engine import Health, ProfileHealth, RunEvent
from runmonitor.notify.notification import Notification
from runmonitor.services import registry
from runmonitor.storage.history import DurationStats, RunRecord
from runmonitor.storage.settings.errors import SettingsError
from runmonitor.storage.settings.model import Profile, Settings
from runmonitor.storage.settings.transfer import ImportPlan, export_profiles, plan_import, read_import
from runmonitor.ui.banners import BannerArea
from runmonitor.ui.details import DetailsPane
from runmonitor.ui.health_strip import clock, describe, next_check_text
from runmonitor.ui.import_dialog import ImportDialog
from runmonitor.ui.notifications import NotificationCenter
from runmonitor.ui.profile_dialog import ProfileDialog
from runmonitor.ui.runs_view import spawn

#: Every run the window shows, newest state (for the overview).
RunSource = Callable[[], list[RunRecord]]


class Controller(QObject):
    """One per window. ``banners`` is where its messages go, ``window`` the parent of the dialogs
    it opens, ``runs`` every run the window shows (for the overview)."""

    #: Every engine event, in the engine's order (the views update their rows from it).
    event_received = Signal(object)  # RunEvent
    #: A run changed outside the engine's events (created, acted on, adopted): show it.
    run_updated = Signal(object)  # RunRecord
    #: ``health`` and ``overview`` were recomputed: the status displays refresh.
    status_changed = Signal()
    #: The profiles of a service changed ("" for every service); the id to select, or None.
    profiles_changed = Signal(str, object)
    #: The profile names the tables show (profile id → name).
    profile_names_changed = Signal(object)
    #: Global preferences were saved (the new Settings).
    preferences_changed = Signal(object)
    #: A short note for the status bar.
    note = Signal(str)
    #: Bring the window up on this run id.
    run_opened = Signal(int)
    #: Bring the window up.
    raise_requested = Signal()
    #: Show the window if it is hidden, hide it if it is shown.
    visibility_toggled = Signal()
    #: Quit the app.
    quit_requested = Signal()

    def __init__(self, context: AppContext, *, banners: BannerArea, window: QWidget, runs: RunSource) -> None:
        super().__init__(window)
        self.context = context
        self.banners = banners
        self.window = window
        self._runs = runs
        self.health: dict[str, ProfileHealth] = {}
        self.overview: Overview = overview([])
        self.notifications: NotificationCenter | None = None
        self.dialogs: list[QDialog] = []

    def attach(self, tray: QSystemTrayIcon | None) -> None:
        """Start the notification center (on ``tray`` where there is one), then follow the
        engine's events (in that order: the center hears each event first)."""
        self.notifications = NotificationCenter(
            self.context,
            show_banner=self._notification_banner,
            open_runs=self._open_notification,
            tray=tray,
            parent=self,
        )
        self.context.engine.subscribe(self.on_event)

    async def start(self, *, desktop: bool) -> None:
        """Choose the notification channel (``desktop``: probe the desktop's server)."""
        if self.notifications is not None:
            await self.notifications.start(desktop=desktop)

    async def aclose(self) -> None:
        if self.notifications is not None:
            await self.notifications.aclose()

    # -- helpers --------------------------------------------------------------------------------
    def keep(self, dialog: QDialog) -> None:
        """Hold a reference to an open dialog until it finishes."""
        self.dialogs.append(dialog)
        dialog.finished.connect(lambda *_: self.dialogs.remove(dialog) if dialog in self.dialogs else None)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` from a Qt slot; a failure becomes the "error" banner."""
        spawn(coro, self._error)

    def _error(self, error: BaseException) -> None:
        self.banners.show_message("error", "error", str(error))

    def report(self, key: str, error: BaseException) -> None:
        """Show a failure as the error banner ``key``."""
        self.banners.show_message(key, "error", str(error))

    def profile(self, profile_id: str) -> Profile | None:
        return next((p for p in self.context.profiles() if str(p.id) == profile_id), None)

    def profile_names(self) -> dict[str, str]:
        return {str(p.id): p.name for p in self.context.profiles()}

    def demo_request(self, service: str) -> dict[str, Any] | None:
        """In the demo, values the simulated service knows (for a new run's form); else None."""
        if self.context.demo and self.context.simulator is not None:
            values: dict[str, Any] = self.context.simulator.demo_request(service)
            return values
        return None

    # -- data -----------------------------------------------------------------------------------
    async def history(self) -> list[RunRecord]:
        """The runs the window starts with."""
        records, _ = await self.context.history.query_runs(limit=5000)
        return records

    async def durations(self, records: list[RunRecord]) -> dict[tuple[str, str], DurationStats]:
        """Typical durations per (service, target) of ``records``."""
        durations = {}
        for service, profile, target in {(r.ref.service, r.profile_id, r.ref.target) for r in records}:
            stats = await self.context.history.duration_stats(service, profile, target)
            if stats is not None:
                durations[(service, target)] = stats
        return durations

    # -- runs -----------------------------------------------------------------------------------
    def run_changed(self, record: RunRecord) -> None:
        self.run_updated.emit(record)

    def on_event(self, event: RunEvent) -> None:
        """The engine's subscriber: fan the event out, then the banners it calls for."""
        self.event_received.emit(event)
        if event.kind is EventKind.AUTH_NEEDED:
            profile = self.profile(event.profile_id)
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
                    ("Look it up", lambda: self.spawn(self._lookup(intent.id))),
                    ("Discard", lambda: self.spawn(self._discard(intent.id))),
                ],
            )
        elif event.kind is EventKind.CREATE_QUEUED and event.intent is not None:
            self.banners.show_message(f"queued-{event.intent.id}", "info", event.message or "Create queued")

    async def create_run(self, profile_id: str, request: Any) -> RunRecord:
        record: RunRecord = await self.context.engine.create_run(profile_id, request)
        return record

    async def perform(self, record: RunRecord, action: RunAction) -> RunRecord:
        updated: RunRecord = await self.context.engine.perform(record.id, action)
        self.run_changed(updated)
        return updated

    async def watch(self, profile_id: str, target: str) -> None:
        await self.context.engine.watch(profile_id, target)

    def refresh(self) -> None:
        """Check the followed runs now."""
        self.context.engine.refresh()

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

    def show_details(self, pane: DetailsPane, record: RunRecord | None) -> None:
        """Fill ``pane`` with ``record`` (its timeline is read from the history first)."""
        if record is None:
            pane.show_record(None, [], run_url=None, actions=[], service_name="")
            return
        spawn(self._details(pane, record), self._error)

    async def _details(self, pane: DetailsPane, record: RunRecord) -> None:
        timeline = await self.context.history.timeline(record.id)
        service = registry().get(record.ref.service)
        url = None
        try:
            client = self.context.workspace.cached_client(record.profile_id)
            url = client.run_url(record.ref)
        except (KeyError, ProfileGone):
            pass
        actions = list(service.actions) if service is not None else []
        name = service.display_name if service is not None else record.ref.service
        pane.show_record(
            record,
            timeline,
            run_url=url,
            actions=actions,
            service_name=name,
            target_label=service.target_label if service is not None else "Target",
        )

    # -- polling and notifications --------------------------------------------------------------
    def toggle_pause(self) -> None:
        if self.context.engine.is_paused():
            self.context.engine.resume()
        else:
            self.context.engine.pause()
        self.update_status()

    def is_paused(self) -> bool:
        return self.context.engine.is_paused()

    def muted_until(self) -> datetime | None:
        return self.notifications.muted_until if self.notifications is not None else None

    def mute_notifications(self, until: datetime | None) -> None:
        if self.notifications is None:
            return
        held = self.notifications.mute_until(until)
        if until is None:
            note = "Notifications resumed"
            note += f" ({held} held back while paused)." if held else "."
        else:
            note = f"Notifications paused until {until.astimezone().strftime('%a %H:%M')}."
        self.note.emit(note)
        self.update_status()

    def open_run(self, run_id: int) -> None:
        self.run_opened.emit(run_id)

    def toggle_window(self) -> None:
        self.visibility_toggled.emit()

    def quit(self) -> None:
        self.quit_requested.emit()

    def _notification_banner(self, notification: Notification, clicked: Callable[[], None]) -> None:
        level = "error" if notification.urgency == "critical" else "info"
        actions = [("Show run", clicked)] if notification.run_ids else None
        self.banners.show_message(
            f"notify-{notification.key}", level, f"{notification.title} — {notification.body}", actions
        )

    def _open_notification(self, notification: Notification) -> None:
        if notification.run_ids:
            self.open_run(notification.run_ids[0])
        else:
            self.raise_requested.emit()

    # -- health and overview ----------------------------------------------------------------------
    def update_status(self) -> None:
        """Recompute every profile's health and the overview, show the outage banners, and tell
        the status displays."""
        profiles = self.context.profiles()
        self.health = self.context.engine.health([str(p.id) for p in profiles])
        for profile_id in self.context.sign_in_needed:
            if profile_id in self.health:
                self.health[profile_id] = replace(self.health[profile_id], state=Health.SIGN_IN)
        self._health_banners(profiles)
        sign_in = sum(1 for h in self.health.values() if h.state is Health.SIGN_IN)
        self.overview = overview(self._runs(), sign_in=sign_in)
        self.status_changed.emit()

    def health_text(self, profile: Profile) -> str:
        """One profile's connection health in a sentence (for its service tab)."""
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
                actions = None if key in self.banners.keys() else [("Retry now", self.refresh)]
                self.banners.show_message(key, "warning", text, actions)
            else:
                key = f"limited-{host}"
                text = f"{host} ({who}) asked us to slow down; checks resume at {clock(first.until)}."
                self.banners.show_message(key, "info", text)
            wanted.add(key)
        for key in self.banners.keys():
            if key.startswith(("down-", "limited-")) and key not in wanted:
                self.banners.dismiss(key)

    def show_startup_notices(self) -> None:
        """The workspace's notices, and a banner per profile that needs signing in."""
        for index, notice in enumerate(self.context.workspace.notices):
            self.banners.show_message(f"notice-{notice.topic}-{index}", notice.level, notice.text)
        for profile_id, reason in self.context.sign_in_needed.items():
            profile = self.profile(profile_id)
            if profile is not None:
                self.banners.show_message(
                    f"auth-{profile_id}",
                    "error",
                    f"Sign-in needed for {profile.service} profile {profile.name!r}: {reason}",
                    [("Edit profile…", partial(self.open_profile_dialog, profile.service, profile))],
                )

    # -- profiles -------------------------------------------------------------------------------
    def open_profile_dialog(self, service: str, profile: Profile | None) -> None:
        """The profile dialog of ``service``: a new profile (None) or ``profile`` to edit."""
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
            parent=self.window,
        )

        def saved() -> None:
            spawn(
                self._save_profile(dialog.result_profile(), dialog.result_secrets(), is_new=profile is None),
                self._error,
            )

        dialog.saved.connect(saved)
        self.keep(dialog)
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
        self.profile_names_changed.emit(self.profile_names())
        self.profiles_changed.emit(saved.service, str(saved.id))
        self.update_status()

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
        dialog = QDialog(self.window)
        dialog.setWindowTitle("Remove profile")
        text = QLabel(f"Remove the {profile.service} profile {profile.name!r} and delete its stored secrets?")
        text.setTextFormat(Qt.TextFormat.PlainText)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Yes | QDialogButtonBox.StandardButton.No)
        buttons.accepted.connect(dialog.accept)
        buttons.rejected.connect(dialog.reject)
        layout = QVBoxLayout(dialog)
        layout.addWidget(text)
        layout.addWidget(buttons)
        dialog.accepted.connect(lambda: self.spawn(self._remove_profile(profile)))
        self.keep(dialog)
        dialog.open()

    async def _remove_profile(self, profile: Profile) -> None:
        for record in self.context.engine.followed():
            if record.profile_id == str(profile.id):
                await self.context.engine.forget(record.id)
        await self.context.workspace.remove_profile(profile)
        self.profiles_changed.emit(profile.service, None)

    # -- preferences ----------------------------------------------------------------------------
    async def apply_preferences(self, changes: dict[str, Any], storage: str | None) -> str | None:
        """Save the Preferences dialog's changes (and move the secrets); the note to show."""
        workspace = self.context.workspace
        notes: list[str] = []
        if changes:
            settings: Settings = await workspace.update_preferences(changes)
            self.context.preferences_changed()
            self.preferences_changed.emit(settings)
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

    def remember_close(self, keep_running: bool) -> None:
        """Remember what closing the window does: keep running, or quit."""
        choice = "background" if keep_running else "quit"
        self.spawn(self.context.workspace.update_preferences({"close_to_tray": choice}))

    # -- import and export ----------------------------------------------------------------------
    def export_profiles(self) -> None:
        if not self.context.profiles():
            self.banners.show_message("export", "info", "There are no profiles to export yet.")
            return
        dialog = QFileDialog(self.window, "Export profiles", str(Path.home() / "runmonitor-profiles.json"))
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilter("Profile exports (*.json)")
        dialog.setDefaultSuffix("json")
        dialog.fileSelected.connect(lambda path: self.spawn(self.export_to(Path(path))))
        self.keep(dialog)
        dialog.open()

    async def export_to(self, path: Path) -> None:
        try:
            count = await asyncio.to_thread(export_profiles, self.context.workspace.settings, path)
        except (SettingsError, OSError) as exc:
            self.banners.show_message("export", "error", f"Profiles not exported to {path}: {exc}")
            return
        self.banners.show_message(
            "export",
            "info",
            f"Exported {plural(count, 'profile')} to {path}. Secrets are not in the file: whoever imports it "
            "enters them.",
        )

    def import_profiles(self) -> None:
        dialog = QFileDialog(self.window, "Import profiles", str(Path.home()))
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptOpen)
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setNameFilter("Profile exports (*.json);;All files (*)")
        dialog.fileSelected.connect(lambda path: self.spawn(self.import_from(Path(path))))
        self.keep(dialog)
        dialog.open()

    async def import_from(self, path: Path) -> ImportDialog | None:
        """Read an export; profiles that clash with existing ones are decided in a dialog."""
        try:
            imported = await asyncio.to_thread(read_import, path)
        except SettingsError as exc:
            self.banners.show_message("import", "error", f"Nothing imported: {exc}")
            return None
        plan = plan_import(self.context.workspace.settings, imported, "ask")
        dialog = ImportDialog(path, plan, self.window)
        dialog.accepted.connect(lambda: self.spawn(self._finish_import(plan)))
        self.keep(dialog)
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
        self.profile_names_changed.emit(self.profile_names())
        self.profiles_changed.emit("", None)
        changed = [*outcome.added, *outcome.replaced]
        needing = [p.name for p in changed if str(p.id) in self.context.sign_in_needed]
        text = (
            f"Imported {plural(len(outcome.added), 'profile')}, replaced {len(outcome.replaced)}, "
            f"skipped {outcome.skipped}."
        )
        if needing:
            text += f" Enter the secrets of {', '.join(repr(n) for n in needing)} (Manage profiles…)."
        self.banners.show_message("import", "info", text)
        self.update_status()
