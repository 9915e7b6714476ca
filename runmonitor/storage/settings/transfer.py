"""Export and import of profiles: the export file, and merging imported profiles into the settings.

No secret is ever in an export: each profile lists the names of the secrets to enter after
import. An import is read and checked whole (:func:`read_import`), planned against the current
profiles with a policy for clashes (:func:`plan_import`), then carried out all or nothing
(:func:`apply_import`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from uuid import UUID, uuid4

from pydantic import ValidationError

from runmonitor.services.base import STORED_CONTEXT
from runmonitor.storage.settings.errors import ProfileImportError, SettingsError
from runmonitor.storage.settings.files import atomic_write, check_no_secrets, safe_bytes
from runmonitor.storage.settings.model import Profile, Settings
from runmonitor.storage.settings.problems import validation_problems

EXPORT_FORMAT = "runmonitor-profiles"
EXPORT_SCHEMA_VERSION = 1
MAX_IMPORT_BYTES = 10 * 1024 * 1024

ClashPolicy = Literal["rename", "replace", "skip", "ask"]
Choice = Literal["rename", "replace", "skip"]
_CHOICES: tuple[Choice, ...] = ("rename", "replace", "skip")


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
    check_no_secrets(chosen)
    document = {
        "format": EXPORT_FORMAT,
        "schema_version": EXPORT_SCHEMA_VERSION,
        "exported_at": datetime.now(UTC).isoformat(),
        "profiles": [{**p.model_dump(mode="json"), "secrets_needed": p.secret_fields()} for p in chosen],
    }
    atomic_write(path, safe_bytes(document, str(path)))
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
            problems.extend(validation_problems(exc, entry, f"{prefix}.", profile_path=()))
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
            validation_problems(exc, document, profile_path=("profiles",)),
        ) from None
