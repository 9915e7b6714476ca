"""Profiles and settings data: validation names the field, secrets never belong to a profile."""

from __future__ import annotations

from datetime import time

import pytest
from pydantic import ValidationError

from runmonitor.services import registry
from runmonitor.simulator import Simulator
from runmonitor.storage.settings.model import (
    MissingSecret,
    NotificationPrefs,
    Profile,
    ProfileError,
    Settings,
    secret_fields,
    validate_connection,
)


def split(values: dict[str, object], service: str) -> tuple[dict[str, object], dict[str, str]]:
    secrets = {k: str(v) for k, v in values.items() if k in secret_fields(service)}
    return {k: v for k, v in values.items() if k not in secrets}, secrets


@pytest.mark.parametrize("service", list(registry()))
def test_every_service_profile_round_trips_and_builds_a_config(sim: Simulator, service: str) -> None:
    connection, secrets = split(sim.demo_connection(service), service)
    profile = Profile(service=service, name=f"{service} demo", connection=connection)
    again = Profile.model_validate_json(profile.model_dump_json())
    assert again == profile
    config = again.config(secrets)
    assert sorted(config.secret_values()) == sorted(v for v in secrets.values() if v)
    for secret in secrets.values():
        assert secret not in profile.model_dump_json()


@pytest.mark.parametrize("service", [s for s in registry() if secret_fields(s)])
def test_a_missing_secret_is_sign_in_needed(sim: Simulator, service: str) -> None:
    connection, secrets = split(sim.demo_connection(service), service)
    if not secrets:
        pytest.skip(f"the {service} demo connection needs no secret")
    profile = Profile(service=service, name="p", connection=connection)
    with pytest.raises(MissingSecret, match="Sign-in needed"):
        profile.config({})


def test_secrets_are_refused_in_a_profile() -> None:
    with pytest.raises(ProfileError) as info:
        validate_connection("invision", {"base_url": "https://x.example", "api_key": "oops-a-secret"})
    assert info.value.errors == {"api_key": "secret field: store it with the profile's secrets"}
    with pytest.raises(ValidationError) as error:
        Profile(
            service="invision",
            name="x",
            connection={"base_url": "https://x.example", "api_key": "oops-a-secret"},
        )
    assert "oops-a-secret" not in str(error.value)


def test_connection_errors_name_the_field() -> None:
    with pytest.raises(ProfileError) as info:
        validate_connection("marquez", {"base_url": "ftp://nowhere", "timeout_seconds": -1})
    assert set(info.value.errors) == {"base_url", "timeout_seconds"}
    with pytest.raises(ProfileError) as unknown:
        validate_connection("marquez", {"base_url": "https://m.example", "colour": "red"})
    assert unknown.value.errors == {"colour": "not a field of this service's connection"}
    with pytest.raises(ProfileError) as service:
        validate_connection("jenkins", {})
    assert "service" in service.value.errors


def test_profile_name_rules() -> None:
    base = {"service": "marquez", "connection": {"base_url": "http://localhost:5000"}}
    with pytest.raises(ValidationError) as empty:
        Profile(**base, name="   ")
    assert empty.value.errors()[0]["loc"] == ("name",)
    with pytest.raises(ValidationError) as control:
        Profile(**base, name="a\nb")
    assert control.value.errors()[0]["loc"] == ("name",)


def test_names_are_unique_per_service_case_insensitively() -> None:
    a = Profile(service="marquez", name="Prod", connection={"base_url": "http://a:5000"})
    b = Profile(service="marquez", name="prod", connection={"base_url": "http://b:5000"})
    c = Profile(service="invision", name="prod", connection={"base_url": "https://c.example"})
    with pytest.raises(ValidationError, match=r"profiles\.1\.name"):
        Settings(profiles=[a, b])
    settings = Settings(profiles=[a, c])  # the same name on another service is fine
    assert settings.profile(str(a.id)) is settings.profiles[0]
    with pytest.raises(KeyError, match="several profiles"):
        settings.profile("prod")
    with pytest.raises(KeyError, match="no profile"):
        settings.profile("staging")


def test_quiet_hours_need_both_ends() -> None:
    assert NotificationPrefs(quiet_from=time(22), quiet_until=time(7)).quiet_until == time(7)
    with pytest.raises(ValidationError, match="quiet_until"):
        NotificationPrefs(quiet_from=time(22))


def test_profile_preferences_fall_back_to_the_global_ones() -> None:
    profile = Profile(service="marquez", name="p", connection={"base_url": "http://a:5000"})
    settings = Settings(profiles=[profile])
    assert settings.schedule_for(profile) is settings.polling
    assert settings.notifications_for(profile) is settings.notifications
