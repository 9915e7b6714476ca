"""The settings file (atomic save, backup, quarantine, migration, newer-schema refusal) and profile
export/import, on real files in a temp directory."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
from datetime import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from runmonitor.domain.redact import secret_registry
from runmonitor.domain.schedule import PollSchedule
from runmonitor.storage.settings import files as settings_files
from runmonitor.storage.settings.errors import ProfileImportError, SettingsError
from runmonitor.storage.settings.model import NotificationPrefs, Profile, Settings
from runmonitor.storage.settings.store import SettingsStore
from runmonitor.storage.settings.transfer import (
    EXPORT_FORMAT,
    apply_import,
    export_profiles,
    plan_import,
    read_import,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REPO = Path(__file__).resolve().parents[2]
V0_SECRET = "inv-live-4f9c2a7d1e8b6a35"
QUARANTINE = re.compile(r"^settings\.json\.corrupt-\d{8}-\d{6}(-\d+)?$")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def marquez(name: str = "prod", namespace: str = "etl") -> Profile:
    return Profile(
        service="marquez",
        name=name,
        connection={"base_url": "https://marquez.example.com", "namespace": namespace},
    )


def invision(name: str = "flows") -> Profile:
    return Profile(service="invision", name=name, connection={"base_url": "https://invision.example.com"})


def codestream(name: str = "builds") -> Profile:
    return Profile(service="codestream", name=name, connection={"base_url": "https://cs.example.com"})


def sample() -> Settings:
    return Settings(
        profiles=[
            marquez(),
            invision().model_copy(update={"polling": PollSchedule(steps=((0, 1.0), (30, 10.0)))}),
        ],
        notifications=NotificationPrefs(on_start=True, quiet_from=time(22, 0), quiet_until=time(7, 30)),
        retention_days=30,
    )


@pytest.fixture
def store(tmp_path: Path) -> SettingsStore:
    return SettingsStore(tmp_path / "config" / "settings.json")


def files(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


# -- load and save ---------------------------------------------------------------------------------


def test_missing_file_gives_defaults_without_notice(store: SettingsStore) -> None:
    result = store.load()
    assert result.settings == Settings()
    assert result.notices == []
    assert not result.read_only
    assert not store.path.parent.exists()  # loading creates nothing


def test_round_trip_with_private_modes(store: SettingsStore) -> None:
    original = sample()
    store.save(original)
    raw = json.loads(store.path.read_text())
    assert raw["schema_version"] == 1
    assert raw["profiles"][1]["polling"]["steps"] == [[0, 1.0], [30, 10.0]]

    result = SettingsStore(store.path).load()
    assert result.notices == []
    assert result.settings == original
    assert result.source == store.path
    if os.name == "posix":
        assert mode(store.path) == 0o600
        assert mode(store.path.parent) == 0o700


def test_previous_valid_file_is_kept_as_bak(store: SettingsStore) -> None:
    first = sample()
    store.save(first)
    first_bytes = store.path.read_bytes()
    second = first.model_copy(update={"retention_days": 7.0})
    store.save(second)
    assert store.backup_path.read_bytes() == first_bytes
    assert store.load().settings == second
    if os.name == "posix":
        assert mode(store.backup_path) == 0o600
    assert not list(store.path.parent.glob("*.tmp"))


def test_save_refuses_a_secret_in_a_connection(store: SettingsStore) -> None:
    settings = sample()
    store.save(settings)
    before = store.path.read_bytes()
    settings.profiles[1].connection["api_key"] = "inv-planted-secret-9f8e7d"  # bypasses validation
    with pytest.raises(SettingsError, match=r"profiles\.1\.connection.*api_key"):
        store.save(settings)
    assert store.path.read_bytes() == before


def test_known_secret_values_are_scrubbed_before_writing(store: SettingsStore) -> None:
    secret = "tok-scrub-me-5a6b7c8d"
    secret_registry.register([secret])
    settings = Settings(profiles=[marquez(name=f"prod {secret}")])
    store.save(settings)
    text = store.path.read_text()
    assert secret not in text
    assert store.load().settings.profiles[0].name == "prod ***"


# -- crash safety ----------------------------------------------------------------------------------


def test_failed_replace_leaves_the_old_file_intact(
    store: SettingsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = sample()
    store.save(old)
    before = store.path.read_bytes()
    real_replace = os.replace

    def crash(src: Any, dst: Any) -> None:
        if Path(dst) == store.path:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(settings_files.os, "replace", crash)
    with pytest.raises(OSError, match="No space"):
        store.save(old.model_copy(update={"retention_days": 1.0}))
    monkeypatch.undo()
    assert store.path.read_bytes() == before
    assert SettingsStore(store.path).load().settings == old
    assert not list(store.path.parent.glob("*.tmp"))


def test_process_killed_between_write_and_replace(store: SettingsStore) -> None:
    old = sample()
    store.save(old)
    before = store.path.read_bytes()
    child = textwrap.dedent(
        """
        import os, sys
        from pathlib import Path
        from runmonitor.storage.settings import files as f, store as m
        store = m.SettingsStore(Path(sys.argv[1]))
        loaded = store.load()
        f.os.replace = lambda src, dst: os._exit(9) if Path(dst) == store.path else os.rename(src, dst)
        store.save(loaded.settings.model_copy(update={"retention_days": 2.0}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", child, str(store.path)], cwd=REPO, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 9, done.stderr.decode()
    assert store.path.read_bytes() == before  # no partial file at settings.json
    assert store.backup_path.read_bytes() == before
    result = SettingsStore(store.path).load()
    assert result.notices == []
    assert result.settings == old


def test_windows_replace_is_retried_with_bounded_backoff(
    store: SettingsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.save(sample())
    sleeps: list[float] = []
    real_replace = os.replace
    failures = {"left": 2}

    def locked(src: Any, dst: Any) -> None:
        if Path(dst) == store.path and failures["left"]:
            failures["left"] -= 1
            raise PermissionError(13, "The process cannot access the file")
        real_replace(src, dst)

    monkeypatch.setattr(settings_files, "_IS_WINDOWS", True)
    monkeypatch.setattr(settings_files.time, "sleep", sleeps.append)
    monkeypatch.setattr(settings_files.os, "replace", locked)
    store.save(sample().model_copy(update={"retention_days": 3.0}))
    assert len(sleeps) == 2
    assert store.load().settings.retention_days == 3.0

    failures["left"] = 1000
    sleeps.clear()
    before = store.path.read_bytes()
    with pytest.raises(PermissionError):
        store.save(sample())
    assert 1.5 <= sum(sleeps) <= 2.5
    assert store.path.read_bytes() == before


# -- migration -------------------------------------------------------------------------------------


def test_v0_file_is_migrated_and_its_secret_moved_out(store: SettingsStore) -> None:
    store.path.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / "settings_v0.json", store.path)
    original = store.path.read_bytes()

    result = store.load()
    settings = result.settings
    assert result.migrated_from == 0
    assert [(p.service, p.name) for p in settings.profiles] == [
        ("marquez", "prod"),
        ("invision", "flows"),
        ("connhex", "devices"),
    ]
    assert len({p.id for p in settings.profiles}) == 3
    assert all(p.id.version == 4 for p in settings.profiles)
    prod, flows, devices = settings.profiles
    assert prod.connection["namespace"] == "etl"
    assert prod.connection["base_url"] == "https://marquez.example.com"
    assert devices.connection["verify_tls"] is False
    assert "api_key" not in flows.connection
    assert settings.polling.steps == ((0, 5),)
    assert settings.notifications.on_success is True
    assert result.migrated_secrets == {str(flows.id): {"api_key": V0_SECRET}}
    texts = [n.text for n in result.notices]
    assert any(t.startswith("settings were upgraded from version 0") for t in texts)
    assert "moved 1 secret from the settings file to secure storage" in texts

    # Nothing written back yet: the old file is in place and kept as .v0.bak.
    v0_backup = store.path.with_name("settings.json.v0.bak")
    assert store.path.read_bytes() == original
    assert v0_backup.read_bytes() == original

    store.save(settings)
    text = store.path.read_text()
    assert V0_SECRET not in text
    assert json.loads(text)["schema_version"] == 1
    assert not v0_backup.exists()
    assert not store.backup_path.exists()  # the v0 file (with its secret) is not the backup
    assert not any(V0_SECRET in p.read_text() for p in store.path.parent.iterdir())

    again = SettingsStore(store.path).load()
    assert again.notices == []
    assert again.migrated_from is None
    assert again.settings == settings


# -- corruption ------------------------------------------------------------------------------------


def test_corrupt_json_is_quarantined_and_the_backup_restored(store: SettingsStore) -> None:
    good = sample()
    store.save(good)
    store.save(good.model_copy(update={"retention_days": 5.0}))
    garbage = b'{"schema_version": 1, "profiles": [\n'
    store.path.write_bytes(garbage)

    result = store.load()
    assert result.settings == good
    assert result.source == store.backup_path
    [notice] = result.notices
    assert notice.level == "warning"
    assert "restored from the backup" in notice.text
    assert "not valid JSON" in notice.text
    assert notice.path is not None
    assert QUARANTINE.match(notice.path.name)
    assert str(notice.path) in notice.text
    assert notice.path.read_bytes() == garbage
    # The backup became current: the next start loads it without any notice.
    assert store.path.read_bytes() == store.backup_path.read_bytes()
    assert SettingsStore(store.path).load().notices == []


def test_corrupt_without_backup_gives_defaults_and_never_overwrites_evidence(
    store: SettingsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings_files, "_timestamp", lambda: "20250101-120000")
    store.path.parent.mkdir(parents=True)
    store.path.write_bytes(b"\xff\xfe not text")
    first = store.load()
    assert first.settings == Settings()
    assert first.notices[0].level == "error"
    assert "default settings" in first.notices[0].text

    store.path.write_bytes(b"[1, 2, 3]")  # valid JSON, not an object
    second = store.load()
    assert "wrong shape" in second.notices[0].text
    assert files(store.path.parent) == {
        "settings.json.corrupt-20250101-120000",
        "settings.json.corrupt-20250101-120000-2",
    }
    assert (store.path.parent / "settings.json.corrupt-20250101-120000").read_bytes() == b"\xff\xfe not text"


def test_unusable_backup_is_set_aside_too(store: SettingsStore) -> None:
    store.save(sample())
    store.save(sample())
    store.backup_path.write_bytes(b"also broken")
    store.path.write_bytes(b"broken")
    result = store.load()
    assert result.settings == Settings()
    [notice] = result.notices
    assert "backup was not usable either" in notice.text
    names = files(store.path.parent)
    assert len([n for n in names if QUARANTINE.match(n)]) == 1
    assert len([n for n in names if n.startswith("settings.json.bak.corrupt-")]) == 1
    assert "settings.json" not in names and "settings.json.bak" not in names


def test_file_changed_behind_our_back_is_kept_before_saving(store: SettingsStore) -> None:
    settings = sample()
    store.save(settings)
    store.load()
    store.path.write_bytes(b"edited by hand, badly")
    store.save(settings)
    [aside] = [p for p in store.path.parent.iterdir() if QUARANTINE.match(p.name)]
    assert aside.read_bytes() == b"edited by hand, badly"
    assert store.load().settings == settings


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda raw: raw.update(retention_days="a lot"), "retention_days: Input should be a valid number"),
        (
            lambda raw: raw["profiles"][1]["connection"].update(base_url="ftp://invision.example.com"),
            "profiles.1.connection.base_url: must start with http:// or https://",
        ),
        (lambda raw: raw["profiles"][0].update(service="nope"), "profiles.0.service: unknown service 'nope'"),
        (
            lambda raw: raw["profiles"][1]["connection"].update(api_key="inv-hand-edited-1234"),
            "profiles.1.connection.api_key: secret field",
        ),
        (lambda raw: raw["profiles"][1].update(name="PROD", service="marquez"), "profiles.1.name"),
    ],
    ids=["wrong-type", "bad-url", "unknown-service", "inline-secret", "duplicate-name"],
)
def test_hand_broken_field_is_quarantined_and_named(store: SettingsStore, mutate: Any, field: str) -> None:
    store.save(sample())
    raw = json.loads(store.path.read_text())
    if field.startswith("profiles.1.name"):
        raw["profiles"][1]["connection"] = raw["profiles"][0]["connection"]
    mutate(raw)
    broken = json.dumps(raw).encode()
    store.path.write_bytes(broken)

    result = store.load()
    assert result.settings == Settings()  # there is no backup yet
    [notice] = result.notices
    assert notice.level == "error"
    assert field in notice.text
    assert "invalid values" in notice.text
    assert notice.path is not None
    assert QUARANTINE.match(notice.path.name)
    assert notice.path.read_bytes() == broken
    assert not store.path.exists()


