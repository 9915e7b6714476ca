"""Where notifications go: the desktop's notification service, or a list in memory.

A channel takes one notice (title, body, urgency, stickiness, a coalescing key) and reports
whether it was delivered. It never raises: a missing session bus, a notification server that
is not running or does not answer, or a library error all come back as ``False`` with a short
human reason in ``last_error``, and the caller falls back to a banner or the tray.

:class:`DesktopChannel` goes through desktop-notifier, which speaks
``org.freedesktop.Notifications`` over D-Bus on Linux, Notification Center on macOS and WinRT
on Windows. On Linux the server is asked who it is and what it can do (with dbus-fast, on a
short timeout) before the first notice, so a failure has a precise reason and a body is
escaped for servers that read markup. :func:`probe_desktop_channel` gives a ready channel
and a one-line description for the diagnostics view, or ``None`` and why not.

Nothing here imports Qt; it runs on any asyncio loop (qasync's included)::

    channel, reason = await probe_desktop_channel()
    if channel is None:
        log.info("desktop notifications off: %s", reason)
    elif not await channel.send(notice, on_click=window.raise_):
        log.info("not shown: %s", channel.last_error)
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
import platform
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.errors import AuthError, InvalidAddressError
from desktop_notifier import Capability, DesktopNotifier, Icon, Urgency

log = logging.getLogger(__name__)

APP_NAME = "RunMonitor"
SEND_TIMEOUT = 5.0
"""Seconds one send may take, server round trips included."""
PROBE_TIMEOUT = 3.0
"""Seconds the questions to the bus and the notification server may take."""
MAX_TRACKED_KEYS = 100
"""How many keys the desktop channel remembers for replacing an earlier notification."""

NOTIFICATIONS_NAME = "org.freedesktop.Notifications"
NOTIFICATIONS_PATH = "/org/freedesktop/Notifications"

_URGENCIES = {"low": Urgency.Low, "normal": Urgency.Normal, "critical": Urgency.Critical}
_ICON_PATH = Path(__file__).resolve().parents[2] / "resources" / "icons" / "runmonitor.svg"


class Notice(Protocol):
    """What a channel needs from a notification (``core.notify.Notification`` fits)."""

    @property
    def key(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def urgency(self) -> str: ...
    @property
    def sticky(self) -> bool: ...
    @property
    def run_ids(self) -> tuple[int, ...]: ...


class Channel(Protocol):
    """One way of showing a notice to the user."""

    name: str

    async def send(self, notice: Notice, on_click: Callable[[], None] | None = None) -> bool:
        """Show ``notice``; True when it was handed over. Never raises."""
        ...

    async def close(self) -> None: ...


class ChannelUnavailable(Exception):
    """The desktop channel cannot deliver; ``str()`` is the reason, fit for a user."""


@dataclass(frozen=True)
class ServerInfo:
    """What a D-Bus notification server says about itself."""

    name: str
    vendor: str
    version: str
    spec_version: str
    capabilities: tuple[str, ...]

    @property
    def body_markup(self) -> bool:
        """The server reads a subset of markup in the body, so ``<`` and ``&`` need escaping."""
        return "body-markup" in self.capabilities

    def describe(self) -> str:
        label = " ".join(part for part in (self.name, self.version) if part) or "unnamed"
        caps = ", ".join(self.capabilities) or "none"
        return f"D-Bus notification server '{label}' (capabilities: {caps})"


def _clean(text: object, limit: int = 60) -> str:
    """A server-supplied string made safe and short for a one-line reason."""
    flat = "".join(ch if ch.isprintable() else " " for ch in str(text)).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _call(member: str, *, signature: str = "", body: Sequence[Any] = (), bus_method: bool = False) -> Message:
    if bus_method:
        return Message(
            destination="org.freedesktop.DBus",
            path="/org/freedesktop/DBus",
            interface="org.freedesktop.DBus",
            member=member,
            signature=signature,
            body=list(body),
        )
    return Message(
        destination=NOTIFICATIONS_NAME,
        path=NOTIFICATIONS_PATH,
        interface=NOTIFICATIONS_NAME,
        member=member,
        signature=signature,
        body=list(body),
    )


async def _ask(bus: MessageBus, message: Message, limit: float, what: str) -> list[Any]:
    try:
        reply = await asyncio.wait_for(bus.call(message), limit)
    except TimeoutError:
        raise ChannelUnavailable(f"{what} did not answer within {limit:g} s") from None
    if reply.message_type is MessageType.ERROR:
        detail = _clean(reply.body[0]) if reply.body else ""
        error = _clean(reply.error_name or "unknown error")
        raise ChannelUnavailable(
            f"{what} answered with an error: {error}" + (f" ({detail})" if detail else "")
        )
    return list(reply.body)


async def _connect_session_bus(limit: float) -> MessageBus:
    unset = "no session D-Bus (DBUS_SESSION_BUS_ADDRESS unset)"
    has_address = bool(os.environ.get("DBUS_SESSION_BUS_ADDRESS"))
    if not has_address and not os.environ.get("DISPLAY"):
        raise ChannelUnavailable(unset)
    try:
        return await asyncio.wait_for(MessageBus().connect(), limit)
    except TimeoutError:
        raise ChannelUnavailable(f"the session D-Bus did not answer within {limit:g} s") from None
    except AuthError as exc:
        raise ChannelUnavailable(f"the session D-Bus refused the connection ({_clean(exc)})") from None
    except (InvalidAddressError, OSError) as exc:
        # Without the variable dbus-fast looks for an X11 session file; its failure says less.
        if not has_address:
            raise ChannelUnavailable(unset) from None
        if isinstance(exc, InvalidAddressError):
            raise ChannelUnavailable(f"the session D-Bus address is not usable ({_clean(exc)})") from None
        detail = exc.strerror or type(exc).__name__
        raise ChannelUnavailable(f"the session D-Bus is not reachable ({_clean(detail)})") from None


async def query_notification_server(limit: float = PROBE_TIMEOUT) -> ServerInfo:
    """Ask the session bus for its notification server; raises :class:`ChannelUnavailable`.

    A server that is not running but can be started by the bus (D-Bus activation, as with
    dunst or mako) counts: asking it for its name starts it.
    """
    bus = await _connect_session_bus(limit)
    try:
        (owned,) = await _ask(
            bus,
            _call("NameHasOwner", signature="s", body=[NOTIFICATIONS_NAME], bus_method=True),
            limit,
            "the session D-Bus",
        )
        if not owned:
            (activatable,) = await _ask(
                bus, _call("ListActivatableNames", bus_method=True), limit, "the session D-Bus"
            )
            if NOTIFICATIONS_NAME not in activatable:
                raise ChannelUnavailable("no notification server on the session bus")
        name, vendor, version, spec = await _ask(
            bus, _call("GetServerInformation"), limit, "the notification server"
        )
        (caps,) = await _ask(bus, _call("GetCapabilities"), limit, "the notification server")
        return ServerInfo(
            name=_clean(name),
            vendor=_clean(vendor),
            version=_clean(version, 30),
            spec_version=_clean(spec, 10),
            capabilities=tuple(_clean(cap, 40) for cap in caps),
        )
    except (OSError, EOFError) as exc:
        detail = _clean(exc) or type(exc).__name__
        raise ChannelUnavailable(f"the session D-Bus connection failed ({detail})") from None
    except (ValueError, TypeError):
        raise ChannelUnavailable("the notification server gave a malformed answer") from None
    finally:
        await _disconnect(bus)


async def _disconnect(bus: MessageBus) -> None:
    """Close a bus connection and wait (briefly) until its socket is released."""
    if not bus.connected:
        return
    bus.disconnect()
    try:
        await asyncio.wait_for(bus.wait_for_disconnect(), 1.0)  # type: ignore[no-untyped-call]
    except Exception as exc:  # closing is best effort
        log.debug("D-Bus connection did not close cleanly: %s", type(exc).__name__)


def _default_icon() -> Icon | None:
    return Icon(path=_ICON_PATH) if _ICON_PATH.is_file() else None


def _uses_dbus() -> bool:
    return platform.system() == "Linux"


class DesktopChannel:
    """Notices as desktop notifications, through desktop-notifier.

    - urgency ``low``/``normal``/``critical`` maps to the platform's levels (unknown: normal);
    - a sticky notice never expires on its own where the platform lets us say so;
    - a notice whose key was shown before replaces it: desktop-notifier cannot pass a
      ``replaces_id``, so the earlier one is closed first (the last ``max_tracked`` keys
      are remembered);
    - a click on the notification calls ``on_click`` on the running loop.
    """

    name = "desktop"

    def __init__(
        self,
        *,
        server: ServerInfo | None = None,
        app_name: str = APP_NAME,
        icon: Icon | None = None,
        send_timeout: float = SEND_TIMEOUT,
        max_tracked: int = MAX_TRACKED_KEYS,
    ) -> None:
        self._notifier = DesktopNotifier(
            app_name=app_name, app_icon=icon if icon is not None else _default_icon()
        )
        self._server = server
        self._send_timeout = send_timeout
        self._max_tracked = max(1, max_tracked)
        self._shown: OrderedDict[str, str] = OrderedDict()  # notice key -> desktop-notifier id
        self._lock = asyncio.Lock()
        self._closed = False
        self.last_error: str | None = None

    @property
    def server(self) -> ServerInfo | None:
        """The D-Bus server last seen answering (None before the first send, or off Linux)."""
        return self._server

    async def capabilities(self) -> frozenset[Capability]:
        """What desktop-notifier can do here (raises on failure; for the probe)."""
        return await self._notifier.get_capabilities()

    async def send(self, notice: Notice, on_click: Callable[[], None] | None = None) -> bool:
        if self._closed:
            return self._failed(notice, "the channel is closed")
        async with self._lock:
            try:
                await asyncio.wait_for(self._deliver(notice, on_click), self._send_timeout)
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                self._server = None
                return self._failed(
                    notice, f"the notification server did not answer within {self._send_timeout:g} s"
                )
            except ChannelUnavailable as exc:
                self._server = None
                return self._failed(notice, str(exc))
            except Exception as exc:  # the library and the bus can fail in many ways; none may escape
                self._server = None
                return self._failed(
                    notice, f"desktop notification failed ({type(exc).__name__}: {_clean(exc)})"
                )
        if self.last_error is not None:
            log.info("desktop notifications work again")
        self.last_error = None
        return True

    async def _deliver(self, notice: Notice, on_click: Callable[[], None] | None) -> None:
        markup = False
        if _uses_dbus():
            if self._server is None:
                self._server = await query_notification_server(min(PROBE_TIMEOUT, self._send_timeout))
            markup = self._server.body_markup
        capabilities = await self._notifier.get_capabilities()
        body = html.escape(notice.body, quote=False) if markup else notice.body
        timeout = 0 if notice.sticky and Capability.TIMEOUT in capabilities else -1

        earlier = self._shown.pop(notice.key, None)
        if earlier is not None:
            await self._withdraw(earlier)

        dispatched = asyncio.Event()
        identifier = await self._notifier.send(
            notice.title,
            body,
            urgency=_URGENCIES.get(notice.urgency.lower(), Urgency.Normal),
            timeout=timeout,
            on_clicked=self._click_handler(notice.key, on_click) if on_click is not None else None,
            on_dispatched=dispatched.set,
        )
        if not dispatched.is_set():
            # desktop-notifier logs and swallows the send error; find out why for the reason.
            if _uses_dbus():
                self._server = await query_notification_server(min(PROBE_TIMEOUT, self._send_timeout))
            raise ChannelUnavailable("the notification server did not accept the notification")
        self._shown[notice.key] = identifier
        while len(self._shown) > self._max_tracked:
            self._shown.popitem(last=False)

    async def _withdraw(self, identifier: str) -> None:
        try:
            await self._notifier.clear(identifier)
        except Exception as exc:  # already closed by the user or the server: nothing to replace
            log.debug("earlier notification not withdrawn: %s", type(exc).__name__)

    @staticmethod
    def _click_handler(key: str, on_click: Callable[[], None]) -> Callable[[], None]:
        def clicked() -> None:
            try:
                on_click()
            except Exception:
                log.exception("notification click handler failed (key %s)", key)

        return clicked

    def _failed(self, notice: Notice, reason: str) -> bool:
        if reason != self.last_error:
            log.warning("desktop notification not shown (key %s): %s", notice.key, reason)
        else:
            log.debug("desktop notification not shown (key %s): %s", notice.key, reason)
        self.last_error = reason
        return False

    async def close(self) -> None:
        """Forget what was shown and drop the library's bus connection (shown ones stay)."""
        self._closed = True
        self._shown.clear()
        # desktop-notifier has no close(); its D-Bus backend keeps its connection as ``bus``.
        bus = getattr(getattr(self._notifier, "_backend", None), "bus", None)
        if isinstance(bus, MessageBus):
            await _disconnect(bus)


