"""The ``runmonitor`` command line. Imports no Qt (only the window, ``runmonitor`` alone, does).

The subcommands live here and in ``profiles`` (``profiles``), ``runs`` (``run``,
``runs``, ``watch``) and ``doctor`` (``doctor``).

Exit codes (documented in README):
  0    success (the run succeeded, or the command did what it was asked)
  1    the run failed or was cancelled; ``doctor`` found something broken
  2    bad input (a field, a file, an option, an unknown or ambiguous name or id)
  3    authentication or connection failure
  4    timed out waiting (``--wait --timeout``, ``watch --until-idle --timeout``)
  130  interrupted (Ctrl+C) while waiting; ``watch`` stops with 0 instead
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from runmonitor import __version__
from runmonitor.domain.errors import (
    AuthFailed,
    ConnectionFailed,
    Forbidden,
    InvalidRequest,
    NotFound,
    RateLimited,
    RunMonitorError,
    ServiceError,
    TimedOut,
)
from runmonitor.domain.models import RunRef, RunSnapshot
from runmonitor.services import get, registry

EXIT_OK, EXIT_RUN_FAILED, EXIT_BAD_INPUT, EXIT_AUTH_OR_CONNECTION, EXIT_TIMEOUT = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130
SECRET_ENV_PREFIX = "RUNMONITOR_SECRET_"


class UsageError(RunMonitorError):
    """Bad input on the command line: printed without a traceback, exit code 2."""


def _err(message: str) -> None:
    Progress.clear_current()
    print(f"runmonitor: {message}", file=sys.stderr, flush=True)


def say(text: str = "") -> None:
    """A line on stdout (the output scripts read); a progress line is cleared first."""
    Progress.clear_current()
    print(text, flush=True)
    Progress.redraw_current()


def note(text: str) -> None:
    """A line for people on stderr (never part of the output scripts parse)."""
    Progress.clear_current()
    print(text, file=sys.stderr, flush=True)
    Progress.redraw_current()


def format_elapsed(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """One updating line on stderr while a command waits: the elapsed time and the current status.

    Only when stderr is a terminal; otherwise it writes nothing at all. Lines printed with
    :func:`say` and :func:`note` clear it first and draw it again after, so it never mixes
    with real output. Use as ``async with Progress("waiting") as progress: progress.set(...)``.
    """

    _current: Progress | None = None
    INTERVAL = 0.5

    def __init__(self, status: str = "", *, stream: Any = None, enabled: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.status = status
        self.started = time.monotonic()
        self._shown = False
        self._active = False
        self._task: asyncio.Task[None] | None = None

    def set(self, status: str) -> None:
        self.status = status
        self.draw()

    def draw(self) -> None:
        """Show the line (only while waiting: inside ``async with``)."""
        if not (self.enabled and self._active):
            return
        import shutil

        width = max(20, shutil.get_terminal_size((80, 24)).columns - 1)
        text = f"[{format_elapsed(time.monotonic() - self.started)}] {self.status}"
        if len(text) > width:
            text = text[: width - 1] + "…"
        self.stream.write(f"\r\x1b[K{text}")
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self.enabled and self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False

    @classmethod
    def clear_current(cls) -> None:
        if cls._current is not None:
            cls._current.clear()

    @classmethod
    def redraw_current(cls) -> None:
        if cls._current is not None:
            cls._current.draw()

    async def _tick(self) -> None:
        while True:
            self.draw()
            await asyncio.sleep(self.INTERVAL)

    async def __aenter__(self) -> Progress:
        self.started = time.monotonic()
        self._active = True
        Progress._current = self
        if self.enabled:
            self._task = asyncio.create_task(self._tick(), name="runmonitor-progress")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.clear()
        self._active = False
        if Progress._current is self:
            Progress._current = None


def positive_float(text: str) -> float:
    """An argparse type: a number of seconds greater than zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number of seconds greater than 0")
    return value


def format_validation_error(error: ValidationError, *, prefix: str = "") -> str:
    lines = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "(input)"
        lines.append(f"  {prefix}{location}: {item['msg']}")
    return "\n".join(lines)


