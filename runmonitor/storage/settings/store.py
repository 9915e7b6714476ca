"""The settings file: loading, migrating, recovering and saving it; exporting and importing profiles.

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
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from uuid import UUID, uuid4

from pydantic import ValidationError

from runmonitor.domain.errors import RunMonitorError
from runmonitor.domain.redact import secret_registry
from runmonitor.services import registry
from runmonitor.services.base import STORED_CONTEXT
from runmonitor.storage.paths import AppPaths, ensure_private_dir
from runmonitor.storage.settings.model import (
    SETTINGS_VERSION,
    Profile,
    ProfileError,
    Settings,
    validate_connection,
)

log = logging.getLogger(__name__)

SETTINGS_FILENAME = "settings.json"
FILE_MODE = 0o600
EXPORT_FORMAT = "runmonitor-profiles"
EXPORT_SCHEMA_VERSION = 1
MAX_IMPORT_BYTES = 10 * 1024 * 1024

# Windows: antivirus, indexers and sync clients briefly lock files (WinError 5/32/33). About 2 s in all.
_REPLACE_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.6, 0.65)
_IS_WINDOWS = os.name == "nt"

Level = Literal["info", "warning", "error"]
ClashPolicy = Literal["rename", "replace", "skip", "ask"]
Choice = Literal["rename", "replace", "skip"]
_CHOICES: tuple[Choice, ...] = ("rename", "replace", "skip")


class SettingsError(RunMonitorError):
    """Settings cannot be saved, or a file cannot be exported or imported; the message says why."""


class ProfileImportError(SettingsError):
    """An import file is refused, or an import plan cannot be applied. Nothing was imported.

    ``problems`` lists each reason, e.g. ``"profiles.1.connection.base_url: must start with http://…"``.
    """

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        self.problems = list(problems)
        if self.problems:
            message = f"{message}: {'; '.join(self.problems)}"
        super().__init__(message)


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


# --------------------------------------------------------------------------------------------------
# Migrations
# --------------------------------------------------------------------------------------------------

_V0_PROFILE_KEYS = {"id", "name", "service"}


def migrate_v0_to_v1(raw: dict[str, Any]) -> dict[str, Any]:
    """The pre-release format (``"version": 0``) to schema 1.

    v0 had flat profiles (connection fields, and possibly a secret, beside name and service), one
    ``poll_interval`` in seconds and a ``notify_on_success`` flag. Secret fields stay in each profile's
    ``connection`` here; :func:`_extract_secrets` takes them out before validation.
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


def _extract_secrets(raw: dict[str, Any]) -> dict[str, dict[str, str]]:
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


# --------------------------------------------------------------------------------------------------
# Validation messages
# --------------------------------------------------------------------------------------------------


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