async def probe_desktop_channel(
    limit: float = PROBE_TIMEOUT, *, icon_path: Path | None = None
) -> tuple[DesktopChannel | None, str]:
    """A ready desktop channel and what it talks to, or None and why not (one short line).
    ``icon_path``: the app icon file to show (default: the one in a source checkout)."""
    icon = Icon(path=icon_path) if icon_path is not None else None
    if _uses_dbus():
        try:
            info = await query_notification_server(limit)
        except ChannelUnavailable as exc:
            log.info("desktop notifications unavailable: %s", exc)
            return None, str(exc)
        log.info("desktop notifications: %s", info.describe())
        return DesktopChannel(server=info, icon=icon), info.describe()

    from desktop_notifier.backends.dummy import DummyNotificationCenter
    from desktop_notifier.main import get_backend_class

    system = platform.system() or "this system"
    if get_backend_class() is DummyNotificationCenter:
        why = (
            "macOS Notification Center needs RunMonitor to run from an app bundle"
            if system == "Darwin"
            else f"desktop notifications are not supported on {system} {platform.release()}".strip()
        )
        return None, why
    channel = DesktopChannel(icon=icon)
    label = {"Darwin": "macOS Notification Center", "Windows": "Windows notifications"}.get(system, system)
    try:
        caps = await asyncio.wait_for(channel.capabilities(), limit)
    except Exception as exc:
        await channel.close()
        return None, f"{label} not available ({type(exc).__name__}: {_clean(exc)})"
    names = ", ".join(sorted(cap.name.lower() for cap in caps)) or "none"
    return channel, f"{label} (capabilities: {names})"


class MemoryChannel:
    """Keeps every notice in a list: for tests, and the last resort when nothing else shows."""

    name = "memory"

    def __init__(self, *, deliver: bool = True) -> None:
        self.deliver = deliver
        self.sent: list[tuple[Notice, Callable[[], None] | None]] = []
        self.closed = False
        self.last_error: str | None = None

    async def send(self, notice: Notice, on_click: Callable[[], None] | None = None) -> bool:
        if self.closed or not self.deliver:
            self.last_error = "closed" if self.closed else "delivery switched off"
            return False
        self.sent.append((notice, on_click))
        self.last_error = None
        return True

    def click(self, index: int = -1) -> None:
        """Act as if the user clicked the notice at ``index`` (the newest by default)."""
        callback = self.sent[index][1]
        if callback is not None:
            callback()

    async def close(self) -> None:
        self.closed = True
