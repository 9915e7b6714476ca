"""The per-event hook, running real child processes (this Python) with a real environment."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from runmonitor.domain.events import EventKind
from runmonitor.domain.models import RunRef, RunSnapshot
from runmonitor.domain.status import RunStatus
from runmonitor.engine import RunEvent
from runmonitor.notify.hooks import HookConfig, HookResult, HookRunner, hook_env, run_hook
from runmonitor.notify.policy import COALESCED, NotificationPolicy
from runmonitor.storage.history import RunRecord
from runmonitor.storage.settings.model import NotificationPrefs

AT = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)

# Writes the RUNMONITOR_* environment and argv it was given to the file named by argv[1].
DUMP_ENV = (
    "import json, os, sys; "
    "env = {k: v for k, v in os.environ.items() if k.startswith('RUNMONITOR_')}; "
    "json.dump({'env': env, 'argv': sys.argv[1:], 'path': 'PATH' in os.environ}, open(sys.argv[1], 'w'))"
)


def python(code: str, *args: str | Path) -> str:
    """A hook command line running ``code`` with this interpreter."""
    return shlex.join([sys.executable, "-c", code, *map(str, args)])


def run_record(status: RunStatus = RunStatus.FAILED, message: str | None = "disk full") -> RunRecord:
    snapshot = RunSnapshot(
        ref=RunRef(service="marquez", target="daily_orders", run_id="run-42"),
        status=status,
        vendor_status="FAILED" if status is RunStatus.FAILED else status.value,
        message=message,
    )
    return RunRecord(
        id=7,
        profile_id="p-1",
        origin="created",
        snapshot=snapshot,
        first_seen_at=AT,
        last_checked_at=AT,
        last_attempt_at=AT,
        stale=False,
        last_error=None,
        last_error_kind=None,
        closed=True,
        closed_reason=None,
        request=None,
    )


def failed_event(*, quiet: bool = False, run: RunRecord | None = None) -> RunEvent:
    return RunEvent(
        EventKind.FAILED,
        AT,
        "marquez",
        "p-1",
        run=run or run_record(),
        previous=RunStatus.RUNNING,
        quiet=quiet,
    )


def read_dump(path: Path) -> dict[str, object]:
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


def process_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (gone, or a zombie waiting for its parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


async def eventually(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def has_text(path: Path) -> bool:
    return path.exists() and bool(path.read_text().strip())


# -- the environment ------------------------------------------------------------------------------


async def test_the_hook_gets_the_runs_data_in_its_environment_and_no_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNMONITOR_SECRET_API_KEY", "audit-secret-7Qx2-kept-out-of-files")
    monkeypatch.setenv("RUNMONITOR_HOME_TEST_MARK", "inherited?")
    out = tmp_path / "env.json"
    config = HookConfig(command=python(DUMP_ENV, out))
    result = await run_hook(
        config, failed_event(), profile_name="prod", url="https://m.example/runs/run-42?api_key=k123456"
    )
    assert result.ok, result
    assert result.returncode == 0
    data = read_dump(out)
    env = data["env"]
    assert isinstance(env, dict)
    assert env == {
        "RUNMONITOR_EVENT": "failed",
        "RUNMONITOR_SERVICE": "marquez",
        "RUNMONITOR_PROFILE": "prod",
        "RUNMONITOR_PROFILE_ID": "p-1",
        "RUNMONITOR_RUN_ID": "run-42",
        "RUNMONITOR_HISTORY_ID": "7",
        "RUNMONITOR_TARGET": "daily_orders",
        "RUNMONITOR_STATUS": "FAILED",
        "RUNMONITOR_VENDOR_STATUS": "FAILED",
        "RUNMONITOR_MESSAGE": "disk full",
        "RUNMONITOR_URL": "https://m.example/runs/run-42?api_key=***",
        "RUNMONITOR_TITLE": "Run run-42 of job daily_orders failed on prod (Marquez)",
        "RUNMONITOR_BODY": "Status: FAILED\ndisk full",
        "RUNMONITOR_COUNT": "1",
    }
    assert data["path"] is True  # the rest of the environment is inherited


async def test_the_command_is_never_run_through_a_shell(tmp_path: Path) -> None:
    out = tmp_path / "env.json"
    marker = tmp_path / "pwned"
    tricky = ["$(touch " + str(marker) + ")", "; touch " + str(marker), "`id`", "*", "a b"]
    config = HookConfig(command=python(DUMP_ENV, out, *tricky))
    run = run_record(message=f"$(touch {marker}) `touch {marker}`")
    result = await run_hook(config, failed_event(run=run))
    assert result.ok, result
    assert read_dump(out)["argv"] == [str(out), *tricky]
    assert not marker.exists()


async def test_a_notification_about_several_runs_describes_the_first(tmp_path: Path) -> None:
    class Clock:
        def monotonic(self) -> float:
            return 0.0

        def wall(self) -> float:
            return AT.timestamp()

        def now(self) -> datetime:
            return AT

    policy = NotificationPolicy(lambda _: NotificationPrefs(), lambda _: "prod", Clock(), window=0)
    for target in ("orders", "customers"):
        snapshot = run_record().snapshot.model_copy(
            update={"ref": RunRef(service="marquez", target=target, run_id=f"r-{target}")}
        )
        run = RunRecord(**{**run_record().__dict__, "snapshot": snapshot})
        policy.feed(failed_event(run=run))
    [notification] = policy.flush(force=True)
    assert notification.kind == COALESCED
    env = hook_env(notification)
    assert env["RUNMONITOR_EVENT"] == COALESCED
    assert env["RUNMONITOR_COUNT"] == "2"
    assert env["RUNMONITOR_TITLE"] == "2 runs failed on prod (Marquez)"
    assert env["RUNMONITOR_TARGET"] == "orders"
    assert env["RUNMONITOR_RUN_ID"] == "r-orders"
    assert "RUNMONITOR_URL" not in env


# -- failures come back as results ------------------------------------------------------------------


async def test_a_missing_program_is_a_clear_result_not_an_exception(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-program"
    result = await run_hook(HookConfig(command=shlex.join([str(missing), "--flag"])), failed_event())
    assert not result.ok
    assert result.returncode is None
    assert result.error == f"program not found: {str(missing)!r}"
    assert result.describe() == f"no-such-program: program not found: {str(missing)!r}"


async def test_a_program_that_cannot_be_executed_is_reported(tmp_path: Path) -> None:
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    result = await run_hook(HookConfig(command=shlex.quote(str(script))), failed_event())
    assert not result.ok
    assert result.error is not None
    assert "not allowed to run" in result.error


async def test_a_failing_hook_reports_its_status_and_output() -> None:
    code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    result = await run_hook(HookConfig(command=python(code)), failed_event())
    assert not result.ok
    assert result.returncode == 3
    assert result.error == "exit status 3"
    assert result.output.split() == ["out", "err"]
    assert not result.output_truncated


async def test_output_is_capped_and_a_chatty_hook_still_finishes() -> None:
    code = "import sys; sys.stdout.write('x' * 1_000_000); sys.stdout.flush()"
    result = await run_hook(HookConfig(command=python(code)), failed_event(), max_output=1000)
    assert result.ok, result
    assert result.output == "x" * 1000
    assert result.output_truncated


async def test_a_hook_that_runs_too_long_is_killed_with_its_children(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    code = (
        "import os, subprocess, sys, time; "
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "open(sys.argv[1], 'w').write(f'{os.getpid()} {child.pid}'); "
        "time.sleep(60)"
    )
    config = HookConfig(command=python(code, pids), timeout_s=1.0)
    result = await run_hook(config, failed_event())
    assert result.timed_out
    assert not result.ok
    assert result.error == "stopped after 1 s"
    hook_pid, child_pid = map(int, pids.read_text().split())
    assert process_gone(hook_pid)
    if sys.platform.startswith("linux"):
        await eventually(lambda: process_gone(child_pid), "the hook's child to be killed too")


async def test_a_hook_leaving_a_child_behind_does_not_hang_the_caller() -> None:
    # The child keeps the output pipe open for a minute; the hook itself exits at once.
    code = (
        "import subprocess, sys; "
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print(child.pid)"
    )
    result = await asyncio.wait_for(run_hook(HookConfig(command=python(code)), failed_event()), 15)
    child = int(result.output.strip())
    os.kill(child, signal.SIGKILL)
    assert result.ok, result
    assert not result.timed_out


# -- configuration ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"command": ""}, "at least 1 character"),
        ({"command": "   "}, "names no program"),
        ({"command": "notify 'unclosed"}, "cannot be split"),
        ({"command": "x", "events": ["failed", "exploded"]}, "unknown event kinds exploded"),
        ({"command": "x", "timeout_s": 0}, "greater than 0"),
    ],
)
def test_bad_hook_settings_are_refused(values: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        HookConfig.model_validate(values)


def test_which_events_a_hook_wants() -> None:
    config = HookConfig(command="x", events=frozenset({"failed"}))
    assert config.wants(failed_event())
    assert not config.wants(failed_event(quiet=True))
    assert HookConfig(command="x", events=frozenset({"failed"}), include_quiet=True).wants(
        failed_event(quiet=True)
    )
    succeeded = RunEvent(EventKind.SUCCEEDED, AT, "marquez", "p-1", run=run_record(RunStatus.SUCCEEDED))
    assert not config.wants(succeeded)
    assert config.argv() == ["x"]
    assert HookConfig(command="/usr/bin/notify --to 'ops team'").argv() == [
        "/usr/bin/notify",
        "--to",
        "ops team",
    ]
    assert HookConfig(command="/usr/bin/notify --to ops").program == "notify"


# -- bounded concurrency ---------------------------------------------------------------------------


async def test_at_most_max_running_hooks_run_at_once(tmp_path: Path) -> None:
    log = tmp_path / "log"
    code = (
        "import os, sys, time; "
        "f = open(sys.argv[1], 'a'); f.write(f'start {os.getpid()}\\n'); f.flush(); "
        "time.sleep(0.3); "
        "f.write(f'end {os.getpid()}\\n'); f.flush()"
    )
    runner = HookRunner(max_running=2, max_waiting=10)
    config = HookConfig(command=python(code, log))
    results = await asyncio.gather(*(runner.run(config, failed_event()) for _ in range(6)))
    assert all(r.ok for r in results), results
    running = peak = 0
    lines = log.read_text().splitlines()
    assert len(lines) == 12
    for line in lines:
        running += 1 if line.startswith("start") else -1
        peak = max(peak, running)
    assert peak <= 2
    assert runner.running == 0
    assert runner.waiting == 0


async def test_hooks_beyond_the_waiting_room_are_skipped(tmp_path: Path) -> None:
    runner = HookRunner(max_running=1, max_waiting=1)
    config = HookConfig(command=python("import time; time.sleep(0.2)"))
    results = await asyncio.gather(*(runner.run(config, failed_event()) for _ in range(3)))
    assert [r.ok for r in results] == [True, True, False]
    skipped = results[2]
    assert skipped.skipped
    assert skipped.returncode is None
    assert skipped.error == "skipped: 1 hooks running and 1 waiting"
    assert runner.skipped == 1


async def test_submit_runs_in_the_background_and_aclose_stops_it(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    code = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)"
    runner = HookRunner()
    config = HookConfig(command=python(code, pid_file), events=frozenset({"failed"}))
    not_wanted = runner.submit(config, failed_event(quiet=True))
    result: HookResult = await not_wanted
    assert result.skipped
    assert result.error == "not wanted for this event"
    task = runner.submit(config, failed_event())
    await eventually(lambda: has_text(pid_file), "the hook to start")
    pid = int(await asyncio.to_thread(pid_file.read_text))
    await runner.aclose()
    assert task.cancelled()
    if sys.platform.startswith("linux"):
        await eventually(lambda: process_gone(pid), "aclose() to kill the hook")
