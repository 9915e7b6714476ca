"""The notification policy: which run events become notifications, when, and grouped how.

Qt-free and clock-driven, so it is tested with a fake clock and driven the same way by the
window, the tray and anything else. The engine's events go in with :meth:`NotificationPolicy.feed`;
the caller asks :meth:`~NotificationPolicy.due` when the pending batch wants showing, sets a
timer for that moment and then calls :meth:`~NotificationPolicy.flush`, which returns the
notifications to show now::

    policy = NotificationPolicy(prefs_for, profile_name, clock)
    engine.subscribe(policy.feed)
    ...                                       # when policy.due() is reached:
    for notification in policy.flush():
        await channel.send(notification)

Rules, in the order they are applied to each event:

1. **First check.** States found on the first check after start-up or after waking from sleep
   (``RunEvent.quiet``) are true but not news: never notified.
2. **What counts.** A run that failed, succeeded, was cancelled or started (on the preferences
   ``on_failure``, ``on_success``, ``on_cancel``, ``on_start``). A run found by watching a
   pipeline or job (``discovered``) counts by the status it was found in: someone else's run
   that failed is news too. ``started`` counts only for a run that was new or pending, not for
   one that is running again after its status was unknown. Two kinds are always notified,
   whatever the preferences, because they need the person to act: *sign-in needed* (once per
   profile, until :meth:`~NotificationPolicy.clear_auth` or a good answer from that profile)
   and *creation unconfirmed*. Everything else (created, added, changed, stale, recovered,
   gone, queued, create failed…) is shown in the window, not notified: the person either just
   did it, or it is not about a run's outcome.
3. **No repeats.** Once a failure of a target (a pipeline, job, data flow, export on one profile)
   has been notified, later failures of that target are not, until one of its runs succeeds.
   That success is then notified as **fixed** when failures are notified, even with
   ``on_success`` off (as CCMenu and BuildNotify do). A failure the person was never told about
   (muted, quiet hours, found on the first check) does not silence the next one.
4. **Mute.** A global mute until a time (the tray's "pause notifications"), and a per-profile
   one. Muted events are dropped, not kept for later, and counted in :attr:`~NotificationPolicy.stats`.
5. **Quiet hours** from the profile's preferences (or the global ones), in local time; a window
   may cross midnight (22:00 → 07:00). Dropped and counted like muted ones.
6. **Coalescing.** Events accepted within ``window`` seconds of the first pending one are
   grouped per (profile, outcome): one event gives a detailed notification, several give one
   summary ("3 runs failed on prod (Marquez)"). If one flush would still show more than
   ``max_per_flush`` notifications, the least urgent ones are folded into one more summary.

How notifications read is :mod:`~runmonitor.notify.wording`; what one is (its outcome, key and
urgency) is :mod:`~runmonitor.notify.notification`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo
from enum import StrEnum

from runmonitor.domain.clock import Clock
from runmonitor.domain.events import EventKind
from runmonitor.domain.redact import redact_url
from runmonitor.domain.status import RunStatus
from runmonitor.engine import RunEvent
from runmonitor.notify.notification import Notification, Outcome, Urgency, event_outcome
from runmonitor.notify.wording import event_text, group_text, overflow_text
from runmonitor.storage.history import RunRecord
from runmonitor.storage.settings.model import COALESCED, FIXED, NotificationPrefs, PolicyOptions

log = logging.getLogger(__name__)

__all__ = [
    "COALESCED",
    "FIXED",
    "NotificationPolicy",
    "NotifyStats",
    "PolicyOptions",
    "SuppressReason",
    "in_quiet_hours",
    "until_tomorrow",
]

# Most urgent first: the order notifications of one flush come in, and which are folded last.
_ORDER = {outcome: index for index, outcome in enumerate(Outcome)}
_URGENCY: dict[Outcome, Urgency] = {
    Outcome.FAILED: "critical",
    Outcome.AUTH_NEEDED: "normal",
    Outcome.CREATE_UNCONFIRMED: "normal",
    Outcome.CANCELLED: "normal",
    Outcome.FIXED: "normal",
    Outcome.SUCCEEDED: "normal",
    Outcome.STARTED: "low",
}
_URGENCY_RANK: dict[str, int] = {"low": 0, "normal": 1, "critical": 2}
# Failures, and what needs the person to act, stay until dismissed where the channel allows.
_STICKY = frozenset({Outcome.FAILED, Outcome.AUTH_NEEDED, Outcome.CREATE_UNCONFIRMED})

# Events that only come from a good answer of the service (not stale, gone or sign-in needed).
_GOOD_ANSWERS = frozenset(
    {
        EventKind.CREATED,
        EventKind.DISCOVERED,
        EventKind.ADDED,
        EventKind.STARTED,
        EventKind.SUCCEEDED,
        EventKind.FAILED,
        EventKind.CANCELLED,
        EventKind.UNKNOWN,
        EventKind.CHANGED,
        EventKind.RECOVERED,
    }
)


class SuppressReason(StrEnum):
    """Why an event that could have been notified was not."""

    FIRST_CHECK = "first_check"
    """Found on the first check after start-up or waking from sleep."""
    UNCHANGED = "unchanged"
    """Not a change a person would call news (same status; running again after unknown)."""
    DISABLED = "disabled"
    """The profile's preferences leave this kind out."""
    REPEAT = "repeat"
    """The target keeps failing, and its failure was notified already (or sign-in again)."""
    MUTED = "muted"
    """Notifications were paused (globally or for the profile)."""
    QUIET_HOURS = "quiet_hours"
    """It happened during the profile's quiet hours."""


