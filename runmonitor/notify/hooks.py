"""The per-event hook: run a command of the person's choosing when something happens to a run.

The command is one program and its arguments, split like a POSIX shell would split them
(:func:`shlex.split`) but never run through a shell: no pipes, globs, redirections or
variable expansion, so a run's data can never become part of a command line. What happened
is passed in environment variables instead:

=========================== =====================================================================
``RUNMONITOR_EVENT``        the event kind (``failed``, ``succeeded``…; ``fixed``, ``coalesced``)
``RUNMONITOR_SERVICE``      the service key (``marquez``…)
``RUNMONITOR_PROFILE``      the profile's name (``RUNMONITOR_PROFILE_ID``: its id)
``RUNMONITOR_RUN_ID``       the run's id on the service (``RUNMONITOR_HISTORY_ID``: RunMonitor's)
``RUNMONITOR_TARGET``       the pipeline, job, data flow or export the run belongs to
``RUNMONITOR_STATUS``       the common status (``FAILED``…), ``RUNMONITOR_VENDOR_STATUS`` the vendor's
``RUNMONITOR_MESSAGE``      the run's or event's message (cleaned, at most 1,000 characters)
``RUNMONITOR_URL``          the run in the vendor's UI, when known
``RUNMONITOR_TITLE``        the notification's title, ``RUNMONITOR_BODY`` its text
``RUNMONITOR_COUNT``        how many events a notification carries (1 for an event)
=========================== =====================================================================

The rest of the environment is inherited, except every ``RUNMONITOR_*`` variable of
RunMonitor's own environment (``RUNMONITOR_SECRET_*`` included): no secret is ever passed.
Run-specific variables are empty when the subject is not about a run. For a notification
about several runs, they describe the first.

A hook never raises into the caller: a missing program, a non-zero exit or a timeout come
back in the :class:`HookResult`. Output (stdout and stderr together) is kept up to
``MAX_OUTPUT`` bytes. A hook that outlives its timeout is killed with its whole process group.
:class:`HookRunner` bounds how many hooks run at once and how many may wait, so a flood of
events cannot start a flood of processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass
from typing import Final

from runmonitor.domain.redact import redact_url
from runmonitor.engine import RunEvent
from runmonitor.notify.notification import Notification
from runmonitor.notify.wording import describe_event, plain_text
from runmonitor.storage.settings.model import HOOK_KINDS, HookConfig

log = logging.getLogger(__name__)

__all__ = [
    "HOOK_KINDS",
    "MAX_OUTPUT",
    "HookConfig",
    "HookResult",
    "HookRunner",
    "hook_env",
    "run_hook",
]

MAX_OUTPUT: Final = 64 * 1024
"""Bytes of a hook's output that are kept."""
MESSAGE_LIMIT: Final = 1000
"""Characters of a message passed in ``RUNMONITOR_MESSAGE``."""
DRAIN_GRACE: Final = 1.0
"""Seconds to keep reading output after the hook exited (a child it left may hold the pipe)."""
ENV_PREFIX: Final = "RUNMONITOR_"
_POSIX = os.name == "posix"


@dataclass(frozen=True)
class HookResult:
    """How one hook went. ``ok`` only when it ran and exited with status 0 in time."""

    program: str
    ok: bool
    returncode: int | None = None
    output: str = ""
    output_truncated: bool = False
    timed_out: bool = False
    skipped: bool = False
    error: str | None = None
    seconds: float = 0.0

    def describe(self) -> str:
        """One line for a log or the diagnostics view."""
        if self.ok:
            return f"{self.program}: done"
        if self.skipped or self.returncode is None:
            return f"{self.program}: {self.error}"
        return f"{self.program}: {self.error or f'exit status {self.returncode}'}"


