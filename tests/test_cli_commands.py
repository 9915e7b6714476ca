"""``runmonitor run|runs|watch|doctor`` as real subprocesses, against a real simulator and history.

Every test gets its own RUNMONITOR_HOME (settings, the SQLite run history the window also
uses, logs), a file keyring stand-in shared by the processes, and an in-process simulator on
127.0.0.1 running 60 times faster than real time.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runmonitor.domain.models import RunRef, RunSnapshot
from runmonitor.domain.status import RunStatus
from runmonitor.services import get
from runmonitor.simulator import Simulator
from runmonitor.storage.history import AsyncHistory, RunRecord
from runmonitor.storage.paths import app_paths
from tests.helpers import cli_env

ROOT = Path(__file__).resolve().parents[1]
FLOW = "2b081248-4963-43b3-ba06-5b7403d58b4d"
POSIX_ONLY = pytest.mark.skipif(os.name != "posix", reason="needs POSIX signals and terminals")

#: Runs ``runmonitor`` commands (one per argument, as JSON lists) in this one process, then
#: says which Qt modules ended up imported. With ``--import-qt`` it imports Qt first, to show
#: that the check sees it.
QT_PROBE = """
import json, sys
if sys.argv[1] == "--import-qt":
    import PySide6.QtCore
    sys.argv.pop(1)
from runmonitor.cli.main import main
codes = [main(json.loads(arg)) for arg in sys.argv[1:]]
qt = sorted(m for m in sys.modules if m.split(".")[0] in ("PySide6", "shiboken6", "qasync"))
print("RESULT " + json.dumps({"codes": codes, "qt": qt}))
"""


@dataclass
class Home:
    path: Path
    env: dict[str, str]
    sim: Simulator

    def command(self, *args: str, secrets: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
        env = {**self.env, **{f"RUNMONITOR_SECRET_{k.upper()}": v for k, v in (secrets or {}).items()}}
        return [sys.executable, "-m", "runmonitor", *args], env

    def run(
        self, *args: str, secrets: dict[str, str] | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        argv, full_env = self.command(*args, secrets=secrets)
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=60,
            env={**full_env, **(env or {})},
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def ok(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        result = self.run(*args, **kwargs)
        assert result.returncode == 0, f"{args}: {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result

    def add_profile(self, service: str, name: str, *, base_url: str | None = None, **secrets: str) -> str:
        """Add a profile with the simulator's connection (secrets from the simulator unless given)."""
        connection = self.sim.demo_connection(service)
        secret_names = get(service).config_model.secret_field_names()
        stored = {k: str(v) for k, v in connection.items() if k in secret_names}
        stored.update(secrets)
        conn = [
            f"{k}={base_url if k == 'base_url' and base_url else v}"
            for k, v in connection.items()
            if k not in secret_names
        ]
        args = ["profiles", "add", service, "--name", name, "--no-prompt"]
        for item in conn:
            args += ["--conn", item]
        added = self.ok(*args, secrets=stored).stdout
        return added.split("(id ", 1)[1].split(")", 1)[0]

    def run_all(self, commands: list[list[str]]) -> list[subprocess.CompletedProcess[str]]:
        """Several commands at once (they do not depend on each other), in order of ``commands``."""
        started = []
        for args in commands:
            argv, env = self.command(*args)
            started.append(
                subprocess.Popen(
                    argv,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    stdin=subprocess.DEVNULL,
                    text=True,
                    env=env,
                    cwd=ROOT,
                )
            )
        results = []
        for args, process in zip(commands, started, strict=True):
            out, err = process.communicate(timeout=60)
            results.append(subprocess.CompletedProcess(args, process.returncode, out, err))
        return results

    def history(self) -> Path:
        return app_paths({"RUNMONITOR_HOME": str(self.path)}).history_path


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    with Simulator(seed=77, time_scale=60.0) as sim:
        yield Home(tmp_path / "home", cli_env(tmp_path / "home"), sim)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def stored_runs(home: Home) -> list[RunRecord]:
    async def read() -> list[RunRecord]:
        async with await AsyncHistory.open(home.history()) as history:
            records, _ = await history.query_runs(limit=100)
            return records

    return asyncio.run(read())