def _problems(
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


# --------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a directory
        pass
    finally:
        os.close(fd)


def _replace(source: Path, target: Path) -> None:
    """``os.replace``, retried on Windows while another program briefly holds the file."""
    for delay in (*_REPLACE_DELAYS, None):
        try:
            os.replace(source, target)
            return
        except PermissionError:
            if not _IS_WINDOWS or delay is None:
                raise
            time.sleep(delay)


def _write_temp(target: Path, data: bytes) -> Path:
    """``data`` in a new private file beside ``target``, flushed and fsync-ed."""
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            if os.name == "posix":
                os.fchmod(handle.fileno(), FILE_MODE)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with suppress(OSError):
            temp.unlink()
        raise
    return temp


def _commit(temp: Path, target: Path) -> None:
    try:
        _replace(temp, target)
    except BaseException:
        with suppress(OSError):
            temp.unlink()
        raise
    _fsync_dir(target.parent)


def atomic_write(target: Path, data: bytes) -> None:
    """Replace ``target`` with ``data`` (mode 0o600) so that it is either the old or the new file."""
    _commit(_write_temp(target, data), target)


def _timestamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def _aside_path(path: Path, label: str) -> Path:
    """A name beside ``path`` that does not exist yet: ``<name>.<label>-<ts>``, then ``-2``, ``-3``…"""
    base = path.with_name(f"{path.name}.{label}-{_timestamp()}")
    candidate, n = base, 1
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def _quarantine(path: Path, *, keep_original: bool = False) -> Path:
    """Move (or copy) ``path`` aside as ``<name>.corrupt-<ts>``; an existing file is never overwritten."""
    while True:
        target = _aside_path(path, "corrupt")
        if keep_original:
            data = path.read_bytes()
            try:
                with open(target, "xb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
            except FileExistsError:
                continue
        elif os.name == "posix":
            try:
                os.link(path, target)  # fails rather than overwrite
            except FileExistsError:
                continue
            except OSError:  # no hard links on this file system
                os.rename(path, target)
            else:
                path.unlink()
        else:
            try:
                os.rename(path, target)  # Windows: refuses to overwrite
            except FileExistsError:
                continue
        _fsync_dir(path.parent)
        return target


def _safe_bytes(document: dict[str, Any], what: str) -> bytes:
    """JSON for ``document``, with any known secret value scrubbed (logged, never expected)."""
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    scrubbed = secret_registry.scrub(text)
    if scrubbed != text:
        log.error("a known secret value was found in %s and masked before writing", what)
    return scrubbed.encode("utf-8")


def _check_no_secrets(profiles: Iterable[Profile]) -> None:
    for index, profile in enumerate(profiles):
        leaked = sorted(set(profile.secret_fields()) & set(profile.connection))
        if leaked:
            raise SettingsError(
                f"profiles.{index}.connection: refusing to write secret field(s) {', '.join(leaked)} "
                f"of profile {profile.name!r}; secrets belong in the keyring"
            )


# --------------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------------


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
        secrets = _extract_secrets(raw)
    try:
        settings = Settings.model_validate(raw, context=STORED_CONTEXT)
    except ValidationError as exc:
        raise _Unusable("invalid", _problems(exc, raw, profile_path=("profiles",))) from None
    return _Parsed(settings, version, secrets)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


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
            self.read_only = True
            return self._told(
                LoadResult(Settings(), read_only=True),
                Notice(
                    "error",
                    f"The settings file could not be read ({exc.strerror or exc}). It was left alone; "
                    "RunMonitor is using default settings and will not save changes this time.",
                    self.path,
                ),
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

    def _refuse_newer(self, data: bytes) -> LoadResult:
        self.read_only = True
        version = _schema_version(json.loads(data))
        return self._told(
            LoadResult(Settings(), read_only=True),
            Notice(
                "error",
                f"The settings file {self.path} is from a newer RunMonitor (schema version {version}; this "
                f"version understands up to {SETTINGS_VERSION}). It was left alone: RunMonitor is using "
                "default settings and will not save changes, so the newer version's settings are kept.",
                self.path,
            ),
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
                Notice("info", f"moved {_plural(count, 'secret')} from the settings file to secure storage"),
            )

    def _recover(self, problem: _Unusable) -> LoadResult:
        what = {
            "json": "could not be read",
            "shape": "has the wrong shape",
            "invalid": "has invalid values",
            "migration": "could not be upgraded",
        }[problem.kind]
        try:
            quarantined = _quarantine(self.path)
        except OSError as exc:
            self.read_only = True
            return self._told(
                LoadResult(Settings(), read_only=True),
                Notice(
                    "error",
                    f"The settings file {what} ({'; '.join(problem.problems)}) and could not be moved aside "
                    f"({exc.strerror or exc}). It was left alone; RunMonitor is using default settings and "
                    "will not save changes this time.",
                    self.path,
                ),
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
                aside = _quarantine(backup)
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
        _check_no_secrets(settings.profiles)
        document = settings.model_dump(mode="json")
        data = _safe_bytes(document, str(self.path))
        try:
            Settings.model_validate_json(data, context=STORED_CONTEXT)  # never write what would not load back
        except ValidationError as exc:
            raise SettingsError(f"refusing to write settings that would not load back: {exc}") from None
        ensure_private_dir(self.path.parent)
        temp = _write_temp(self.path, data)
        try:
            self._keep_previous()
        except BaseException:
            with suppress(OSError):
                temp.unlink()
            raise
        _commit(temp, self.path)
        if self._migration_backup is not None:
            with suppress(OSError):
                self._migration_backup.unlink()
                _fsync_dir(self.path.parent)
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
            aside = _quarantine(self.path, keep_original=True)
            log.warning("the settings file had become unusable (%s); kept it as %s", problem, aside)
            return
        if parsed.version == SETTINGS_VERSION:
            atomic_write(self.backup_path, current)
        elif parsed.version != self._migrated_from:
            # An old-format file that this store did not migrate (put there while running): keep it.
            aside = self.migration_backup_path(parsed.version)
            if aside.exists():
                aside = _aside_path(self.path, f"v{parsed.version}")
            atomic_write(aside, current)
            log.warning("an old-format settings file appeared while running; kept it as %s", aside)


# --------------------------------------------------------------------------------------------------
# Export and import of profiles
# --------------------------------------------------------------------------------------------------


def export_profiles(
    settings: Settings, path: Path, *, profile_ids: Iterable[str | UUID] | None = None
) -> int:
    """Write the chosen profiles (all by default) to ``path``; returns how many.

    No secret is ever in an export: each profile lists the names of the secrets to enter after import
    in ``secrets_needed``.
    """
    if profile_ids is None:
        chosen = list(settings.profiles)
    else:
        wanted = [str(ref) for ref in profile_ids]
        by_id = {str(p.id): p for p in settings.profiles}
        unknown = [ref for ref in wanted if ref not in by_id]
        if unknown:
            raise SettingsError(f"no profile with id {', '.join(unknown)}")
        chosen = [by_id[ref] for ref in dict.fromkeys(wanted)]
    _check_no_secrets(chosen)
    document = {
        "format": EXPORT_FORMAT,
        "schema_version": EXPORT_SCHEMA_VERSION,
        "exported_at": datetime.now(UTC).isoformat(),
        "profiles": [{**p.model_dump(mode="json"), "secrets_needed": p.secret_fields()} for p in chosen],
    }
    atomic_write(path, _safe_bytes(document, str(path)))
    return len(chosen)


def read_import(path: Path) -> list[Profile]:
    """The profiles in an export file, all valid, or :class:`ProfileImportError` naming every problem."""
    try:
        size = path.stat().st_size
        if size > MAX_IMPORT_BYTES:
            raise ProfileImportError(f"{path.name} is too large for a profile export ({size} bytes)")
        data = path.read_bytes()
    except OSError as exc:
        raise ProfileImportError(f"{path} could not be read ({exc.strerror or exc})") from None
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProfileImportError(f"{path.name} is not a JSON file ({exc})") from None
    if not isinstance(raw, dict) or raw.get("format") != EXPORT_FORMAT:
        found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
        raise ProfileImportError(f"{path.name} is not a RunMonitor profile export (format: {found!r})")
    version = raw.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ProfileImportError(f"{path.name} has no valid schema_version ({version!r})")
    if version > EXPORT_SCHEMA_VERSION:
        raise ProfileImportError(
            f"{path.name} was made by a newer RunMonitor (schema version {version}; this version reads up to "
            f"{EXPORT_SCHEMA_VERSION})"
        )
    entries = raw.get("profiles")
    if not isinstance(entries, list) or not entries:
        raise ProfileImportError(f"{path.name} holds no profiles")
    problems: list[str] = []
    profiles: list[Profile] = []
    for index, entry in enumerate(entries):
        prefix = f"profiles.{index}"
        if not isinstance(entry, dict):
            problems.append(f"{prefix}: must be an object")
            continue
        entry = dict(entry)
        needed = entry.pop("secrets_needed", [])
        if not isinstance(needed, list) or not all(isinstance(name, str) for name in needed):
            problems.append(f"{prefix}.secrets_needed: must be a list of field names")
        try:
            profiles.append(Profile.model_validate(entry))
        except ValidationError as exc:
            problems.extend(_problems(exc, entry, f"{prefix}.", profile_path=()))
    seen_names: dict[tuple[str, str], int] = {}
    seen_ids: dict[UUID, int] = {}
    for index, profile in enumerate(profiles):
        key = (profile.service, profile.name.casefold())
        if key in seen_names:
            problems.append(f"profiles.{index}.name: same service and name as profiles.{seen_names[key]}")
        if profile.id in seen_ids:
            problems.append(f"profiles.{index}.id: same id as profiles.{seen_ids[profile.id]}")
        seen_names.setdefault(key, index)
        seen_ids.setdefault(profile.id, index)
    if problems:
        raise ProfileImportError(f"{path.name} was not imported", problems)
    return profiles


@dataclass
class Clash:
    """An imported profile that matches an existing one (same id, or same service and name)."""

    index: int
    imported: Profile
    existing: Profile
    reason: Literal["id", "name"]
    choice: Choice | None = None

    @property
    def text(self) -> str:
        which = "is the same profile as" if self.reason == "id" else "has the same name as"
        imported = f"{self.imported.name!r} ({self.imported.service})"
        return f"{imported} {which} existing profile {self.existing.name!r}"


@dataclass
class ImportPlan:
    """What :func:`apply_import` will do; under the "ask" policy every clash needs :meth:`decide` first."""

    profiles: list[Profile]
    clashes: list[Clash]

    def decide(self, ref: int | str, choice: Choice) -> None:
        """Choose what happens to the clash of imported profile ``ref`` (its index or name)."""
        if choice not in _CHOICES:
            raise ValueError(f"choice must be one of {', '.join(_CHOICES)}, not {choice!r}")
        if isinstance(ref, int):
            matches = [c for c in self.clashes if c.index == ref]
        else:
            matches = [c for c in self.clashes if c.imported.name.casefold() == ref.casefold()]
            if len({c.index for c in matches}) > 1:
                raise KeyError(f"several imported profiles are named {ref!r}; use the index")
        if not matches:
            raise KeyError(f"no clash for imported profile {ref!r}")
        for clash in matches:
            clash.choice = choice

    @property
    def undecided(self) -> list[Clash]:
        return [c for c in self.clashes if c.choice is None]

    @property
    def ready(self) -> bool:
        return not self.undecided


def _clashes(settings: Settings, imported: Sequence[Profile]) -> list[Clash]:
    found = []
    for index, profile in enumerate(imported):
        by_id = next((p for p in settings.profiles if p.id == profile.id), None)
        by_name = next(
            (
                p
                for p in settings.profiles
                if p.service == profile.service and p.name.casefold() == profile.name.casefold()
            ),
            None,
        )
        if by_id is not None:
            found.append(Clash(index, profile, by_id, "id"))
        if by_name is not None and by_name is not by_id:
            found.append(Clash(index, profile, by_name, "name"))
    return found


def plan_import(settings: Settings, imported: Sequence[Profile], policy: ClashPolicy) -> ImportPlan:
    """Find the clashes between ``imported`` and ``settings``; decide them all by ``policy`` unless "ask".

    Policies for a clash: "rename" imports a copy named "<name> (2)" (or (3)…); "replace" puts the
    imported profile in the existing one's place *with the existing id*, so the secrets stored in the
    keyring for it stay attached; "skip" leaves the existing profile and drops the imported one.
    Non-clashing profiles are added. Every imported profile gets a fresh id unless it replaces one.
    """
    if policy not in (*_CHOICES, "ask"):
        raise ValueError(f"policy must be rename, replace, skip or ask, not {policy!r}")
    clashes = _clashes(settings, imported)
    if policy != "ask":
        for clash in clashes:
            clash.choice = policy
    return ImportPlan(list(imported), clashes)


def _free_name(name: str, taken: set[str]) -> str:
    if name.casefold() not in taken:
        return name
    n = 2
    while True:
        suffix = f" ({n})"
        candidate = name[: 80 - len(suffix)].rstrip() + suffix
        if candidate.casefold() not in taken:
            return candidate
        n += 1


def apply_import(settings: Settings, plan: ImportPlan) -> Settings:
    """A new :class:`Settings` with the plan carried out; ``settings`` is not changed.

    All or nothing: :class:`ProfileImportError` if a clash is undecided, the settings changed since the
    plan was made, or the result would not be valid.
    """
    if plan.undecided:
        raise ProfileImportError(
            "decide what to do with each clash first", [f"{c.index}: {c.text}" for c in plan.undecided]
        )
    decided = {(c.index, c.existing.id): c.choice for c in plan.clashes}
    current = _clashes(settings, plan.profiles)
    if {(c.index, c.existing.id) for c in current} != set(decided):
        raise ProfileImportError("the profiles changed since this import was planned; plan it again")
    choices: dict[int, list[tuple[Choice, Profile]]] = {}
    for clash in current:
        choice = decided[(clash.index, clash.existing.id)]
        assert choice is not None
        choices.setdefault(clash.index, []).append((choice, clash.existing))

    now = datetime.now(UTC)
    result: list[Profile] = list(settings.profiles)
    replaced: dict[UUID, int] = {}
    problems: list[str] = []
    added: list[Profile] = []
    for index, profile in enumerate(plan.profiles):
        decisions = choices.get(index, [])
        kinds = {choice for choice, _ in decisions}
        if "skip" in kinds:
            continue
        if "replace" in kinds:
            targets = [existing for choice, existing in decisions if choice == "replace"]
            if len(targets) > 1:
                problems.append(f"{index}: {profile.name!r} cannot replace two profiles at once")
                continue
            target = targets[0]
            if target.id in replaced:
                problems.append(
                    f"{index}: {target.name!r} is already replaced by imported profile {replaced[target.id]}"
                )
                continue
            replaced[target.id] = index
            position = next(i for i, p in enumerate(result) if p.id == target.id)
            result[position] = profile.model_copy(
                update={"id": target.id, "created_at": target.created_at, "updated_at": now}
            )
            continue
        added.append(profile)
    for profile in added:
        taken = {p.name.casefold() for p in result if p.service == profile.service}
        result.append(
            profile.model_copy(
                update={"id": uuid4(), "name": _free_name(profile.name, taken), "updated_at": now}
            )
        )
    if problems:
        raise ProfileImportError("the import cannot be carried out", problems)
    document = settings.model_dump(mode="json")
    document["profiles"] = [p.model_dump(mode="json") for p in result]
    try:
        return Settings.model_validate(document, context=STORED_CONTEXT)
    except ValidationError as exc:
        raise ProfileImportError(
            "the import would leave the profiles invalid",
            _problems(exc, document, profile_path=("profiles",)),
        ) from None