def hook_env(
    subject: RunEvent | Notification, *, profile_name: str | None = None, url: str | None = None
) -> dict[str, str]:
    """The ``RUNMONITOR_*`` variables for ``subject`` (only those; see the module docstring)."""
    if isinstance(subject, Notification):
        event = next((e for e in subject.events if e.run is not None), None)
        if event is None and subject.events:
            event = subject.events[0]
        name = profile_name or subject.profile_name or subject.profile_id
        title, body = subject.title, subject.body
        kind, count = subject.kind, subject.count
        service, profile_id = subject.service, subject.profile_id
        url = url or subject.url
    else:
        event = subject
        name = profile_name or subject.profile_id
        title, body = describe_event(subject, name)
        kind, count = subject.kind.value, 1
        service, profile_id = subject.service, subject.profile_id
    run = event.run if event is not None else None
    message = (event.message if event is not None else None) or (run.snapshot.message if run else None)
    if message is None and run is not None:
        message = run.snapshot.detail
    if message is None and event is not None and event.intent is not None:
        message = event.intent.error
    target = run.ref.target if run is not None else (event.intent.target if event and event.intent else "")
    env = {
        "RUNMONITOR_EVENT": kind,
        "RUNMONITOR_SERVICE": service,
        "RUNMONITOR_PROFILE": plain_text(name, 200),
        "RUNMONITOR_PROFILE_ID": profile_id,
        "RUNMONITOR_RUN_ID": plain_text(run.ref.run_id, 500) if run else "",
        "RUNMONITOR_HISTORY_ID": str(run.id) if run else "",
        "RUNMONITOR_TARGET": plain_text(target, 500),
        "RUNMONITOR_STATUS": run.status.value if run else "",
        "RUNMONITOR_VENDOR_STATUS": plain_text(run.snapshot.vendor_status or "", 200) if run else "",
        "RUNMONITOR_MESSAGE": plain_text(message or "", MESSAGE_LIMIT),
        "RUNMONITOR_TITLE": title,
        "RUNMONITOR_BODY": body,
        "RUNMONITOR_COUNT": str(count),
    }
    if url:
        env["RUNMONITOR_URL"] = redact_url(url)
    # Environment values cannot hold NUL; titles and bodies are plain text already.
    return {key: value.replace("\x00", "") for key, value in env.items()}


def _child_env(variables: dict[str, str]) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.upper().startswith(ENV_PREFIX)}
    return {**inherited, **variables}


class _Collector(asyncio.SubprocessProtocol):
    """Keeps the first ``cap`` bytes of a hook's output and tells apart the hook exiting from
    its output pipe closing (a child the hook left behind may hold the pipe much longer)."""

    def __init__(self, cap: int) -> None:
        loop = asyncio.get_running_loop()
        self.cap = cap
        self.output = bytearray()
        self.total = 0
        self.exited: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes | bytearray) -> None:
        self.total += len(data)
        room = self.cap - len(self.output)
        if room > 0:
            self.output.extend(data[:room])

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


def _kill(transport: asyncio.SubprocessTransport) -> None:
    """Kill the hook and whatever it started (its process group, on POSIX)."""
    pid = transport.get_pid()
    try:
        if _POSIX:
            os.killpg(pid, signal.SIGKILL)
        elif transport.get_returncode() is None:
            transport.kill()
    except (ProcessLookupError, PermissionError):
        pass