def create(home: Home, *extra: str, flow: str = FLOW) -> subprocess.CompletedProcess[str]:
    return home.run(
        "run", "create", "invision", "--profile", "prod", "--param", f"data_flow_id={flow}", *extra
    )


# -- run create --profile, runs, run status --------------------------------------------------------
def test_created_runs_are_recorded_in_the_history_listed_and_shown(home: Home) -> None:
    profile_id = home.add_profile("invision", "prod")
    home.sim.force("invision", "success", "failure")

    ok = create(home, "--wait", "--poll", "0.1")
    assert ok.returncode == 0, ok.stderr
    lines = ok.stdout.splitlines()
    assert lines[0].split(": ", 1)[1] == "created, PENDING (Pending)"
    assert lines[-1].endswith(": SUCCEEDED (Succeeded)")
    assert all(" #1 invision/prod " in line for line in lines)
    assert ok.stderr == ""  # no progress line when stderr is not a terminal

    failed = create(home, "--wait", "--poll", "0.1", "--json-output")
    assert failed.returncode == 1
    events = json_lines(failed.stdout)
    assert events[0]["event"] == "created"
    assert events[-1]["status"] == "FAILED" and events[-1]["id"] == 2 and events[-1]["profile"] == "prod"
    assert home.sim.creates("invision") == 2

    # The window's history file holds both, with the profile and the service's run ids.
    stored = {r.id: r for r in stored_runs(home)}
    assert {i: (r.status, r.profile_id, r.closed) for i, r in stored.items()} == {
        1: (RunStatus.SUCCEEDED, profile_id, True),
        2: (RunStatus.FAILED, profile_id, True),
    }
    service_ids = {r.id: r.ref.run_id for r in stored.values()}
    assert set(home.sim.sims["invision"].runs) == set(service_ids.values())  # the service's own ids

    listed = json_lines(home.ok("runs", "--json").stdout)
    assert [(r["id"], r["status"], r["profile"], r["run_id"]) for r in listed] == [
        (2, "FAILED", "prod", service_ids[2]),
        (1, "SUCCEEDED", "prod", service_ids[1]),
    ]
    assert all(r["open"] is False and r["duration_s"] is not None for r in listed)
    assert [r["id"] for r in json_lines(home.ok("runs", "--json", "--state", "failed").stdout)] == [2]
    assert [r["id"] for r in json_lines(home.ok("runs", "--json", "--state", "finished").stdout)] == [2, 1]
    assert home.ok("runs", "--json", "--state", "open").stdout == ""

    table = home.ok("runs", "--service", "invision", "--profile", "prod").stdout.splitlines()
    assert table[0].split() == [
        "ID",
        "STATUS",
        "SERVICE",
        "PROFILE",
        "TARGET",
        "RUN",
        "ID",
        "STARTED",
        "DURATION",
    ]
    assert table[1].split()[:5] == ["#2", "FAILED", "invision", "prod", FLOW]
    assert table[2].split()[:2] == ["#1", "SUCCEEDED"]
    limited = home.ok("runs", "--limit", "1").stdout
    assert "1 of 2 shown" in limited

    by_service_id = home.ok("run", "status", service_ids[1], "--no-refresh")
    assert by_service_id.stdout.startswith("Run #1: SUCCEEDED (Succeeded)")
    assert f"run id:    {service_ids[1]}" in by_service_id.stdout
    refreshed = json.loads(home.ok("run", "status", "2", "--json").stdout)
    assert (refreshed["id"], refreshed["status"], refreshed["refreshed"]) == (2, "FAILED", True)
    assert [t["to"] for t in refreshed["timeline"]][-1] == "FAILED"
    assert home.sim.requests("invision", "GET")  # it asked the service