def test_newer_schema_is_refused_and_left_untouched(store: SettingsStore) -> None:
    store.path.parent.mkdir(parents=True)
    newer = b'{"schema_version": 2, "profiles": [], "shiny_new_thing": {"x": 1}}\n'
    store.path.write_bytes(newer)

    result = store.load()
    assert result.read_only
    assert result.settings == Settings()
    [notice] = result.notices
    assert notice.level == "error"
    assert "schema version 2" in notice.text
    assert "left alone" in notice.text
    with pytest.raises(SettingsError, match="left alone"):
        store.save(sample())
    # A store that never loaded it refuses too (checked on disk).
    with pytest.raises(SettingsError, match="newer"):
        SettingsStore(store.path).save(sample())
    assert store.path.read_bytes() == newer
    assert files(store.path.parent) == {"settings.json"}


# -- export and import -----------------------------------------------------------------------------


def test_export_has_no_secret_and_reimports(tmp_path: Path) -> None:
    settings = Settings(profiles=[marquez(), invision(), codestream()])
    keyring: dict[str, dict[str, str]] = {
        str(settings.profiles[0].id): {"token": "mqz-planted-token-0a1b2c3d"},
        str(settings.profiles[1].id): {"api_key": "inv-planted-key-4e5f6a7b"},
        str(settings.profiles[2].id): {"refresh_token": "cs-planted-refresh-8c9d0e1f"},
    }
    secret_registry.register(v for fields in keyring.values() for v in fields.values())
    target = tmp_path / "export.json"

    assert export_profiles(settings, target) == 3
    text = target.read_text()
    for fields in keyring.values():
        for value in fields.values():
            assert value not in text
    raw = json.loads(text)
    assert raw["format"] == EXPORT_FORMAT
    assert raw["schema_version"] == 1
    assert [p["secrets_needed"] for p in raw["profiles"]] == [
        ["token"],
        ["api_key"],
        ["refresh_token", "access_token"],
    ]
    assert all("api_key" not in p["connection"] for p in raw["profiles"])
    if os.name == "posix":
        assert mode(target) == 0o600
    assert read_import(target) == settings.profiles

    some = tmp_path / "some.json"
    assert export_profiles(settings, some, profile_ids=[settings.profiles[1].id]) == 1
    assert [p.name for p in read_import(some)] == ["flows"]
    with pytest.raises(SettingsError, match="no profile with id"):
        export_profiles(settings, tmp_path / "none.json", profile_ids=["not-an-id"])
    assert not (tmp_path / "none.json").exists()


