"""Hostile or broken servers: every answer becomes a typed error, and the client stays usable.

A real HTTP server on 127.0.0.1 answers according to the first segment of the path: bodies over
the size cap (announced or streamed), JSON nested 100,000 deep, numbers with thousands of
digits, invalid UTF-8, a body labelled gzip that is not gzip, an answer trickled a byte at a
time. They are read through HttpSession
and through a real service client (Marquez), and must each end as a BadResponse or TimedOut:
never a RecursionError, a ValueError or a hang.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from runmonitor.domain.errors import BadResponse, ServerError, ServiceError, TimedOut
from runmonitor.services import get
from runmonitor.services.http import (
    MAX_BODY_BYTES,
    MAX_JSON_DEPTH,
    MAX_JSON_INT_DIGITS,
    HttpSession,
    decode_json,
    parse_time,
)

OVER_CAP = MAX_BODY_BYTES + 512 * 1024
DEEP = 100_000


def _nested(depth: int, *, arrays: bool = True) -> bytes:
    if arrays:
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


#: Path segment → (status, body). The body of a hostile answer, as a server would send it.
BODIES: dict[str, tuple[int, bytes]] = {
    "ok": (200, b'{"name": "default", "ownerName": "me"}'),
    "deep-array": (200, _nested(DEEP)),
    "deep-object": (200, _nested(DEEP, arrays=False)),
    # Deeper than RunMonitor allows, yet shallow enough for json.loads itself to succeed.
    "deep-moderate": (200, _nested(MAX_JSON_DEPTH + 50)),
    "digits": (200, b'{"name": "default", "id": ' + b"9" * 5000 + b"}"),
    "digits-moderate": (200, b'{"name": "default", "id": -' + b"7" * 1000 + b"}"),
    "utf8": (200, b'{"name": "caf\xe9 \xff\xfe"}'),
    "deep-500": (500, _nested(DEEP)),
    "digits-500": (503, b'{"message": ' + b"1" * 5000 + b"}"),
    # Valid JSON, invalid text: a lone surrogate escape (SQLite and Qt refuse such strings).
    "surrogate": (200, b'{"name": "default\\udc00", "ownerName": "\\ud83d\\ude00"}'),
}


class _Hostile(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        kind = self.path.strip("/").split("/", 1)[0]
        with contextlib.suppress(OSError):  # the client hangs up on purpose in several cases
            if kind == "huge-declared":
                self._huge(chunked=False)
            elif kind == "huge-chunked":
                self._huge(chunked=True)
            elif kind == "trickle":
                self._trickle()
            elif kind == "gzip-lie":
                self._gzip_lie()
            else:
                status, body = BODIES.get(kind, (404, b'{"message": "no such case"}'))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

    def _huge(self, *, chunked: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(OVER_CAP))
        self.end_headers()
        block = b"[" + b"1," * 32_000 + b"1]"
        sent = 0
        while sent < OVER_CAP:
            piece = block[: OVER_CAP - sent]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            sent += len(piece)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.close_connection = True

    def _gzip_lie(self) -> None:
        body = b'{"name": "default", "ownerName": "me"}'  # plain JSON, labelled gzip
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _trickle(self) -> None:
        body = b'{"name": "default"}' + b" " * 200
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.flush()
        for byte in body:  # one byte every 50 ms: each read is quick, the whole answer is not
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(0.05)


@pytest.fixture(scope="module")
def hostile() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


CASES = [
    pytest.param("huge-declared", BadResponse, f"too large ({OVER_CAP} bytes", id="huge-declared"),
    pytest.param("huge-chunked", BadResponse, f"too large (over {MAX_BODY_BYTES} bytes)", id="huge-chunked"),
    pytest.param("deep-array", BadResponse, "nested too deeply", id="deep-array"),
    pytest.param("deep-object", BadResponse, "nested too deeply", id="deep-object"),
    pytest.param("deep-moderate", BadResponse, "nested too deeply", id="deep-moderate"),
    pytest.param("digits", BadResponse, "a number with 5000 digits", id="digits"),
    pytest.param("digits-moderate", BadResponse, "a number with 1000 digits", id="digits-moderate"),
    pytest.param("utf8", BadResponse, "not valid UTF-8", id="utf8"),
    # An error status with a hostile body: the body falls back to text, the status still counts.
    pytest.param("deep-500", ServerError, "(HTTP 500)", id="deep-500"),
    pytest.param("digits-500", ServerError, "(HTTP 503)", id="digits-500"),
]


@pytest.mark.parametrize(("kind", "error", "message"), CASES)
async def test_hostile_answers_become_typed_errors(
    hostile: str, kind: str, error: type[ServiceError], message: str
) -> None:
    limit = sys.getrecursionlimit()
    async with contextlib.AsyncExitStack() as stack:
        session = HttpSession("hostile", hostile, timeout=10)
        stack.push_async_callback(session.aclose)
        with pytest.raises(error) as info:
            await session.request("GET", f"{kind}/x")
        assert type(info.value) is error
        assert message in str(info.value)
        # The same session (and its connection pool) still works afterwards.
        assert (await session.request("GET", "ok")).body == {"name": "default", "ownerName": "me"}
    assert sys.getrecursionlimit() == limit


@pytest.mark.parametrize(
    "kind",
    ["huge-chunked", "deep-array", "deep-object", "deep-moderate", "digits", "digits-moderate", "utf8"],
)
async def test_a_service_client_reports_hostile_answers_as_bad_responses(hostile: str, kind: str) -> None:
    cls = get("marquez")
    async with cls(cls.config_model(base_url=f"{hostile}/{kind}", timeout_seconds=10)) as client:
        with pytest.raises(BadResponse) as info:
            await client.check_connection()
    assert info.value.service == "marquez"
    assert info.value.message.startswith(("The service answered with", "The answer is too large"))
    async with cls(cls.config_model(base_url=f"{hostile}/ok")) as client:
        assert "namespace 'default'" in await client.check_connection()


async def test_lone_surrogates_are_replaced_so_the_text_can_be_stored(hostile: str) -> None:
    cls = get("marquez")
    async with cls(cls.config_model(base_url=f"{hostile}/surrogate")) as client:
        said = await client.check_connection()
    assert "namespace 'default\ufffd' (owner \U0001f600)" in said  # a valid pair is kept
    assert said.encode("utf-8")


async def test_a_body_labelled_gzip_that_is_not_is_a_bad_response_that_may_have_reached(
    hostile: str,
) -> None:
    session = HttpSession("hostile", hostile, timeout=10)
    try:
        with pytest.raises(BadResponse, match="could not be decoded") as info:
            await session.request("GET", "gzip-lie")
        assert type(info.value) is BadResponse
        assert info.value.service == "hostile"
        assert info.value.may_have_reached_service is True  # an answer came: the request got there
        assert isinstance(info.value.__cause__, httpx.DecodingError)
        assert (await session.request("GET", "ok")).status_code == 200
    finally:
        await session.aclose()


async def test_a_service_client_reports_a_gzip_lie_as_a_bad_response(hostile: str) -> None:
    cls = get("marquez")
    async with cls(cls.config_model(base_url=f"{hostile}/gzip-lie", timeout_seconds=10)) as client:
        with pytest.raises(BadResponse, match="could not be decoded") as info:
            await client.check_connection()
    assert info.value.service == "marquez"


async def test_an_answer_trickled_byte_by_byte_hits_the_deadline(hostile: str) -> None:
    # Each byte arrives well within the 2 s read timeout; the whole answer would take ~10 s.
    session = HttpSession("hostile", hostile, timeout=2.0, deadline=1.0)
    try:
        with pytest.raises(TimedOut, match=r"took too long to send its answer \(over 1 s\)") as info:
            await session.request("GET", "trickle")
        assert info.value.may_have_reached_service is True
        assert (await session.request("GET", "ok")).status_code == 200
    finally:
        await session.aclose()


def test_the_deadline_follows_the_timeout() -> None:
    assert HttpSession("s", "http://127.0.0.1:9", timeout=15.0).deadline == 60.0
    assert HttpSession("s", "http://127.0.0.1:9", timeout=1.0).deadline == 30.0  # the floor


# -- decode_json's limits, right at the edges --------------------------------------------------------


def _decode(content: bytes) -> Any:
    return decode_json(content, service="s")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (_nested(MAX_JSON_DEPTH), "ok"),
        (_nested(MAX_JSON_DEPTH + 1), "nested too deeply"),
        (_nested(MAX_JSON_DEPTH, arrays=False), "ok"),
        (_nested(MAX_JSON_DEPTH + 1, arrays=False), "nested too deeply"),
        # Brackets inside strings are not nesting.
        (b'{"text": "' + b"[" * 5000 + b'"}', "ok"),
        (b"9" * MAX_JSON_INT_DIGITS, "ok"),
        (b"-" + b"9" * MAX_JSON_INT_DIGITS, "ok"),
        (b"9" * (MAX_JSON_INT_DIGITS + 1), f"a number with {MAX_JSON_INT_DIGITS + 1} digits"),
        (b"1." + b"5" * 20_000, "ok"),  # long floats are bounded by float itself
        (b'"\xed\xa0\x80"', "not valid UTF-8"),  # an encoded surrogate
        (b"NaN-ish", "not JSON"),
    ],
)
def test_decode_json_limits(content: bytes, expected: str) -> None:
    if expected == "ok":
        assert _decode(content) is not None
        return
    with pytest.raises(BadResponse) as info:
        _decode(content)
    assert expected in info.value.message


def test_deep_but_allowed_json_survives_the_rest_of_the_pipeline() -> None:
    """A body at the depth limit must be safe for the recursive code that handles it later."""
    from runmonitor.domain.redact import redact_json

    value = _decode(_nested(MAX_JSON_DEPTH, arrays=False))
    assert redact_json(value) == value


@pytest.mark.parametrize(
    "value", [10**4000, -(10**4000), float("inf"), float("nan")], ids=["huge", "-huge", "inf", "nan"]
)
def test_parse_time_ignores_absurd_numbers(value: float) -> None:
    assert parse_time(value) is None