def test_without_wait_the_run_stays_open_for_the_window_and_watch_follows_it(home: Home) -> None:
    profile_id = home.add_profile("invision", "prod")
    home.sim.force("invision", "success", "failure", "success")
    created = [json_lines(create(home, "--json-output").stdout)[0] for _ in range(2)]
    assert [(e["event"], e["status"], e["id"]) for e in created] == [
        ("created", "PENDING", 1),
        ("created", "PENDING", 2),
    ]
    # What the window resumes at its next start: the open runs of the history.
    assert {(r.id, r.profile_id) for r in stored_runs(home) if not r.closed} == {
        (1, profile_id),
        (2, profile_id),
    }
    assert [r["id"] for r in json_lines(home.ok("runs", "--json", "--state", "open").stdout)] == [2, 1]

    watched = home.ok("watch", "--json", "--until-idle", "--poll", "0.1", "--timeout", "30")
    events = json_lines(watched.stdout)
    assert events, watched.stderr
    for event in events:
        assert {
            "event",
            "service",
            "profile",
            "target",
            "run_id",
            "status",
            "vendor_status",
            "time",
            "message",
        } <= set(event)
    final = {e["id"]: e["status"] for e in events if e["status"] in ("SUCCEEDED", "FAILED")}
    assert final == {1: "SUCCEEDED", 2: "FAILED"}
    assert {e["event"] for e in events} <= {"started", "succeeded", "failed"}
    assert watched.stderr == ""
    assert home.ok("runs", "--json", "--state", "open").stdout == ""

    # For people: one line per transition; nothing open is left, so it ends at once.
    third = create(home)
    assert third.returncode == 0
    human = home.ok("watch", "--until-idle", "--poll", "0.1", "--timeout", "30")
    assert human.stdout.splitlines()[-1].endswith(": SUCCEEDED (Succeeded)")
    assert " #3 invision/prod " in human.stdout
    assert "Following 1 open run and 0 watches" in human.stderr
    idle = home.ok("watch", "--until-idle")
    assert "Nothing to follow" in idle.stderr and idle.stdout == ""


def test_watch_looks_at_watched_jobs_and_follows_runs_started_elsewhere(home: Home) -> None:
    profile_id = home.add_profile("marquez", "lineage")
    job = home.sim.demo_request("marquez")["job"]

    async def add_watch() -> None:
        async with await AsyncHistory.open(home.history()) as history:
            await history.add_watch("marquez", profile_id, job)

    asyncio.run(add_watch())  # as the window's "watch this job" does
    home.sim.start_external_run("marquez", job, "completed")
    result = home.ok("watch", "--json", "--until-idle", "--poll", "0.1", "--timeout", "30")
    events = json_lines(result.stdout)
    discovered = [e for e in events if e["event"] == "discovered"]
    assert discovered and discovered[0]["service"] == "marquez" and discovered[0]["profile"] == "lineage"
    run_id = discovered[0]["run_id"]
    assert [e["status"] for e in events if e["run_id"] == run_id][-1] == "SUCCEEDED"


def test_a_full_quota_queues_the_create_and_wait_follows_it_once_sent(tmp_path: Path) -> None:
    with Simulator(seed=3, time_scale=60.0, credentials={"connhex": {"max_queued_exports": "1"}}) as sim:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUNMONITOR_SECRET_")}
        env.update(
            RUNMONITOR_HOME=str(tmp_path / "home"),
            PYTHON_KEYRING_BACKEND="tests.file_keyring.FileKeyring",
            RUNMONITOR_TEST_KEYRING=str(tmp_path / "home" / "test-keyring.json"),
            PYTHONPATH=str(ROOT),
        )
        home = Home(tmp_path / "home", env, sim)
        home.add_profile("connhex", "exports")
        request = tmp_path / "export.json"
        request.write_text(json.dumps(sim.demo_request("connhex")))
        sim.force("connhex", "queued_long", "success")  # the first one holds the slot a while
        base = ["run", "create", "connhex", "--profile", "exports", "--json", str(request)]
        assert home.ok(*base).stdout  # takes the only slot
        queued = home.run(*base, "--wait", "--poll", "0.1", "--json-output", "--timeout", "30")
        assert queued.returncode == 0, queued.stderr
        kinds = [e["event"] for e in json_lines(queued.stdout)]
        assert kinds[0] == "create_queued" and kinds[-1] == "succeeded"
        assert kinds.count("created") == 1 and kinds.index("created") > kinds.index("create_queued")
        assert "Queued" in queued.stderr
        assert sim.creates("connhex") == 2


