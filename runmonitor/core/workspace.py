"""One user's RunMonitor: paths, settings with profiles, secrets and live service clients.

The command line and the window both open a :class:`Workspace`; it is the only place
that combines a profile with its secrets into a working service client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from runmonitor.core.paths import AppPaths, app_paths
from runmonitor.core.profiles import Profile, ProfileError, Settings, secret_fields
from runmonitor.core.secrets import SecretStore, open_secret_store
from runmonitor.core.settings import Notice, SettingsStore
from runmonitor.services.base import Service

log = logging.getLogger(__name__)

AnyService = Service[Any, Any]
SecretMode = Literal["keyring", "session", "plaintext_file"]


@dataclass
class Workspace:
    paths: AppPaths
    store: SettingsStore
    settings: Settings
    secrets: SecretStore
    notices: list[Notice] = field(default_factory=list)
    read_only: bool = False
    _clients: dict[str, AnyService] = field(default_factory=dict)

    @classmethod
    async def open(cls, paths: AppPaths | None = None, *, secret_mode: SecretMode | None = None) -> Workspace:
        """Load settings and open the secret store (``secret_mode`` overrides the setting)."""
        paths = (paths or app_paths()).ensure()
        store = SettingsStore(paths.config_dir / "settings.json")
        result = await asyncio.to_thread(store.load)
        mode: SecretMode = secret_mode or result.settings.secret_storage
        secrets, secret_notes = await asyncio.to_thread(open_secret_store, mode, paths)
        notices = list(result.notices) + [Notice("warning", text, None) for text in secret_notes]
        workspace = cls(paths, store, result.settings, secrets, notices, result.read_only)
        if result.migrated_secrets:
            # Secrets an old settings file held in plain text move to secure storage, and the
            # file is rewritten without them.
            for profile_id, values in result.migrated_secrets.items():
                for name, value in values.items():
                    await secrets.set(profile_id, name, value)
            await workspace.save()
        return workspace

    async def save(self) -> None:
        await asyncio.to_thread(self.store.save, self.settings)

    # -- profiles -------------------------------------------------------------------------
    def profile(self, ref: str) -> Profile:
        return self.settings.profile(ref)

    async def add_profile(self, profile: Profile, secrets: Mapping[str, str | None] | None = None) -> Profile:
        settings = self.settings.model_copy(update={"profiles": [*self.settings.profiles, profile]})
        self.settings = Settings.model_validate(settings.model_dump())
        await self._store_secrets(profile, secrets or {})
        await self.save()
        return self.profile(str(profile.id))

    async def update_profile(
        self, profile: Profile, secrets: Mapping[str, str | None] | None = None
    ) -> Profile:
        profiles = [profile if p.id == profile.id else p for p in self.settings.profiles]
        if all(p.id != profile.id for p in self.settings.profiles):
            raise KeyError(f"no profile with id {profile.id}")
        self.settings = Settings.model_validate(
            {**self.settings.model_dump(), "profiles": [p.model_dump() for p in profiles]}
        )
        await self._store_secrets(profile, secrets or {})
        await self.save()
        await self._drop_client(str(profile.id))
        return self.profile(str(profile.id))

    async def remove_profile(self, profile: Profile) -> None:
        """Remove a profile and delete its secrets."""
        self.settings = self.settings.model_copy(
            update={"profiles": [p for p in self.settings.profiles if p.id != profile.id]}
        )
        await self.save()
        await self.secrets.delete_profile(str(profile.id), secret_fields(profile.service))
        await self._drop_client(str(profile.id))

    async def _store_secrets(self, profile: Profile, secrets: Mapping[str, str | None]) -> None:
        allowed = set(secret_fields(profile.service))
        unknown = sorted(set(secrets) - allowed)
        if unknown:
            raise ProfileError(
                "not secret fields of this service", {name: "not a secret field" for name in unknown}
            )
        for name, value in secrets.items():
            if value:
                await self.secrets.set(str(profile.id), name, value)
            elif value == "":
                await self.secrets.delete(str(profile.id), name)

    async def stored_secrets(self, profile: Profile) -> dict[str, bool]:
        """Which secret fields of a profile have a value stored (never the values)."""
        values = await self.secrets.get_all(str(profile.id), secret_fields(profile.service))
        return {name: bool(value) for name, value in values.items()}

    # -- clients ------------------------------------------------------------------------------
    async def client(self, profile: Profile) -> AnyService:
        """A live client for ``profile``; raises MissingSecret when sign-in is needed."""
        key = str(profile.id)
        existing = self._clients.get(key)
        if existing is not None:
            return existing
        values = await self.secrets.get_all(key, secret_fields(profile.service))
        config = profile.config(values)
        from runmonitor.services import get

        client: AnyService = get(profile.service)(config)
        self._clients[key] = client
        return client

    def cached_client(self, profile_id: str) -> AnyService:
        """The client opened for ``profile_id`` (for the polling engine's provider)."""
        return self._clients[profile_id]

    async def _drop_client(self, profile_id: str) -> None:
        client = self._clients.pop(profile_id, None)
        if client is not None:
            await client.aclose()

    async def aclose(self) -> None:
        for key in list(self._clients):
            await self._drop_client(key)