async def run_hook(
    config: HookConfig,
    subject: RunEvent | Notification,
    *,
    profile_name: str | None = None,
    url: str | None = None,
    max_output: int = MAX_OUTPUT,
) -> HookResult:
    """Run ``config.command`` once for ``subject`` and report how it went (never raises,
    except CancelledError, after killing the hook)."""
    started = time.monotonic()
    try:
        argv = config.argv()
        program = os.path.basename(argv[0])
    except (ValueError, IndexError) as exc:  # a model built without validation
        return HookResult(program="?", ok=False, error=f"not a command: {exc}")

    def result(
        *,
        ok: bool,
        error: str | None,
        returncode: int | None = None,
        output: str = "",
        output_truncated: bool = False,
        timed_out: bool = False,
    ) -> HookResult:
        return HookResult(
            program=program,
            ok=ok,
            returncode=returncode,
            output=output,
            output_truncated=output_truncated,
            timed_out=timed_out,
            error=error,
            seconds=time.monotonic() - started,
        )

    env = _child_env(hook_env(subject, profile_name=profile_name, url=url))
    loop = asyncio.get_running_loop()
    try:
        transport, collector = await loop.subprocess_exec(
            lambda: _Collector(max_output),
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            start_new_session=_POSIX,
        )
    except FileNotFoundError:
        return result(ok=False, error=f"program not found: {argv[0]!r}")
    except PermissionError:
        return result(ok=False, error=f"not allowed to run {argv[0]!r} (is it executable?)")
    except OSError as exc:
        return result(ok=False, error=f"could not start {argv[0]!r}: {exc.strerror or exc}")

    timed_out = False
    try:
        try:
            await asyncio.wait_for(asyncio.shield(collector.exited), config.timeout_s)
        except TimeoutError:
            timed_out = True
            _kill(transport)
            await collector.exited
        # The hook is gone; a child it left running may still hold the pipe open.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(collector.closed), DRAIN_GRACE)
    except asyncio.CancelledError:
        _kill(transport)
        raise
    finally:
        transport.close()
    text = collector.output.decode("utf-8", errors="replace")
    truncated = collector.total > len(collector.output) or not collector.closed.done()
    code = transport.get_returncode()
    if timed_out:
        return result(
            ok=False,
            returncode=code,
            output=text,
            output_truncated=truncated,
            timed_out=True,
            error=f"stopped after {config.timeout_s:g} s",
        )
    return result(
        ok=code == 0,
        returncode=code,
        output=text,
        output_truncated=truncated,
        error=None if code == 0 else f"exit status {code}",
    )


class HookRunner:
    """Runs hooks with at most ``max_running`` at once and ``max_waiting`` queued behind them;
    beyond that a hook is skipped (and says so in its result) instead of piling up.

    Create it on the loop that will use it. :meth:`submit` starts a hook in the background and
    logs how it went; :meth:`aclose` stops what is still running.
    """

    def __init__(self, max_running: int = 2, max_waiting: int = 16) -> None:
        if max_running < 1 or max_waiting < 0:
            raise ValueError("max_running must be >= 1 and max_waiting >= 0")
        self.max_running = max_running
        self.max_waiting = max_waiting
        self._slots = asyncio.Semaphore(max_running)
        self._running = 0
        self._waiting = 0
        self._tasks: set[asyncio.Task[HookResult]] = set()
        self.skipped = 0

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return self._waiting

    async def run(
        self,
        config: HookConfig,
        subject: RunEvent | Notification,
        *,
        profile_name: str | None = None,
        url: str | None = None,
    ) -> HookResult:
        if self._running >= self.max_running and self._waiting >= self.max_waiting:
            self.skipped += 1
            try:
                program = config.program
            except (ValueError, IndexError):
                program = "?"
            return HookResult(
                program=program,
                ok=False,
                skipped=True,
                error=f"skipped: {self._running} hooks running and {self._waiting} waiting",
            )
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        self._running += 1
        try:
            return await run_hook(config, subject, profile_name=profile_name, url=url)
        finally:
            self._running -= 1
            self._slots.release()

    def submit(
        self,
        config: HookConfig,
        subject: RunEvent | Notification,
        *,
        profile_name: str | None = None,
        url: str | None = None,
    ) -> asyncio.Task[HookResult]:
        """Run the hook in the background (if ``config`` wants ``subject``'s kind, else a no-op
        that reports it skipped); a failure is logged with the program's name only."""
        task = asyncio.create_task(
            self._run_logged(config, subject, profile_name, url), name="runmonitor-hook"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _run_logged(
        self,
        config: HookConfig,
        subject: RunEvent | Notification,
        profile_name: str | None,
        url: str | None,
    ) -> HookResult:
        if not config.wants(subject):
            return HookResult(
                program=config.program, ok=False, skipped=True, error="not wanted for this event"
            )
        result = await self.run(config, subject, profile_name=profile_name, url=url)
        if result.ok:
            log.debug("hook %s", result.describe())
        else:
            log.warning("hook %s", result.describe())
        return result

    async def aclose(self) -> None:
        """Stop every hook still running or waiting (their processes are killed)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
