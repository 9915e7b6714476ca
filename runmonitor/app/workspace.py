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

from runmonitor.domain.errors import ProfileGone
from runmonitor.services.base import STORED_CONTEXT, Service
from runmonitor.storage.paths import AppPaths, app_paths
from runmonitor.storage.secrets import SecretStore, open_secret_store
from runmonitor.storage.settings.model import Profile, ProfileError, Settings, secret_fields
from runmonitor.storage.settings.store import Notice, SettingsStore
from runmonitor.storage.settings.transfer import ImportPlan, apply_import

log = logging.getLogger(__name__)

AnyService = Service[Any, Any]
SecretMode = Literal["keyring", "session", "plaintext_file"]


@dataclass(frozen=True)
class ImportOutcome:
    added: list[Profile]
    replaced: list[Profile]
    skipped: int


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
        notices = list(result.notices) + [Notice("warning", text, None, "secrets") for text in secret_notes]
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

    async def update_preferences(self, changes: Mapping[str, Any]) -> Settings:
        """Change global preferences (not profiles, not where secrets live); saved at once.

        Raises pydantic's ValidationError (naming the field) and changes nothing when a value
        is not valid.
        """
        refused = {"profiles", "schema_version", "secret_storage"} & set(changes)
        if refused:
            raise ValueError(f"not a preference: {', '.join(sorted(refused))}")
        self.settings = Settings.model_validate(
            {**self.settings.model_dump(), **changes}, context=STORED_CONTEXT
        )
        await self.save()
        return self.settings

    async def change_secret_storage(self, mode: SecretMode) -> list[str]:
        """Move every profile's secrets to ``mode``'s store, then use it; returns notices.

        Secrets are copied first and removed from the old store only after the settings
        naming the new store are saved, so a failure half way loses nothing.
        """
        if mode == self.settings.secret_storage and mode != "keyring":
            return []
        new_store, notes = await asyncio.to_thread(open_secret_store, mode, self.paths)
        if mode == "keyring" and not new_store.persistent:
            raise ProfileError(
                "no working keyring: secrets stay where they are",
                {"secret_storage": notes[0] if notes else "the keyring cannot be used"},
            )
        moved: dict[str, dict[str, str]] = {}
        for profile in self.settings.profiles:
            names = secret_fields(profile.service)
            values = await self.secrets.get_all(str(profile.id), names)
            present = {name: value for name, value in values.items() if value}
            for name, value in present.items():
                await new_store.set(str(profile.id), name, value)
            moved[str(profile.id)] = present
        old, self.secrets = self.secrets, new_store
        self.settings = self.settings.model_copy(update={"secret_storage": mode})
        await self.save()
        if type(old) is not type(new_store) or old.backend != new_store.backend:
            for profile in self.settings.profiles:
                names = list(moved.get(str(profile.id), {}))
                if names:
                    await old.delete_profile(str(profile.id), names)
        return notes

    async def import_profiles(self, plan: ImportPlan) -> ImportOutcome:
        """Carry out an import plan (every clash decided) and save; all or nothing.

        Raises :class:`~runmonitor.storage.settings.errors.ProfileImportError` naming the problems.
        """
        settings = apply_import(self.settings, plan)
        before = {p.id for p in self.settings.profiles}
        replaced = [c.existing for c in plan.clashes if c.choice == "replace"]
        self.settings = settings
        await self.save()
        for profile in replaced:
            await self._drop_client(str(profile.id))
        return ImportOutcome(
            added=[p for p in settings.profiles if p.id not in before],
            replaced=[self.profile(str(p.id)) for p in replaced],
            skipped=sum(1 for clash in plan.clashes if clash.choice == "skip"),
        )

    # -- profiles -------------------------------------------------------------------------
    def profile(self, ref: str) -> Profile:
        return self.settings.profile(ref)

    async def add_profile(self, profile: Profile, secrets: Mapping[str, str | None] | None = None) -> Profile:
        settings = self.settings.model_copy(update={"profiles": [*self.settings.profiles, profile]})
        self.settings = Settings.model_validate(settings.model_dump(), context=STORED_CONTEXT)
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
            {**self.settings.model_dump(), "profiles": [p.model_dump() for p in profiles]},
            context=STORED_CONTEXT,
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
        """The client opened for ``profile_id`` (for the polling engine's provider).

        Raises :class:`ProfileGone` when no client is open for it (the profile was removed,
        or it could not sign in)."""
        try:
            return self._clients[profile_id]
        except KeyError:
            raise ProfileGone(profile_id) from None

    async def _drop_client(self, profile_id: str) -> None:
        client = self._clients.pop(profile_id, None)
        if client is not None:
            await client.aclose()

    async def aclose(self) -> None:
        for key in list(self._clients):
            await self._drop_client(key)