@pytest.fixture
def clash_case() -> tuple[Settings, list[Profile]]:
    existing = Settings(profiles=[marquez("prod"), invision("flows")])
    imported = [
        marquez("PROD", namespace="other"),  # same service + name (case-insensitive), different id
        existing.profiles[1].model_copy(
            update={"connection": {"base_url": "https://new.example.com"}}
        ),  # same id
        codestream("builds"),  # no clash
    ]
    return existing, imported


def test_import_rename(clash_case: tuple[Settings, list[Profile]]) -> None:
    existing, imported = clash_case
    before = existing.model_dump()
    result = apply_import(existing, plan_import(existing, imported, "rename"))
    assert existing.model_dump() == before  # nothing mutated
    assert [(p.service, p.name) for p in result.profiles] == [
        ("marquez", "prod"),
        ("invision", "flows"),
        ("marquez", "PROD (2)"),
        ("invision", "flows (2)"),
        ("codestream", "builds"),
    ]
    assert result.profiles[:2] == existing.profiles
    new_ids = {p.id for p in result.profiles[2:]}
    assert not new_ids & ({p.id for p in existing.profiles} | {p.id for p in imported})  # fresh ids


def test_import_rename_finds_the_next_free_number() -> None:
    existing = Settings(profiles=[marquez("prod"), marquez("prod (2)", namespace="b")])
    result = apply_import(existing, plan_import(existing, [marquez("Prod")], "rename"))
    assert result.profiles[-1].name == "Prod (3)"


