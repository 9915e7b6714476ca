"""The settings file: loading it (migrating or recovering it when needed) and saving it.

``<config_dir>/settings.json`` holds a :class:`~runmonitor.storage.settings.model.Settings` as JSON.
Secrets are never in it (they live in the keyring, keyed by profile id).

Loading never silently resets anything. Each outcome is told to the person as a :class:`Notice`:

- missing file: defaults, no notice;
- older schema: migrated in memory (the original is copied to ``settings.json.v<N>.bak`` and stays in
  place until :meth:`SettingsStore.save` has safely written the new one); inline secrets of the old
  format are handed back in :attr:`LoadResult.migrated_secrets` for the app to put in the keyring
  *before* it saves;
- newer schema: the file is left alone, defaults are used and the store is read-only;
- corrupt JSON, not an object, or invalid values: the file is moved to
  ``settings.json.corrupt-<YYYYmmdd-HHMMSS>`` (never overwritten), then ``settings.json.bak`` is tried,
  then defaults.

Saving is atomic: temp file in the same directory, fsync, copy of the previous valid file to
``settings.json.bak``, ``os.replace``, fsync of the directory.
"""

from __future__ import annotations

import json
import logging
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from runmonitor.domain.redact import secret_registry
from runmonitor.domain.text import plural
from runmonitor.services.base import STORED_CONTEXT
from runmonitor.storage.paths import AppPaths, ensure_private_dir
from runmonitor.storage.settings.errors import SettingsError
from runmonitor.storage.settings.files import (
    aside_path,
    atomic_write,
    check_no_secrets,
    commit,
    fsync_dir,
    quarantine,
    safe_bytes,
    write_temp,
)
from runmonitor.storage.settings.migrations import MIGRATIONS, extract_secrets
from runmonitor.storage.settings.model import SETTINGS_VERSION, Settings
from runmonitor.storage.settings.problems import validation_problems

log = logging.getLogger(__name__)

SETTINGS_FILENAME = "settings.json"

Level = Literal["info", "warning", "error"]

_LEFT_ALONE = "It was left alone; RunMonitor is using default settings and will not save changes this time."


@dataclass(frozen=True)
class Notice:
    """Something the person should be told about their settings."""

    level: Level
    text: str
    path: Path | None = None
    #: What it is about: "settings", or "secrets" for where secrets are kept.
    topic: str = "settings"


@dataclass
class LoadResult:
    settings: Settings
    notices: list[Notice] = field(default_factory=list)
    read_only: bool = False
    """The file on disk is not ours to overwrite (newer schema or unreadable): save() refuses."""
    migrated_from: int | None = None
    migrated_secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    """profile id → {secret field → value} taken out of an old-format file. Store them, then save()."""
    source: Path | None = None
    """The file the settings came from (the settings file or its backup); None for defaults."""


class _Unusable(Exception):
    """A settings document that cannot be used; ``problems`` say why, ``kind`` how."""

    def __init__(
        self, kind: Literal["json", "shape", "invalid", "newer", "migration"], problems: list[str]
    ) -> None:
        super().__init__("; ".join(problems))
        self.kind = kind
        self.problems = problems


@dataclass
class _Parsed:
    settings: Settings
    version: int
    secrets: dict[str, dict[str, str]]


def _schema_version(raw: dict[str, Any]) -> int:
    version = raw.get("schema_version", raw.get("version", SETTINGS_VERSION))
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise _Unusable("invalid", [f"schema_version: must be a whole number from 0, not {version!r}"])
    return version