# -- bad input, ambiguity, sign-in -----------------------------------------------------------------
def test_bad_input_is_exit_2_with_a_clear_message(home: Home, tmp_path: Path) -> None:
    home.add_profile("invision", "prod")
    broken = tmp_path / "request.json"
    broken.write_text("{not json")
    cases: list[tuple[list[str], str]] = [
        (["run", "create", "jenkins", "--profile", "prod"], "invalid choice"),
        (["run", "create", "invision", "--profile", "prod", "--param", "data_flow_id=oops"], "data_flow_id"),
        (["run", "create", "invision", "--profile", "prod", "--param", "novalue"], "expected key=value"),
        (["run", "create", "invision", "--profile", "nobody"], "no profile named 'nobody'"),
        (["run", "create", "marquez", "--profile", "prod"], "is a invision profile, not marquez"),
        (["run", "create", "invision", "--profile", "prod", "--json", str(broken)], "not valid JSON"),
        (["run", "create", "invision", "--profile", "prod", "--sim", home.sim.root_url], "not both"),
        (["run", "create", "invision", "--profile", "prod", "--wait", "--timeout", "-3"], "greater than 0"),
        (["runs", "--profile", "nobody"], "no profile named 'nobody'"),
        (["runs", "--state", "sleeping"], "invalid choice"),
        (["runs", "--limit", "0"], "1 or more"),
        (["watch", "--profile", "nobody"], "no profile named 'nobody'"),
        (["watch", "--profile", "prod", "--service", "cognite"], "not cognite"),
        (["run", "status", "42"], "no run '42' in the history"),
        (["run", "status", "#x"], "after # comes"),
        (["run", "status", "jenkins", "--target", "t", "--run-id", "r"], "unknown service 'jenkins'"),
        (["run", "status", "invision", "--target", "t"], "needs --target and --run-id"),
        (["run", "status", "invision"], "is a service"),
        (["doctor", "--timeout", "soon"], "not a number"),
    ]
    results = home.run_all([args for args, _ in cases])
    for (args, message), result in zip(cases, results, strict=True):
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert home.sim.creates("invision") == 0
    assert stored_runs(home) == []  # nothing was recorded either


def test_an_id_that_matches_several_runs_is_ambiguous(home: Home) -> None:
    profile_id = home.add_profile("invision", "prod")
    home.sim.force("invision", "success")
    assert create(home, "--wait", "--poll", "0.1").returncode == 0  # history id 1

    async def add_run_with_service_id_1() -> None:
        # A run whose service-side id is "1" (Cognite's run ids are numbers), as the window adds by id.
        async with await AsyncHistory.open(home.history()) as history:
            ref = RunRef(service="invision", target=FLOW, run_id="1")
            await history.upsert_run(
                profile_id, RunSnapshot(ref=ref, status=RunStatus.RUNNING), origin="added"
            )

    asyncio.run(add_run_with_service_id_1())
    ambiguous = home.run("run", "status", "1", "--no-refresh")
    assert ambiguous.returncode == 2
    assert "ambiguous" in ambiguous.stderr and "#1 " in ambiguous.stderr and "#2 " in ambiguous.stderr
    assert "Traceback" not in ambiguous.stderr
    local = home.ok("run", "status", "#1", "--no-refresh")
    assert local.stdout.startswith("Run #1: SUCCEEDED")
    second = json.loads(home.ok("run", "status", "#2", "--no-refresh", "--json").stdout)
    assert (second["id"], second["run_id"], second["refreshed"]) == (2, "1", False)


def test_a_wrong_or_missing_secret_is_exit_3_without_showing_it(home: Home) -> None:
    home.add_profile("invision", "prod", api_key="wrong-key-kept-quiet-991")
    rejected = create(home, "--wait", "--poll", "0.1")
    assert rejected.returncode == 3
    assert "sign-in needed" in rejected.stderr.lower()
    assert "wrong-key-kept-quiet-991" not in rejected.stdout + rejected.stderr
    assert home.sim.creates("invision") == 0

    home.ok(
        "profiles",
        "add",
        "invision",
        "--name",
        "nokey",
        "--conn",
        "base_url=https://x.example",
        "--no-prompt",
    )
    missing = home.run("run", "create", "invision", "--profile", "nokey", "--param", f"data_flow_id={FLOW}")
    assert missing.returncode == 3
    assert "not stored" in missing.stderr