def test_import_replace_keeps_the_existing_id_and_place(clash_case: tuple[Settings, list[Profile]]) -> None:
    existing, imported = clash_case
    result = apply_import(existing, plan_import(existing, imported, "replace"))
    assert [p.name for p in result.profiles] == ["PROD", "flows", "builds"]
    assert [p.id for p in result.profiles[:2]] == [p.id for p in existing.profiles]
    assert result.profiles[0].connection["namespace"] == "other"
    assert result.profiles[0].created_at == existing.profiles[0].created_at
    assert result.profiles[1].connection["base_url"] == "https://new.example.com"
    assert result.profiles[2].id != imported[2].id
    assert existing.profiles[0].connection["namespace"] == "etl"


def test_import_skip(clash_case: tuple[Settings, list[Profile]]) -> None:
    existing, imported = clash_case
    result = apply_import(existing, plan_import(existing, imported, "skip"))
    assert result.profiles[:2] == existing.profiles
    assert [p.name for p in result.profiles] == ["prod", "flows", "builds"]


def test_import_ask_refuses_until_every_clash_is_decided(clash_case: tuple[Settings, list[Profile]]) -> None:
    existing, imported = clash_case
    plan = plan_import(existing, imported, "ask")
    assert [(c.index, c.reason, c.existing.name) for c in plan.clashes] == [
        (0, "name", "prod"),
        (1, "id", "flows"),
    ]
    assert not plan.ready
    with pytest.raises(ProfileImportError, match="decide"):
        apply_import(existing, plan)
    plan.decide(0, "skip")
    with pytest.raises(ProfileImportError, match="flows"):
        apply_import(existing, plan)
    with pytest.raises(KeyError):
        plan.decide("builds", "skip")  # no clash for it
    plan.decide("FLOWS", "replace")
    assert plan.ready
    result = apply_import(existing, plan)
    assert [p.name for p in result.profiles] == ["prod", "flows", "builds"]
    assert result.profiles[1].connection["base_url"] == "https://new.example.com"


