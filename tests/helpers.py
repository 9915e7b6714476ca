"""Helpers for service tests: build a client for the simulator and follow a run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from runmonitor.domain.models import RunSnapshot
from runmonitor.services import get
from runmonitor.services.base import Service
from runmonitor.simulator import Simulator


def client_for(sim: Simulator, key: str, **overrides: Any) -> Service[Any, Any]:
    cls = get(key)
    values = {**sim.demo_connection(key), **overrides}
    return cls(cls.config_model.model_validate(values))


def request_for(sim: Simulator, key: str, **overrides: Any) -> Any:
    cls = get(key)
    return cls.request_model.model_validate({**sim.demo_request(key), **overrides})


async def follow(
    client: Service[Any, Any], sim: Simulator, first: RunSnapshot, *, step: float = 5.0, max_polls: int = 200
) -> list[RunSnapshot]:
    """Poll ``first.ref`` until terminal, advancing the simulator clock ``step`` seconds each time.

    Returns every snapshot seen, starting with ``first``. Bounded by ``max_polls``.
    """
    seen = [first]
    snapshot = first
    for _ in range(max_polls):
        if snapshot.terminal:
            return seen
        sim.clock.advance(step)
        snapshot = await client.get_status(first.ref)
        seen.append(snapshot)
    raise AssertionError(f"run {first.ref.run_id} not terminal after {max_polls} polls: {seen[-1]}")


def distinct_statuses(snapshots: list[RunSnapshot]) -> list[tuple[str, str | None]]:
    """The sequence of (common status, vendor status) with consecutive repeats removed."""
    out: list[tuple[str, str | None]] = []
    for s in snapshots:
        item = (s.status.value, s.vendor_status)
        if not out or out[-1] != item:
            out.append(item)
    return out


ROOT = Path(__file__).resolve().parents[1]


def cli_env(home: Path) -> dict[str, str]:
    """The environment for a ``runmonitor`` subprocess: everything under ``home``, secrets in a
    file-backed keyring stand-in, no inherited ``RUNMONITOR_SECRET_*`` or session bus."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("RUNMONITOR_SECRET_") and key != "DBUS_SESSION_BUS_ADDRESS"
    }
    env.update(
        RUNMONITOR_HOME=str(home),
        PYTHON_KEYRING_BACKEND="tests.file_keyring.FileKeyring",
        RUNMONITOR_TEST_KEYRING=str(home / "test-keyring.json"),
        PYTHONPATH=str(ROOT),
    )
    return env
