"""The settings models: connection profiles and per-user preferences, and the checks of a profile.

Only the data; the file that keeps it is :mod:`~runmonitor.storage.settings.store`.

A profile is a saved connection to one service: its name, the non-secret fields of the
service's connection model, and polling and notification preferences. Secret fields
(``SecretStr`` in the connection model) are never part of a profile: they live in the
keyring under the profile's id, so renaming a profile never orphans a key.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from datetime import UTC, datetime, time
from typing import Any, Literal
from uuid import UUID, uuid4

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from runmonitor.domain.errors import AuthFailed, RunMonitorError
from runmonitor.domain.events import EventKind
from runmonitor.domain.schedule import PollSchedule
from runmonitor.services import registry
from runmonitor.services.base import STORED_CONTEXT, ServiceConfig

SETTINGS_VERSION: Literal[1] = 1
PLACEHOLDER = "__stored_in_keyring__"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class NotificationPrefs(BaseModel):
    """When to tell the person about a run (the notification policy reads these)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    on_failure: bool = Field(default=True, title="Failures", description="Notify when a run fails.")
    on_success: bool = Field(default=False, title="Successes", description="Notify when a run succeeds.")
    on_start: bool = Field(default=False, title="Starts", description="Notify when a run starts.")
    on_cancel: bool = Field(
        default=True, title="Cancellations", description="Notify when a run is cancelled."
    )
    quiet_from: time | None = Field(
        default=None, title="Quiet hours from", description="No notifications from this time of day…"
    )
    quiet_until: time | None = Field(default=None, title="Quiet hours until", description="…until this time.")

    @model_validator(mode="after")
    def _both_or_neither(self) -> NotificationPrefs:
        if (self.quiet_from is None) != (self.quiet_until is None):
            missing = "quiet_until" if self.quiet_until is None else "quiet_from"
            raise ValueError(f"quiet hours need both a start and an end ({missing} is missing)")
        return self


FIXED = "fixed"
"""Kind of a notification: a target succeeds after a notified failure."""
COALESCED = "coalesced"
"""Kind of a notification that sums up several events."""
HOOK_KINDS = frozenset({kind.value for kind in EventKind} | {FIXED, COALESCED})
"""Every kind a hook can be asked to run for."""
_POSIX = os.name == "posix"


class PolicyOptions(BaseModel):
    """Global knobs of the policy, for the settings file (see :meth:`NotificationPolicy.configure`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    coalesce_window_s: float = Field(
        default=5.0,
        ge=0,
        le=300,
        title="Group notifications within (s)",
        description="Events this close together are shown as one notification per profile and kind.",
    )
    max_per_flush: int = Field(
        default=4,
        ge=1,
        le=50,
        title="At most this many at once",
        description="More notifications than this at one moment are folded into one summary.",
    )
    notify_fixed: bool = Field(
        default=True,
        title="Fixed",
        description="When failures are notified, also notify when a failing pipeline or job succeeds again.",
    )


class HookConfig(BaseModel):
    """A command to run when certain things happen (for the settings file)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    command: str = Field(
        min_length=1,
        max_length=4096,
        title="Command",
        description="A program and its arguments, e.g. `notify-team --channel ops`. Not run through a "
        "shell; the run's data is in RUNMONITOR_* environment variables.",
    )
    events: frozenset[str] = Field(
        default=frozenset({"failed", "succeeded", "cancelled", FIXED}),
        title="Run for",
        description="Which events run the command.",
    )
    timeout_s: float = Field(
        default=30.0, gt=0, le=3600, title="Timeout (s)", description="The command is stopped after this."
    )
    include_quiet: bool = Field(
        default=False,
        title="Also for states found at start-up",
        description="Run it for states found on the first check after start-up or waking from sleep too.",
    )

    @field_validator("command")
    @classmethod
    def _parses(cls, value: str) -> str:
        try:
            argv = shlex.split(value, posix=_POSIX)
        except ValueError as exc:
            raise ValueError(f"cannot be split into a program and arguments: {exc}") from None
        if not argv:
            raise ValueError("names no program")
        return value

    @field_validator("events")
    @classmethod
    def _known(cls, value: frozenset[str]) -> frozenset[str]:
        unknown = sorted(value - HOOK_KINDS)
        if unknown:
            raise ValueError(
                f"unknown event kinds {', '.join(unknown)}; known: {', '.join(sorted(HOOK_KINDS))}"
            )
        return value

    def argv(self) -> list[str]:
        return shlex.split(self.command, posix=_POSIX)

    @property
    def program(self) -> str:
        """The program's name (for logs and messages; arguments may be private)."""
        return os.path.basename(self.argv()[0])

    def wants(self, subject: Any) -> bool:
        """Whether this hook runs for ``subject`` (an engine RunEvent or a Notification)."""
        kind = subject.kind
        if isinstance(kind, EventKind):  # an engine event
            if subject.quiet and not self.include_quiet:
                return False
            return kind.value in self.events
        return str(kind) in self.events


