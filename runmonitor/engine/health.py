"""Health reports: how each profile's connection is doing, for the status bar, tray and doctor."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from runmonitor.domain.errors import ProfileGone
from runmonitor.engine.core import EngineCore, TrackedRun
from runmonitor.engine.events import Health, ProfileHealth


class HealthReport(EngineCore):
    """Reads the engine's state into one :class:`ProfileHealth` per profile."""

    def health(self, profile_ids: list[str] | None = None) -> dict[str, ProfileHealth]:
        """Each profile's connection health (the given ones, else every one with runs or watches).

        One pass over the followed runs; cheap enough to call once a second.
        """
        now_mono, now = self.clock.monotonic(), self.clock.now()

        def at(mono: float) -> datetime:
            return now + timedelta(seconds=max(0.0, mono - now_mono))

        runs: dict[str, list[TrackedRun]] = {}
        for tracked in self._runs.values():
            runs.setdefault(tracked.record.profile_id, []).append(tracked)
        watches: dict[str, list[float]] = {}
        for record, due, _ in self._watches.values():
            watches.setdefault(record.profile_id, []).append(due)
        wanted = profile_ids if profile_ids is not None else sorted(set(runs) | set(watches))
        out: dict[str, ProfileHealth] = {}
        for profile_id in wanted:
            mine = runs.get(profile_id, [])
            dues = [t.due for t in mine if not t.in_flight] + watches.get(profile_id, [])
            checked = [t.record.last_checked_at for t in mine if t.record.last_checked_at is not None]
            last_ok = max(checked) if checked else None
            # A profile with nothing followed has not asked its host anything: it stays idle.
            names = {t.host for t in mine}
            if watches.get(profile_id):
                try:
                    names.add(self._host_of(self._client(profile_id)))
                except ProfileGone:
                    pass
            hosts = [self._hosts[name] for name in sorted(names) if name in self._hosts]
            base = ProfileHealth(
                profile_id,
                Health.IDLE,
                followed=len(mine),
                watches=len(watches.get(profile_id, [])),
                last_ok=last_ok,
            )
            paused = self.is_paused(profile_id)
            next_check = None if paused or not dues else at(min(dues))
            down = next((h for h in hosts if h.down), None)
            limited = next((h for h in hosts if h.limited_until > now_mono), None)
            stale = [t.record for t in mine if t.record.stale]
            if profile_id in self._auth_needed:
                health = replace(base, state=Health.SIGN_IN, detail="sign-in needed")
            elif self._paused_all or profile_id in self._paused:
                health = replace(base, state=Health.PAUSED, detail="polling paused")
            elif down is not None:
                health = replace(
                    base,
                    state=Health.UNREACHABLE,
                    host=down.name,
                    since=down.down_since,
                    until=at(down.not_before),
                    next_check=next_check,
                    detail=next((r.last_error or "" for r in stale if r.last_error), ""),
                )
            elif limited is not None:
                health = replace(
                    base,
                    state=Health.RATE_LIMITED,
                    host=limited.name,
                    until=at(limited.limited_until),
                    next_check=next_check,
                    detail="the service asked us to slow down",
                )
            elif stale:
                since_values = [r.last_checked_at for r in stale if r.last_checked_at is not None]
                health = replace(
                    base,
                    state=Health.STALE,
                    since=min(since_values) if since_values else None,
                    next_check=next_check,
                    detail=stale[0].last_error or "",
                )
            else:
                state = Health.OK if mine or watches.get(profile_id) else Health.IDLE
                health = replace(base, state=state, next_check=next_check)
            out[profile_id] = health
        return out
