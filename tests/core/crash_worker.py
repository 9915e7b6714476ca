"""A RunMonitor engine in a child process, for the SIGKILL crash test.

Usage: python -m tests.core.crash_worker SIM_ROOT_URL HISTORY_PATH

It follows a few runs against the simulator (whose demo connections it reads over
HTTP), prints "following N" once they are stored, then starts one more create whose
request the test made hang, prints "creating", and waits to be killed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import httpx

from runmonitor.domain.schedule import PollSchedule
from runmonitor.engine import PollingEngine
from runmonitor.services import get
from runmonitor.services.base import Service
from runmonitor.storage.history import AsyncHistory

FOLLOWED = ("marquez", "codestream", "invision")


async def main(root: str, path: Path) -> None:
    async with httpx.AsyncClient(base_url=root, timeout=5) as http:
        demo = {key: (await http.get(f"/_sim/demo/{key}")).json() for key in (*FOLLOWED, "connhex")}
    clients: dict[str, Service[Any, Any]] = {}
    for key, values in demo.items():
        cls = get(key)
        clients[f"profile-{key}"] = cls(
            cls.config_model.model_validate({**values["connection"], "timeout_seconds": 60})
        )
    history = await AsyncHistory.open(path)
    engine = PollingEngine(history, clients.__getitem__, schedule=PollSchedule(steps=((0, 0.1),)))
    await engine.start()
    for key in FOLLOWED:
        request = get(key).request_model.model_validate(demo[key]["request"])
        await engine.create_run(f"profile-{key}", request)
    print(f"following {len(FOLLOWED)}", flush=True)
    await asyncio.sleep(0.3)
    request = get("connhex").request_model.model_validate(demo["connhex"]["request"])
    create = asyncio.create_task(engine.create_run("profile-connhex", request))
    await asyncio.sleep(0.3)  # the intent is written and the request is out (and hangs)
    print("creating", flush=True)
    await create  # never returns: the test kills this process


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