class ProfileError(RunMonitorError, ValueError):
    """A profile is not valid; ``errors`` maps each field to what is wrong with it."""

    def __init__(self, message: str, errors: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.errors = dict(errors or {})

    def __str__(self) -> str:
        if not self.errors:
            return super().__str__()
        details = "; ".join(f"{field}: {text}" for field, text in self.errors.items())
        return f"{super().__str__()} ({details})"


class MissingSecret(AuthFailed):
    """A profile's secret is not stored (or not available): sign-in is needed."""

    kind = "missing_secret"


def service_class(key: str) -> Any:
    try:
        return registry()[key]
    except KeyError:
        raise ProfileError(
            f"unknown service {key!r}", {"service": f"must be one of {', '.join(registry())}"}
        ) from None


def secret_fields(service: str) -> list[str]:
    model: type[ServiceConfig] = service_class(service).config_model
    return model.secret_field_names()


def _errors_by_field(error: ValidationError, *, skip: set[str] = frozenset()) -> dict[str, str]:  # type: ignore[assignment]
    found: dict[str, str] = {}
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "connection"
        if item["loc"] and str(item["loc"][0]) in skip:
            continue
        found.setdefault(location, item["msg"])
    return found


def validate_connection(
    service: str, values: Mapping[str, Any], *, context: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Check the non-secret connection fields of a profile; returns them normalised.

    Secret fields are filled with a placeholder for the check (they are checked when the
    secret is entered) and are refused if present: they never belong in a profile.
    """
    cls = service_class(service)
    model: type[ServiceConfig] = cls.config_model
    secrets = set(model.secret_field_names())
    leaked = sorted(secrets & set(values))
    if leaked:
        raise ProfileError(
            "secrets are not part of a profile; they are kept in the keyring",
            {name: "secret field: store it with the profile's secrets" for name in leaked},
        )
    unknown = sorted(set(values) - set(model.model_fields))
    if unknown:
        raise ProfileError(
            f"unknown connection fields for {cls.display_name}",
            {name: "not a field of this service's connection" for name in unknown},
        )
    try:
        config = model.model_validate(
            {**values, **{name: PLACEHOLDER for name in secrets}}, context=dict(context or {})
        )
    except ValidationError as exc:
        errors = _errors_by_field(exc, skip=secrets)
        if errors:
            raise ProfileError(f"the {cls.display_name} connection is not valid", errors) from None
        # Only the placeholder secrets were refused (e.g. a format check): accept the shape.
        return {k: v for k, v in values.items()}
    return config.model_dump(mode="json", exclude=secrets, exclude_defaults=False)


class Profile(BaseModel):
    """A saved connection to one service."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, hide_input_in_errors=True)

    id: UUID = Field(default_factory=uuid4, title="Id", description="Stable id; keys the keyring entries.")
    service: str = Field(title="Service", description="Which service this profile connects to.")
    name: str = Field(
        min_length=1,
        max_length=80,
        title="Name",
        description="A name you recognise, e.g. 'prod' or 'staging'.",
    )
    connection: dict[str, Any] = Field(
        default_factory=dict, title="Connection", description="The connection fields, without secrets."
    )
    polling: PollSchedule | None = Field(
        default=None, title="Polling", description="Polling preferences; empty means the global default."
    )
    notifications: NotificationPrefs | None = Field(
        default=None, title="Notifications", description="When to notify; empty means the global default."
    )
    created_at: datetime = Field(default_factory=_utcnow, title="Created", description="When it was created.")
    updated_at: datetime = Field(
        default_factory=_utcnow, title="Updated", description="When it last changed."
    )

    @field_validator("service")
    @classmethod
    def _known_service(cls, value: str) -> str:
        if value not in registry():
            raise ValueError(f"unknown service {value!r}; known: {', '.join(registry())}")
        return value

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str) -> str:
        if any(ord(ch) < 32 for ch in value):
            raise ValueError("must not contain control characters")
        return value

    @model_validator(mode="after")
    def _valid_connection(self, info: ValidationInfo) -> Profile:
        try:
            self.connection = validate_connection(self.service, self.connection, context=info.context)
        except ProfileError as exc:
            # Re-raised as a ValueError so pydantic names it; the message names the fields.
            raise ValueError(str(exc)) from None
        return self

    @property
    def key(self) -> str:
        return str(self.id)

    def secret_fields(self) -> list[str]:
        return secret_fields(self.service)

    def config(self, secrets: Mapping[str, str | None]) -> ServiceConfig:
        """The full connection model, with the secrets from the keyring."""
        cls = service_class(self.service)
        model: type[ServiceConfig] = cls.config_model
        values = dict(self.connection)
        for name in model.secret_field_names():
            value = secrets.get(name)
            if value:
                values[name] = SecretStr(value)
        try:
            # Stored values: a CA file that moved away fails the requests, with a clear message.
            return model.model_validate(values, context=STORED_CONTEXT)
        except ValidationError as exc:
            missing = [
                str(item["loc"][0])
                for item in exc.errors()
                if item["loc"] and str(item["loc"][0]) in model.secret_field_names()
            ]
            if missing:
                titles = ", ".join(model.model_fields[name].title or name for name in missing)
                raise MissingSecret(
                    f"Sign-in needed for profile {self.name!r}: {titles} not stored",
                    service=self.service,
                ) from None
            raise ProfileError(f"profile {self.name!r} is not valid", _errors_by_field(exc)) from None


class Settings(BaseModel):
    """Everything in the settings file. Secrets are never here."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    schema_version: Literal[1] = SETTINGS_VERSION
    profiles: list[Profile] = Field(default_factory=list)
    polling: PollSchedule = Field(default_factory=PollSchedule)
    notifications: NotificationPrefs = Field(default_factory=NotificationPrefs)
    retention_days: float = Field(
        default=90.0,
        gt=0,
        le=36500,
        title="Keep history (days)",
        description="Finished runs older than this go.",
    )
    notify_options: PolicyOptions = Field(default_factory=PolicyOptions)
    hook: HookConfig | None = Field(
        default=None,
        title="Command on events",
        description="A command RunMonitor runs when a run fails, succeeds… (none: no command).",
    )
    notifications_muted_until: datetime | None = Field(
        default=None,
        title="Notifications paused until",
        description="Set from the tray's Pause notifications; kept across restarts.",
    )
    close_to_tray: Literal["ask", "background", "quit"] = Field(
        default="ask",
        title="Closing the window",
        description="background: keep following runs (in the tray, or minimised where there is no "
        "tray); quit: stop RunMonitor; ask: ask the first time.",
    )

    @field_validator("close_to_tray", mode="before")
    @classmethod
    def _close_choice(cls, value: Any) -> Any:
        # Written as true/false/null by the first versions of this setting.
        return (
            {None: "ask", True: "background", False: "quit"}.get(value, value)
            if not isinstance(value, str)
            else value
        )

    appearance: Literal["system", "light", "dark"] = Field(
        default="system",
        title="Appearance",
        description="system: light or dark as the desktop is, following it when it changes.",
    )
    secret_storage: Literal["keyring", "session", "plaintext_file"] = Field(
        default="keyring",
        title="Where secrets are kept",
        description="keyring: the OS keyring. session: in memory until RunMonitor quits. plaintext_file: "
        "an unencrypted file readable only by you (explicit opt-in, with a standing warning).",
    )

    @model_validator(mode="after")
    def _unique(self) -> Settings:
        seen: dict[tuple[str, str], int] = {}
        ids: set[UUID] = set()
        for index, profile in enumerate(self.profiles):
            key = (profile.service, profile.name.casefold())
            if key in seen:
                name = profile.name
                raise ValueError(
                    f"profiles.{index}.name: a {profile.service} profile named {name!r} exists already"
                )
            if profile.id in ids:
                raise ValueError(f"profiles.{index}.id: duplicate profile id {profile.id}")
            seen[key] = index
            ids.add(profile.id)
        return self

    def profile(self, ref: str | UUID) -> Profile:
        """A profile by id, or by name when the name is unique across services."""
        text = str(ref)
        for profile in self.profiles:
            if str(profile.id) == text:
                return profile
        named = [p for p in self.profiles if p.name.casefold() == text.casefold()]
        if len(named) == 1:
            return named[0]
        if not named:
            raise KeyError(f"no profile named {text!r}")
        services = ", ".join(p.service for p in named)
        raise KeyError(f"several profiles are named {text!r} ({services}); use the profile id")

    def preferences(self) -> dict[str, Any]:
        """The global preferences (everything but the profiles), as JSON-ready values."""
        return self.model_dump(mode="json", exclude={"profiles", "schema_version"})

    def schedule_for(self, profile: Profile) -> PollSchedule:
        return profile.polling or self.polling

    def notifications_for(self, profile: Profile) -> NotificationPrefs:
        return profile.notifications or self.notifications
