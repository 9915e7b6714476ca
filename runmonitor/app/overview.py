"""The state of everything at a glance: what the tray icon, the window title and `doctor` show.

A pipeline (or job, data flow, export) counts as failing when its newest run failed, as in
CI monitors: a later success clears it. The overall state is the worst of:

failing > sign-in needed > running > all good > nothing followed
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from runmonitor.domain.status import RunStatus
from runmonitor.storage.history import RunRecord


class Overall(StrEnum):
    FAILING = "failing"
    SIGN_IN = "sign-in needed"
    RUNNING = "running"
    OK = "all good"
    NOTHING = "nothing followed"


@dataclass(frozen=True)
class Overview:
    state: Overall
    #: Targets whose newest run failed.
    failing: int = 0
    #: Runs not finished yet.
    running: int = 0
    #: Targets whose newest run succeeded.
    passing: int = 0
    #: Profiles that need signing in.
    sign_in: int = 0
    #: The newest good answer from any service.
    last_ok: datetime | None = None

    def summary(self) -> str:
        """E.g. "2 failing · 5 running · 7 passing"; "nothing followed" when empty."""
        parts = []
        if self.failing:
            parts.append(f"{self.failing} failing")
        if self.sign_in:
            parts.append(f"{self.sign_in} need{'s' if self.sign_in == 1 else ''} sign-in")
        if self.running:
            parts.append(f"{self.running} running")
        if self.passing:
            parts.append(f"{self.passing} passing")
        return " · ".join(parts) if parts else Overall.NOTHING.value


def overview(records: Iterable[RunRecord], *, sign_in: int = 0) -> Overview:
    """The overview of ``records`` (any order) with ``sign_in`` profiles needing sign-in."""
    newest: dict[tuple[str, str, str], RunRecord] = {}
    running = 0
    last_ok: datetime | None = None
    for record in records:
        if not record.terminal and not record.closed:
            running += 1
        if record.last_checked_at is not None and (last_ok is None or record.last_checked_at > last_ok):
            last_ok = record.last_checked_at
        if not record.terminal:
            continue
        key = (record.profile_id, record.ref.service, record.ref.target)
        when = record.snapshot.ended_at or record.first_seen_at
        current = newest.get(key)
        if current is None or when > (current.snapshot.ended_at or current.first_seen_at):
            newest[key] = record
    failing = sum(1 for r in newest.values() if r.status is RunStatus.FAILED)
    passing = sum(1 for r in newest.values() if r.status is RunStatus.SUCCEEDED)
    if failing:
        state = Overall.FAILING
    elif sign_in:
        state = Overall.SIGN_IN
    elif running:
        state = Overall.RUNNING
    elif newest:
        state = Overall.OK
    else:
        state = Overall.NOTHING
    return Overview(state, failing, running, passing, sign_in, last_ok)