def test_import_refused_as_a_whole_and_settings_unchanged(store: SettingsStore) -> None:
    existing = Settings(profiles=[marquez("prod")])
    store.save(existing)
    saved = store.path.read_bytes()
    before = existing.model_dump()
    # Two imported profiles both replacing the same one cannot be carried out.
    plan = plan_import(existing, [marquez("prod", "a"), marquez("Prod", "b"), codestream()], "replace")
    with pytest.raises(ProfileImportError, match="already replaced"):
        apply_import(existing, plan)
    # A plan made before the profiles changed is refused.
    stale = plan_import(existing, [marquez("prod", "a")], "replace")
    changed = Settings(profiles=[])
    with pytest.raises(ProfileImportError, match="changed since"):
        apply_import(changed, stale)
    assert existing.model_dump() == before
    assert store.path.read_bytes() == saved


def _export_document(*profiles: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": EXPORT_FORMAT,
        "schema_version": 1,
        "exported_at": "2025-01-01T00:00:00+00:00",
        "profiles": list(profiles),
    }


GOOD = {
    "service": "marquez",
    "name": "prod",
    "connection": {"base_url": "https://m.example.com", "namespace": "etl"},
}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{not json", "not a JSON file"),
        (
            json.dumps({"format": "something-else", "profiles": []}).encode(),
            "not a RunMonitor profile export",
        ),
        (json.dumps({**_export_document(GOOD), "schema_version": 2}).encode(), "newer RunMonitor"),
        (json.dumps(_export_document()).encode(), "holds no profiles"),
        (
            json.dumps(
                _export_document(
                    GOOD, {**GOOD, "name": "b", "connection": {"base_url": "ftp://x", "namespace": "e"}}
                )
            ).encode(),
            "profiles.1.connection.base_url: must start with http:// or https://",
        ),
        (
            json.dumps(
                _export_document(
                    {
                        "service": "invision",
                        "name": "f",
                        "connection": {"base_url": "https://i", "api_key": "k-12345"},
                    }
                )
            ).encode(),
            "profiles.0.connection.api_key: secret field",
        ),
        (json.dumps(_export_document(GOOD, {**GOOD, "id": "nope"})).encode(), "profiles.1.id"),
        (
            json.dumps(_export_document(GOOD, {**GOOD, "name": "PROD"})).encode(),
            "profiles.1.name: same service",
        ),
    ],
    ids=[
        "bad-json",
        "wrong-format",
        "newer-schema",
        "empty",
        "bad-url",
        "inline-secret",
        "bad-id",
        "duplicate",
    ],
)
def test_bad_import_files_are_refused_with_the_reason(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "import.json"
    path.write_bytes(content)
    with pytest.raises(ProfileImportError) as caught:
        read_import(path)
    assert reason in str(caught.value)
    assert "k-12345" not in str(caught.value)


def test_good_import_file_gives_valid_profiles(tmp_path: Path) -> None:
    path = tmp_path / "import.json"
    path.write_text(json.dumps(_export_document({**GOOD, "secrets_needed": ["token"]})))
    [profile] = read_import(path)
    assert profile.name == "prod"
    assert isinstance(profile.id, UUID)