@dataclass
class NotifyStats:
    """Counters for the UI ("4 notifications suppressed during quiet hours") and diagnostics."""

    received: int = 0
    """Events fed in."""
    ignored: int = 0
    """Events of kinds that never notify (created, changed, stale…)."""
    notifications: int = 0
    """Notifications returned by flush."""
    events_notified: int = 0
    """Events those notifications carry (more than ``notifications`` when coalesced)."""
    suppressed: dict[SuppressReason, int] = field(default_factory=dict)

    def count(self, reason: SuppressReason) -> int:
        return self.suppressed.get(reason, 0)

    def add(self, reason: SuppressReason, n: int = 1) -> None:
        self.suppressed[reason] = self.suppressed.get(reason, 0) + n


# -- time ---------------------------------------------------------------------------------------


def in_quiet_hours(prefs: NotificationPrefs, local: time) -> bool:
    """Whether the local time of day ``local`` falls in the quiet hours of ``prefs``.

    The window includes its start and excludes its end; when the start is later than the end
    it crosses midnight (22:00 → 07:00). Equal start and end mean no quiet hours.
    """
    start, end = prefs.quiet_from, prefs.quiet_until
    if start is None or end is None or start == end:
        return False
    moment = local.replace(tzinfo=None)
    start, end = start.replace(tzinfo=None), end.replace(tzinfo=None)
    if start < end:
        return start <= moment < end
    return moment >= start or moment < end


