"""Pieces the benchmarks share: the simulator in its own process, memory and percentiles.

Import it from a benchmark script run as ``python benchmarks/<name>.py`` (the script's
folder is on ``sys.path`` then)::

    from _common import ExternalSimulator, percentile, rss_mib
"""

from __future__ import annotations

import os
import re
import resource
import select
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

SIMULATE_COMMAND = [sys.executable, "-m", "runmonitor", "simulate"]
#: How long the simulator may take to print its address before we give up on it.
START_TIMEOUT = 30.0


def rss_mib() -> float:
    """Current resident set size in MiB (Linux /proc), else the peak from getrusage."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mib()


def peak_rss_mib() -> float:
    """The largest resident set size this process has had so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0-100) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


class ExternalSimulator:
    """``runmonitor simulate`` in its own process, so server and clients use separate cores and
    the server's CPU time is not counted as the benchmark's.

    The defaults (time scale 20, seed 99) are what bench_clients.py has always used. ``options``
    are ``SERVICE.NAME=VALUE`` knobs (``--option``), e.g. ``connhex.max_queued_exports=100000``.
    The process is terminated (killed if it does not stop) when the ``with`` block ends, also on
    an error.
    """

    def __init__(
        self,
        *,
        time_scale: float = 20.0,
        seed: int = 99,
        duration_scale: float | None = None,
        options: Mapping[str, object] | Iterable[str] = (),
        extra_args: Iterable[str] = (),
    ) -> None:
        args = ["--port", "0", "--time-scale", f"{time_scale:g}", "--seed", str(seed)]
        if duration_scale is not None:
            args += ["--duration-scale", f"{duration_scale:g}"]
        items = [f"{k}={v}" for k, v in options.items()] if isinstance(options, Mapping) else list(options)
        for item in items:
            args += ["--option", item]
        self.args = [*args, *extra_args]
        self.process: subprocess.Popen[str] | None = None
        self.root_url = ""

    def __enter__(self) -> ExternalSimulator:
        self.process = subprocess.Popen(
            [*SIMULATE_COMMAND, *self.args],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
        )
        try:
            self.root_url = self._read_address()
        except BaseException:
            self._terminate()
            raise
        return self

    def _read_address(self) -> str:
        assert self.process is not None and self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], START_TIMEOUT)
        if not ready:
            raise RuntimeError(f"the simulator printed nothing within {START_TIMEOUT:g} s")
        line = self.process.stdout.readline()
        match = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
        if not match:
            raise RuntimeError(f"simulator did not start: {line!r}")
        return match.group(1)

    def __exit__(self, *exc: object) -> None:
        self._terminate()

    def _terminate(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def _get(self, path: str) -> Any:
        return httpx.get(self.root_url + path, timeout=30).json()

    def demo_connection(self, key: str) -> dict[str, Any]:
        return dict(self._get(f"/_sim/demo/{key}")["connection"])

    def demo_request(self, key: str) -> dict[str, Any]:
        return dict(self._get(f"/_sim/demo/{key}")["request"])

    def stats(self) -> dict[str, Any]:
        return dict(self._get("/_sim/stats"))

    def creates(self, key: str) -> int:
        return int(self.stats()["services"][key]["creates"])

    def cpu_seconds(self) -> float | None:
        """User + system CPU the simulator process has used so far (Linux /proc), else None."""
        if self.process is None:
            return None
        return _proc_cpu_seconds(f"/proc/{self.process.pid}/stat")


def thread_cpu_seconds(native_id: int) -> float | None:
    """User + system CPU one thread of this process has used so far (Linux /proc), else None."""
    return _proc_cpu_seconds(f"/proc/self/task/{native_id}/stat")


def _proc_cpu_seconds(stat_path: str) -> float | None:
    try:
        fields = Path(stat_path).read_text().rsplit(")", 1)[1].split()
        # Fields after the command name: state is [0], utime [11], stime [12], in clock ticks.
        return (int(fields[11]) + int(fields[12])) / _clock_ticks()
    except (OSError, IndexError, ValueError):
        return None


def _clock_ticks() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK"))
    except (ValueError, OSError, AttributeError):
        return 100
