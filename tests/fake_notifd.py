"""A test-owned notification server on a private D-Bus bus.

``PrivateBus`` starts its own ``dbus-daemon`` from a minimal session configuration (no
service directories, so nothing on this machine can be activated on it, and the caller's
own session bus is never touched). ``serve_fake`` exports a :class:`FakeNotificationServer`
on such a bus under ``org.freedesktop.Notifications``. The fake speaks the freedesktop
notification protocol (GetCapabilities, GetServerInformation, Notify, CloseNotification and
the NotificationClosed / ActionInvoked signals), records every call, and can act as if the
user clicked a notification.

    with PrivateBus() as bus:
        async with serve_fake(bus.address) as server:
            ...  # point DBUS_SESSION_BUS_ADDRESS at bus.address, send, inspect server.notifications
"""

from __future__ import annotations

import asyncio
import os
import selectors
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from dbus_fast import Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusDict, DBusInt32, DBusSignature, DBusStr, DBusUInt32
from dbus_fast.constants import ErrorType, RequestNameReply
from dbus_fast.errors import DBusError
from dbus_fast.service import ServiceInterface, dbus_method, dbus_signal

NAME = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"

DBusStrings = Annotated[list[str], DBusSignature("as")]
ServerInformation = Annotated[list[str], DBusSignature("ssss")]
ClosedArgs = Annotated[list[int], DBusSignature("uu")]
ActionArgs = Annotated[list[Any], DBusSignature("us")]
NoReply = Annotated[None, DBusSignature("")]  # a plain "-> None" is read as a missing signature

DEFAULT_CAPABILITIES = ("actions", "body", "body-hyperlinks", "icon-static", "persistence")
CLOSED_EXPIRED, CLOSED_DISMISSED, CLOSED_BY_CALL = 1, 2, 3

_SESSION_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def dbus_daemon() -> str | None:
    """Path of the dbus-daemon program, or None when it is not installed."""
    return shutil.which("dbus-daemon")


