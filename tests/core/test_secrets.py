"""Secret stores: the OS keyring (off the event loop, errors never swallowed), memory, opt-in file."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import keyring
import keyring.errors
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail, null

from runmonitor.domain.redact import MASK, secret_registry
from runmonitor.storage.paths import AppPaths, app_paths
from runmonitor.storage.secrets import (
    NO_KEYRING_WARNING,
    SERVICE_NAME,
    KeyringSecrets,
    MemorySecrets,
    PlaintextFileSecrets,
    SecretStore,
    SecretStoreError,
    open_secret_store,
    open_secret_store_async,
    probe_keyring,
    probe_keyring_async,
)

HERE = Path(__file__).resolve().parent


def new_secret() -> str:
    return f"sk-{uuid.uuid4().hex}"


def new_profile_id() -> str:
    return str(uuid.uuid4())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --------------------------------------------------------------------------- test doubles
#
# keyring registers every KeyringBackend subclass for discovery; ``viable = False`` keeps these
# doubles out of keyring's own choice of a default backend (they are only ever set explicitly).


class MemoryKeyring(KeyringBackend):
    """An in-memory keyring that behaves like the real ones (PasswordDeleteError when absent)."""

    viable = False
    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[tuple[str, str], str] = {}
        self.threads: list[threading.Thread] = []

    def _seen(self) -> None:
        self.threads.append(threading.current_thread())

    def get_password(self, service: str, username: str) -> str | None:
        self._seen()
        return self.values.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self._seen()
        self.values[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self._seen()
        if (service, username) not in self.values:
            raise keyring.errors.PasswordDeleteError("No such password!")
        del self.values[(service, username)]


class LockedKeyring(MemoryKeyring):
    """Reads work; saving fails as a locked Secret Service does."""

    def set_password(self, service: str, username: str, password: str) -> None:
        self._seen()
        raise keyring.errors.KeyringLocked("Failed to unlock the collection!")


class RefusingKeyring(MemoryKeyring):
    """Saving fails, and the backend's message carries the password (it must be scrubbed)."""

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.PasswordSetError(f"cannot store {password!r}")