def parse_assignments(pairs: Sequence[str], *, option: str) -> dict[str, Any]:
    """``key=value`` pairs into a dict.

    Values stay text (the request model converts "5" or "true" where a field wants a
    number or a flag); a value starting with ``{`` or ``[`` is read as JSON. Dotted
    keys build nested objects (``input.branch=main``).
    """
    result: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"{option} {pair!r}: expected key=value")
        key, raw = pair.split("=", 1)
        key = key.strip()
        if not key:
            raise UsageError(f"{option} {pair!r}: the key is empty")
        value: Any = raw
        if raw.lstrip().startswith(("{", "[")):
            try:
                value = json.loads(raw)
            except ValueError as exc:
                raise UsageError(
                    f"{option} {key}: the value looks like JSON but is not valid: {exc}"
                ) from None
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise UsageError(f"{option} {pair!r}: {part} is both a value and an object")
            node = child
        node[parts[-1]] = value
    return result


def _load_json_file(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} must hold a JSON object")
    return data


async def _simulator_demo(sim_url: str, service: str) -> dict[str, Any]:
    import httpx

    try:
        async with httpx.AsyncClient(base_url=sim_url.rstrip("/"), timeout=5.0) as http:
            answer = await http.get(f"/_sim/demo/{service}")
    except httpx.HTTPError as exc:
        raise ConnectionFailed(
            f"no simulator answered at {sim_url} ({exc})", may_have_reached_service=False
        ) from None
    if answer.status_code != 200:
        raise UsageError(f"the simulator at {sim_url} does not simulate {service}")
    return dict(answer.json())


async def _client_from_args(args: argparse.Namespace) -> tuple[Any, dict[str, Any]] | int:
    """The service client for ``--profile`` or ``--sim``/``--conn``, and default request values.

    Returns an exit code instead when the input is bad (the message is already printed).
    """
    service = get(args.service)
    if getattr(args, "profile", None):
        workspace = await _open_workspace()
        profile = workspace.profile(args.profile)
        if profile.service != service.key:
            raise UsageError(f"profile {profile.name!r} is a {profile.service} profile, not {service.key}")
        client = await workspace.client(profile)
        return client, {}
    values, defaults = await _connection_values(args)
    try:
        config = service.config_model.model_validate(values)
    except ValidationError as exc:
        _err(f"the {service.display_name} connection is not valid:\n{format_validation_error(exc)}")
        return EXIT_BAD_INPUT
    return service(config), defaults


async def _open_workspace() -> Any:
    from runmonitor.app.workspace import Workspace

    workspace = await Workspace.open()
    for notice in workspace.notices:
        _err(f"{notice.level}: {notice.text}")
    return workspace