class PrivateBus:
    """A session-type D-Bus daemon of our own, on a socket in a fresh temporary folder."""

    def __init__(self, start_timeout: float = 10.0) -> None:
        self.start_timeout = start_timeout
        self.address = ""
        self._folder: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PrivateBus:
        program = dbus_daemon()
        if program is None:
            raise FileNotFoundError("dbus-daemon is not installed")
        # A short folder under the system temp dir: unix socket paths are limited to ~108 bytes.
        self._folder = Path(tempfile.mkdtemp(prefix="rm-dbus-"))
        config = self._folder / "session.conf"
        config.write_text(_SESSION_CONFIG.format(socket=self._folder / "bus"), encoding="utf-8")
        log = (self._folder / "daemon.log").open("wb")
        try:
            self._process = subprocess.Popen(
                [program, f"--config-file={config}", "--nofork", "--print-address=1"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        finally:
            log.close()
        try:
            self.address = self._read_address()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _read_address(self) -> str:
        assert self._process is not None and self._process.stdout is not None
        deadline = time.monotonic() + self.start_timeout
        buffer = b""
        with selectors.DefaultSelector() as selector:
            selector.register(self._process.stdout, selectors.EVENT_READ)
            while b"\n" not in buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    raise TimeoutError(f"dbus-daemon printed no address within {self.start_timeout:g} s")
                chunk = os.read(self._process.stdout.fileno(), 4096)
                if not chunk:
                    raise RuntimeError(f"dbus-daemon exited early: {self.log_text()}")
                buffer += chunk
        return buffer.split(b"\n", 1)[0].decode().strip()

    def log_text(self) -> str:
        path = self._folder / "daemon.log" if self._folder else None
        return path.read_text(errors="replace") if path and path.exists() else ""

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


@dataclass
class Received:
    """One Notify call as the server saw it."""

    id: int
    app_name: str
    replaces_id: int
    app_icon: str
    summary: str
    body: str
    actions: list[str]
    hints: dict[str, Any]
    expire_timeout: int

    @property
    def urgency(self) -> int | None:
        value = self.hints.get("urgency")
        return int(value) if value is not None else None


@dataclass
class FakeState:
    notifications: list[Received] = field(default_factory=list)
    open_ids: set[int] = field(default_factory=set)
    close_calls: list[int] = field(default_factory=list)
    next_id: int = 1


class FakeNotificationServer(ServiceInterface):
    """``org.freedesktop.Notifications`` that records instead of drawing.

    ``notify_delay`` makes Notify answer late (or, with a large value, practically never);
    ``refuse`` makes it answer with a D-Bus error.
    """

    def __init__(
        self,
        capabilities: tuple[str, ...] = DEFAULT_CAPABILITIES,
        *,
        server_name: str = "fake-notifd",
        version: str = "1.0",
        notify_delay: float = 0.0,
        refuse: bool = False,
    ) -> None:
        super().__init__(NAME)
        self.capabilities = list(capabilities)
        self.server_name = server_name
        self.version = version
        self.notify_delay = notify_delay
        self.refuse = refuse
        self.state = FakeState()

    @property
    def notifications(self) -> list[Received]:
        return self.state.notifications

    @dbus_method()
    def GetCapabilities(self) -> DBusStrings:
        return list(self.capabilities)

    @dbus_method()
    def GetServerInformation(self) -> ServerInformation:
        return [self.server_name, "RunMonitor tests", self.version, "1.2"]

    @dbus_method()
    async def Notify(
        self,
        app_name: DBusStr,
        replaces_id: DBusUInt32,
        app_icon: DBusStr,
        summary: DBusStr,
        body: DBusStr,
        actions: DBusStrings,
        hints: DBusDict,
        expire_timeout: DBusInt32,
    ) -> DBusUInt32:
        if self.notify_delay:
            await asyncio.sleep(self.notify_delay)
        if self.refuse:
            raise DBusError(ErrorType.FAILED, "notifications are paused")
        if replaces_id and replaces_id in self.state.open_ids:
            nid = replaces_id
        else:
            nid = self.state.next_id
            self.state.next_id += 1
        plain_hints = {
            key: value.value if isinstance(value, Variant) else value for key, value in hints.items()
        }
        self.state.notifications.append(
            Received(
                nid,
                app_name,
                replaces_id,
                app_icon,
                summary,
                body,
                list(actions),
                plain_hints,
                expire_timeout,
            )
        )
        self.state.open_ids.add(nid)
        return nid

    @dbus_method()
    def CloseNotification(self, id: DBusUInt32) -> NoReply:
        self.state.close_calls.append(id)
        if id in self.state.open_ids:
            self.state.open_ids.discard(id)
            self.NotificationClosed(id, CLOSED_BY_CALL)

    @dbus_signal()
    def NotificationClosed(self, id: int, reason: int) -> ClosedArgs:
        return [id, reason]

    @dbus_signal()
    def ActionInvoked(self, id: int, action_key: str) -> ActionArgs:
        return [id, action_key]

    def click(self, nid: int, action_key: str = "default") -> None:
        """What a server does when the user clicks the notification: invoke, then close it."""
        self.ActionInvoked(nid, action_key)
        if nid in self.state.open_ids:
            self.state.open_ids.discard(nid)
            self.NotificationClosed(nid, CLOSED_DISMISSED)


@asynccontextmanager
async def serve_fake(
    address: str, server: FakeNotificationServer | None = None
) -> AsyncIterator[FakeNotificationServer]:
    """Export ``server`` (a default fake if None) as the notification server on ``address``."""
    fake = server if server is not None else FakeNotificationServer()
    bus = await asyncio.wait_for(MessageBus(bus_address=address).connect(), 5)
    try:
        bus.export(PATH, fake)
        reply = await asyncio.wait_for(bus.request_name(NAME), 5)
        if reply is not RequestNameReply.PRIMARY_OWNER:
            raise RuntimeError(f"could not own {NAME} on the private bus: {reply}")
        yield fake
    finally:
        bus.disconnect()
        try:
            await asyncio.wait_for(bus.wait_for_disconnect(), 2)  # type: ignore[no-untyped-call]
        except Exception:  # the daemon may already be gone; nothing to release then
            pass
