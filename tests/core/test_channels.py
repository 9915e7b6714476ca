"""The desktop notification channel against a real D-Bus notification server of our own.

Each test that needs D-Bus gets a private ``dbus-daemon`` (see ``tests/fake_notifd.py``) and
points ``DBUS_SESSION_BUS_ADDRESS`` at it for that test only; the session bus the suite may be
running under (CI uses ``dbus-run-session``) is never used. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runmonitor.notify.channels import (
    Channel,
    DesktopChannel,
    MemoryChannel,
    probe_desktop_channel,
)
from tests.fake_notifd import (
    DEFAULT_CAPABILITIES,
    FakeNotificationServer,
    PrivateBus,
    dbus_daemon,
    serve_fake,
)

WAIT = 5.0
ICON = Path(__file__).resolve().parents[2] / "resources" / "icons" / "runmonitor.svg"


@dataclass(frozen=True)
class Note:
    """Shaped like core.notify.Notification as far as a channel cares."""

    key: str
    title: str
    body: str
    urgency: str = "normal"
    sticky: bool = False
    run_ids: tuple[int, ...] = ()


FAILURE = Note("marquez:run-7", "Run failed", "daily_orders_etl failed after 3 min", "critical", True, (7,))
SUCCESS = Note("marquez:run-8", "Run succeeded", "daily_orders_etl finished in 2 min", "normal", False, (8,))


@pytest.fixture
def private_bus(monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivateBus]:
    if dbus_daemon() is None:
        pytest.skip("dbus-daemon is not installed (Debian/Ubuntu: apt-get install dbus-daemon)")
    with PrivateBus() as bus:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bus.address)
        yield bus


@pytest.fixture
async def notifd(private_bus: PrivateBus) -> AsyncIterator[FakeNotificationServer]:
    async with serve_fake(private_bus.address) as server:
        yield server


@pytest.fixture
async def channel(private_bus: PrivateBus) -> AsyncIterator[DesktopChannel]:
    desktop = DesktopChannel()
    yield desktop
    await desktop.close()


async def send(channel: Channel, notice: Note, on_click: Callable[[], None] | None = None) -> bool:
    """One send, never allowed to hang the test."""
    return await asyncio.wait_for(channel.send(notice, on_click), WAIT + 2)


# --------------------------------------------------------------------------------------------
# Delivery


async def test_failure_and_success_arrive_with_urgency_and_expiry(
    notifd: FakeNotificationServer, channel: DesktopChannel
) -> None:
    assert await send(channel, FAILURE) is True
    assert await send(channel, SUCCESS) is True
    assert channel.last_error is None

    failure, success = notifd.notifications
    assert failure.app_name == "RunMonitor"
    assert (failure.summary, failure.body) == ("Run failed", "daily_orders_etl failed after 3 min")
    assert failure.urgency == 2
    assert failure.expire_timeout == 0, "a sticky notice must not expire on its own"
    assert "default" in failure.actions, "the default action is what makes a click reportable"
    if ICON.is_file():
        assert failure.app_icon == ICON.as_uri()

    assert (success.summary, success.body) == ("Run succeeded", "daily_orders_etl finished in 2 min")
    assert success.urgency == 1
    assert success.expire_timeout == -1, "a normal notice keeps the server's default expiry"
    assert channel.server is not None and channel.server.name == "fake-notifd"


@pytest.mark.parametrize(("urgency", "byte"), [("low", 0), ("normal", 1), ("critical", 2), ("weird", 1)])
async def test_urgency_words_map_to_the_protocol_byte(
    notifd: FakeNotificationServer, channel: DesktopChannel, urgency: str, byte: int
) -> None:
    assert await send(channel, Note("k", "t", "b", urgency)) is True
    assert notifd.notifications[-1].urgency == byte


async def test_click_calls_back_on_the_loop(notifd: FakeNotificationServer, channel: DesktopChannel) -> None:
    clicked = asyncio.Event()
    assert await send(channel, FAILURE, clicked.set) is True
    notifd.click(notifd.notifications[-1].id)
    await asyncio.wait_for(clicked.wait(), WAIT)


async def test_a_failing_click_handler_does_not_break_later_clicks(
    notifd: FakeNotificationServer, channel: DesktopChannel
) -> None:
    def broken() -> None:
        raise RuntimeError("handler bug")

    clicked = asyncio.Event()
    assert await send(channel, FAILURE, broken) is True
    notifd.click(notifd.notifications[-1].id)
    assert await send(channel, SUCCESS, clicked.set) is True
    notifd.click(notifd.notifications[-1].id)
    await asyncio.wait_for(clicked.wait(), WAIT)


# --------------------------------------------------------------------------------------------
# Replacing by key


async def test_same_key_replaces_the_earlier_notification(
    notifd: FakeNotificationServer, channel: DesktopChannel
) -> None:
    first = Note("codestream:exec-1", "Run started", "pipeline deploy")
    again = Note("codestream:exec-1", "Run failed", "pipeline deploy failed", "critical")
    other = Note("codestream:exec-2", "Run started", "pipeline build")

    assert await send(channel, first) is True
    assert await send(channel, again) is True
    assert await send(channel, other) is True

    ids = [n.id for n in notifd.notifications]
    assert notifd.state.close_calls == [ids[0]], "only the notice with the same key is withdrawn"
    assert notifd.state.open_ids == {ids[1], ids[2]}
    assert [n.summary for n in notifd.notifications] == ["Run started", "Run failed", "Run started"]


async def test_same_key_after_the_user_closed_it_just_sends(
    notifd: FakeNotificationServer, channel: DesktopChannel
) -> None:
    assert await send(channel, FAILURE) is True
    notifd.click(notifd.notifications[-1].id)  # the user dealt with it; the server closed it
    assert await send(channel, FAILURE) is True
    assert channel.last_error is None
    assert len(notifd.notifications) == 2
    assert notifd.state.open_ids == {notifd.notifications[-1].id}


async def test_remembered_keys_are_bounded(private_bus: PrivateBus, notifd: FakeNotificationServer) -> None:
    channel = DesktopChannel(max_tracked=2)
    try:
        for key in ("a", "b", "c", "a"):
            assert await send(channel, Note(key, f"title {key}", "body")) is True
    finally:
        await channel.close()
    # "a" fell out of the memory when "c" came, so its second notice cannot replace the first.
    assert notifd.state.close_calls == []
    assert len(notifd.state.open_ids) == 4


# --------------------------------------------------------------------------------------------
# Probing and failing softly


async def test_probe_describes_the_server(private_bus: PrivateBus, notifd: FakeNotificationServer) -> None:
    found, reason = await asyncio.wait_for(probe_desktop_channel(), WAIT)
    assert found is not None, reason
    try:
        assert reason.startswith("D-Bus notification server 'fake-notifd 1.0'")
        assert "actions" in reason and "persistence" in reason
        assert await send(found, SUCCESS) is True
    finally:
        await found.close()
    assert notifd.notifications[-1].summary == "Run succeeded"


async def test_no_bus_at_the_address(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path / 'no-such-bus'}")
    found, reason = await asyncio.wait_for(probe_desktop_channel(), WAIT)
    assert found is None
    assert "session D-Bus is not reachable" in reason

    channel = DesktopChannel()
    try:
        assert await send(channel, FAILURE) is False
        assert channel.last_error is not None and "D-Bus" in channel.last_error
    finally:
        await channel.close()


async def test_no_bus_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    found, reason = await asyncio.wait_for(probe_desktop_channel(), WAIT)
    assert (found, reason) == (None, "no session D-Bus (DBUS_SESSION_BUS_ADDRESS unset)")
    channel = DesktopChannel()
    assert await send(channel, SUCCESS) is False
    assert channel.last_error == reason
    await channel.close()


async def test_bus_without_notification_server(private_bus: PrivateBus) -> None:
    found, reason = await asyncio.wait_for(probe_desktop_channel(), WAIT)
    assert (found, reason) == (None, "no notification server on the session bus")

    channel = DesktopChannel()
    try:
        assert await send(channel, FAILURE) is False
        assert channel.last_error == "no notification server on the session bus"
    finally:
        await channel.close()


async def test_server_that_does_not_answer_times_out_then_recovers(private_bus: PrivateBus) -> None:
    slow = FakeNotificationServer(notify_delay=30)
    async with serve_fake(private_bus.address, slow):
        channel = DesktopChannel(send_timeout=0.5)
        try:
            assert await send(channel, FAILURE) is False
            assert channel.last_error == "the notification server did not answer within 0.5 s"

            slow.notify_delay = 0
            assert await send(channel, SUCCESS) is True
            assert channel.last_error is None
        finally:
            await channel.close()
    assert [n.summary for n in slow.notifications][-1] == "Run succeeded"


async def test_server_that_refuses_the_notification(private_bus: PrivateBus) -> None:
    refusing = FakeNotificationServer(refuse=True)
    async with serve_fake(private_bus.address, refusing):
        channel = DesktopChannel()
        try:
            assert await send(channel, FAILURE) is False
            assert channel.last_error == "the notification server did not accept the notification"
            refusing.refuse = False
            assert await send(channel, FAILURE) is True
        finally:
            await channel.close()
    assert [n.summary for n in refusing.notifications] == ["Run failed"]


async def test_server_appearing_later_is_found_by_the_next_send(private_bus: PrivateBus) -> None:
    channel = DesktopChannel()
    try:
        assert await send(channel, FAILURE) is False
        async with serve_fake(private_bus.address) as server:
            assert await send(channel, FAILURE) is True
        assert [n.summary for n in server.notifications] == ["Run failed"]
    finally:
        await channel.close()


# --------------------------------------------------------------------------------------------
# Markup in the body

MARKED_UP = Note("connhex:exp-3", "Export <failed>", "<b>x</b>&amp; error", "critical")


async def test_body_is_sent_as_given_when_the_server_reads_plain_text(
    notifd: FakeNotificationServer, channel: DesktopChannel
) -> None:
    assert "body-markup" not in DEFAULT_CAPABILITIES
    assert await send(channel, MARKED_UP) is True
    received = notifd.notifications[-1]
    assert received.body == "<b>x</b>&amp; error"
    assert received.summary == "Export <failed>"


async def test_body_is_escaped_when_the_server_reads_markup(private_bus: PrivateBus) -> None:
    # The spec lets such a server interpret <b>, <i>, <a>, <img> and entities in the body only;
    # a run's error text is not markup, so it is escaped to show as written.
    marking = FakeNotificationServer((*DEFAULT_CAPABILITIES, "body-markup"), server_name="markup-notifd")
    async with serve_fake(private_bus.address, marking):
        channel = DesktopChannel()
        try:
            assert await send(channel, MARKED_UP) is True
        finally:
            await channel.close()
    received = marking.notifications[-1]
    assert received.body == "&lt;b&gt;x&lt;/b&gt;&amp;amp; error"
    assert received.summary == "Export <failed>", "the summary is never markup"


# --------------------------------------------------------------------------------------------
# The memory channel


async def test_memory_channel_records_clicks_and_failures() -> None:
    memory = MemoryChannel()
    clicks: list[str] = []
    assert await memory.send(FAILURE, lambda: clicks.append("clicked")) is True
    assert await memory.send(SUCCESS) is True
    assert [notice.key for notice, _ in memory.sent] == [FAILURE.key, SUCCESS.key]
    memory.click(0)
    memory.click()  # no callback: nothing happens
    assert clicks == ["clicked"]

    memory.deliver = False
    assert await memory.send(SUCCESS) is False
    assert memory.last_error == "delivery switched off"
    memory.deliver = True
    await memory.close()
    assert await memory.send(SUCCESS) is False
    assert len(memory.sent) == 2
