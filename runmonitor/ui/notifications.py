"""Notifications: the policy decides what to say, the best channel available says it.

Channels, best first:

1. desktop notifications (``org.freedesktop.Notifications`` over D-Bus on Linux, the
   Notification Center on macOS, toasts on Windows), through desktop-notifier: they are kept
   by the desktop, can stay until dismissed, and a click opens the run;
2. the tray icon's message bubble, where there is a tray and no notification server (on
   Linux, Qt only reaches the notification server through a StatusNotifierItem tray, so the
   bubble is the fallback, not the first choice);
3. a banner in the window, always available.

A notification that a channel fails to deliver is tried on the next one. The chosen channel
and why are shown in Help → About and by ``runmonitor doctor``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QSystemTrayIcon

from runmonitor.engine import RunEvent
from runmonitor.notify.channels import Channel, probe_desktop_channel
from runmonitor.notify.hooks import HookRunner
from runmonitor.notify.notification import Notification
from runmonitor.notify.policy import NotificationPolicy
from runmonitor.storage.settings.model import Settings
from runmonitor.ui import resources
from runmonitor.ui.runs_view import spawn

if TYPE_CHECKING:
    from runmonitor.app.context import AppContext

log = logging.getLogger(__name__)

_LEVELS = {"critical": "error", "normal": "info", "low": "info"}


class NotificationCenter(QObject):
    """Feeds engine events to the policy, flushes it on time and delivers what it returns."""

    def __init__(
        self,
        context: AppContext,
        *,
        show_banner: Callable[[Notification, Callable[[], None]], None],
        open_runs: Callable[[Notification], None],
        tray: QSystemTrayIcon | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.context = context
        self._show_banner = show_banner
        self._open_runs = open_runs
        self.tray = tray
        settings = context.workspace.settings
        options = settings.notify_options
        self.policy = NotificationPolicy(
            self._prefs_for,
            self._profile_name,
            context.engine.clock,
            options.coalesce_window_s,
            max_per_flush=options.max_per_flush,
            notify_fixed=options.notify_fixed,
            run_url=self._run_url,
        )
        muted = settings.notifications_muted_until
        if muted is not None and muted > context.engine.clock.now():
            self.policy.mute_until(muted)
        self.hooks = HookRunner()
        self.desktop: Channel | None = None
        self.channel = "banner"
        self.reason = "checking for a notification server…"
        self.delivered: list[tuple[str, Notification]] = []  # (channel, notification), newest last
        self._tray_pending: Notification | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.flush)
        if tray is not None:
            tray.messageClicked.connect(self._tray_clicked)
        self._unsubscribe = context.engine.subscribe(self.on_event)

    # -- setup -----------------------------------------------------------------------------------
    async def start(self, *, desktop: Channel | bool | None = True) -> None:
        """Choose the channel: probe the desktop's notification service unless told otherwise
        (``desktop`` may be a ready channel, for tests, or False to skip it)."""
        if desktop is True:
            try:
                icon = await asyncio.to_thread(
                    resources.app_icon_path, self.context.workspace.paths.cache_dir
                )
            except OSError:
                icon = None
            channel, reason = await probe_desktop_channel(icon_path=icon)
            self.desktop = channel
        elif desktop is False or desktop is None:
            self.desktop, reason = None, "desktop notifications not used"
        else:
            self.desktop, reason = desktop, f"{getattr(desktop, 'name', 'channel')} (given)"
        if self.desktop is not None:
            self.channel, self.reason = "desktop", reason
        elif self.tray is not None and QSystemTrayIcon.supportsMessages():
            self.channel, self.reason = (
                "tray",
                f"the tray icon's messages; no desktop notifications: {reason}",
            )
        else:
            self.channel = "banner"
            self.reason = f"banners in the window; no desktop notifications ({reason}) and no tray"
        log.info("notifications go to: %s (%s)", self.channel, self.reason)

    def describe(self) -> str:
        """For About/doctor: the channel in use and why."""
        return self.reason

    def settings_changed(self, settings: Settings) -> None:
        self.policy.configure(settings.notify_options)

    async def aclose(self) -> None:
        self._unsubscribe()
        try:
            self._timer.stop()
        except RuntimeError:  # the window (and this timer with it) is already gone
            pass
        await self.hooks.aclose()
        if self.desktop is not None:
            await self.desktop.close()

    # -- policy glue -------------------------------------------------------------------------------
    def _settings(self) -> Settings:
        return self.context.workspace.settings

    def _prefs_for(self, profile_id: str) -> Any:
        settings = self._settings()
        return settings.notifications_for(settings.profile(profile_id))

    def _profile_name(self, profile_id: str) -> str:
        return self._settings().profile(profile_id).name

    def _run_url(self, record: Any) -> str | None:
        try:
            return self.context.workspace.cached_client(record.profile_id).run_url(record.ref)
        except Exception:  # a profile that is gone or a service without links
            return None

    def on_event(self, event: RunEvent) -> None:
        self.policy.feed(event)
        hook = self._settings().hook
        if hook is not None and hook.wants(event):
            try:
                name = self._profile_name(event.profile_id)
            except KeyError:
                name = event.profile_id
            self.hooks.submit(
                hook, event, profile_name=name, url=self._run_url(event.run) if event.run else None
            )
        self._schedule()

    def _schedule(self) -> None:
        due = self.policy.due()
        if due is None:
            return
        wait_ms = max(0, int((due - self.context.engine.clock.monotonic()) * 1000))
        if not self._timer.isActive() or self._timer.remainingTime() > wait_ms:
            self._timer.start(wait_ms)

    def flush(self) -> list[Notification]:
        """Deliver whatever the policy has ready now; returns it."""
        ready = self.policy.flush()
        for notification in ready:
            spawn(self.deliver(notification), lambda exc: log.warning("notification failed: %s", exc))
        self._schedule()
        return ready

    # -- muting -------------------------------------------------------------------------------------
    def mute_until(self, until: datetime | None) -> int:
        """Pause notifications until ``until`` (None: resume); remembered across restarts.
        Returns how many were held back when resuming."""
        held = self.policy.resume() if until is None else 0
        if until is not None:
            self.policy.mute_until(until)
        spawn(
            self.context.workspace.update_preferences({"notifications_muted_until": until}),
            lambda exc: log.warning("could not save the notification pause: %s", exc),
        )
        return held

    @property
    def muted_until(self) -> datetime | None:
        return self.policy.muted_until

    # -- delivery ----------------------------------------------------------------------------------
    async def deliver(self, notification: Notification) -> str:
        """Show ``notification`` on the best channel that takes it; returns the channel's name."""

        def clicked() -> None:
            self._open_runs(notification)

        if self.desktop is not None:
            try:
                sent = await asyncio.wait_for(self.desktop.send(notification, clicked), 10)
            except Exception as exc:  # a channel must never take the app down
                log.warning("desktop notification failed: %s", exc)
                sent = False
            if sent:
                return self._record("desktop", notification)
        if self.tray is not None and self.tray.isVisible() and QSystemTrayIcon.supportsMessages():
            icon = (
                QSystemTrayIcon.MessageIcon.Critical
                if notification.urgency == "critical"
                else QSystemTrayIcon.MessageIcon.Information
            )
            self._tray_pending = notification
            self.tray.showMessage(
                notification.title, notification.body, icon, 0 if notification.sticky else 10000
            )
            return self._record("tray", notification)
        self._show_banner(notification, clicked)
        return self._record("banner", notification)

    def _record(self, channel: str, notification: Notification) -> str:
        self.delivered.append((channel, notification))
        del self.delivered[:-50]
        return channel

    def _tray_clicked(self) -> None:
        if self._tray_pending is not None:
            self._open_runs(self._tray_pending)


def banner_level(notification: Notification) -> str:
    return _LEVELS.get(notification.urgency, "info")