def until_tomorrow(now: datetime, *, morning: time = time(8, 0), tz: tzinfo | None = None) -> datetime:
    """The next ``morning`` (local time) after ``now``: "pause until tomorrow" in the tray.

    ``tz`` is the local time zone (default: the system's, daylight saving included).
    Returned as an aware UTC datetime.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    local = now.astimezone(tz) if tz is not None else now.astimezone()
    day = local.date()
    for _ in range(2):
        naive = datetime.combine(day, morning.replace(tzinfo=None))
        # A naive local time is placed by the system's rules, so a DST change is respected.
        candidate = naive.replace(tzinfo=tz) if tz is not None else naive.astimezone()
        if candidate > now:
            return candidate.astimezone(UTC)
        day += timedelta(days=1)
    raise AssertionError("unreachable")  # pragma: no cover - tomorrow's morning is always later


# -- the policy ---------------------------------------------------------------------------------


@dataclass
class _Item:
    event: RunEvent
    outcome: Outcome


@dataclass
class _Window:
    start: float
    items: list[_Item] = field(default_factory=list)


@dataclass
class _Group:
    profile_id: str
    outcome: Outcome
    items: list[_Item]


_TargetKey = tuple[str, str, str]


class NotificationPolicy:
    """Turns engine events into notifications; see the module docstring for the rules.

    ``prefs_for(profile_id)`` gives the profile's preferences (its own, else the global
    default: ``Settings.notifications_for``); ``profile_name(profile_id)`` its display name.
    Both may raise KeyError for a profile that is gone (the defaults and the id are used).
    ``run_url(record)`` optionally gives the vendor's link to a run. ``tz`` is the time zone
    quiet hours are read in (default: the system's local time).
    """

    def __init__(
        self,
        prefs_for: Callable[[str], NotificationPrefs],
        profile_name: Callable[[str], str],
        clock: Clock,
        window: float = 5.0,
        *,
        max_per_flush: int = 4,
        notify_fixed: bool = True,
        tz: tzinfo | None = None,
        run_url: Callable[[RunRecord], str | None] | None = None,
    ) -> None:
        if window < 0:
            raise ValueError(f"window must be >= 0, not {window}")
        if max_per_flush < 1:
            raise ValueError(f"max_per_flush must be >= 1, not {max_per_flush}")
        self._prefs_for = prefs_for
        self._profile_name = profile_name
        self.clock = clock
        self.window = window
        self.max_per_flush = max_per_flush
        self.notify_fixed = notify_fixed
        self.tz = tz
        self._run_url = run_url
        self.stats = NotifyStats()
        self._windows: list[_Window] = []
        #: Targets whose latest outcome was a failure -> whether that failure was notified.
        self._failing: dict[_TargetKey, bool] = {}
        self._auth_notified: set[str] = set()
        self._muted_until: datetime | None = None
        self._muted_count = 0
        self._profile_mutes: dict[str, datetime] = {}
        self._seq = 0

    def configure(self, options: PolicyOptions) -> None:
        """Apply changed settings; pending events keep their window."""
        self.window = options.coalesce_window_s
        self.max_per_flush = options.max_per_flush
        self.notify_fixed = options.notify_fixed

    # -- mute ---------------------------------------------------------------------------------
    def mute_until(self, until: datetime | None) -> None:
        """Pause every notification until ``until`` (aware); ``None`` resumes.

        What is pending is dropped too, so nothing pops up right after the person paused.
        """
        if until is not None and until.tzinfo is None:
            raise ValueError("until must be an aware datetime")
        if until is None:
            self._muted_until = None
            return
        if self.muted_until is None:
            self._muted_count = 0
        self._muted_until = until
        if until > self.clock.now():
            dropped = [item for window in self._windows for item in window.items]
            self._windows.clear()
            self._drop(dropped, global_mute=True)

    def resume(self) -> int:
        """End the global mute; returns how many notifications the latest pause held back
        (also when it has just run out by itself)."""
        held = self._muted_count
        self._muted_until = None
        self._muted_count = 0
        return held

    @property
    def muted_until(self) -> datetime | None:
        """The end of the global mute, or None when notifications are on."""
        if self._muted_until is not None and self._muted_until <= self.clock.now():
            self._muted_until = None
        return self._muted_until

    def mute_profile(self, profile_id: str, until: datetime | None) -> None:
        """Pause the notifications of one profile until ``until`` (aware); ``None`` resumes."""
        if until is None:
            self._profile_mutes.pop(profile_id, None)
            return
        if until.tzinfo is None:
            raise ValueError("until must be an aware datetime")
        self._profile_mutes[profile_id] = until
        if until > self.clock.now():
            for window in self._windows:
                self._drop([item for item in window.items if item.event.profile_id == profile_id])
                window.items = [item for item in window.items if item.event.profile_id != profile_id]
            self._windows = [w for w in self._windows if w.items]

    def profile_muted_until(self, profile_id: str) -> datetime | None:
        until = self._profile_mutes.get(profile_id)
        if until is not None and until <= self.clock.now():
            del self._profile_mutes[profile_id]
            return None
        return until

    def _drop(self, items: list[_Item], *, global_mute: bool = False) -> None:
        """Pending items a mute removed: counted, and no longer taken as told."""
        for item in items:
            run = item.event.run
            if item.outcome is Outcome.FAILED and run is not None:
                self._failing[(item.event.profile_id, run.ref.service, run.ref.target)] = False
            elif item.outcome is Outcome.AUTH_NEEDED:
                self._auth_notified.discard(item.event.profile_id)
        if items:
            self.stats.add(SuppressReason.MUTED, len(items))
            if global_mute:
                self._muted_count += len(items)

    def clear_auth(self, profile_id: str) -> None:
        """The profile's credentials changed: a later sign-in problem is notified again."""
        self._auth_notified.discard(profile_id)

    # -- events in ----------------------------------------------------------------------------
    def feed(self, event: RunEvent) -> None:
        """Take one engine event; what is worth showing waits in the pending batch."""
        self.stats.received += 1
        outcome = self._classify(event)
        if outcome is None:
            return
        now = self.clock.monotonic()
        current = self._windows[-1] if self._windows else None
        if current is None or now - current.start >= self.window:
            current = _Window(now)
            self._windows.append(current)
        current.items.append(_Item(event, outcome))

    def _prefs(self, profile_id: str) -> NotificationPrefs:
        try:
            return self._prefs_for(profile_id)
        except KeyError:
            return NotificationPrefs()

    def _name(self, profile_id: str) -> str:
        try:
            return self._profile_name(profile_id)
        except KeyError:
            return profile_id

    def _suppress(self, reason: SuppressReason) -> None:
        self.stats.add(reason)

    def _classify(self, event: RunEvent) -> Outcome | None:
        """The outcome to notify, or None (counted in the stats); keeps the failing targets."""
        if event.kind in _GOOD_ANSWERS:
            # The service answered this profile: it signs in fine again.
            self._auth_notified.discard(event.profile_id)
        outcome = event_outcome(event)
        if outcome is None:
            self.stats.ignored += 1
            return None
        run = event.run
        target: _TargetKey | None = None
        if run is not None:
            target = (event.profile_id, run.ref.service, run.ref.target)
        if outcome in (Outcome.FAILED, Outcome.SUCCEEDED, Outcome.CANCELLED, Outcome.STARTED) and run is None:
            self.stats.ignored += 1
            return None
        if event.quiet:
            if target is not None and outcome is Outcome.FAILED:
                self._failing.setdefault(target, False)
            elif target is not None and outcome is Outcome.SUCCEEDED:
                self._failing.pop(target, None)
            self._suppress(SuppressReason.FIRST_CHECK)
            return None
        if run is not None and event.previous is not None and event.previous is run.status:
            self._suppress(SuppressReason.UNCHANGED)
            return None
        if outcome is Outcome.STARTED and event.previous not in (None, RunStatus.PENDING):
            self._suppress(SuppressReason.UNCHANGED)
            return None
        prefs = self._prefs(event.profile_id)
        # Which outcome, if any, the preferences want; the failing targets are kept either way.
        wanted: bool
        if outcome is Outcome.FAILED:
            assert target is not None
            if not prefs.on_failure:
                self._failing.setdefault(target, False)
                self._suppress(SuppressReason.DISABLED)
                return None
            if self._failing.get(target, False):
                self._suppress(SuppressReason.REPEAT)
                return None
            wanted = True
        elif outcome is Outcome.SUCCEEDED:
            assert target is not None
            was_notified = self._failing.pop(target, False)
            if was_notified and prefs.on_failure and self.notify_fixed:
                outcome = Outcome.FIXED
                wanted = True
            else:
                wanted = prefs.on_success
        elif outcome is Outcome.CANCELLED:
            wanted = prefs.on_cancel
        elif outcome is Outcome.STARTED:
            wanted = prefs.on_start
        elif outcome is Outcome.AUTH_NEEDED:
            if event.profile_id in self._auth_notified:
                self._suppress(SuppressReason.REPEAT)
                return None
            wanted = True
        else:
            wanted = True
        if not wanted:
            self._suppress(SuppressReason.DISABLED)
            return None
        if self.muted_until is not None or self.profile_muted_until(event.profile_id) is not None:
            self._suppress(SuppressReason.MUTED)
            if self._muted_until is not None:
                self._muted_count += 1
            self._remember_unnotified(outcome, target)
            return None
        if in_quiet_hours(prefs, self._local_now().time()):
            self._suppress(SuppressReason.QUIET_HOURS)
            self._remember_unnotified(outcome, target)
            return None
        if outcome is Outcome.FAILED:
            assert target is not None
            self._failing[target] = True
        elif outcome is Outcome.AUTH_NEEDED:
            self._auth_notified.add(event.profile_id)
        return outcome

    def _remember_unnotified(self, outcome: Outcome, target: _TargetKey | None) -> None:
        if outcome is Outcome.FAILED and target is not None:
            self._failing[target] = False

    def _local_now(self) -> datetime:
        now = self.clock.now()
        return now.astimezone(self.tz) if self.tz is not None else now.astimezone()

    def failing_targets(self) -> list[tuple[str, str, str]]:
        """(profile id, service, target) of every target whose latest known outcome is a failure."""
        return list(self._failing)

    # -- notifications out --------------------------------------------------------------------
    def pending(self) -> int:
        """How many accepted events wait to be shown."""
        return sum(len(w.items) for w in self._windows)

    def due(self) -> float | None:
        """The monotonic time at which :meth:`flush` has something to show, or None."""
        if not self._windows:
            return None
        return self._windows[0].start + self.window

    def flush(self, force: bool = False) -> list[Notification]:
        """The notifications to show now: every batch whose window has closed (all, if ``force``)."""
        now = self.clock.monotonic()
        ready: list[_Item] = []
        while self._windows and (force or now >= self._windows[0].start + self.window):
            ready.extend(self._windows.pop(0).items)
        if not ready:
            return []
        groups: dict[tuple[str, Outcome], _Group] = {}
        for item in ready:
            group_key = (item.event.profile_id, item.outcome)
            group = groups.get(group_key)
            if group is None:
                groups[group_key] = _Group(item.event.profile_id, item.outcome, [item])
            else:
                group.items.append(item)
        # Stable: most urgent outcome first, then in the order they arrived.
        ordered = sorted(groups.values(), key=lambda g: _ORDER[g.outcome])
        if len(ordered) > self.max_per_flush:
            shown = [self._build(g) for g in ordered[: self.max_per_flush - 1]]
            shown.append(self._summary(ordered[self.max_per_flush - 1 :]))
        else:
            shown = [self._build(g) for g in ordered]
        self.stats.notifications += len(shown)
        self.stats.events_notified += len(ready)
        return shown

    def _next_key(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}:{self._seq}"

    def _url(self, run: RunRecord | None) -> str | None:
        if run is None or self._run_url is None:
            return None
        try:
            url = self._run_url(run)
        except Exception:
            log.exception("building the link of run %s failed", run.id)
            return None
        return redact_url(url) if url else None

    def _build(self, group: _Group) -> Notification:
        items = group.items
        first = items[0].event
        outcome = group.outcome
        name = self._name(group.profile_id)
        run = first.run
        url: str | None = None
        if len(items) == 1:
            title, body = event_text(outcome, first, name)
            if outcome is Outcome.AUTH_NEEDED:
                key = f"auth:{group.profile_id}"
            elif outcome is Outcome.CREATE_UNCONFIRMED and first.intent is not None:
                key = f"intent:{first.intent.id}"
            elif outcome in (Outcome.FAILED, Outcome.FIXED) and run is not None:
                key = f"target:{group.profile_id}:{run.ref.service}:{run.ref.target}"
            elif run is not None:
                key = f"run:{run.id}"
            else:
                key = self._next_key(f"{outcome.value}:{group.profile_id}")
            if outcome is Outcome.FIXED or first.kind is EventKind.DISCOVERED:
                kind = outcome.value
            else:
                kind = first.kind.value
            url = self._url(run)
        else:
            title, body = group_text(outcome, [item.event for item in items], name)
            key = self._next_key(f"{outcome.value}:{group.profile_id}")
            kind = COALESCED
        return Notification(
            key=key,
            title=title,
            body=body,
            urgency=_URGENCY[outcome],
            sticky=outcome in _STICKY,
            service=first.service,
            profile_id=group.profile_id,
            run_ids=_run_ids(items),
            kind=kind,
            at=max(i.event.at for i in items),
            profile_name=name,
            count=len(items),
            url=url,
            intent_ids=_intent_ids(items),
            events=tuple(i.event for i in items),
        )

    def _summary(self, groups: list[_Group]) -> Notification:
        """One notification for the groups beyond ``max_per_flush``."""
        items = [item for group in groups for item in group.items]
        services = {item.event.service for item in items}
        profiles = {group.profile_id for group in groups}
        title, body = overflow_text(
            [(g.profile_id, g.outcome, [item.event for item in g.items]) for g in groups], self._name
        )
        urgency = max((_URGENCY[g.outcome] for g in groups), key=_URGENCY_RANK.__getitem__)
        profile_id = next(iter(profiles)) if len(profiles) == 1 else ""
        return Notification(
            key=self._next_key("summary"),
            title=title,
            body=body,
            urgency=urgency,
            sticky=any(g.outcome in _STICKY for g in groups),
            service=next(iter(services)) if len(services) == 1 else "",
            profile_id=profile_id,
            profile_name=self._name(profile_id) if profile_id else "",
            run_ids=_run_ids(items),
            kind=COALESCED,
            at=max(i.event.at for i in items),
            count=len(items),
            intent_ids=_intent_ids(items),
            events=tuple(i.event for i in items),
        )


def _run_ids(items: list[_Item]) -> tuple[int, ...]:
    return tuple(dict.fromkeys(i.event.run.id for i in items if i.event.run is not None))


def _intent_ids(items: list[_Item]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i.event.intent.id for i in items if i.event.intent is not None))
