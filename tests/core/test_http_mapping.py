"""The one mapping from HTTP and transport failures to RunMonitor errors, and its parsers."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime

import httpx
import pytest

from runmonitor.domain import errors
from runmonitor.domain.redact import secret_registry
from runmonitor.services.http import (
    HTTPX_ERRORS,
    HttpSession,
    decode_json,
    error_for_httpx,
    error_for_status,
    error_for_transport,
    parse_retry_after,
    parse_time,
    vendor_message,
)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, errors.InvalidRequest),
        (401, errors.AuthFailed),
        (403, errors.Forbidden),
        (404, errors.NotFound),
        (408, errors.TimedOut),
        (409, errors.InvalidRequest),
        (422, errors.InvalidRequest),
        (429, errors.RateLimited),
        (500, errors.ServerError),
        (502, errors.ServerError),
        (503, errors.ServerError),
        (504, errors.ServerError),
    ],
)
def test_status_codes_map_to_error_kinds(status: int, kind: type[errors.ServiceError]) -> None:
    error = error_for_status("svc", status, {"message": "boom"}, httpx.Headers({"x-request-id": "r-1"}))
    assert type(error) is kind
    assert error.status_code == status
    assert error.request_id == "r-1"
    assert "boom" in str(error)


def test_proof_of_nothing_created() -> None:
    headers = httpx.Headers()
    assert error_for_status("s", 429, None, headers).may_have_reached_service is False
    assert error_for_status("s", 401, None, headers).may_have_reached_service is False
    assert error_for_status("s", 500, None, headers).may_have_reached_service is True


def test_retry_after_on_429_and_503() -> None:
    limited = error_for_status("s", 429, None, httpx.Headers({"Retry-After": "12"}))
    assert isinstance(limited, errors.RateLimited)
    assert limited.retry_after == 12.0
    busy = error_for_status("s", 503, None, httpx.Headers({"Retry-After": "5"}))
    assert isinstance(busy, errors.ServerError)
    assert busy.retry_after == 5.0


def test_vendor_classifier_wins() -> None:
    def classify(status: int, body: object, headers: httpx.Headers) -> errors.ServiceError | None:
        return errors.QuotaReached("full", retry_after=None) if status == 429 else None

    assert isinstance(error_for_status("s", 429, None, httpx.Headers(), classify), errors.QuotaReached)
    assert type(error_for_status("s", 500, None, httpx.Headers(), classify)) is errors.ServerError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        ("0", 0.0),
        ("-3", 0.0),
        ("1.5", 1.5),
        ("  30 ", 30.0),
        ("", None),
        (None, None),
        ("soon", None),
        ("nan", None),
        ("99999999", 24 * 3600.0),
    ],
)
def test_parse_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date() -> None:
    now = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC).timestamp()
    assert parse_retry_after("Sun, 22 Nov 2026 12:00:45 GMT", now=now) == 45.0
    assert parse_retry_after("Sun, 22 Nov 2026 11:00:00 GMT", now=now) == 0.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2019-09-16 09:25:38.065065+00", datetime(2019, 9, 16, 9, 25, 38, 65065, tzinfo=UTC)),
        ("2019-05-09T15:17:32.690346", datetime(2019, 5, 9, 15, 17, 32, 690346, tzinfo=UTC)),
        ("2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T05:04:05+02:00", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T05:34:05+0230", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (1704164645000, datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (1704164645000000, datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (1704164645, datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (None, None),
        ("", None),
        ("yesterday", None),
        (True, None),
        ([1], None),
    ],
)
def test_parse_time_is_lenient(value: object, expected: datetime | None) -> None:
    assert parse_time(value) == expected


def test_decode_json_refuses_html_and_garbage() -> None:
    assert decode_json(b'{"a": 1}', service="s") == {"a": 1}
    assert decode_json(b"  ", service="s") is None
    with pytest.raises(errors.BadResponse, match="HTML"):
        decode_json(b"<!DOCTYPE html><html></html>", service="s")
    with pytest.raises(errors.BadResponse, match="not JSON"):
        decode_json(b"{truncated", service="s")
    with pytest.raises(errors.BadResponse):
        decode_json(b"[" * 100_000 + b"]" * 100_000, service="s")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"error": {"code": 400, "message": "bad externalId"}}, "bad externalId"),
        ({"code": 404, "message": "Job 'x' not found."}, "Job 'x' not found."),
        (
            {"errors": [{"status": "429", "detail": "Maximum number of queued exports reached"}]},
            "Maximum number of queued exports reached",
        ),
        ({"error": "invalid_client", "error_description": "wrong secret"}, "invalid_client: wrong secret"),
        ({"title": "Not Found", "status": 404}, "Not Found"),
        ("plain text failure", "plain text failure"),
        ("<html><body>502</body></html>", None),
        (None, None),
        ([1, 2], None),
    ],
)
def test_vendor_message_shapes(body: object, message: str | None) -> None:
    assert vendor_message(body) == message


def test_transport_errors_say_whether_the_request_went_out() -> None:
    request = httpx.Request("GET", "http://127.0.0.1/")
    refused = error_for_transport("s", httpx.ConnectError("refused", request=request))
    assert isinstance(refused, errors.ConnectionFailed)
    assert refused.may_have_reached_service is False
    dropped = error_for_transport("s", httpx.RemoteProtocolError("gone", request=request))
    assert isinstance(dropped, errors.ConnectionFailed)
    assert dropped.may_have_reached_service is True
    read = error_for_transport("s", httpx.ReadTimeout("slow", request=request))
    assert isinstance(read, errors.TimedOut)
    assert read.may_have_reached_service is True
    pool = error_for_transport("s", httpx.PoolTimeout("busy", request=request))
    assert pool.may_have_reached_service is False


#: Every exception class httpx exports.
HTTPX_EXCEPTIONS = sorted(
    (
        c
        for c in vars(httpx).values()
        if inspect.isclass(c) and issubclass(c, Exception) and c.__module__.startswith("httpx")
    ),
    key=lambda c: c.__name__,
)


def _httpx_exception(cls: type[Exception]) -> Exception:
    """An instance of ``cls`` made the way httpx makes one."""
    request = httpx.Request("GET", "https://api.example.com/x")
    if issubclass(cls, httpx.StreamError) and cls is not httpx.StreamError:
        return cls()
    if issubclass(cls, httpx.HTTPStatusError):
        return cls("boom", request=request, response=httpx.Response(500, request=request))
    if issubclass(cls, httpx.RequestError):
        return cls("boom", request=request)
    return cls("boom")


def test_the_boundary_catches_every_exception_httpx_exports() -> None:
    assert len(HTTPX_EXCEPTIONS) > 20
    uncaught = [c.__name__ for c in HTTPX_EXCEPTIONS if not issubclass(c, HTTPX_ERRORS)]
    assert not uncaught


@pytest.mark.parametrize("cls", HTTPX_EXCEPTIONS, ids=lambda c: c.__name__)
async def test_no_httpx_exception_escapes_a_request(cls: type[Exception]) -> None:
    raised = _httpx_exception(cls)

    def handler(request: httpx.Request) -> httpx.Response:
        raise raised

    # A mock transport: most of these (a stream read twice, a cookie conflict) no server can cause.
    session = HttpSession("s", "https://api.example.com", transport=httpx.MockTransport(handler))
    try:
        with pytest.raises(errors.ServiceError) as info:
            await session.request("GET", "x")
    finally:
        await session.aclose()
    assert type(info.value) in errors.ERROR_KINDS
    assert info.value.service == "s"
    assert info.value.__cause__ is raised
    assert str(info.value).strip()
    assert type(error_for_httpx("s", raised)) is type(info.value)


def test_httpx_errors_beyond_transport_say_whether_the_request_went_out() -> None:
    request = httpx.Request("GET", "http://127.0.0.1/")
    decoding = error_for_httpx("s", httpx.DecodingError("bad gzip", request=request))
    assert type(decoding) is errors.BadResponse
    assert decoding.may_have_reached_service is True  # an answer arrived
    assert "could not be decoded" in decoding.message
    invalid = error_for_httpx("s", httpx.InvalidURL("no host"))
    assert type(invalid) is errors.ConnectionFailed
    assert invalid.may_have_reached_service is False
    assert invalid.message == "Invalid URL (no host)"
    redirects = error_for_httpx("s", httpx.TooManyRedirects("loop", request=request))
    assert type(redirects) is errors.BadResponse
    other = error_for_httpx("s", httpx.StreamConsumed())
    assert type(other) is errors.ConnectionFailed
    assert other.may_have_reached_service is True
    assert "StreamConsumed" in other.message
    transport = error_for_httpx("s", httpx.ConnectError("refused", request=request))
    assert type(transport) is errors.ConnectionFailed
    assert transport.may_have_reached_service is False


def test_error_messages_never_carry_registered_secrets() -> None:
    secret_registry.register(["s3cr3t-value-xyz"])
    error = error_for_status("s", 400, {"message": "token s3cr3t-value-xyz is malformed"}, httpx.Headers())
    assert "s3cr3t-value-xyz" not in str(error)
    assert "***" in str(error)


async def test_redirects_are_reported_not_followed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "https://login.example.com/?code=abc"})

    # A mock transport: a redirect to a login page is easiest to produce this way.
    session = HttpSession("s", "https://api.example.com", transport=httpx.MockTransport(handler))
    with pytest.raises(errors.BadResponse, match="redirected") as info:
        await session.request("GET", "x")
    assert "abc" not in str(info.value)
    await session.aclose()


async def test_body_size_is_capped_even_without_content_length() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        async def chunks():  # streamed, no Content-Length
            for _ in range(5):
                yield b"x" * 1000

        return httpx.Response(200, content=chunks())

    session = HttpSession(
        "s", "https://api.example.com", transport=httpx.MockTransport(handler), max_body_bytes=2500
    )
    with pytest.raises(errors.BadResponse, match="too large"):
        await session.request("GET", "x")
    await session.aclose()


@pytest.mark.parametrize(
    ("error", "outcome", "text"),
    [
        (errors.AuthFailed("Sign-in needed: key rejected"), "signin", "Sign-in needed: key rejected"),
        (errors.Forbidden("no access"), "signin", "Sign-in needed: no access"),
        (errors.ConnectionFailed("refused"), "unreachable", "Unreachable: refused"),
        (errors.TimedOut("slow"), "unreachable", "Unreachable: slow"),
        (errors.ServerError("boom"), "failed", "Failed: boom"),
    ],
)
def test_check_outcome_reads_the_same_everywhere(error: errors.ServiceError, outcome: str, text: str) -> None:
    assert errors.check_outcome(error) == (outcome, text)
