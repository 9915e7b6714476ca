"""Where the secrets of connection profiles (API keys, passwords) are kept.

Three stores, one protocol (:class:`SecretStore`, async):

- :class:`KeyringSecrets`: the OS keyring through python-keyring (Secret Service on Linux,
  the macOS Keychain, the Windows Credential Locker). Entries are keyed by profile id
  (service ``runmonitor``, user name ``<profile id>/<field>``), so renaming a profile never
  orphans a key. Every keyring call runs in a worker thread, never on the event loop.
- :class:`MemorySecrets`: kept only until RunMonitor quits. The default when no keyring works,
  and the unit-test double.
- :class:`PlaintextFileSecrets`: an unencrypted JSON file readable only by the user. Only
  when the person explicitly opts in; it carries a standing warning.

:func:`open_secret_store` picks one for the ``secret_storage`` preference. When the keyring
does not work it falls back to memory and says why; it never falls back to the file.

Failures are raised as :class:`SecretStoreError` with a message for a person; a failed save
never looks saved. Every secret loaded or stored is registered with
:data:`runmonitor.domain.redact.secret_registry`, so logs and error messages scrub it.
Backends from the ``keyrings.alt`` package are never used: they store keys in plain files
without saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets as _random
import stat
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, TypeVar, runtime_checkable

import keyring
import keyring.errors
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail, null

from runmonitor.domain.errors import RunMonitorError
from runmonitor.domain.redact import secret_registry
from runmonitor.storage.paths import AppPaths, ensure_private_dir

log = logging.getLogger(__name__)

SERVICE_NAME = "runmonitor"
PLAINTEXT_FILE_NAME = "secrets.json"
FILE_MODE = 0o600
FILE_FORMAT_VERSION = 1

SecretMode = Literal["keyring", "session", "plaintext_file"]

NO_KEYRING_WARNING = "No keyring is available: keys are kept only until RunMonitor quits"
SESSION_WARNING = "Keys are kept only until RunMonitor quits (chosen in Preferences)"

_T = TypeVar("_T")


class SecretStoreError(RunMonitorError):
    """A secret could not be read, saved or deleted. The message is meant for a person."""

    def __init__(self, message: str, *, backend: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.backend = backend


@runtime_checkable
class SecretStore(Protocol):
    """Keeps the secret fields of profiles, keyed by profile id and field name."""

    @property
    def backend(self) -> str:
        """Where the secrets are kept, for a person (e.g. "macOS Keychain")."""
        ...

    @property
    def persistent(self) -> bool:
        """Whether the secrets survive RunMonitor quitting."""
        ...

    @property
    def warning(self) -> str | None:
        """A standing warning to show beside the key fields, or None."""
        ...

    async def get(self, profile_id: str, field: str) -> str | None: ...

    async def set(self, profile_id: str, field: str, value: str) -> None: ...

    async def delete(self, profile_id: str, field: str) -> None:
        """Forget one secret; no error when it is not stored."""
        ...

    async def delete_profile(self, profile_id: str, fields: Iterable[str]) -> None: ...

    async def get_all(self, profile_id: str, fields: Iterable[str]) -> dict[str, str | None]: ...


def _check_key(profile_id: str, field: str) -> None:
    if not profile_id or "/" in profile_id:
        raise ValueError(f"invalid profile id {profile_id!r}")
    if not field:
        raise ValueError("the field name must not be empty")


def _remember(value: str | None) -> str | None:
    if value:
        secret_registry.register([value])
    return value


# --------------------------------------------------------------------------- memory


class MemorySecrets:
    """Secrets kept in this process only: they are gone when RunMonitor quits."""

    persistent = False

    def __init__(self, *, warning: str | None = SESSION_WARNING, backend: str = "this session only") -> None:
        self.backend = backend
        self.warning = warning
        self._values: dict[tuple[str, str], str] = {}

    def __repr__(self) -> str:
        return f"<MemorySecrets: {len(self._values)} secret(s), values hidden>"

    async def get(self, profile_id: str, field: str) -> str | None:
        _check_key(profile_id, field)
        return _remember(self._values.get((profile_id, field)))

    async def set(self, profile_id: str, field: str, value: str) -> None:
        _check_key(profile_id, field)
        _remember(value)
        self._values[(profile_id, field)] = value

    async def delete(self, profile_id: str, field: str) -> None:
        _check_key(profile_id, field)
        self._values.pop((profile_id, field), None)

    async def delete_profile(self, profile_id: str, fields: Iterable[str]) -> None:
        for name in list(fields):
            await self.delete(profile_id, name)

    async def get_all(self, profile_id: str, fields: Iterable[str]) -> dict[str, str | None]:
        return {name: await self.get(profile_id, name) for name in list(fields)}


# --------------------------------------------------------------------------- keyring


def _is_keyrings_alt(backend: object) -> bool:
    return type(backend).__module__.startswith("keyrings.alt")


def _class_name(backend: object) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


_NAMES = {
    "keyring.backends.SecretService.Keyring": "Secret Service",
    "keyring.backends.libsecret.Keyring": "Secret Service (libsecret)",
    "keyring.backends.macOS.Keyring": "macOS Keychain",
    "keyring.backends.Windows.WinVaultKeyring": "Windows Credential Locker",
    "keyring.backends.kwallet.DBusKeyring": "KWallet",
    "keyring.backends.kwallet.DBusKeyringKWallet4": "KWallet 4",
}


def backend_display_name(backend: KeyringBackend) -> str:
    """A name for a person, e.g. "Secret Service" or "macOS Keychain"."""
    known = _NAMES.get(_class_name(backend))
    if known:
        return known
    name = getattr(backend, "name", None)
    return name if isinstance(name, str) and name else type(backend).__qualname__


def _secret_service_provider() -> str | None:
    """Which program serves org.freedesktop.secrets on the session bus (Linux), if it can tell.

    Only for the backend's display name; any failure just means "don't know".
    """
    if not sys.platform.startswith("linux") or not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return None
    try:
        from jeepney import DBus  # type: ignore[import-untyped]
        from jeepney.io.blocking import open_dbus_connection  # type: ignore[import-untyped]

        with open_dbus_connection(bus="SESSION") as connection:
            reply = connection.send_and_get_reply(
                DBus().GetConnectionUnixProcessID("org.freedesktop.secrets"), timeout=2
            )
        pid = int(reply.body[0])
        command = Path(f"/proc/{pid}/comm").read_text(encoding="utf-8").strip()
    except Exception as exc:  # a cosmetic detail: the name stays "Secret Service"
        log.debug("could not tell which program provides the Secret Service: %s", exc)
        return None
    for prefix, name in (
        ("gnome-keyring", "gnome-keyring"),
        ("kwalletd", "KWallet"),
        ("keepassxc", "KeePassXC"),
    ):
        if command.startswith(prefix):
            return name
    return command or None


def describe_keyring_error(exc: BaseException) -> str:
    """What went wrong with the keyring, in words for a person (no secret values)."""
    detail = secret_registry.scrub(str(exc)).strip().rstrip(".") or type(exc).__name__
    if isinstance(exc, keyring.errors.NoKeyringError):
        return f"no keyring backend is available ({detail})"
    if isinstance(exc, keyring.errors.KeyringLocked):
        return f"the keyring is locked and was not unlocked — the unlock prompt was dismissed ({detail})"
    if isinstance(exc, keyring.errors.InitError):
        return (
            "the keyring is locked or could not be opened — no unlock prompt could be shown, "
            f"or it was dismissed ({detail})"
        )
    if isinstance(exc, keyring.errors.PasswordSetError):
        return f"the keyring refused to store the key ({detail})"
    if isinstance(exc, keyring.errors.PasswordDeleteError):
        return f"the keyring could not delete the key ({detail})"
    if isinstance(exc, keyring.errors.KeyringError):
        return f"the keyring failed ({detail})"
    return f"the keyring failed ({type(exc).__name__}: {detail})"


class KeyringSecrets:
    """Secrets in the OS keyring, through python-keyring, off the event loop.

    ``keyring_backend`` defaults to ``keyring.get_keyring()`` (resolved here, which may
    talk to D-Bus: build it in a worker thread, as :func:`open_secret_store_async` does).
    Backends from ``keyrings.alt`` are refused.
    """

    persistent = True
    warning: str | None = None

    def __init__(self, keyring_backend: KeyringBackend | None = None, *, name: str | None = None) -> None:
        chosen = keyring.get_keyring() if keyring_backend is None else keyring_backend
        if _is_keyrings_alt(chosen):
            raise SecretStoreError(
                f"{_class_name(chosen)} (from keyrings.alt) stores keys without encryption; "
                "RunMonitor does not use it",
                backend=_class_name(chosen),
            )
        self._keyring = chosen
        self.backend = name or backend_display_name(chosen)
        # One keyring call at a time: concurrent unlock prompts help nobody.
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<KeyringSecrets: {self.backend} ({_class_name(self._keyring)}), values hidden>"

    @staticmethod
    def username(profile_id: str, field: str) -> str:
        return f"{profile_id}/{field}"

    def _locked(self, work: Callable[[], _T]) -> _T:
        with self._lock:
            return work()

    async def _call(self, action: str, work: Callable[[], _T]) -> _T:
        try:
            return await asyncio.to_thread(self._locked, work)
        except SecretStoreError:
            raise
        except Exception as exc:
            message = f"Could not {action} in {self.backend}: {describe_keyring_error(exc)}."
            raise SecretStoreError(message, backend=self.backend) from exc

    def _get(self, profile_id: str, field: str) -> str | None:
        value = self._keyring.get_password(SERVICE_NAME, self.username(profile_id, field))
        return value if isinstance(value, str) else None

    def _delete(self, profile_id: str, field: str) -> None:
        username = self.username(profile_id, field)
        try:
            self._keyring.delete_password(SERVICE_NAME, username)
        except keyring.errors.PasswordDeleteError:
            # Backends raise this for "not stored" too; only a key that is still there is an error.
            if self._keyring.get_password(SERVICE_NAME, username) is not None:
                raise

    async def get(self, profile_id: str, field: str) -> str | None:
        _check_key(profile_id, field)
        value = await self._call(f"read the {field} key", lambda: self._get(profile_id, field))
        return _remember(value)

    async def set(self, profile_id: str, field: str, value: str) -> None:
        _check_key(profile_id, field)
        _remember(value)
        username = self.username(profile_id, field)
        await self._call(
            f"save the {field} key", lambda: self._keyring.set_password(SERVICE_NAME, username, value)
        )

    async def delete(self, profile_id: str, field: str) -> None:
        _check_key(profile_id, field)
        await self._call(f"delete the {field} key", lambda: self._delete(profile_id, field))

    async def delete_profile(self, profile_id: str, fields: Iterable[str]) -> None:
        names = list(fields)
        for name in names:
            _check_key(profile_id, name)

        def work() -> None:
            failed: list[tuple[str, Exception]] = []
            for name in names:
                try:
                    self._delete(profile_id, name)
                except Exception as exc:  # keep deleting the others, then report every failure
                    failed.append((name, exc))
            if failed:
                details = "; ".join(f"{name}: {describe_keyring_error(exc)}" for name, exc in failed)
                raise SecretStoreError(
                    f"Could not delete the profile's keys from {self.backend} ({details}).",
                    backend=self.backend,
                ) from failed[0][1]

        await self._call("delete the profile's keys", work)

    async def get_all(self, profile_id: str, fields: Iterable[str]) -> dict[str, str | None]:
        names = list(fields)
        for name in names:
            _check_key(profile_id, name)
        values = await self._call(
            "read the profile's keys", lambda: {name: self._get(profile_id, name) for name in names}
        )
        for value in values.values():
            _remember(value)
        return values


# --------------------------------------------------------------------------- plaintext file


def _display_path(path: Path) -> str:
    with contextlib.suppress(RuntimeError, ValueError):
        return "~/" + path.relative_to(Path.home()).as_posix()
    return str(path)


class PlaintextFileSecrets:
    """Secrets in an UNENCRYPTED JSON file (mode 0o600 in a 0o700 directory).

    Only when the person explicitly opts in: anyone who can read the file (a backup, a
    process running as the same user, root) can read the keys. Writes are atomic.
    """

    persistent = True

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        shown = _display_path(self.path)
        self.backend = f"unencrypted file {shown}"
        self.warning = f"Keys are stored UNENCRYPTED in {shown} (readable only by you)"
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<PlaintextFileSecrets: {self.path}, values hidden>"

    # The file: {"version": 1, "secrets": {profile_id: {field: value}}}

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
                text = handle.read()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise SecretStoreError(
                f"Could not read {self.path}: {exc.strerror or exc}.", backend=self.backend
            ) from exc
        if os.name == "posix" and mode & 0o077:
            log.warning("%s was readable by others (mode %o); making it private", self.path, mode)
            try:
                os.chmod(self.path, FILE_MODE)
            except OSError as exc:
                raise SecretStoreError(
                    f"{self.path} is readable by others and could not be made private: "
                    f"{exc.strerror or exc}.",
                    backend=self.backend,
                ) from exc
        try:
            document = json.loads(text)
            if not isinstance(document, dict) or document.get("version") != FILE_FORMAT_VERSION:
                raise ValueError("not a RunMonitor secrets file of a known version")
            stored = document.get("secrets")
            if not isinstance(stored, dict) or not all(
                isinstance(k, str) and isinstance(v, dict) and all(isinstance(x, str) for x in v.values())
                for k, v in stored.items()
            ):
                raise ValueError("the secrets are not a mapping of profile id to field values")
        except ValueError as exc:
            # Never overwritten: the person may need what is in it.
            raise SecretStoreError(
                f"{self.path} is damaged ({type(exc).__name__}); it was left untouched. "
                "Move it away to start a new one.",
                backend=self.backend,
            ) from None
        return {k: dict(v) for k, v in stored.items()}

    def _save(self, stored: dict[str, dict[str, str]]) -> None:
        document = {"version": FILE_FORMAT_VERSION, "secrets": {k: v for k, v in stored.items() if v}}
        data = json.dumps(document, indent=2, sort_keys=True).encode("utf-8")
        directory = self.path.parent
        try:
            ensure_private_dir(directory)
            fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
            try:
                with os.fdopen(fd, "wb") as handle:
                    if os.name == "posix":
                        os.fchmod(handle.fileno(), FILE_MODE)  # mkstemp's default, made explicit
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temp, self.path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)
                raise
            if os.name == "posix":
                dir_fd = os.open(directory, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        except OSError as exc:
            raise SecretStoreError(
                f"Could not save to {self.path}: {exc.strerror or exc}. The key was NOT saved.",
                backend=self.backend,
            ) from exc

    def _update(self, change: Callable[[dict[str, dict[str, str]]], bool]) -> None:
        with self._lock:
            stored = self._load()
            if change(stored):
                self._save(stored)

    def _read(self) -> dict[str, dict[str, str]]:
        with self._lock:
            return self._load()

    async def get(self, profile_id: str, field: str) -> str | None:
        _check_key(profile_id, field)
        stored = await asyncio.to_thread(self._read)
        return _remember(stored.get(profile_id, {}).get(field))

    async def set(self, profile_id: str, field: str, value: str) -> None:
        _check_key(profile_id, field)
        _remember(value)

        def change(stored: dict[str, dict[str, str]]) -> bool:
            stored.setdefault(profile_id, {})[field] = value
            return True

        await asyncio.to_thread(self._update, change)

    async def delete(self, profile_id: str, field: str) -> None:
        await self.delete_profile(profile_id, [field])

    async def delete_profile(self, profile_id: str, fields: Iterable[str]) -> None:
        names = list(fields)
        for name in names:
            _check_key(profile_id, name)

        def change(stored: dict[str, dict[str, str]]) -> bool:
            entry = stored.get(profile_id, {})
            removed = [entry.pop(name) for name in names if name in entry]
            if not entry:
                stored.pop(profile_id, None)
            return bool(removed)

        await asyncio.to_thread(self._update, change)

    async def get_all(self, profile_id: str, fields: Iterable[str]) -> dict[str, str | None]:
        names = list(fields)
        for name in names:
            _check_key(profile_id, name)
        entry = (await asyncio.to_thread(self._read)).get(profile_id, {})
        return {name: _remember(entry.get(name)) for name in names}


# --------------------------------------------------------------------------- probing


@dataclass(frozen=True)
class KeyringStatus:
    """Whether the OS keyring works here, and if not, why (in words for a person)."""

    usable: bool
    backend: str
    reason: str | None = None
    backend_class: str = ""
    keyring: KeyringBackend | None = field(default=None, repr=False, compare=False)


def _viable_chained(backend: chainer.ChainerBackend) -> list[KeyringBackend]:
    chained: list[KeyringBackend] = list(backend.backends)
    return [
        kr
        for kr in chained
        if not _is_keyrings_alt(kr)
        and not isinstance(kr, (fail.Keyring, null.Keyring, chainer.ChainerBackend))
    ]


def probe_keyring(backend: KeyringBackend | None = None) -> KeyringStatus:
    """Check that the keyring (``backend`` or ``keyring.get_keyring()``) really works.

    Blocking (it may talk to D-Bus and show an unlock prompt): call it from a worker
    thread, or use :func:`probe_keyring_async`. It stores, reads back and deletes a
    throwaway entry, which catches locked and uninitialised keyrings.
    """
    try:
        chosen = keyring.get_keyring() if backend is None else backend
    except Exception as exc:
        reason = f"the keyring configuration could not be loaded ({type(exc).__name__}: {exc})"
        return KeyringStatus(False, "none", reason)
    class_name = _class_name(chosen)
    name = backend_display_name(chosen)

    def unusable(reason: str) -> KeyringStatus:
        return KeyringStatus(False, name, reason, class_name)

    if isinstance(chosen, fail.Keyring):
        if sys.platform.startswith("linux") and not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
            return unusable(
                "no keyring backend is available: there is no D-Bus session bus for a Secret Service"
            )
        return unusable(
            "no keyring backend is available (on Linux: no Secret Service such as gnome-keyring or KWallet "
            "is running)"
        )
    if isinstance(chosen, null.Keyring):
        return unusable("the keyring is switched off (python-keyring is configured with its null backend)")
    if _is_keyrings_alt(chosen):
        return unusable(
            f"the only keyring found is {type(chosen).__qualname__} from keyrings.alt, "
            "which keeps keys in a file without real encryption"
        )
    if isinstance(chosen, chainer.ChainerBackend):
        viable = _viable_chained(chosen)
        if not viable:
            return unusable("no viable keyring backend (only ones that do not keep keys safely)")
        # Use the best real backend directly, so nothing ever reaches a keyrings.alt one.
        chosen = viable[0]
        class_name = _class_name(chosen)
        name = backend_display_name(chosen)

    probe_user = f"probe-{_random.token_hex(8)}/check"
    probe_value = _random.token_urlsafe(16)
    stored = False
    try:
        chosen.set_password(SERVICE_NAME, probe_user, probe_value)
        stored = True
        read_back = chosen.get_password(SERVICE_NAME, probe_user)
        chosen.delete_password(SERVICE_NAME, probe_user)
        stored = False
    except Exception as exc:
        log.info("the keyring (%s) does not work: %s", class_name, exc)
        if stored:  # tidy up the throwaway entry; the failure reported is the first one
            with contextlib.suppress(Exception):
                chosen.delete_password(SERVICE_NAME, probe_user)
        return unusable(describe_keyring_error(exc))
    if read_back != probe_value:
        return unusable("the keyring did not give back what was stored in it")
    if class_name == "keyring.backends.SecretService.Keyring":
        provider = _secret_service_provider()
        if provider:
            name = f"{name} ({provider})"
    return KeyringStatus(True, name, None, class_name, chosen)


async def probe_keyring_async(backend: KeyringBackend | None = None) -> KeyringStatus:
    """:func:`probe_keyring` in a worker thread."""
    return await asyncio.to_thread(probe_keyring, backend)


# --------------------------------------------------------------------------- choosing a store


def no_keyring_notice(reason: str) -> str:
    return (
        f"No working keyring ({reason}): keys will be kept only until RunMonitor quits. "
        "To keep them, install/unlock a Secret Service (e.g. gnome-keyring), "
        "or opt in to an unencrypted file in Preferences."
    )


def plaintext_file_path(paths: AppPaths) -> Path:
    return paths.config_dir / PLAINTEXT_FILE_NAME


def open_secret_store(mode: SecretMode, paths: AppPaths) -> tuple[SecretStore, list[str]]:
    """The store for the ``secret_storage`` preference, and notices to show the person.

    Blocking in "keyring" mode (it probes the keyring): call it in a worker thread, or use
    :func:`open_secret_store_async`. Without a working keyring the keys are kept in memory
    only; the unencrypted file is used only when ``mode`` says so.
    """
    if mode == "keyring":
        status = probe_keyring()
        if status.usable and status.keyring is not None:
            return KeyringSecrets(status.keyring, name=status.backend), []
        reason = status.reason or "unknown reason"
        log.warning("no working keyring (%s); keys are kept for this session only", reason)
        return MemorySecrets(warning=NO_KEYRING_WARNING), [no_keyring_notice(reason)]
    if mode == "session":
        return MemorySecrets(warning=SESSION_WARNING), []
    if mode == "plaintext_file":
        store = PlaintextFileSecrets(plaintext_file_path(paths))
        return store, [store.warning]
    raise ValueError(f"unknown secret storage mode {mode!r}")


async def open_secret_store_async(mode: SecretMode, paths: AppPaths) -> tuple[SecretStore, list[str]]:
    """:func:`open_secret_store` in a worker thread."""
    return await asyncio.to_thread(open_secret_store, mode, paths)


__all__ = [
    "NO_KEYRING_WARNING",
    "SERVICE_NAME",
    "KeyringSecrets",
    "KeyringStatus",
    "MemorySecrets",
    "PlaintextFileSecrets",
    "SecretStore",
    "SecretStoreError",
    "backend_display_name",
    "describe_keyring_error",
    "no_keyring_notice",
    "open_secret_store",
    "open_secret_store_async",
    "probe_keyring",
    "probe_keyring_async",
]
