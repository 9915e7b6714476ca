"""The command line, run as a real subprocess against a real simulator."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runmonitor.cli import follow
from runmonitor.cli.demo import run_console_demo
from runmonitor.cli.main import main
from runmonitor.cli.output import UsageError, parse_assignments
from runmonitor.domain.events import EventKind
from runmonitor.engine import PollingEngine
from runmonitor.simulator import Simulator
from runmonitor.simulator.server import discover_sims
from runmonitor.storage.paths import app_paths


def runmonitor(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runmonitor", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.fixture
def fast_sim() -> Iterator[Simulator]:
    with Simulator(seed=21, time_scale=60.0) as sim:
        yield sim


def test_parse_assignments() -> None:
    assert parse_assignments(["a=1", "b.c=x", "b.d=[1, 2]", "e=", "f=a=b"], option="--param") == {
        "a": "1",
        "b": {"c": "x", "d": [1, 2]},
        "e": "",
        "f": "a=b",
    }
    with pytest.raises(UsageError, match="expected key=value"):
        parse_assignments(["novalue"], option="--param")
    with pytest.raises(UsageError, match="not valid"):
        parse_assignments(["x={broken"], option="--param")
    with pytest.raises(UsageError, match="both a value and an object"):
        parse_assignments(["a=1", "a.b=2"], option="--param")


def test_simulate_serves_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "runmonitor", "simulate", "--port", "0", "--time-scale", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.search(r"on (http://127\.0\.0\.1:\d+)", first)
        assert match, first
        url = match.group(1)
        lines = [process.stdout.readline() for _ in range(5)]
        assert any(f"{url}/invision" in line for line in lines)
        done = runmonitor(
            "run", "create", "invision", "--sim", url, "--wait", "--poll", "0.2", "--timeout", "30"
        )
        assert done.returncode in (0, 1), done.stderr
        assert "SUCCEEDED" in done.stdout or "FAILED" in done.stdout
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    assert process.returncode == 0


def test_create_and_wait_exit_codes_follow_the_outcome(fast_sim: Simulator) -> None:
    fast_sim.force("invision", "success", "failure")
    ok = runmonitor("run", "create", "invision", "--sim", fast_sim.root_url, "--wait", "--poll", "0.1")
    assert ok.returncode == 0, ok.stderr
    assert [line.split(": ", 1)[1] for line in ok.stdout.splitlines()] == [
        "PENDING (Pending)",
        "RUNNING (Running)",
        "SUCCEEDED (Succeeded)",
    ]
    failed = runmonitor(
        "run", "create", "invision", "--sim", fast_sim.root_url, "--wait", "--poll", "0.1", "--json-output"
    )
    assert failed.returncode == 1
    snapshots = [json.loads(line) for line in failed.stdout.splitlines()]
    assert snapshots[-1]["status"] == "FAILED"
    assert fast_sim.creates("invision") == 2


def test_create_without_wait_returns_at_once(fast_sim: Simulator) -> None:
    result = runmonitor("run", "create", "invision", "--sim", fast_sim.root_url)
    assert result.returncode == 0
    assert "PENDING" in result.stdout
    run_id = result.stdout.split(" run ")[1].split(":")[0]
    flow = fast_sim.demo_request("invision")["data_flow_id"]
    status = runmonitor(
        "run", "status", "invision", "--sim", fast_sim.root_url, "--target", flow, "--run-id", run_id
    )
    assert status.returncode == 0
    assert status.stdout.split()[0] in ("PENDING", "RUNNING", "SUCCEEDED", "FAILED")


def test_bad_request_field_is_exit_2_naming_the_field(fast_sim: Simulator) -> None:
    result = runmonitor(
        "run", "create", "invision", "--sim", fast_sim.root_url, "--param", "data_flow_id=oops"
    )
    assert result.returncode == 2
    assert "data_flow_id" in result.stderr
    assert "Traceback" not in result.stderr
    assert fast_sim.creates("invision") == 0


def test_bad_connection_field_is_exit_2(fast_sim: Simulator) -> None:
    result = runmonitor("run", "create", "invision", "--conn", "base_url=ftp://nowhere")
    assert result.returncode == 2
    assert "base_url" in result.stderr
    assert "api_key" in result.stderr  # the missing key is named too
    assert "Traceback" not in result.stderr


def test_secrets_are_refused_on_the_command_line(fast_sim: Simulator) -> None:
    result = runmonitor("run", "create", "invision", "--conn", "api_key=leak-me-please")
    assert result.returncode == 2
    assert "RUNMONITOR_SECRET_API_KEY" in result.stderr


def test_wrong_key_from_the_environment_is_exit_3(fast_sim: Simulator) -> None:
    result = runmonitor(
        "run",
        "create",
        "invision",
        "--sim",
        fast_sim.root_url,
        env={"RUNMONITOR_SECRET_API_KEY": "wrong-key-from-env"},
    )
    assert result.returncode == 3
    assert "sign-in needed" in result.stderr
    assert "wrong-key-from-env" not in result.stderr + result.stdout


def test_unreachable_service_is_exit_3() -> None:
    with Simulator() as sim:
        url = sim.root_url
    result = runmonitor("run", "create", "invision", "--sim", url)
    assert result.returncode == 3
    assert "simulator" in result.stderr


def test_bad_json_file_is_exit_2(tmp_path: Path, fast_sim: Simulator) -> None:
    bad = tmp_path / "req.json"
    bad.write_text("{not json")
    result = runmonitor("run", "create", "invision", "--sim", fast_sim.root_url, "--json", str(bad))
    assert result.returncode == 2
    assert "not valid JSON" in result.stderr
    missing = runmonitor(
        "run", "create", "invision", "--sim", fast_sim.root_url, "--json", str(tmp_path / "x")
    )
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr


def test_unknown_service_and_help() -> None:
    result = runmonitor("run", "create", "jenkins")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
    helped = runmonitor("--help")
    assert helped.returncode == 0
    assert "Exit codes" in helped.stdout


def test_services_lists_the_registry() -> None:
    result = runmonitor("services", "--json")
    assert result.returncode == 0
    keys = [item["key"] for item in json.loads(result.stdout)]
    assert "invision" in keys


def test_a_direct_create_is_followed_by_the_engine_and_recorded_nowhere(
    tmp_path: Path, fast_sim: Simulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[EventKind] = []

    class Watched(PollingEngine):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.subscribe(lambda event: seen.append(event.kind))

    home, scratch = tmp_path / "home", tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(follow, "PollingEngine", Watched)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setenv("RUNMONITOR_HOME", str(home))
    fast_sim.force("invision", "success")
    code = main(["run", "create", "invision", "--sim", fast_sim.root_url, "--wait", "--poll", "0.1"])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == [
        "PENDING (Pending)",
        "RUNNING (Running)",
        "SUCCEEDED (Succeeded)",
    ]
    assert seen == [EventKind.CREATED, EventKind.STARTED, EventKind.SUCCEEDED]
    assert not app_paths({"RUNMONITOR_HOME": str(home)}).history_path.exists()
    assert list(scratch.iterdir()) == []  # the engine's throw-away history is gone too
    assert fast_sim.creates("invision") == 1


def test_the_console_demo_follows_one_run_per_service_to_its_end(capsys: pytest.CaptureFixture[str]) -> None:
    code = asyncio.run(run_console_demo(time_scale=120.0, give_up_after=60.0))
    assert code == 0
    out = capsys.readouterr().out
    summary = out.split("\n\n", 1)[1].splitlines()
    keys = sorted(line.split()[0] for line in summary)
    assert keys == sorted(discover_sims())
    assert all(line.split()[1] in ("SUCCEEDED", "FAILED", "CANCELLED") for line in summary), summary


def test_commands_never_import_main() -> None:
    """main.py builds the parser and dispatches; the command modules it imports never import it."""
    package = Path(__file__).resolve().parents[1] / "runmonitor" / "cli"
    offenders = []
    for path in sorted(package.glob("*.py")):
        if path.name == "main.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            else:
                continue
            if "runmonitor.cli.main" in names:
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
    assert len(list(package.glob("*.py"))) > 5  # the scan saw the command modules
