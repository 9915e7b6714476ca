"""Where a command gets what it works on: the workspace, the settings, the run history, a service
client (from ``--profile``, ``--sim`` or ``--conn``) and the create request (from ``--json`` and
``--param``). Bad input for any of them is a :class:`UsageError` (exit code 2).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from runmonitor.cli.output import (
    SECRET_ENV_PREFIX,
    UsageError,
    err,
    format_validation_error,
    parse_assignments,
)
from runmonitor.domain.errors import ConnectionFailed
from runmonitor.services import get
from runmonitor.storage.history import AsyncHistory
from runmonitor.storage.paths import AppPaths, app_paths
from runmonitor.storage.settings.model import Profile, Settings


# -- the workspace, settings and history ------------------------------------------------------------
async def open_workspace() -> Any:
    """The person's workspace (settings, keyring, clients); its notices go to stderr."""
    from runmonitor.app.workspace import Workspace

    workspace = await Workspace.open()
    for notice in workspace.notices:
        err(f"{notice.level}: {notice.text}")
    return workspace


async def load_settings() -> tuple[Settings, AppPaths]:
    """Settings and paths without opening the keyring (for commands that only read)."""
    from runmonitor.storage.settings.store import SettingsStore

    paths = app_paths().ensure()
    result = await asyncio.to_thread(SettingsStore.for_paths(paths).load)
    if result.migrated_secrets:
        # An old file held secrets in plain text: the workspace moves them to the keyring.
        workspace = await open_workspace()
        await workspace.aclose()
        return workspace.settings, workspace.paths
    for notice in result.notices:
        err(f"{notice.level}: {notice.text}")
    return result.settings, paths


@asynccontextmanager
async def opened_history(paths: AppPaths) -> AsyncIterator[AsyncHistory]:
    history = await AsyncHistory.open(paths.history_path)
    try:
        yield history
    finally:
        await history.close()


def profile_names(settings: Settings) -> dict[str, str]:
    """Profile id → name, for showing runs."""
    return {str(p.id): p.name for p in settings.profiles}


def require_service(profile: Profile, service: str | None) -> None:
    """Refuse a profile of another service than the one asked for (``None``: any service)."""
    if service and profile.service != service:
        raise UsageError(f"profile {profile.name!r} is a {profile.service} profile, not {service}")


def profile_filter(settings: Settings, name: str | None, service: str | None) -> str | None:
    """The id of ``--profile`` (checked against ``--service``), or None."""
    if not name:
        return None
    profile = settings.profile(name)
    require_service(profile, service)
    return str(profile.id)


# -- a client straight to a service ------------------------------------------------------------------
async def client_from_args(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The service client for ``--profile`` or ``--sim``/``--conn``, and default request values."""
    service = get(args.service)
    if getattr(args, "profile", None):
        workspace = await open_workspace()
        profile = workspace.profile(args.profile)
        require_service(profile, service.key)
        client = await workspace.client(profile)
        return client, {}
    values, defaults = await _connection_values(args)
    try:
        config = service.config_model.model_validate(values)
    except ValidationError as exc:
        raise UsageError(
            f"the {service.display_name} connection is not valid:\n{format_validation_error(exc)}"
        ) from None
    return service(config), defaults


async def _simulator_demo(sim_url: str, service: str) -> dict[str, Any]:
    import httpx

    try:
        async with httpx.AsyncClient(base_url=sim_url.rstrip("/"), timeout=5.0) as http:
            answer = await http.get(f"/_sim/demo/{service}")
    except httpx.HTTPError as exc:
        raise ConnectionFailed(
            f"no simulator answered at {sim_url} ({exc})", may_have_reached_service=False
        ) from None
    if answer.status_code != 200:
        raise UsageError(f"the simulator at {sim_url} does not simulate {service}")
    return dict(answer.json())


async def _connection_values(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """(connection values, default request values) from --sim or --conn and the environment."""
    service = get(args.service)
    defaults: dict[str, Any] = {}
    values: dict[str, Any] = {}
    if args.sim:
        demo = await _simulator_demo(args.sim, args.service)
        values, defaults = dict(demo["connection"]), dict(demo["request"])
    conn = parse_assignments(args.conn or [], option="--conn")
    secret_names = set(service.config_model.secret_field_names())
    for name in conn:
        if name in secret_names:
            raise UsageError(
                f"--conn {name}=… would put a secret on the command line (visible to other users "
                f"in the process list); set {SECRET_ENV_PREFIX}{name.upper()} in the environment instead"
            )
    values.update(conn)
    for name in secret_names:
        env = os.environ.get(f"{SECRET_ENV_PREFIX}{name.upper()}")
        if env:
            values[name] = env
    return values, defaults


# -- the create request ------------------------------------------------------------------------------
def _load_json_file(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} must hold a JSON object")
    return data


def build_request(service: Any, args: argparse.Namespace, defaults: dict[str, Any]) -> Any:
    """The create request from ``--json FILE`` and ``--param``s, validated by the service's
    request model (the one the window's form uses)."""
    request_values = dict(defaults)
    if args.json:
        request_values.update(_load_json_file(args.json))
    request_values.update(parse_assignments(args.param or [], option="--param"))
    try:
        return service.request_model.model_validate(request_values)
    except ValidationError as exc:
        raise UsageError(f"the run request is not valid:\n{format_validation_error(exc)}") from None
