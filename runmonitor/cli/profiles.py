"""``runmonitor profiles …``: list, add, edit, remove, export, import and test profiles."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from runmonitor.cli.opening import open_workspace
from runmonitor.cli.output import (
    EXIT_AUTH_OR_CONNECTION,
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_RUN_FAILED,
    SECRET_ENV_PREFIX,
    UsageError,
    err,
    format_validation_error,
    note,
    parse_assignments,
    say,
    say_json,
)
from runmonitor.domain.errors import AuthFailed, ServiceError, check_outcome
from runmonitor.domain.text import plural
from runmonitor.services import get, registry
from runmonitor.storage.settings.model import Profile, ProfileError, secret_fields


def _profile_error(exc: ProfileError | ValidationError) -> int:
    if isinstance(exc, ValidationError):
        err(f"the profile is not valid:\n{format_validation_error(exc)}")
    else:
        err(str(exc.args[0]) if exc.args else "the profile is not valid")
        for field, text in exc.errors.items():
            note(f"  {field}: {text}")
    return EXIT_BAD_INPUT


def _read_secrets(service: str, wanted: list[str] | None, *, interactive: bool) -> dict[str, str]:
    """Secrets from RUNMONITOR_SECRET_<FIELD>, or typed at a hidden prompt on a terminal."""
    cls = get(service)
    values: dict[str, str] = {}
    for name in secret_fields(service):
        if wanted is not None and name not in wanted:
            continue
        env = os.environ.get(f"{SECRET_ENV_PREFIX}{name.upper()}")
        if env:
            values[name] = env
        elif interactive and (wanted is None or name in wanted):
            title = cls.config_model.model_fields[name].title or name
            typed = getpass.getpass(f"{title} (leave empty to skip): ")
            if typed:
                values[name] = typed
    return values


def _interactive() -> bool:
    return sys.stdin.isatty()


async def _cmd_list(args: argparse.Namespace) -> int:
    workspace = await open_workspace()
    rows = []
    for profile in workspace.settings.profiles:
        if args.service and profile.service != args.service:
            continue
        stored = await workspace.stored_secrets(profile)
        rows.append(
            {
                "id": str(profile.id),
                "name": profile.name,
                "service": profile.service,
                "base_url": profile.connection.get("base_url"),
                "secrets": stored,
                "sign_in_needed": _sign_in_needed(profile, stored),
            }
        )
    if args.json_output:
        say_json(rows, indent=2)
        return EXIT_OK
    if not rows:
        say("No profiles yet. Add one with: runmonitor profiles add SERVICE --name NAME --conn base_url=…")
        return EXIT_OK
    for row in rows:
        secrets = (
            ", ".join(f"{k} {'stored' if v else 'missing'}" for k, v in row["secrets"].items()) or "none"
        )
        say(f"{row['name']:<20} {row['service']:<11} {row['base_url']}  secrets: {secrets}  id {row['id']}")
    return EXIT_OK


def _sign_in_needed(profile: Profile, stored: dict[str, bool]) -> bool:
    """True when the profile cannot sign in with the secrets that are stored."""
    try:
        profile.config({name: ("x" * 16 if ok else None) for name, ok in stored.items()})
    except AuthFailed:
        return True
    except Exception:
        return False
    return False


async def _cmd_add(args: argparse.Namespace) -> int:
    workspace = await open_workspace()
    connection = parse_assignments(args.conn or [], option="--conn")
    leaked = sorted(set(connection) & set(secret_fields(args.service)))
    if leaked:
        raise UsageError(
            f"--conn {leaked[0]}=… would put a secret on the command line; set "
            f"{SECRET_ENV_PREFIX}{leaked[0].upper()} or type it at the prompt instead"
        )
    try:
        profile = Profile(service=args.service, name=args.name, connection=connection)
    except (ValidationError, ProfileError) as exc:
        return _profile_error(exc)
    secrets = _read_secrets(args.service, None, interactive=_interactive() and not args.no_prompt)
    try:
        added = await workspace.add_profile(profile, secrets)
    except (ValidationError, ProfileError) as exc:
        return _profile_error(exc)
    say(f"Added {added.service} profile {added.name!r} (id {added.id}).")
    stored = await workspace.stored_secrets(added)
    missing = [name for name, ok in stored.items() if not ok]
    if _sign_in_needed(added, stored):
        hint = "runmonitor profiles edit NAME --secret FIELD"
        say(f"Sign-in needed until you store: {', '.join(missing)} ({hint})")
    return EXIT_OK


async def _cmd_edit(args: argparse.Namespace) -> int:
    workspace = await open_workspace()
    profile = workspace.profile(args.profile)
    changes = parse_assignments(args.conn or [], option="--conn")
    leaked = sorted(set(changes) & set(secret_fields(profile.service)))
    if leaked:
        raise UsageError(
            f"--conn {leaked[0]}=… would put a secret on the command line; use --secret {leaked[0]}"
        )
    data = profile.model_dump()
    data["connection"] = {**profile.connection, **changes}
    if args.rename:
        data["name"] = args.rename
    try:
        updated = Profile.model_validate(data)
    except (ValidationError, ProfileError) as exc:
        return _profile_error(exc)
    wanted = args.secret or []
    unknown = sorted(set(wanted) - set(secret_fields(profile.service)))
    if unknown:
        raise UsageError(f"--secret {unknown[0]}: not a secret field of {profile.service}")
    secrets = _read_secrets(profile.service, wanted, interactive=_interactive()) if wanted else {}
    missing = [name for name in wanted if name not in secrets]
    if missing:
        raise UsageError(f"no value for {', '.join(missing)}: set {SECRET_ENV_PREFIX}{missing[0].upper()}")
    try:
        await workspace.update_profile(updated, secrets)
    except (ValidationError, ProfileError) as exc:
        return _profile_error(exc)
    say(f"Updated {updated.service} profile {updated.name!r}.")
    return EXIT_OK


async def _cmd_remove(args: argparse.Namespace) -> int:
    workspace = await open_workspace()
    profile = workspace.profile(args.profile)
    if not args.yes:
        if not _interactive():
            raise UsageError(
                f"removing {profile.name!r} deletes its stored secrets too; add --yes to confirm"
            )
        # A one-shot command waiting for its user: nothing else runs on this loop.
        question = f"Remove {profile.service} profile {profile.name!r} and its stored secrets? [y/N] "
        answer = input(question)  # noqa: ASYNC250
        if answer.strip().lower() not in ("y", "yes"):
            say("Nothing removed.")
            return EXIT_OK
    await workspace.remove_profile(profile)
    say(f"Removed {profile.service} profile {profile.name!r} and its secrets.")
    return EXIT_OK


async def _cmd_export(args: argparse.Namespace) -> int:
    from runmonitor.storage.settings.transfer import export_profiles

    workspace = await open_workspace()
    ids = [str(workspace.profile(name).id) for name in args.profile] if args.profile else None
    count = export_profiles(workspace.settings, Path(args.file), profile_ids=ids)
    say(
        f"Exported {plural(count, 'profile')} to {args.file} "
        "(no secrets; they are listed as needed after import)."
    )
    return EXIT_OK


async def _cmd_import(args: argparse.Namespace) -> int:
    from runmonitor.storage.settings.errors import SettingsError
    from runmonitor.storage.settings.transfer import plan_import, read_import

    workspace = await open_workspace()
    try:
        imported = read_import(Path(args.file))
    except (SettingsError, OSError, ValueError) as exc:
        err(f"cannot import {args.file}: {exc}")
        return EXIT_BAD_INPUT
    plan = plan_import(workspace.settings, imported, args.on_clash)
    try:
        outcome = await workspace.import_profiles(plan)
    except SettingsError as exc:
        err(str(exc))
        if plan.undecided:
            err("choose what to do with them: --on-clash rename|replace|skip")
        return EXIT_BAD_INPUT
    added, replaced, skipped = len(outcome.added), len(outcome.replaced), outcome.skipped
    say(f"Imported from {args.file}: {added} added, {replaced} replaced, {skipped} skipped.")
    if added or replaced:
        say("Store their secrets with: runmonitor profiles edit NAME --secret FIELD")
    return EXIT_OK


async def _cmd_test(args: argparse.Namespace) -> int:
    workspace = await open_workspace()
    profile = workspace.profile(args.profile)
    try:
        client = await workspace.client(profile)
        async with client:
            description = await client.check_connection()
    except ServiceError as exc:
        outcome, text = check_outcome(exc)
        say(text)
        return EXIT_RUN_FAILED if outcome == "failed" else EXIT_AUTH_OR_CONNECTION
    say(f"OK: {description}")
    for warning in client.config.warnings():
        say(f"Warning: {warning}")
    return EXIT_OK


def add_parser(sub: Any) -> None:
    profiles = sub.add_parser("profiles", help="manage saved connection profiles")
    actions = profiles.add_subparsers(dest="profiles_command", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="list profiles (and whether their secrets are stored)")
    listing.add_argument("--service", choices=list(registry()), help="only this service")
    listing.add_argument("--json", dest="json_output", action="store_true", help="print JSON")
    listing.set_defaults(handler=_cmd_list)

    add = actions.add_parser(
        "add",
        help="add a profile",
        description=f"Secrets are read from {SECRET_ENV_PREFIX}<FIELD> or asked for at a hidden prompt.",
    )
    add.add_argument("service", choices=list(registry()))
    add.add_argument("--name", required=True, help="a name you recognise, e.g. prod")
    add.add_argument("--conn", action="append", metavar="FIELD=VALUE", help="a connection field (repeatable)")
    add.add_argument("--no-prompt", action="store_true", help="never ask for secrets at a prompt")
    add.set_defaults(handler=_cmd_add)

    edit = actions.add_parser("edit", help="change a profile's fields, name or secrets")
    edit.add_argument("profile", help="profile name or id")
    edit.add_argument(
        "--conn", action="append", metavar="FIELD=VALUE", help="a connection field (repeatable)"
    )
    edit.add_argument("--rename", metavar="NAME", help="a new name")
    edit.add_argument("--secret", action="append", metavar="FIELD", help="store a new value for this secret")
    edit.set_defaults(handler=_cmd_edit)

    remove = actions.add_parser("remove", help="remove a profile and delete its secrets")
    remove.add_argument("profile", help="profile name or id")
    remove.add_argument("--yes", action="store_true", help="do not ask")
    remove.set_defaults(handler=_cmd_remove)

    export = actions.add_parser("export", help="write profiles to a file (never with secrets)")
    export.add_argument("file")
    export.add_argument("--profile", action="append", metavar="NAME", help="only these (repeatable)")
    export.set_defaults(handler=_cmd_export)

    imports = actions.add_parser("import", help="add profiles from an exported file")
    imports.add_argument("file")
    imports.add_argument(
        "--on-clash",
        choices=["rename", "replace", "skip", "ask"],
        default="ask",
        help="what to do when a name exists already (default: stop and list the clashes)",
    )
    imports.set_defaults(handler=_cmd_import)

    test = actions.add_parser("test", help="check a profile: OK, sign-in needed or unreachable")
    test.add_argument("profile", help="profile name or id")
    test.set_defaults(handler=_cmd_test)
