"""``runmonitor doctor``: what works on this machine, what does not, and why.

It looks at the keyring, the desktop notification channel, the system tray (in a short
child process, so this process never imports Qt), the folders and files RunMonitor uses, and
whether each profile can reach and sign in to its service (all profiles at once, each with a
short timeout).

Exit codes: 0 when everything RunMonitor needs works; 1 when something needed is broken: a
profile that cannot connect or sign in, a folder that cannot be written, a history that
cannot be opened, or no working keyring while the settings keep secrets in it. Notifications
and the tray are reported but not needed (the window shows banners instead).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

from runmonitor import __version__
from runmonitor.cli.output import EXIT_OK, EXIT_RUN_FAILED, positive_float, say, say_json
from runmonitor.cli.window import display_available
from runmonitor.domain.errors import ServiceError, TimedOut, check_outcome
from runmonitor.domain.text import plural

OK, WARN, FAIL, INFO = "ok", "warn", "fail", "info"
TRAY_TIMEOUT = 10.0
#: Run in a child process: Qt starts there, and the answer comes back on stdout.
TRAY_PROBE = (
    "import sys\n"
    "from PySide6.QtWidgets import QApplication, QSystemTrayIcon\n"
    "app = QApplication(sys.argv[:1])\n"
    "print('tray-probe', app.platformName(), QSystemTrayIcon.isSystemTrayAvailable(), flush=True)\n"
)


def _state_mark(state: str) -> str:
    return {OK: "OK  ", WARN: "WARN", FAIL: "FAIL", INFO: "    "}[state]


async def check_keyring(secret_storage: str) -> dict[str, Any]:
    from runmonitor.storage.secrets import probe_keyring

    status = await asyncio.to_thread(probe_keyring)
    needed = secret_storage == "keyring"
    if status.usable:
        state, detail = OK, status.backend
    else:
        state = FAIL if needed else INFO
        detail = status.reason or "not usable"
        if needed:
            detail += " (secrets are kept only while a RunMonitor process runs)"
    return {
        "state": state,
        "usable": status.usable,
        "backend": status.backend,
        "reason": status.reason,
        "needed": needed,
        "secret_storage": secret_storage,
        "detail": detail,
    }


async def check_notifications() -> dict[str, Any]:
    from runmonitor.notify.channels import probe_desktop_channel

    try:
        channel, reason = await probe_desktop_channel()
    except Exception as exc:  # the probe promises not to raise; a report must not die of it anyway
        channel, reason = None, f"{type(exc).__name__}: {exc}"
    if channel is not None:
        await channel.close()
        return {"state": OK, "available": True, "detail": reason}
    return {
        "state": WARN,
        "available": False,
        "detail": f"{reason} (RunMonitor shows banners in its window instead)",
    }


async def check_tray(limit: float = TRAY_TIMEOUT) -> dict[str, Any]:
    """Ask a child Python process whether Qt finds a system tray."""
    if not display_available():
        return {"state": WARN, "available": False, "platform": None, "detail": "no display"}
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            TRAY_PROBE,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        return {"state": WARN, "available": False, "platform": None, "detail": f"cannot start Python: {exc}"}
    try:
        out, err = await asyncio.wait_for(process.communicate(), limit)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        return {
            "state": WARN,
            "available": False,
            "platform": None,
            "detail": f"Qt did not start within {limit:g}s",
        }
    for line in out.decode(errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "tray-probe":
            available = parts[2] == "True"
            detail = (
                f"available (Qt platform {parts[1]})"
                if available
                else f"no system tray (Qt platform {parts[1]})"
            )
            return {
                "state": OK if available else WARN,
                "available": available,
                "platform": parts[1],
                "detail": detail,
            }
    last = next((ln.strip() for ln in reversed(err.decode(errors="replace").splitlines()) if ln.strip()), "")
    why = last or f"exit code {process.returncode}"
    return {"state": WARN, "available": False, "platform": None, "detail": f"Qt could not start: {why}"}


def _look_at_files(paths: Any) -> dict[str, Any]:
    """The blocking part: folders (can a file be created?) and which files exist."""
    from runmonitor.storage.logs import log_file
    from runmonitor.storage.settings.store import SettingsStore

    folders = {
        name: check_folder(path)
        for name, path in (
            ("config", paths.config_dir),
            ("data", paths.data_dir),
            ("state", paths.state_dir),
            ("logs", paths.log_dir),
            ("cache", paths.cache_dir),
        )
    }
    settings = SettingsStore.for_paths(paths).path
    log = log_file(paths)
    return {
        "folders": folders,
        "settings": settings,
        "settings_exists": settings.exists(),
        "history_exists": paths.history_path.exists(),
        "log": log,
        "log_exists": log.exists(),
    }


def check_folder(path: Path) -> dict[str, Any]:
    """Whether ``path`` exists and a file can really be created in it."""
    if not path.is_dir():
        return {
            "state": FAIL,
            "path": str(path),
            "exists": path.exists(),
            "writable": False,
            "detail": "missing",
        }
    try:
        handle, name = tempfile.mkstemp(prefix=".doctor-", dir=path)
    except OSError as exc:
        detail = f"not writable: {exc.strerror or exc}"
        return {"state": FAIL, "path": str(path), "exists": True, "writable": False, "detail": detail}
    os.close(handle)
    with contextlib.suppress(OSError):
        os.unlink(name)
    return {"state": OK, "path": str(path), "exists": True, "writable": True, "detail": "writable"}


async def check_history(path: Path, exists: bool) -> dict[str, Any]:
    from runmonitor.storage.history import AsyncHistory, HistoryError

    if not exists:
        return {
            "state": INFO,
            "path": str(path),
            "exists": False,
            "detail": "not created yet (no runs so far)",
        }
    try:
        history = await AsyncHistory.open(path)
    except HistoryError as exc:
        return {"state": FAIL, "path": str(path), "exists": True, "detail": str(exc)}
    try:
        stats = await history.stats()
    finally:
        await history.close()
    detail = (
        f"{plural(stats['runs'], 'run')} ({stats['open_runs']} followed), "
        f"{plural(stats['watches'], 'watch')}, "
        f"schema {stats['schema_version']}"
    )
    return {"state": OK, "path": str(path), "exists": True, "stats": stats, "detail": detail}


async def check_profile(workspace: Any, profile: Any, limit: float) -> dict[str, Any]:
    result: dict[str, Any] = {"name": profile.name, "service": profile.service, "id": str(profile.id)}
    try:
        client = await workspace.client(profile)
        description = await asyncio.wait_for(client.check_connection(), limit)
    except TimeoutError:
        outcome, text = check_outcome(TimedOut(f"no answer within {limit:g}s"))
    except ServiceError as exc:
        outcome, text = check_outcome(exc)
    except Exception as exc:  # e.g. a stored connection that no longer validates
        outcome, text = "failed", f"Failed: {type(exc).__name__}: {exc}"
    else:
        warnings = list(client.config.warnings())
        return {**result, "state": OK, "outcome": "ok", "detail": f"OK: {description}", "warnings": warnings}
    return {**result, "state": FAIL, "outcome": outcome, "detail": text, "warnings": []}


async def _cmd_doctor(args: argparse.Namespace) -> int:
    from runmonitor.app.workspace import Workspace
    from runmonitor.storage.paths import app_paths

    paths = app_paths()
    tray_task = asyncio.create_task(check_tray())
    notify_task = asyncio.create_task(check_notifications())
    workspace = await Workspace.open(paths)
    try:
        settings = workspace.settings
        keyring_task = asyncio.create_task(check_keyring(settings.secret_storage))
        profile_checks = [check_profile(workspace, p, args.timeout) for p in settings.profiles]
        profiles = list(await asyncio.gather(*profile_checks))
        files = await asyncio.to_thread(_look_at_files, paths)
        notices = [f"{n.level}: {n.text}" for n in workspace.notices if n.topic == "settings"]
        settings_file = {
            "state": WARN if notices else OK,
            "path": str(files["settings"]),
            "exists": files["settings_exists"],
            "profiles": len(settings.profiles),
            "notices": notices,
            "detail": "; ".join(notices) or plural(len(settings.profiles), "profile"),
        }
        history_file = await check_history(paths.history_path, files["history_exists"])
        log_state = {
            "state": INFO,
            "path": str(files["log"]),
            "exists": files["log_exists"],
            "detail": "written" if files["log_exists"] else "not written yet",
        }
        keyring_report, notifications, tray = await asyncio.gather(keyring_task, notify_task, tray_task)
    finally:
        await workspace.aclose()
        for task in (tray_task, notify_task):
            if not task.done():
                task.cancel()
    report: dict[str, Any] = {
        "version": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "keyring": keyring_report,
        "notifications": notifications,
        "tray": tray,
        "paths": files["folders"],
        "files": {"settings": settings_file, "history": history_file, "log": log_state},
        "profiles": profiles,
    }
    problems = _problems(report)
    report["problems"] = problems
    report["ok"] = not problems
    if args.json_output:
        say_json(report, indent=2)
    else:
        _print_report(report)
    return EXIT_OK if not problems else EXIT_RUN_FAILED


def _problems(report: dict[str, Any]) -> list[str]:
    problems = []
    if report["keyring"]["state"] == FAIL:
        problems.append(f"keyring: {report['keyring']['detail']}")
    for name, item in report["paths"].items():
        if item["state"] == FAIL:
            problems.append(f"{name} folder {item['path']}: {item['detail']}")
    for name, item in report["files"].items():
        if item["state"] == FAIL:
            problems.append(f"{name} file {item['path']}: {item['detail']}")
    for item in report["profiles"]:
        if item["state"] == FAIL:
            problems.append(f"profile {item['name']} ({item['service']}): {item['detail']}")
    return problems


def _print_report(report: dict[str, Any]) -> None:
    def row(item: dict[str, Any], label: str, text: str | None = None) -> None:
        say(f"  {_state_mark(item['state'])}  {label:<18} {text if text is not None else item['detail']}")

    say(f"RunMonitor {report['version']} on Python {report['python']}, {report['platform']}")
    say("Desktop")
    row(report["keyring"], "keyring")
    row(report["notifications"], "notifications")
    row(report["tray"], "system tray")
    say("Folders")
    for name, item in report["paths"].items():
        row(item, name, f"{item['path']} ({item['detail']})")
    say("Files")
    for name, item in report["files"].items():
        row(item, name, f"{item['path']} ({item['detail']})")
    say("Profiles")
    if not report["profiles"]:
        say("        (none yet: runmonitor profiles add SERVICE --name NAME --conn base_url=…)")
    for item in report["profiles"]:
        row(item, f"{item['name']} ({item['service']})")
        for warning in item.get("warnings", []):
            say(f"        warning: {warning}")
    if report["problems"]:
        say(f"{plural(len(report['problems']), 'problem')} found.")
    else:
        say("Everything RunMonitor needs works.")


def add_parser(sub: Any) -> None:
    doctor = sub.add_parser(
        "doctor",
        help="check the keyring, notifications, tray, folders and every profile's connection",
        description="Report what works here: the keyring, desktop notifications, the system tray, "
        "RunMonitor's folders and files, and whether each profile can reach and sign in to its "
        "service.",
        epilog="Exit codes: 0 everything needed works; 1 something needed is broken (a profile that "
        "cannot connect or sign in, a folder that cannot be written, an unusable history, or no "
        "working keyring while secrets are to be kept in it). Notifications and the tray are "
        "reported but not needed.",
    )
    doctor.add_argument("--json", dest="json_output", action="store_true", help="print one JSON document")
    doctor.add_argument(
        "--timeout",
        type=positive_float,
        default=5.0,
        metavar="S",
        help="seconds each profile's connection check may take (default 5)",
    )
    doctor.set_defaults(handler=_cmd_doctor)