async def _connection_values(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """(connection values, default request values) from --sim or --conn and the environment."""
    service = get(args.service)
    defaults: dict[str, Any] = {}
    values: dict[str, Any] = {}
    if args.sim:
        demo = await _simulator_demo(args.sim, args.service)
        values, defaults = dict(demo["connection"]), dict(demo["request"])
    conn = parse_assignments(args.conn or [], option="--conn")
    secret_names = set(service.config_model.secret_field_names())
    for name in conn:
        if name in secret_names:
            raise UsageError(
                f"--conn {name}=… would put a secret on the command line (visible to other users "
                f"in the process list); set {SECRET_ENV_PREFIX}{name.upper()} in the environment instead"
            )
    values.update(conn)
    for name in secret_names:
        env = os.environ.get(f"{SECRET_ENV_PREFIX}{name.upper()}")
        if env:
            values[name] = env
    return values, defaults


def _describe(snapshot: RunSnapshot) -> str:
    vendor = f" ({snapshot.vendor_status})" if snapshot.vendor_status else ""
    detail = f" - {snapshot.detail}" if snapshot.detail else ""
    message = f": {snapshot.message}" if snapshot.message else ""
    return f"{snapshot.status.value}{vendor}{detail}{message}"


def _snapshot_json(snapshot: RunSnapshot) -> str:
    return snapshot.model_dump_json(exclude={"raw"})


async def follow_until_done(
    client: Any,
    ref: RunRef,
    *,
    first: RunSnapshot | None,
    poll: float,
    give_up_after: float | None,
    emit: Any,
) -> RunSnapshot:
    """Poll one run until it is terminal. Transient errors back off; auth errors end it."""
    started = time.monotonic()
    last = first
    delay = poll
    while last is None or not last.terminal:
        if give_up_after is not None and time.monotonic() - started > give_up_after:
            raise TimeoutError
        try:
            snapshot = await client.get_status(ref)
        except (AuthFailed, Forbidden):
            raise
        except RateLimited as exc:
            delay = max(poll, exc.retry_after or poll * 2)
            emit(None, f"rate limited; waiting {delay:.0f}s")
        except ServiceError as exc:
            delay = min(max(delay * 2, poll), 60.0)
            emit(None, f"{exc}; retrying in {delay:.0f}s")
        else:
            delay = poll
            if not snapshot.same_state(last):
                emit(snapshot, None)
            last = snapshot
            if snapshot.terminal:
                break
        await asyncio.sleep(delay)
    return last


def build_request(service: Any, args: argparse.Namespace, defaults: dict[str, Any]) -> Any:
    """The create request from ``--json FILE`` and ``--param``s, validated by the service's
    request model (the one the window's form uses). Returns an exit code when it is not valid."""
    request_values = dict(defaults)
    if args.json:
        request_values.update(_load_json_file(args.json))
    request_values.update(parse_assignments(args.param or [], option="--param"))
    try:
        return service.request_model.model_validate(request_values)
    except ValidationError as exc:
        _err(f"the run request is not valid:\n{format_validation_error(exc)}")
        return EXIT_BAD_INPUT


async def _cmd_run_create(args: argparse.Namespace) -> int:
    """``run create`` with ``--sim`` or ``--conn``: straight to the service, no history."""
    service = get(args.service)
    built = await _client_from_args(args)
    if isinstance(built, int):
        return built
    client, defaults = built
    request = build_request(service, args, defaults)
    if isinstance(request, int):
        await client.aclose()
        return request

    progress = Progress()

    def emit(snapshot: RunSnapshot | None, text: str | None) -> None:
        stamp = datetime.now().strftime("%H:%M:%S")
        if snapshot is None:
            note(f"{stamp} {text}")
            return
        progress.set(f"{snapshot.status.value} ({snapshot.vendor_status or '-'}), run {snapshot.ref.run_id}")
        if args.json_output:
            say(_snapshot_json(snapshot))
        else:
            ref = snapshot.ref
            say(f"{stamp} {service.key} {ref.target} run {ref.run_id}: {_describe(snapshot)}")

    async with client:
        first = await client.create_run(request)
        emit(first, None)
        if not args.wait:
            return EXIT_OK
        try:
            async with progress:
                progress.set(f"{first.status.value} ({first.vendor_status or '-'}), run {first.ref.run_id}")
                last = await follow_until_done(
                    client,
                    first.ref,
                    first=first,
                    poll=args.poll or 2.0,
                    give_up_after=args.timeout,
                    emit=emit,
                )
        except TimeoutError:
            _err(f"run {first.ref.run_id} did not finish within {args.timeout:g}s")
            return EXIT_TIMEOUT
    return EXIT_OK if last.status.value == "SUCCEEDED" else EXIT_RUN_FAILED


async def _cmd_run_status(args: argparse.Namespace) -> int:
    """``run status SERVICE --target T --run-id R``: ask the service directly."""
    service = get(args.service)
    built = await _client_from_args(args)
    if isinstance(built, int):
        return built
    client, _ = built
    extra = parse_assignments(args.extra or [], option="--extra")
    ref = RunRef(
        service=service.key,
        target=args.target,
        run_id=args.run_id,
        extra={k: str(v) for k, v in extra.items()},
    )
    async with client:
        snapshot = await client.get_status(ref)
    print(_snapshot_json(snapshot) if args.json_output else _describe(snapshot))
    return EXIT_OK


def _cmd_services(args: argparse.Namespace) -> int:
    described = [cls.describe() for cls in registry().values()]
    if args.json_output:
        print(json.dumps(described, indent=2))
        return EXIT_OK
    for item in described:
        caps = ", ".join(item["capabilities"]) or "create and follow"
        actions = ", ".join(item["actions"]) or "none"
        print(
            f"{item['key']:<11} {item['name']} ({item['vendor']}); follows a {item['target'].lower()}; "
            f"capabilities: {caps}; actions: {actions}"
        )
    return EXIT_OK


def _cmd_simulate(args: argparse.Namespace) -> int:
    from runmonitor.simulator import Simulator
    from runmonitor.simulator.server import discover_sims

    sims = discover_sims()
    overrides: dict[str, dict[str, str]] = {key: {} for key in sims}
    if args.require_auth:
        for key, cls in sims.items():
            overrides[key].update(cls.auth_required_credentials())
    for item in args.option or []:
        name, _, value = item.partition("=")
        service, _, knob = name.partition(".")
        if not value or not knob or service not in sims:
            raise UsageError(f"--option {item!r}: expected SERVICE.NAME=VALUE with a known service")
        overrides[service][knob] = value
    try:
        sim = Simulator(
            args.host,
            args.port,
            seed=args.seed,
            time_scale=args.time_scale,
            duration_scale=args.duration_scale,
            credentials=overrides,
        )
        sim.start()
    except OSError as exc:
        _err(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
        return EXIT_BAD_INPUT
    print(
        f"RunMonitor simulator {__version__} on {sim.root_url} (seed {args.seed}, time x{args.time_scale:g})"
    )
    for key in sim.sims:
        print(f"  {key:<11} {sim.base_url(key)}")
    print(f"Demo connection and request values: GET {sim.root_url}/_sim/demo/<service>")
    print("Press Ctrl+C to stop.", flush=True)
    stop = {"now": False}

    def on_signal(signum: int, frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    try:
        while not stop["now"]:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return EXIT_OK


async def run_console_demo(*, time_scale: float = 8.0, give_up_after: float = 120.0, seed: int = 7) -> int:
    """Start the embedded simulator and follow one run on every service, printing transitions."""
    from runmonitor.simulator import Simulator

    with Simulator(seed=seed, time_scale=time_scale) as sim:
        print(f"Embedded simulator on {sim.root_url}; starting one run on each service.", flush=True)

        async def one(key: str) -> RunSnapshot:
            cls = get(key)
            config = cls.config_model.model_validate(sim.demo_connection(key))
            request = cls.request_model.model_validate(sim.demo_request(key))

            def emit(snapshot: RunSnapshot | None, note: str | None) -> None:
                stamp = datetime.now().strftime("%H:%M:%S")
                text = note if snapshot is None else _describe(snapshot)
                target = request.target()
                print(f"{stamp}  {cls.display_name:<24} {target[:28]:<28} {text}", flush=True)

            async with cls(config) as client:
                first = await client.create_run(request)
                emit(first, None)
                return await follow_until_done(
                    client, first.ref, first=first, poll=0.5, give_up_after=give_up_after, emit=emit
                )

        results = await asyncio.gather(*(one(key) for key in sim.sims), return_exceptions=True)
    failures = 0
    print()
    for key, result in zip(sim.sims, results, strict=True):
        if isinstance(result, BaseException):
            failures += 1
            print(f"  {key:<11} error: {result}")
        else:
            print(f"  {key:<11} {result.status.value} ({result.vendor_status})")
    return EXIT_OK if failures == 0 else EXIT_RUN_FAILED


def _display_available() -> bool:
    """Whether Qt can open a window here (Windows and macOS always can)."""
    if sys.platform in ("win32", "darwin"):
        return True
    if os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runmonitor",
        description="Start and watch runs on Cognite, Marquez, InVision, Connhex and Code Stream.",
        epilog="Exit codes: 0 ok, 1 run failed or cancelled (doctor: something is broken), "
        "2 bad input, 3 auth or connection failure, 4 timed out, 130 interrupted. "
        "Every command has --help.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="open the window on the embedded simulator, with a demo profile for every service",
    )
    parser.add_argument(
        "--console",
        action="store_true",
        help="with --demo: no window; follow one run per service in the terminal",
    )
    parser.add_argument("--screenshot", metavar="FILE", help="save a PNG of the window, then quit")
    parser.add_argument(
        "--after", type=float, default=8.0, metavar="SECONDS", help="with --screenshot: wait this long first"
    )
    parser.add_argument(
        "--tab", metavar="SERVICE", help="open on this tab (a service key, or 'all'), e.g. for screenshots"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    services = sub.add_parser("services", help="list the supported services and what each can do")
    services.add_argument("--json", dest="json_output", action="store_true", help="print JSON")
    services.set_defaults(handler=_cmd_services)

    from runmonitor.cli import profiles as cli_profiles

    cli_profiles.add_parser(sub)

    simulate = sub.add_parser("simulate", help="serve the five simulated APIs on loopback")
    simulate.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    simulate.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    simulate.add_argument("--seed", type=int, default=1, help="random seed for run outcomes (default 1)")
    simulate.add_argument(
        "--time-scale", type=float, default=1.0, help="simulated seconds per real second (default 1)"
    )
    simulate.add_argument(
        "--duration-scale", type=float, default=1.0, help="stretch every run's duration (default 1)"
    )
    simulate.add_argument(
        "--require-auth",
        action="store_true",
        help="also require credentials where they are optional (Marquez)",
    )
    simulate.add_argument(
        "--option",
        action="append",
        metavar="SERVICE.NAME=VALUE",
        help="a simulator knob or credential, e.g. connhex.max_queued_exports=100 (repeatable)",
    )
    simulate.set_defaults(handler=_cmd_simulate)

    from runmonitor.cli import doctor as cli_doctor
    from runmonitor.cli import runs as cli_runs

    cli_runs.add_parsers(sub)
    cli_doctor.add_parser(sub)
    return parser


def _prefixed(prefix: str, exc: BaseException | str | None) -> str:
    """``prefix: message``, without saying the prefix twice when the message starts with it."""
    text = str(exc or "").strip()
    if not text:
        return prefix
    if text.lower().startswith(prefix.lower()):
        text = text[len(prefix) :].lstrip(" :")
    return f"{prefix}: {text}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        handler = getattr(args, "handler", None)
        if handler is None:
            if args.demo and (args.console or not _display_available()):
                if not args.console:
                    _err("no display found: following the demo runs in the terminal instead")
                return asyncio.run(run_console_demo())
            if not _display_available():
                _err(
                    "no display found for the window (set DISPLAY, or QT_QPA_PLATFORM=offscreen for "
                    "screenshots); the commands work without one: runmonitor --help"
                )
                return EXIT_BAD_INPUT
            from runmonitor.ui.app import run_gui

            screenshot = Path(args.screenshot) if args.screenshot else None
            return run_gui(demo=args.demo, screenshot=screenshot, after=args.after, tab=args.tab)
        if asyncio.iscoroutinefunction(handler):
            return int(asyncio.run(handler(args)))
        return int(handler(args))
    except UsageError as exc:
        _err(str(exc))
        return EXIT_BAD_INPUT
    except KeyError as exc:  # an unknown profile name or id
        _err(str(exc.args[0]) if exc.args else "not found")
        return EXIT_BAD_INPUT
    except (AuthFailed, Forbidden) as exc:
        _err(_prefixed("sign-in needed", exc))
        return EXIT_AUTH_OR_CONNECTION
    except (ConnectionFailed, TimedOut) as exc:
        _err(_prefixed("cannot reach the service", exc))
        return EXIT_AUTH_OR_CONNECTION
    except BrokenPipeError:  # the reader went away (``| head``): nothing more to say
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_RUN_FAILED
    except (InvalidRequest, NotFound) as exc:  # the service refused what it was given
        _err(f"the service refused the request: {exc}")
        return EXIT_BAD_INPUT
    except ServiceError as exc:
        _err(str(exc))
        return EXIT_RUN_FAILED
    except OSError as exc:  # a file that cannot be read or written
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        _err(f"cannot use{where}: {exc.strerror or exc}")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        Progress.clear_current()
        return EXIT_INTERRUPTED
    except Exception as exc:
        # Settings, keyring and history problems carry a message meant for people.
        from runmonitor.domain.redact import secret_registry
        from runmonitor.storage.history import HistoryError
        from runmonitor.storage.secrets import SecretStoreError
        from runmonitor.storage.settings.store import SettingsError

        if isinstance(exc, (SettingsError, SecretStoreError, HistoryError)):
            _err(str(exc))
            return EXIT_RUN_FAILED
        if os.environ.get("RUNMONITOR_DEBUG", "") not in ("", "0"):
            raise
        # A bug: one line, not a traceback (RUNMONITOR_DEBUG=1 shows it).
        _err(
            f"internal error: {type(exc).__name__}: {secret_registry.scrub(str(exc))} "
            "(run again with RUNMONITOR_DEBUG=1 for the details)"
        )
        return EXIT_RUN_FAILED


if __name__ == "__main__":
    sys.exit(main())
