"""Workspace: preferences and moving secrets between stores, with real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from runmonitor.app.workspace import Workspace
from runmonitor.domain.errors import ProfileGone
from runmonitor.storage.paths import AppPaths, app_paths
from runmonitor.storage.secrets import MemorySecrets, PlaintextFileSecrets, plaintext_file_path
from runmonitor.storage.settings.model import Profile


@pytest.fixture
def paths(tmp_path: Path) -> AppPaths:
    return app_paths({"RUNMONITOR_HOME": str(tmp_path / "home")})


def profile(name: str = "prod") -> Profile:
    return Profile(
        service="invision",
        name=name,
        connection={"base_url": "https://invision.example.com/api"},
    )


async def test_preferences_are_validated_saved_and_survive_a_restart(paths: AppPaths) -> None:
    workspace = await Workspace.open(paths, secret_mode="session")
    await workspace.update_preferences({"retention_days": 30, "appearance": "dark"})
    with pytest.raises(ValidationError, match="retention_days"):
        await workspace.update_preferences({"retention_days": -1})
    with pytest.raises(ValueError, match="profiles"):
        await workspace.update_preferences({"profiles": []})
    assert workspace.settings.retention_days == 30  # the refused change left the good one alone
    again = await Workspace.open(paths, secret_mode="session")
    assert again.settings.retention_days == 30
    assert again.settings.appearance == "dark"


async def test_secrets_move_to_the_file_store_and_back_without_loss(paths: AppPaths) -> None:
    workspace = await Workspace.open(paths, secret_mode="session")
    first, second = profile("prod"), profile("staging")
    await workspace.add_profile(first, {"api_key": "key-one-for-the-move"})
    await workspace.add_profile(second, {"api_key": "key-two-for-the-move"})
    assert isinstance(workspace.secrets, MemorySecrets)

    notes = await workspace.change_secret_storage("plaintext_file")
    assert notes and "unencrypted" in notes[0].lower()
    assert isinstance(workspace.secrets, PlaintextFileSecrets)
    assert await workspace.secrets.get(str(first.id), "api_key") == "key-one-for-the-move"
    saved = json.loads((paths.config_dir / "settings.json").read_text())
    assert saved["secret_storage"] == "plaintext_file"
    assert "key-one-for-the-move" not in (paths.config_dir / "settings.json").read_text()

    reopened = await Workspace.open(paths)
    assert await reopened.secrets.get(str(second.id), "api_key") == "key-two-for-the-move"

    await reopened.change_secret_storage("session")
    assert await reopened.secrets.get(str(second.id), "api_key") == "key-two-for-the-move"
    # Moving out of the file empties it: the keys are not left behind in plain text.
    assert "key-two-for-the-move" not in plaintext_file_path(paths).read_text()


async def test_a_ca_file_that_moved_away_keeps_the_profiles(paths: AppPaths, tmp_path: Path) -> None:
    ca = tmp_path / "company-ca.pem"
    import asyncio
    import shutil

    import certifi

    await asyncio.to_thread(shutil.copyfile, certifi.where(), ca)
    workspace = await Workspace.open(paths, secret_mode="session")
    with_ca = Profile(
        service="invision",
        name="behind-the-proxy",
        connection={"base_url": "https://bi.example.com/invision", "ca_bundle": str(ca)},
    )
    await workspace.add_profile(with_ca, {"api_key": "key-for-the-ca-test-123"})
    ca.unlink()
    again = await Workspace.open(paths, secret_mode="session")
    assert [p.name for p in again.settings.profiles] == ["behind-the-proxy"]
    assert not any("corrupt" in n.text for n in again.notices)
    # Entering the same value now is refused beside the field.
    with pytest.raises(ValueError, match="ca_bundle"):
        Profile(
            service="invision",
            name="new",
            connection={"base_url": "https://x.example.com", "ca_bundle": str(ca)},
        )


def test_the_first_close_to_tray_values_still_load() -> None:
    from runmonitor.storage.settings.model import Settings

    assert [Settings(close_to_tray=v).close_to_tray for v in (None, True, False)] == [  # type: ignore[arg-type]
        "ask",
        "background",
        "quit",
    ]


async def test_a_removed_profile_has_no_client_and_says_so(paths: AppPaths) -> None:
    workspace = await Workspace.open(paths, secret_mode="session")
    added = await workspace.add_profile(profile(), {"api_key": "k-0001"})
    client = await workspace.client(added)
    assert workspace.cached_client(str(added.id)) is client
    await workspace.remove_profile(added)
    # The engine's provider tells "profile gone" apart from any other failure (a bug).
    with pytest.raises(ProfileGone) as info:
        workspace.cached_client(str(added.id))
    assert info.value.profile_id == str(added.id)
    assert not isinstance(info.value, KeyError)
    await workspace.aclose()
