"""Pydantic validation errors of settings and profiles as readable ``path: reason`` lines.

Used by the settings store (an invalid file) and by profile import (an invalid export file or
import result): an error about a whole profile is looked at again to name the connection field
at fault, e.g. ``"profiles.1.connection.base_url: must start with http://…"``.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from runmonitor.services import registry
from runmonitor.services.base import STORED_CONTEXT
from runmonitor.storage.settings.model import ProfileError, validate_connection


def _clean(message: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.replace(prefix, "")
    return message


def _connection_problems(entry: Any, prefix: str) -> list[str]:
    """Field-level reasons why a raw profile's connection is invalid (empty if it is not that)."""
    if not isinstance(entry, dict):
        return []
    service, connection = entry.get("service"), entry.get("connection", {})
    if not isinstance(service, str) or service not in registry() or not isinstance(connection, dict):
        return []
    try:
        validate_connection(service, connection, context=STORED_CONTEXT)
    except ProfileError as exc:
        return [f"{prefix}connection.{name}: {_clean(text)}" for name, text in exc.errors.items()]
    return []


def validation_problems(
    exc: ValidationError, raw: Any, prefix: str = "", *, profile_path: tuple[Any, ...] | None
) -> list[str]:
    """Readable ``path: reason`` lines for a validation error of ``raw``.

    ``profile_path`` is where a profile sits in a location (``("profiles",)`` for settings, ``()`` for
    one profile): an error at that level is looked at again to name the connection field at fault.
    """
    problems: list[str] = []
    for item in exc.errors():
        loc = tuple(item["loc"])
        if profile_path is not None:
            if (
                profile_path
                and len(loc) == len(profile_path) + 1
                and loc[: len(profile_path)] == profile_path
            ):
                index = loc[-1]
                entries = raw.get(profile_path[0]) if isinstance(raw, dict) else None
                entry = entries[index] if isinstance(entries, list) and isinstance(index, int) else None
                detailed = _connection_problems(entry, f"{prefix}{'.'.join(map(str, loc))}.")
            elif not profile_path and not loc:
                detailed = _connection_problems(raw, prefix)
            else:
                detailed = []
            if detailed:
                problems.extend(p for p in detailed if p not in problems)
                continue
        where = prefix + ".".join(str(part) for part in loc)
        text = _clean(item["msg"])
        problems.append(f"{where.rstrip('.')}: {text}" if where else text)
    return problems
