"""Benchmark: the service clients against the simulator over real loopback HTTP.

Creates N runs spread over the five services, then polls every run R times with a
bounded number of requests in flight, and reports throughput, latency percentiles and
memory. Everything is bounded: N × R polls, a wall-clock cap, loopback only.

    .venv/bin/python benchmarks/bench_clients.py --runs 500 --rounds 4 --concurrency 32
    .venv/bin/python benchmarks/bench_clients.py --external   # simulator in its own process
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from _common import ExternalSimulator, percentile, rss_mib

from runmonitor.domain.errors import ServiceError
from runmonitor.domain.models import RunSnapshot
from runmonitor.services import get, registry
from runmonitor.simulator import Simulator


async def run(runs: int, rounds: int, concurrency: int, wall_cap: float, external: bool) -> dict[str, Any]:
    started = time.monotonic()
    rss_start = rss_mib()
    keys = list(registry())
    with ExternalSimulator() if external else Simulator(seed=99, time_scale=20.0) as sim:
        clients = {}
        demo_requests = {key: sim.demo_request(key) for key in keys}
        for key in keys:
            cls = get(key)
            clients[key] = cls(cls.config_model.model_validate(sim.demo_connection(key)))
        gate = asyncio.Semaphore(concurrency)
        create_ms: list[float] = []
        poll_ms: list[float] = []
        errors: dict[str, int] = {}

        async def timed(coro: Any, sink: list[float]) -> Any:
            async with gate:
                t0 = time.perf_counter()
                try:
                    return await coro
                except ServiceError as exc:
                    errors[exc.kind] = errors.get(exc.kind, 0) + 1
                    return None
                finally:
                    sink.append((time.perf_counter() - t0) * 1000)

        async def create(i: int) -> RunSnapshot | None:
            key = keys[i % len(keys)]
            request = get(key).request_model.model_validate(demo_requests[key])
            result: RunSnapshot | None = await timed(clients[key].create_run(request), create_ms)
            return result

        created = [s for s in await asyncio.gather(*(create(i) for i in range(runs))) if s is not None]
        t_polls = time.monotonic()
        for _ in range(rounds):
            if time.monotonic() - started > wall_cap:
                break
            await asyncio.gather(*(timed(clients[s.ref.service].get_status(s.ref), poll_ms) for s in created))
        poll_seconds = time.monotonic() - t_polls
        for client in clients.values():
            await client.aclose()
        server_requests = sum(v["requests"] for v in sim.stats()["services"].values())
        creates = sum(sim.creates(k) for k in keys)
    return {
        "simulator": "separate process" if external else "in process (threads)",
        "runs_requested": runs,
        "runs_created": len(created),
        "creates_counted_by_simulator": creates,
        "polls": len(poll_ms),
        "poll_rounds": rounds,
        "concurrency": concurrency,
        "polls_per_second": round(len(poll_ms) / poll_seconds, 1) if poll_seconds else None,
        "create_ms_p50": round(percentile(create_ms, 50), 2),
        "create_ms_p99": round(percentile(create_ms, 99), 2),
        "poll_ms_p50": round(percentile(poll_ms, 50), 2),
        "poll_ms_p99": round(percentile(poll_ms, 99), 2),
        "errors": errors,
        "server_requests": server_requests,
        "rss_mib_start": round(rss_start, 1),
        "rss_mib_end": round(rss_mib(), 1),
        "wall_seconds": round(time.monotonic() - started, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=250, help="runs to create (default 250)")
    parser.add_argument("--rounds", type=int, default=4, help="status polls per run (default 4)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    parser.add_argument("--wall-cap", type=float, default=120.0, help="stop polling after this many seconds")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument(
        "--external", action="store_true", help="run the simulator in its own process (uses a second core)"
    )
    args = parser.parse_args()
    if not (1 <= args.runs <= 20_000 and 1 <= args.rounds <= 100 and 1 <= args.concurrency <= 256):
        parser.error("keep --runs ≤ 20000, --rounds ≤ 100 and --concurrency ≤ 256")
    figures = asyncio.run(run(args.runs, args.rounds, args.concurrency, args.wall_cap, args.external))
    if args.json:
        print(json.dumps(figures))
    else:
        width = max(len(k) for k in figures)
        for key, value in figures.items():
            print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
