"""The status bar's connection health: one entry per profile, and when the next check is due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

from runmonitor.domain.status import RunStatus
from runmonitor.engine import Health, ProfileHealth
from runmonitor.ui.icons import status_icon
from runmonitor.ui.run_model import plain_tooltip

#: Health shown with the status shapes people already know from the run table.
HEALTH_ICONS: dict[Health, tuple[RunStatus, bool]] = {
    Health.OK: (RunStatus.SUCCEEDED, False),
    Health.IDLE: (RunStatus.PENDING, False),
    Health.PAUSED: (RunStatus.CANCELLED, False),
    Health.RATE_LIMITED: (RunStatus.PENDING, True),
    Health.STALE: (RunStatus.UNKNOWN, True),
    Health.UNREACHABLE: (RunStatus.FAILED, True),
    Health.SIGN_IN: (RunStatus.FAILED, False),
}
#: At most this many troubled profiles get their own entry; the rest are counted (all are in the tooltip).
MAX_ENTRIES = 4


def clock(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%H:%M:%S") if moment is not None else "?"


def describe(health: ProfileHealth, now: datetime) -> str:
    """A short phrase for one profile's health, e.g. "stale since 10:02:11"."""
    state = health.state
    if state is Health.UNREACHABLE:
        text = f"unreachable since {clock(health.since)}"
        if health.until is not None and health.until > now:
            text += f", retry {clock(health.until)}"
        return text
    if state is Health.RATE_LIMITED:
        return f"rate limited until {clock(health.until)}"
    if state is Health.STALE:
        return f"stale since {clock(health.since)}"
    if state is Health.OK and health.followed == 0 and health.watches:
        return "OK (watching)"
    return state.value


def next_check_text(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "No checks due"
    seconds = (moment - now).total_seconds()
    if seconds < 1:
        return "Next check now"
    if seconds < 90:
        return f"Next check in {seconds:.0f} s"
    return f"Next check at {clock(moment)}"


@dataclass(frozen=True)
class Entry:
    profile_id: str
    label: str  # "prod · Cognite"
    health: ProfileHealth


class HealthStrip(QWidget):
    """Icon + name + state per troubled profile, worst first, then the healthy ones counted;
    every profile's line is in the tooltip."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Connection health")
        self._row = QHBoxLayout(self)
        self._row.setContentsMargins(4, 0, 4, 0)
        self._row.setSpacing(12)
        self._widgets: list[tuple[QLabel, QLabel]] = []
        self.more = QLabel()
        self.more.setTextFormat(Qt.TextFormat.PlainText)
        self._row.addWidget(self.more)
        self._row.addStretch(1)
        self.lines: list[str] = []

    def show_entries(self, entries: list[Entry], now: datetime) -> None:
        """Profiles with a problem get an entry each (worst first); the healthy ones share one."""
        order = list(Health)
        ranked = sorted(entries, key=lambda e: (order.index(e.health.state), e.label.casefold()))
        self.lines = [f"{e.label}: {describe(e.health, now)}" for e in ranked]
        healthy = [e for e in ranked if e.health.state in (Health.OK, Health.IDLE)]
        troubled = [(e, line) for e, line in zip(ranked, self.lines, strict=True) if e not in healthy]
        shown: list[tuple[RunStatus, bool, str, str]] = [
            (*HEALTH_ICONS[e.health.state], line, e.health.state.value) for e, line in troubled[:MAX_ENTRIES]
        ]
        if healthy:
            if len(healthy) == len(ranked):
                text = "All connections OK" if len(ranked) > 1 else self.lines[0]
            else:
                text = f"{len(healthy)} OK"
            shown.append((RunStatus.SUCCEEDED, False, text, "OK"))
        while len(self._widgets) < len(shown):
            icon, label = QLabel(), QLabel()
            label.setTextFormat(Qt.TextFormat.PlainText)
            self._row.insertWidget(self._row.indexOf(self.more), icon)
            self._row.insertWidget(self._row.indexOf(self.more), label)
            self._widgets.append((icon, label))
        for index, (icon, label) in enumerate(self._widgets):
            visible = index < len(shown)
            icon.setVisible(visible)
            label.setVisible(visible)
            if not visible:
                continue
            status, stale, text, state = shown[index]
            icon.setPixmap(status_icon(status, stale=stale, size=14).pixmap(14, 14))
            icon.setAccessibleName(state)
            label.setText(text)
            label.setAccessibleName(text)
        hidden = len(troubled) - min(len(troubled), MAX_ENTRIES)
        self.more.setText(f"+{hidden} more" if hidden else "" if ranked else "No profiles yet")
        self.more.setVisible(bool(hidden) or not ranked)
        self.setToolTip(plain_tooltip("\n".join(self.lines)) if self.lines else "No profiles yet")
