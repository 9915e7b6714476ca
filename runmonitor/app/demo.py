"""The demo's wiring: a simulator, a demo profile per service, and a few runs under way.

Only :class:`~runmonitor.app.context.AppContext` (``demo=True``) and tests use it; nothing
here touches the person's real settings, keyring or history.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from runmonitor.app.workspace import Workspace
from runmonitor.domain.errors import ServiceError
from runmonitor.services import get, registry
from runmonitor.storage.settings.model import Profile, secret_fields

if TYPE_CHECKING:
    from runmonitor.app.context import AppContext

log = logging.getLogger(__name__)

#: Demo runs last a quarter of their usual simulated time; the simulator's clock stays real,
#: so durations and "checked … ago" read true.
DEMO_DURATION_SCALE = 0.25


def start_demo_simulator() -> Any:
    """A simulator for the demo, started (a runmonitor.simulator.Simulator)."""
    from runmonitor.simulator import Simulator

    return Simulator(seed=2026, duration_scale=DEMO_DURATION_SCALE).start()


async def add_demo_profiles(workspace: Workspace, simulator: Any) -> None:
    """One "demo" profile on ``simulator`` for every service that has none yet."""
    for key in registry():
        if any(p.service == key for p in workspace.settings.profiles):
            continue
        values = simulator.demo_connection(key)
        secrets = {name: values.pop(name) for name in list(values) if name in secret_fields(key)}
        profile = Profile(service=key, name="demo", connection=values)
        await workspace.add_profile(profile, {k: str(v) for k, v in secrets.items() if v})


async def start_demo_runs(context: AppContext) -> None:
    """A few runs on every service, and watches that pick up runs 'someone else' starts."""
    sim = context.simulator
    for profile in context.profiles():
        cls = get(profile.service)
        request = cls.request_model.model_validate(sim.demo_request(profile.service))
        for _ in range(2):
            try:
                await context.engine.create_run(str(profile.id), request)
            except ServiceError as exc:
                log.info("demo run on %s not created: %s", profile.service, exc)
        client = context.workspace.cached_client(str(profile.id))
        if "watch" in {c.value for c in cls.capabilities}:
            target = client.list_target_for(request)
            try:
                await context.engine.watch(str(profile.id), target)
            except (ServiceError, ValueError) as exc:
                log.info("demo watch on %s not started: %s", profile.service, exc)
            for _ in range(2):
                try:
                    sim.start_external_run(profile.service, target if target != "*" else "*")
                except (NotImplementedError, KeyError, ValueError) as exc:
                    log.info("no external demo run on %s: %s", profile.service, exc)