def _parse(data: bytes) -> _Parsed:
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise _Unusable("json", [f"not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    except json.JSONDecodeError as exc:
        raise _Unusable(
            "json", [f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"]
        ) from None
    if not isinstance(raw, dict):
        raise _Unusable(
            "shape", [f"not a JSON object but {type(raw).__name__ if raw is not None else 'null'}"]
        )
    version = _schema_version(raw)
    if version > SETTINGS_VERSION:
        raise _Unusable("newer", [f"schema version {version}"])
    secrets: dict[str, dict[str, str]] = {}
    if version < SETTINGS_VERSION:
        try:
            for migrate in MIGRATIONS[version:]:
                raw = migrate(raw)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise _Unusable("migration", [f"could not be upgraded from version {version}: {exc}"]) from None
        secrets = extract_secrets(raw)
    try:
        settings = Settings.model_validate(raw, context=STORED_CONTEXT)
    except ValidationError as exc:
        raise _Unusable("invalid", validation_problems(exc, raw, profile_path=("profiles",))) from None
    return _Parsed(settings, version, secrets)


class SettingsStore:
    """``settings.json`` in the config directory. Call :meth:`load` first, then :meth:`save` as needed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.read_only = False
        self._migrated_from: int | None = None
        self._migration_backup: Path | None = None

    @classmethod
    def for_paths(cls, paths: AppPaths) -> SettingsStore:
        return cls(paths.config_dir / SETTINGS_FILENAME)

    @property
    def backup_path(self) -> Path:
        return self.path.with_name(f"{self.path.name}.bak")

    def migration_backup_path(self, version: int) -> Path:
        return self.path.with_name(f"{self.path.name}.v{version}.bak")

    # -- loading ------------------------------------------------------------------------------------

    def load(self) -> LoadResult:
        self.read_only = False
        self._migrated_from = None
        self._migration_backup = None
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return LoadResult(Settings())
        except OSError as exc:
            return self._left_alone(
                f"The settings file could not be read ({exc.strerror or exc}). {_LEFT_ALONE}"
            )
        try:
            parsed = _parse(data)
        except _Unusable as problem:
            if problem.kind == "newer":
                return self._refuse_newer(data)
            return self._recover(problem)
        result = LoadResult(parsed.settings, source=self.path)
        if parsed.version < SETTINGS_VERSION:
            self._note_migration(result, parsed, data)
        return result

    def _told(self, result: LoadResult, *notices: Notice) -> LoadResult:
        for notice in notices:
            log.log(
                {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}[notice.level],
                "%s",
                notice.text,
            )
            result.notices.append(notice)
        return result

    def _left_alone(self, why: str) -> LoadResult:
        """Defaults, read-only: the file stays as it is, :meth:`save` refuses, and an error notice
        says ``why``."""
        self.read_only = True
        return self._told(LoadResult(Settings(), read_only=True), Notice("error", why, self.path))

    def _refuse_newer(self, data: bytes) -> LoadResult:
        version = _schema_version(json.loads(data))
        return self._left_alone(
            f"The settings file {self.path} is from a newer RunMonitor (schema version {version}; this "
            f"version understands up to {SETTINGS_VERSION}). It was left alone: RunMonitor is using "
            "default settings and will not save changes, so the newer version's settings are kept."
        )

    def _note_migration(self, result: LoadResult, parsed: _Parsed, data: bytes) -> None:
        result.migrated_from = self._migrated_from = parsed.version
        result.migrated_secrets = parsed.secrets
        secret_registry.register(value for fields in parsed.secrets.values() for value in fields.values())
        backup = self.migration_backup_path(parsed.version)
        try:
            atomic_write(backup, data)
        except OSError as exc:
            self._told(
                result,
                Notice(
                    "warning",
                    f"settings were upgraded from version {parsed.version}, but the original could not be "
                    f"copied to {backup.name} ({exc.strerror or exc}); it stays in place until you save.",
                    self.path,
                ),
            )
        else:
            self._migration_backup = backup
            self._told(
                result,
                Notice(
                    "info",
                    f"settings were upgraded from version {parsed.version}; the original is kept as "
                    f"{backup.name} until the upgraded settings are saved.",
                    backup,
                ),
            )
        count = sum(len(fields) for fields in parsed.secrets.values())
        if count:
            self._told(
                result,
                Notice("info", f"moved {plural(count, 'secret')} from the settings file to secure storage"),
            )

    def _recover(self, problem: _Unusable) -> LoadResult:
        what = {
            "json": "could not be read",
            "shape": "has the wrong shape",
            "invalid": "has invalid values",
            "migration": "could not be upgraded",
        }[problem.kind]
        try:
            quarantined = quarantine(self.path)
        except OSError as exc:
            return self._left_alone(
                f"The settings file {what} ({'; '.join(problem.problems)}) and could not be moved aside "
                f"({exc.strerror or exc}). {_LEFT_ALONE}"
            )
        told = f"The settings file {what} ({'; '.join(problem.problems)}). It was moved to {quarantined}."
        restored = self._from_backup()
        if isinstance(restored, LoadResult):
            return self._told(
                restored,
                Notice(
                    "warning",
                    f"{told} Your settings were restored from the backup ({self.backup_path}).",
                    quarantined,
                ),
            )
        return self._told(
            LoadResult(Settings()),
            Notice("error", f"{told} {restored} RunMonitor started with default settings.", quarantined),
        )

    def _from_backup(self) -> LoadResult | str:
        """The backup made current, or why it could not be used."""
        backup = self.backup_path
        try:
            data = backup.read_bytes()
        except FileNotFoundError:
            return "There was no backup."
        except OSError as exc:
            return f"The backup could not be read ({exc.strerror or exc})."
        try:
            parsed = _parse(data)
        except _Unusable as problem:
            if problem.kind == "newer":
                return f"The backup is from a newer RunMonitor ({problem.problems[0]}) and was left alone."
            try:
                aside = quarantine(backup)
            except OSError:
                return f"The backup was not usable either ({'; '.join(problem.problems)})."
            return (
                f"The backup was not usable either ({'; '.join(problem.problems)}); it was moved to {aside}."
            )
        if parsed.version != SETTINGS_VERSION:
            return f"The backup has an old schema version ({parsed.version}) and was left alone."
        try:
            atomic_write(self.path, data)
        except OSError as exc:
            log.warning("could not put the backup back as %s: %s", self.path, exc)
        return LoadResult(parsed.settings, source=backup)

    # -- saving -------------------------------------------------------------------------------------

    def save(self, settings: Settings) -> None:
        """Write ``settings`` atomically, keeping the previous valid file as ``settings.json.bak``.

        After a migration, store :attr:`LoadResult.migrated_secrets` first: once this returns, the
        old-format file (which may hold them) and its ``.v<N>.bak`` copy are gone.
        """
        if self.read_only:
            raise SettingsError(
                f"{self.path} was not loaded (newer schema or unreadable) and is left alone; "
                "settings are not saved"
            )
        check_no_secrets(settings.profiles)
        document = settings.model_dump(mode="json")
        data = safe_bytes(document, str(self.path))
        try:
            Settings.model_validate_json(data, context=STORED_CONTEXT)  # never write what would not load back
        except ValidationError as exc:
            raise SettingsError(f"refusing to write settings that would not load back: {exc}") from None
        ensure_private_dir(self.path.parent)
        temp = write_temp(self.path, data)
        try:
            self._keep_previous()
        except BaseException:
            with suppress(OSError):
                temp.unlink()
            raise
        commit(temp, self.path)
        if self._migration_backup is not None:
            with suppress(OSError):
                self._migration_backup.unlink()
                fsync_dir(self.path.parent)
            self._migration_backup = None
        self._migrated_from = None

    def _keep_previous(self) -> None:
        """Copy the current file to ``.bak`` if valid; set aside anything else but a pending migration."""
        try:
            current = self.path.read_bytes()
        except FileNotFoundError:
            return
        try:
            parsed = _parse(current)
        except _Unusable as problem:
            if problem.kind == "newer":
                raise SettingsError(
                    f"{self.path} is from a newer RunMonitor ({problem.problems[0]}) and is left alone; "
                    "settings are not saved"
                ) from None
            aside = quarantine(self.path, keep_original=True)
            log.warning("the settings file had become unusable (%s); kept it as %s", problem, aside)
            return
        if parsed.version == SETTINGS_VERSION:
            atomic_write(self.backup_path, current)
        elif parsed.version != self._migrated_from:
            # An old-format file that this store did not migrate (put there while running): keep it.
            aside = self.migration_backup_path(parsed.version)
            if aside.exists():
                aside = aside_path(self.path, f"v{parsed.version}")
            atomic_write(aside, current)
            log.warning("an old-format settings file appeared while running; kept it as %s", aside)
