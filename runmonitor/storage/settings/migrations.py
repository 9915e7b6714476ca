"""Old settings files to the current schema: one step per version, and the secrets the old formats held.

``MIGRATIONS[n]`` turns a raw settings document of schema n into n + 1 (plain dicts, before
validation). Old formats could hold secrets inline; :func:`extract_secrets` takes them out
so the store can hand them to the keyring.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import uuid4

from runmonitor.services import registry
from runmonitor.storage.settings.model import SETTINGS_VERSION

_V0_PROFILE_KEYS = {"id", "name", "service"}


def migrate_v0_to_v1(raw: dict[str, Any]) -> dict[str, Any]:
    """The pre-release format (``"version": 0``) to schema 1.

    v0 had flat profiles (connection fields, and possibly a secret, beside name and service), one
    ``poll_interval`` in seconds and a ``notify_on_success`` flag. Secret fields stay in each profile's
    ``connection`` here; :func:`extract_secrets` takes them out before validation.
    """
    result = {
        key: value
        for key, value in raw.items()
        if key not in {"version", "poll_interval", "notify_on_success"}
    }
    result["schema_version"] = 1
    if "poll_interval" in raw:
        result["polling"] = {"steps": [[0, raw["poll_interval"]]]}
    if "notify_on_success" in raw:
        result["notifications"] = {"on_success": raw["notify_on_success"]}
    profiles = raw.get("profiles", [])
    if not isinstance(profiles, list):
        raise ValueError("profiles: must be a list")
    migrated = []
    for index, profile in enumerate(profiles):
        if not isinstance(profile, dict):
            raise ValueError(f"profiles.{index}: must be an object")
        migrated.append(
            {
                "id": profile.get("id") or str(uuid4()),
                "name": profile.get("name"),
                "service": profile.get("service"),
                "connection": {k: v for k, v in profile.items() if k not in _V0_PROFILE_KEYS},
            }
        )
    result["profiles"] = migrated
    return result


Migration = Callable[[dict[str, Any]], dict[str, Any]]
MIGRATIONS: tuple[Migration, ...] = (migrate_v0_to_v1,)
"""``MIGRATIONS[n]`` turns schema n into n + 1; applied in order before validation."""
assert len(MIGRATIONS) == SETTINGS_VERSION, "one migration per schema version step"


def extract_secrets(raw: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Take secret fields out of each profile's connection (in place); returns them by profile id."""
    found: dict[str, dict[str, str]] = {}
    for profile in raw.get("profiles") or []:
        if not isinstance(profile, dict):
            continue
        service, connection = profile.get("service"), profile.get("connection")
        if not isinstance(service, str) or service not in registry() or not isinstance(connection, dict):
            continue
        names = registry()[service].config_model.secret_field_names()
        for name in names:
            if name not in connection:
                continue
            value = connection.pop(name)
            if isinstance(value, str) and value.strip():
                found.setdefault(str(profile.get("id")), {})[name] = value.strip()
    return found
