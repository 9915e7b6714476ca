"""A RunMonitor core that follows runs until there is nothing left, for the crash tests.

    python -m tests.storm_worker HOME RUNS

Creates RUNS runs over the profiles in HOME (0: none, just resume), prints progress lines,
resolves creates whose outcome is unknown at every start, and exits 0 when nothing is left
to follow. It is SIGKILLed at random moments by tests/test_storm_crash.py.
"""

from __future__ import annotations

import asyncio
import json
import sys

from runmonitor.app.context import AppContext
from runmonitor.domain.errors import ServiceError
from runmonitor.drills.storm import resolve_unconfirmed
from runmonitor.engine import QueuedForQuota
from runmonitor.services import registry
from runmonitor.storage.history import IntentState
from runmonitor.storage.paths import app_paths


async def main(home: str, runs: int, demo_request: dict[str, dict[str, object]]) -> int:
    context = await AppContext.open(paths=app_paths({"RUNMONITOR_HOME": home}))
    try:
        resolved = await resolve_unconfirmed(context)
        print(f"resumed {len(context.engine.followed())} adopted {resolved.adopted}", flush=True)
        profiles = context.profiles()
        for index in range(runs):
            profile = profiles[index % len(profiles)]
            request = registry()[profile.service].request_model.model_validate(demo_request[profile.service])
            try:
                await context.engine.create_run(str(profile.id), request)
            except (QueuedForQuota, ServiceError):
                pass  # queued, refused or unconfirmed: the history has it as an intent
            if index % 10 == 9:
                print(f"created {index + 1}", flush=True)
        print("following", flush=True)
        for _ in range(2400):  # at most 10 minutes
            queued = [i for i in await context.history.open_intents() if i.state is IntentState.QUEUED]
            if not context.engine.followed() and not queued:
                break
            await asyncio.sleep(0.25)
        resolved = await resolve_unconfirmed(context)
        for _ in range(1200):  # adopted runs: at most 5 more minutes
            if not context.engine.followed():
                break
            await asyncio.sleep(0.25)
        print("done " + json.dumps(sorted(list(c) for c in resolved.candidates)), flush=True)
        return 0
    finally:
        await context.close()


if __name__ == "__main__":
    requests = json.loads(sys.stdin.readline())
    sys.exit(asyncio.run(main(sys.argv[1], int(sys.argv[2]), requests)))
