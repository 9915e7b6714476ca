"""How notifications read: plain-text cleaning, and the words of one event, a group and a summary.

All text is plain text: vendor strings are never interpreted, only cleaned (control and
bidirectional-override characters removed, registered secrets masked, whitespace collapsed)
and shortened. A channel whose server reads markup must escape it
(:mod:`~runmonitor.notify.channels` does). Durations and counts are written by
:mod:`runmonitor.domain.text`, as everywhere else.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from runmonitor.domain.redact import secret_registry
from runmonitor.domain.text import format_duration, plural
from runmonitor.engine import RunEvent
from runmonitor.notify.notification import Outcome, event_outcome
from runmonitor.storage.history import RunRecord

__all__ = [
    "LIST_LIMIT",
    "MESSAGE_LIMIT",
    "NAME_LIMIT",
    "SHORT_RUN_ID",
    "describe_event",
    "event_text",
    "group_text",
    "overflow_text",
    "plain_text",
]

MESSAGE_LIMIT = 200
"""Vendor messages are cut to this many characters."""
NAME_LIMIT = 80
"""Targets, profile names and run ids in a title are cut to this many characters."""
SHORT_RUN_ID = 12
"""Run ids longer than this are shortened in titles (the full id goes in the body)."""
LIST_LIMIT = 5
"""A summary lists this many runs, then "+N more"."""


# -- plain text ---------------------------------------------------------------------------------

# C0/C1 controls, zero-width and bidirectional-override characters (they can disguise text).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069\ufeff]+")


def plain_text(value: object, limit: int = MESSAGE_LIMIT) -> str:
    """``value`` as one line of safe plain text: registered secrets masked, control and
    bidi-override characters removed, whitespace collapsed, cut to ``limit`` characters.

    Markup is left as the literal characters it is; it is never interpreted or built here.
    """
    text = secret_registry.scrub(str(value))
    text = " ".join(_UNSAFE.sub(" ", text).split())
    if len(text) > limit:
        text = text[: max(0, limit - 1)].rstrip() + "…"
    return text


def _short_id(run_id: str) -> str:
    text = plain_text(run_id, NAME_LIMIT)
    return text if len(text) <= SHORT_RUN_ID else text[: SHORT_RUN_ID - 1] + "…"


_SERVICE_NAMES: dict[str, tuple[str, str]] = {}


def _service_names(key: str) -> tuple[str, str]:
    """(display name, target label in lower case) of a service; the key itself if unknown."""
    known = _SERVICE_NAMES.get(key)
    if known is not None:
        return known
    from runmonitor.services import registry  # here: the registry imports every service module

    service = registry().get(key)
    if service is None:
        names = (key or "unknown service", "target")
    else:
        label = service.target_label
        names = (service.display_name, label[:1].lower() + label[1:])
        _SERVICE_NAMES[key] = names
    return names


# -- the text of one event ----------------------------------------------------------------------


def _where(profile_name: str, service: str) -> str:
    return f"{plain_text(profile_name, NAME_LIMIT)} ({_service_names(service)[0]})"


def _run_phrase(run: RunRecord) -> str:
    label = _service_names(run.ref.service)[1]
    return f"Run {_short_id(run.ref.run_id)} of {label} {plain_text(run.ref.target, NAME_LIMIT)}"


def _run_lines(run: RunRecord, message: str | None) -> list[str]:
    snapshot = run.snapshot
    lines: list[str] = []
    status = snapshot.vendor_status or snapshot.status.label
    detail = snapshot.detail if snapshot.detail and snapshot.detail != message else None
    if detail:
        lines.append(f"Status: {plain_text(status, NAME_LIMIT)} ({plain_text(detail)})")
    else:
        lines.append(f"Status: {plain_text(status, NAME_LIMIT)}")
    text = message or snapshot.message
    if text:
        lines.append(plain_text(text))
    begin = snapshot.started_at or snapshot.created_at
    if snapshot.ended_at is not None and begin is not None and snapshot.ended_at >= begin:
        lines.append(f"Took {format_duration((snapshot.ended_at - begin).total_seconds())}")
    if len(run.ref.run_id) > SHORT_RUN_ID:
        lines.append(f"Run id: {plain_text(run.ref.run_id, NAME_LIMIT)}")
    return lines


#: What a run did, said of one run and of several.
_VERBS = {
    Outcome.FAILED: ("failed", "failed"),
    Outcome.SUCCEEDED: ("succeeded", "succeeded"),
    Outcome.CANCELLED: ("was cancelled", "were cancelled"),
    Outcome.STARTED: ("started", "started"),
}


def event_text(outcome: Outcome | None, event: RunEvent, profile_name: str) -> tuple[str, str]:
    """(title, body) of one event notified as ``outcome``."""
    where = _where(profile_name, event.service)
    run = event.run
    if outcome is Outcome.AUTH_NEEDED:
        lines = ["Checks for this profile are paused until its credentials are updated."]
        if event.message:
            lines.append(plain_text(event.message))
        return f"Sign-in needed for {where}", "\n".join(lines)
    if outcome is Outcome.CREATE_UNCONFIRMED:
        intent = event.intent
        target = plain_text(intent.target, NAME_LIMIT) if intent is not None else "a run"
        label = _service_names(event.service)[1]
        lines = []
        if event.message:
            lines.append(plain_text(event.message))
        lines.append("It may or may not have been created: look it up or discard it in RunMonitor.")
        return f"Create of {label} {target} unconfirmed on {where}", "\n".join(lines)
    if run is None:
        kind = event.kind.value.replace("_", " ")
        return f"{kind.capitalize()} on {where}", plain_text(event.message or "")
    if outcome is Outcome.FIXED:
        label = _service_names(run.ref.service)[1]
        title = f"Fixed: {label} {plain_text(run.ref.target, NAME_LIMIT)} on {where}"
        lines = [f"Run {_short_id(run.ref.run_id)} succeeded after a failure.", *_run_lines(run, None)[1:]]
        return title, "\n".join(lines)
    verbs = _VERBS.get(outcome) if outcome is not None else None
    verb = verbs[0] if verbs is not None else event.kind.value.replace("_", " ")
    return f"{_run_phrase(run)} {verb} on {where}", "\n".join(_run_lines(run, event.message))


def describe_event(event: RunEvent, profile_name: str) -> tuple[str, str]:
    """(title, body) of one event as a single notification would word it (for hooks too)."""
    return event_text(event_outcome(event), event, profile_name)


# -- the text of several events -----------------------------------------------------------------


def _count_phrase(outcome: Outcome, n: int, service: str) -> str:
    """``n`` events of one outcome: "3 runs failed", "1 job fixed", "Sign-in needed (2×)"."""
    if outcome is Outcome.AUTH_NEEDED:
        return "Sign-in needed" if n == 1 else f"Sign-in needed ({n}×)"
    if outcome is Outcome.CREATE_UNCONFIRMED:
        return f"{plural(n, 'create')} unconfirmed"
    if outcome is Outcome.FIXED:
        label = _service_names(service)[1]
        # A target label may already be plural ("Jobs"): then it is its own plural.
        return f"{plural(n, label, label if label.endswith('s') else None)} fixed"
    one, many = _VERBS[outcome]
    return f"{plural(n, 'run')} {one if n == 1 else many}"


def _list_line(event: RunEvent, outcome: Outcome) -> str:
    run = event.run
    if run is None:
        target = event.intent.target if event.intent is not None else event.kind.value
        return f"• {plain_text(target, NAME_LIMIT)}"
    line = f"• {plain_text(run.ref.target, NAME_LIMIT)}: run {_short_id(run.ref.run_id)}"
    if outcome in (Outcome.FAILED, Outcome.CANCELLED) and run.snapshot.vendor_status:
        line += f" ({plain_text(run.snapshot.vendor_status, NAME_LIMIT)})"
    return line


def group_text(outcome: Outcome, events: Sequence[RunEvent], profile_name: str) -> tuple[str, str]:
    """(title, body) of one notification for several events of one profile and outcome."""
    first = events[0]
    title = f"{_count_phrase(outcome, len(events), first.service)} on {_where(profile_name, first.service)}"
    lines = [_list_line(event, outcome) for event in events[:LIST_LIMIT]]
    if len(events) > LIST_LIMIT:
        lines.append(f"+{len(events) - LIST_LIMIT} more")
    return title, "\n".join(lines)


def overflow_text(
    groups: Sequence[tuple[str, Outcome, Sequence[RunEvent]]], profile_name: Callable[[str], str]
) -> tuple[str, str]:
    """(title, body) of the one notification that sums up ``groups`` (profile id, outcome, events)
    beyond what one flush shows; ``profile_name`` is asked only for the groups listed."""
    lines = []
    for profile_id, outcome, events in groups[:LIST_LIMIT]:
        service = events[0].service
        lines.append(
            f"{_count_phrase(outcome, len(events), service)} on {_where(profile_name(profile_id), service)}"
        )
    if len(groups) > LIST_LIMIT:
        lines.append(f"+{len(groups) - LIST_LIMIT} more")
    total = sum(len(events) for _, _, events in groups)
    return f"{total} more run updates", "\n".join(lines)