class LockedReadKeyring(MemoryKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("Failed to unlock the item!")


class PromptDismissedKeyring(MemoryKeyring):
    """gnome-keyring without a display: creating the default collection needs a prompt."""

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.InitError("Failed to create the collection: Prompt dismissed..")


class StuckDeleteKeyring(MemoryKeyring):
    """Deleting one field fails although it is stored."""

    def delete_password(self, service: str, username: str) -> None:
        if username.endswith("/password"):
            raise keyring.errors.PasswordDeleteError("the item is read-only")
        super().delete_password(service, username)


class ForgetfulKeyring(MemoryKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        return None


PlaintextKeyring = type("PlaintextKeyring", (MemoryKeyring,), {"__module__": "keyrings.alt.file"})


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    """keyring's global backend replaced by an in-memory one, restored afterwards."""
    old = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(old)


@pytest.fixture
def restore_keyring() -> Iterator[None]:
    old = keyring.get_keyring()
    try:
        yield
    finally:
        keyring.set_keyring(old)


@pytest.fixture
def paths(tmp_path: Path) -> AppPaths:
    return app_paths({"RUNMONITOR_HOME": str(tmp_path / "home")})


@pytest.fixture(params=["memory", "plaintext_file", "keyring"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SecretStore]:
    if request.param == "memory":
        yield MemorySecrets()
    elif request.param == "plaintext_file":
        yield PlaintextFileSecrets(tmp_path / "config" / "secrets.json")
    else:
        old = keyring.get_keyring()
        keyring.set_keyring(MemoryKeyring())
        try:
            yield KeyringSecrets()
        finally:
            keyring.set_keyring(old)


# --------------------------------------------------------------------------- every store


async def test_round_trip_and_delete(store: SecretStore) -> None:
    profile, other = new_profile_id(), new_profile_id()
    key, password = new_secret(), new_secret()
    assert await store.get(profile, "api_key") is None
    await store.set(profile, "api_key", key)
    await store.set(profile, "password", password)
    await store.set(other, "api_key", "other-profile-key")
    assert await store.get(profile, "api_key") == key
    assert await store.get_all(profile, ["api_key", "password", "token"]) == {
        "api_key": key,
        "password": password,
        "token": None,
    }
    await store.set(profile, "api_key", "replaced-key")
    assert await store.get(profile, "api_key") == "replaced-key"

    await store.delete(profile, "api_key")
    await store.delete(profile, "api_key")  # absent: no error
    await store.delete(new_profile_id(), "token")
    assert await store.get(profile, "api_key") is None
    assert await store.get(profile, "password") == password


async def test_delete_profile_removes_every_field_and_only_that_profile(store: SecretStore) -> None:
    profile, other = new_profile_id(), new_profile_id()
    await store.set(profile, "api_key", new_secret())
    await store.set(profile, "client_secret", new_secret())
    kept = new_secret()
    await store.set(other, "api_key", kept)
    await store.delete_profile(profile, iter(["api_key", "client_secret", "never_stored"]))
    assert await store.get_all(profile, ["api_key", "client_secret"]) == {
        "api_key": None,
        "client_secret": None,
    }
    assert await store.get(other, "api_key") == kept


async def test_values_never_in_repr_and_registered_for_scrubbing(store: SecretStore) -> None:
    value = new_secret()
    await store.set(new_profile_id(), "api_key", value)
    assert value not in repr(store)
    assert value not in str(store)
    assert secret_registry.scrub(f"HTTP 401 for key {value}") == f"HTTP 401 for key {MASK}"


async def test_invalid_keys_are_refused(store: SecretStore) -> None:
    with pytest.raises(ValueError, match="profile id"):
        await store.set("", "api_key", "x")
    with pytest.raises(ValueError, match="profile id"):
        await store.get("a/b", "api_key")
    with pytest.raises(ValueError, match="field"):
        await store.get(new_profile_id(), "")


def test_the_stores_describe_themselves(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    stores: list[SecretStore] = [MemorySecrets(), PlaintextFileSecrets(tmp_path / "s.json"), KeyringSecrets()]
    assert all(isinstance(s, SecretStore) for s in stores)
    memory, plaintext, in_keyring = stores
    assert (memory.persistent, memory.backend) == (False, "this session only")
    assert memory.warning and "until RunMonitor quits" in memory.warning
    assert plaintext.persistent
    assert plaintext.warning and plaintext.warning.startswith("Keys are stored UNENCRYPTED in ")
    assert plaintext.warning.endswith("s.json (readable only by you)")
    assert plaintext.backend.startswith("unencrypted file ")
    assert in_keyring.persistent
    assert in_keyring.warning is None
    assert in_keyring.backend == memory_keyring.name


# --------------------------------------------------------------------------- plaintext file


async def test_plaintext_file_is_private_and_persistent(tmp_path: Path) -> None:
    path = tmp_path / "config" / "secrets.json"
    store = PlaintextFileSecrets(path)
    profile, value = new_profile_id(), new_secret()
    assert not path.exists()
    await store.set(profile, "api_key", value)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert json.loads(path.read_text()) == {"version": 1, "secrets": {profile: {"api_key": value}}}
    # A new instance (the next start of RunMonitor) reads the same file.
    assert await PlaintextFileSecrets(path).get(profile, "api_key") == value
    await store.delete_profile(profile, ["api_key"])
    assert json.loads(path.read_text()) == {"version": 1, "secrets": {}}


async def test_plaintext_file_writes_are_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secrets.json"
    store = PlaintextFileSecrets(path)
    profile, first = new_profile_id(), new_secret()
    for index in range(5):
        await store.set(profile, f"field{index}", first)
    assert listing(tmp_path) == ["secrets.json"]  # no temp files left
    before = path.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(SecretStoreError, match=r"No space left on device\. The key was NOT saved"):
        await store.set(profile, "field0", new_secret())
    assert path.read_bytes() == before
    assert listing(tmp_path) == ["secrets.json"]


async def test_plaintext_file_values_loaded_from_disk_are_registered(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    profile, value = new_profile_id(), new_secret()
    path.write_text(json.dumps({"version": 1, "secrets": {profile: {"token": value}}}))
    path.chmod(0o644)
    assert await PlaintextFileSecrets(path).get_all(profile, ["token"]) == {"token": value}
    assert secret_registry.scrub(value) == MASK
    assert mode(path) == 0o600  # a file others could read is made private


async def test_damaged_plaintext_file_is_reported_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    path.write_text('{"version": 1, "secrets": {"p": ')
    store = PlaintextFileSecrets(path)
    with pytest.raises(SecretStoreError, match="damaged"):
        await store.get("p", "api_key")
    with pytest.raises(SecretStoreError, match="damaged"):
        await store.set("p", "api_key", new_secret())
    assert path.read_text() == '{"version": 1, "secrets": {"p": '


# --------------------------------------------------------------------------- keyring


async def test_keyring_entries_are_keyed_by_profile_id(memory_keyring: MemoryKeyring) -> None:
    store = KeyringSecrets()
    profile, value = new_profile_id(), new_secret()
    await store.set(profile, "api_key", value)
    assert memory_keyring.values == {(SERVICE_NAME, f"{profile}/api_key"): value}


async def test_keyring_calls_run_off_the_event_loop_thread(memory_keyring: MemoryKeyring) -> None:
    loop_thread = threading.current_thread()
    store = KeyringSecrets()
    profile = new_profile_id()
    await store.set(profile, "api_key", new_secret())
    await store.get(profile, "api_key")
    await store.get_all(profile, ["api_key", "password"])
    await store.delete(profile, "api_key")
    await store.delete_profile(profile, ["api_key", "password"])
    assert len(memory_keyring.threads) >= 7
    assert all(thread is not loop_thread for thread in memory_keyring.threads)


async def test_keyring_values_loaded_are_registered(memory_keyring: MemoryKeyring) -> None:
    profile, value = new_profile_id(), new_secret()
    memory_keyring.values[(SERVICE_NAME, f"{profile}/token")] = value
    assert await KeyringSecrets().get(profile, "token") == value
    assert secret_registry.scrub(f"bad {value}") == f"bad {MASK}"


async def test_locked_keyring_save_fails_loudly(restore_keyring: None) -> None:
    backend = LockedKeyring()
    keyring.set_keyring(backend)
    store = KeyringSecrets()
    loop_thread = threading.current_thread()
    with pytest.raises(SecretStoreError, match=r"Could not save the api_key key in .*locked") as caught:
        await store.set(new_profile_id(), "api_key", new_secret())
    assert isinstance(caught.value.__cause__, keyring.errors.KeyringLocked)
    assert backend.values == {}
    assert backend.threads and all(thread is not loop_thread for thread in backend.threads)


async def test_refused_save_fails_and_the_message_hides_the_key(restore_keyring: None) -> None:
    keyring.set_keyring(RefusingKeyring())
    value = new_secret()
    with pytest.raises(SecretStoreError, match="refused to store the key") as caught:
        await KeyringSecrets().set(new_profile_id(), "api_key", value)
    assert value not in str(caught.value)
    assert MASK in str(caught.value)


async def test_locked_keyring_read_fails_loudly(restore_keyring: None) -> None:
    keyring.set_keyring(LockedReadKeyring())
    store = KeyringSecrets()
    with pytest.raises(SecretStoreError, match="locked"):
        await store.get(new_profile_id(), "api_key")
    with pytest.raises(SecretStoreError, match="locked"):
        await store.get_all(new_profile_id(), ["api_key"])


async def test_failed_delete_is_reported_after_deleting_the_rest(restore_keyring: None) -> None:
    backend = StuckDeleteKeyring()
    keyring.set_keyring(backend)
    store = KeyringSecrets()
    profile = new_profile_id()
    for name in ("api_key", "password", "token"):
        await store.set(profile, name, new_secret())
    with pytest.raises(SecretStoreError, match=r"password: the keyring could not delete the key"):
        await store.delete_profile(profile, ["api_key", "password", "token"])
    assert list(backend.values) == [(SERVICE_NAME, f"{profile}/password")]
    with pytest.raises(SecretStoreError, match="could not delete"):
        await store.delete(profile, "password")


def test_keyrings_alt_backends_are_refused() -> None:
    with pytest.raises(SecretStoreError, match=r"keyrings\.alt"):
        KeyringSecrets(PlaintextKeyring())


# --------------------------------------------------------------------------- probe


def test_probe_fail_backend_is_unusable() -> None:
    status = probe_keyring(fail.Keyring())
    assert not status.usable
    assert status.reason and "no keyring backend" in status.reason
    assert status.keyring is None


def test_probe_null_backend_is_unusable() -> None:
    status = probe_keyring(null.Keyring())
    assert not status.usable
    assert status.reason and "switched off" in status.reason


def test_probe_refuses_keyrings_alt() -> None:
    backend = PlaintextKeyring()
    status = probe_keyring(backend)
    assert not status.usable
    assert status.reason and "keyrings.alt" in status.reason
    assert backend.values == {} and backend.threads == []  # not even tried


def test_probe_catches_a_keyring_that_cannot_be_unlocked() -> None:
    status = probe_keyring(PromptDismissedKeyring())
    assert not status.usable
    assert status.reason and "locked" in status.reason and "prompt" in status.reason
    assert "Prompt dismissed" in status.reason


def test_probe_catches_a_keyring_that_loses_what_it_stores() -> None:
    status = probe_keyring(ForgetfulKeyring())
    assert not status.usable
    assert status.reason and "did not give back" in status.reason


def test_probe_tidies_up_when_reading_back_fails() -> None:
    backend = LockedReadKeyring()
    status = probe_keyring(backend)
    assert not status.usable
    assert status.reason and "locked" in status.reason
    assert backend.values == {}


def test_probe_working_backend_is_usable_and_leaves_nothing_behind() -> None:
    backend = MemoryKeyring()
    status = probe_keyring(backend)
    assert status.usable, status.reason
    assert status.reason is None
    assert status.keyring is backend
    assert backend.values == {}
    assert len(backend.threads) == 3  # set, get, delete


def test_probe_uses_keyrings_default(memory_keyring: MemoryKeyring) -> None:
    assert probe_keyring().keyring is memory_keyring


def test_probe_chainer_skips_keyrings_alt() -> None:
    real, alt = MemoryKeyring(), PlaintextKeyring()
    only_alt = type("OnlyAlt", (chainer.ChainerBackend,), {"viable": False, "backends": [alt]})()
    status = probe_keyring(only_alt)
    assert not status.usable
    assert status.reason and "no viable keyring backend" in status.reason
    both = type("Both", (chainer.ChainerBackend,), {"viable": False, "backends": [alt, real]})()
    status = probe_keyring(both)
    assert status.usable
    assert status.keyring is real
    assert alt.threads == []


async def test_probe_async_runs_in_a_thread() -> None:
    backend = MemoryKeyring()
    status = await probe_keyring_async(backend)
    assert status.usable
    assert all(thread is not threading.current_thread() for thread in backend.threads)


# --------------------------------------------------------------------------- choosing a store


def test_keyring_mode_without_a_keyring_falls_back_to_memory(paths: AppPaths, restore_keyring: None) -> None:
    keyring.set_keyring(fail.Keyring())
    store, notices = open_secret_store("keyring", paths)
    assert isinstance(store, MemorySecrets)
    assert not store.persistent
    assert store.warning == NO_KEYRING_WARNING
    assert len(notices) == 1
    assert notices[0].startswith("No working keyring (no keyring backend")
    assert notices[0].endswith(
        "): keys will be kept only until RunMonitor quits. To keep them, install/unlock a Secret Service "
        "(e.g. gnome-keyring), or opt in to an unencrypted file in Preferences."
    )
    assert not (paths.config_dir / "secrets.json").exists()


def test_keyring_mode_with_a_locked_keyring_falls_back_to_memory(
    paths: AppPaths, restore_keyring: None
) -> None:
    keyring.set_keyring(PromptDismissedKeyring())
    store, notices = open_secret_store("keyring", paths)
    assert isinstance(store, MemorySecrets)
    assert "Prompt dismissed" in notices[0]


async def test_keyring_mode_with_a_keyring(paths: AppPaths, memory_keyring: MemoryKeyring) -> None:
    store, notices = await open_secret_store_async("keyring", paths)
    assert isinstance(store, KeyringSecrets)
    assert notices == []
    profile, value = new_profile_id(), new_secret()
    await store.set(profile, "api_key", value)
    assert memory_keyring.values == {(SERVICE_NAME, f"{profile}/api_key"): value}


async def test_plaintext_file_only_when_chosen(paths: AppPaths) -> None:
    store, notices = open_secret_store("plaintext_file", paths)
    assert isinstance(store, PlaintextFileSecrets)
    assert store.path == paths.config_dir / "secrets.json"
    assert store.warning and "UNENCRYPTED" in store.warning
    assert notices == [store.warning]
    await store.set(new_profile_id(), "api_key", new_secret())
    assert mode(paths.config_dir / "secrets.json") == 0o600


def test_session_mode(paths: AppPaths) -> None:
    store, notices = open_secret_store("session", paths)
    assert isinstance(store, MemorySecrets)
    assert notices == []
    assert store.warning and "until RunMonitor quits" in store.warning


def test_unknown_mode(paths: AppPaths) -> None:
    with pytest.raises(ValueError, match="unknown secret storage mode"):
        open_secret_store("cloud", paths)  # type: ignore[arg-type]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the no-backend case is Linux without D-Bus")
def test_no_session_bus_means_session_only_keys(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DBUS_", "PYTHON_KEYRING", "XDG_", "KEYRING"))
    }
    env.update(
        HOME=str(tmp_path / "home"),
        XDG_CONFIG_HOME=str(tmp_path / "home" / ".config"),
        XDG_DATA_HOME=str(tmp_path / "home" / ".local" / "share"),
        RUNMONITOR_HOME=str(tmp_path / "rm"),
    )
    done = subprocess.run(
        [sys.executable, str(HERE / "keyring_probe.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["default_backend"] == "keyring.backends.fail.Keyring"
    assert not report["usable"]
    assert "no D-Bus session bus" in report["reason"]
    assert report["store"] == "MemorySecrets"
    assert not report["persistent"]
    assert report["warning"] == NO_KEYRING_WARNING
    assert len(report["notices"]) == 1
    assert report["notices"][0].startswith("No working keyring (no keyring backend is available")
    assert not (tmp_path / "rm" / "config" / "secrets.json").exists()


# --------------------------------------------------------------------------- a real Secret Service


@pytest.fixture
def secret_service() -> KeyringBackend:
    """keyring's default backend when it is a real Secret Service; otherwise the test is skipped.

    CI sets RUNMONITOR_REQUIRE_SECRET_SERVICE=1 so a missing Secret Service fails there instead.
    """

    def unavailable(reason: str) -> None:
        if os.environ.get("RUNMONITOR_REQUIRE_SECRET_SERVICE") == "1":
            pytest.fail(f"RUNMONITOR_REQUIRE_SECRET_SERVICE=1 but {reason}")
        pytest.skip(reason)

    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        unavailable(
            "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset); run the tests under dbus-run-session "
            "with an unlocked gnome-keyring to include the real Secret Service test"
        )
    default = keyring.get_keyring()
    if type(default).__module__ != "keyring.backends.SecretService":
        unavailable(f"the default keyring backend is {type(default).__module__}, not the Secret Service")
    return default


async def test_real_secret_service_round_trip(secret_service: KeyringBackend) -> None:
    status = await probe_keyring_async()
    assert status.usable, status.reason
    assert status.backend.startswith("Secret Service")
    store = KeyringSecrets(status.keyring, name=status.backend)
    profile, key, password = new_profile_id(), new_secret(), new_secret()
    secret_tool = shutil.which("secret-tool")

    def lookup(field: str) -> subprocess.CompletedProcess[str]:
        assert secret_tool is not None
        return subprocess.run(
            [secret_tool, "lookup", "service", SERVICE_NAME, "username", f"{profile}/{field}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    try:
        await store.set(profile, "api_key", key)
        await store.set(profile, "password", password)
        assert await store.get(profile, "api_key") == key
        assert await store.get_all(profile, ["api_key", "password", "token"]) == {
            "api_key": key,
            "password": password,
            "token": None,
        }
        if secret_tool:  # libsecret's own client sees the same item
            assert lookup("api_key").stdout == key
        await store.delete(profile, "token")  # not stored: no error
        await store.delete_profile(profile, ["api_key", "password", "token"])
        assert await store.get_all(profile, ["api_key", "password"]) == {"api_key": None, "password": None}
        if secret_tool:
            found = lookup("api_key")
            assert (found.returncode, found.stdout) == (1, "")
    finally:
        await store.delete_profile(profile, ["api_key", "password"])