# -- doctor ---------------------------------------------------------------------------------------
def test_doctor_reports_each_part_and_fails_on_a_broken_profile(home: Home) -> None:
    home.add_profile("invision", "prod")
    healthy = home.ok("doctor", "--json", env={"QT_QPA_PLATFORM": "offscreen"})
    report = json.loads(healthy.stdout)
    assert report["ok"] is True and report["problems"] == []
    assert [(p["name"], p["outcome"]) for p in report["profiles"]] == [("prod", "ok")]
    assert report["keyring"]["usable"] is True and report["keyring"]["state"] == "ok"
    assert report["notifications"]["available"] is False  # no session bus in this environment
    assert report["notifications"]["detail"]
    assert "offscreen" in report["tray"]["detail"]  # Qt really started, in a child process
    assert all(item["writable"] for item in report["paths"].values())
    assert set(report["paths"]) == {"config", "data", "state", "logs", "cache"}
    assert report["files"]["settings"]["exists"] is True
    assert report["files"]["log"]["path"].endswith("runmonitor.log")

    with Simulator() as gone:
        dead_url = gone.base_url("invision")
    home.add_profile("invision", "dead", base_url=dead_url)
    no_display = {
        k: v for k, v in home.env.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    argv, _ = home.command("doctor", "--json", "--timeout", "3")
    broken = subprocess.run(
        argv, capture_output=True, text=True, timeout=60, env=no_display, cwd=ROOT, check=False
    )
    assert broken.returncode == 1, broken.stderr
    report = json.loads(broken.stdout)
    assert report["ok"] is False
    outcomes = {p["name"]: p["outcome"] for p in report["profiles"]}
    assert outcomes == {"prod": "ok", "dead": "unreachable"}
    assert any("dead" in problem for problem in report["problems"])
    assert report["tray"]["detail"] == "no display"

    text = home.run("doctor", "--timeout", "3")
    assert text.returncode == 1
    assert "FAIL  dead (invision)" in text.stdout and "OK    prod (invision)" in text.stdout
    assert "1 problem found." in text.stdout


# -- the command line as a whole ------------------------------------------------------------------
def test_every_command_has_help() -> None:
    commands = [
        [],
        ["services"],
        ["simulate"],
        ["run"],
        ["run", "create"],
        ["run", "status"],
        ["runs"],
        ["watch"],
        ["doctor"],
        ["profiles"],
        *(["profiles", action] for action in ("list", "add", "edit", "remove", "export", "import", "test")),
    ]
    # One process runs the console script's main() for each; argparse ends --help with SystemExit.
    driver = """
import contextlib, io, json, sys
from runmonitor.cli.main import main
for args in json.loads(sys.argv[1]):
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            code = main([*args, "--help"])
    except SystemExit as exc:
        code = exc.code
    print(json.dumps({"args": args, "code": code, "out": out.getvalue()}))
"""
    result = subprocess.run(
        [sys.executable, "-c", driver, json.dumps(commands)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    answers = json_lines(result.stdout)
    assert [a["args"] for a in answers] == commands, result.stderr
    for answer in answers:
        assert answer["code"] == 0, answer
        assert answer["out"].startswith("usage: runmonitor"), answer
    exit_codes = {" ".join(a["args"]): "Exit codes" in a["out"] for a in answers}
    assert exit_codes["run create"] and exit_codes["watch"] and exit_codes["doctor"] and exit_codes[""]
    real = subprocess.run(
        [sys.executable, "-m", "runmonitor", "watch", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert real.returncode == 0 and "--until-idle" in real.stdout


def test_commands_other_than_the_window_never_import_qt(home: Home) -> None:
    home.add_profile("invision", "prod")
    home.sim.force("invision", "success")
    commands = [
        ["services"],
        ["profiles", "list"],
        [
            "run",
            "create",
            "invision",
            "--profile",
            "prod",
            "--param",
            f"data_flow_id={FLOW}",
            "--wait",
            "--poll",
            "0.1",
        ],
        ["run", "create", "invision", "--profile", "prod", "--param", f"data_flow_id={FLOW}"],
        ["runs"],
        ["run", "status", "1"],
        ["watch", "--until-idle", "--poll", "0.1", "--timeout", "30"],
        ["doctor", "--json"],
    ]
    argv = [sys.executable, "-c", QT_PROBE, *(json.dumps(c) for c in commands)]
    env = {**home.env, "QT_QPA_PLATFORM": "offscreen"}  # so that doctor's child process starts Qt
    probe = subprocess.run(argv, capture_output=True, text=True, timeout=90, env=env, cwd=ROOT, check=False)
    result = json.loads(probe.stdout.rsplit("RESULT ", 1)[1])
    assert result["codes"] == [0] * len(commands), probe.stderr
    assert result["qt"] == []
    control = subprocess.run(
        [sys.executable, "-c", QT_PROBE, "--import-qt", json.dumps(["services"])],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert "PySide6" in json.loads(control.stdout.rsplit("RESULT ", 1)[1])["qt"]


def on_a_terminal(home: Home, *args: str) -> tuple[int, bytes, str]:
    """Run a command with stderr on a pseudo-terminal: (exit code, stdout, what the terminal got)."""
    import pty

    master, slave = pty.openpty()
    argv, env = home.command(*args)
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=slave, env=env, cwd=ROOT, stdin=subprocess.DEVNULL
    )
    os.close(slave)
    out, _ = process.communicate(timeout=60)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the other end is closed
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    return process.returncode, out, seen.decode()


@POSIX_ONLY
def test_a_terminal_gets_one_updating_progress_line(home: Home) -> None:
    home.add_profile("invision", "prod")
    home.sim.force("invision", "slow", "success")
    create = ["run", "create", "invision", "--profile", "prod", "--param", f"data_flow_id={FLOW}"]
    code, out, terminal = on_a_terminal(home, *create, "--wait", "--poll", "0.1")
    assert code == 0
    assert b"SUCCEEDED (Succeeded)" in out and b"\r" not in out  # stdout stays clean
    assert "\r\x1b[K[0 s]" in terminal  # redrawn in place, with the elapsed time
    assert "run #1: RUNNING (Running)" in terminal
    assert terminal.endswith("\r\x1b[K")  # and cleared at the end
    code, out, terminal = on_a_terminal(home, *create)
    assert code == 0 and b"created, PENDING" in out
    assert terminal == ""  # no wait, no progress line
    code, out, terminal = on_a_terminal(home, "run", "create", "invision", "--sim", home.sim.root_url)
    assert code == 0 and b"PENDING" in out and terminal == ""  # the same without a profile


@POSIX_ONLY
def test_ctrl_c_ends_a_wait_with_130_and_a_watch_with_0_and_watch_picks_up_new_runs(home: Home) -> None:
    home.add_profile("invision", "prod")
    home.sim.force("invision", "slow")
    argv, env = home.command("watch", "--poll", "0.1")
    watcher = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )
    waiter_argv, _ = home.command(
        "run",
        "create",
        "invision",
        "--profile",
        "prod",
        "--param",
        f"data_flow_id={FLOW}",
        "--wait",
        "--poll",
        "5",
    )
    waiter = None
    try:
        assert watcher.stderr is not None and watcher.stdout is not None
        assert "Nothing to follow" in watcher.stderr.readline()  # it is running, with nothing open
        waiter = subprocess.Popen(
            waiter_argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT
        )
        assert waiter.stdout is not None
        assert "created, PENDING" in waiter.stdout.readline()  # it is waiting
        waiter.send_signal(signal.SIGINT)
        assert waiter.wait(timeout=30) == 130
        assert waiter.stderr is not None and "Stopped waiting" in waiter.stderr.read()
        # The run another process created is found in the history and followed to its end.
        line = watcher.stdout.readline()
        assert " #1 invision/prod " in line and line.rstrip().endswith("SUCCEEDED (Succeeded)"), line
        watcher.send_signal(signal.SIGINT)
        assert watcher.wait(timeout=30) == 0
    finally:
        for process in (watcher, waiter):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    assert [(r.id, r.status, r.closed) for r in stored_runs(home)] == [(1, RunStatus.SUCCEEDED, True)]
