"""The one HTTP client factory and the one place that maps HTTP failures to our errors.

Every service client talks HTTP through :class:`HttpSession`. It owns an
``httpx.AsyncClient`` with explicit timeouts, connection limits and a user agent;
it caps response sizes, parses JSON defensively, logs requests without secrets, and
turns transport exceptions and error statuses into :mod:`runmonitor.core.errors`
types. Vendor specifics (error body shapes, Connhex's quota 429) come in through a
``classify`` hook, so the mapping itself stays in this module.
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from runmonitor import __version__
from runmonitor.core.errors import (
    AuthFailed,
    BadResponse,
    ConnectionFailed,
    Forbidden,
    InvalidRequest,
    NotFound,
    RateLimited,
    RunMonitorError,
    ServerError,
    TimedOut,
)
from runmonitor.core.redact import redact_url, secret_registry

log = logging.getLogger(__name__)

USER_AGENT = f"RunMonitor/{__version__} (+desktop run monitor; httpx/{httpx.__version__})"
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_RETRY_AFTER = 24 * 3600.0
REQUEST_ID_HEADERS = ("x-request-id", "x-correlation-id", "request-id")


def default_timeout(total: float = 15.0) -> httpx.Timeout:
    return httpx.Timeout(total, connect=min(5.0, total), pool=total)


def default_limits(max_connections: int = 8) -> httpx.Limits:
    return httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections, keepalive_expiry=30.0
    )


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), capped."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        reference = now if now is not None else time.time()
        seconds = when.timestamp() - reference
    if seconds != seconds:  # NaN
        return None
    return max(0.0, min(seconds, MAX_RETRY_AFTER))


def request_id_of(headers: httpx.Headers) -> str | None:
    for name in REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return str(value)[:200]
    return None


def decode_json(content: bytes, *, service: str, status_code: int | None = None) -> Any:
    """Decode a JSON body, turning anything that is not sane JSON into BadResponse."""
    if not content.strip():
        return None
    try:
        return json.loads(content)
    except (ValueError, RecursionError) as exc:
        snippet = content[:80].decode("utf-8", "replace").strip()
        kind = "an HTML page" if snippet.lower().startswith(("<!doctype", "<html")) else "not JSON"
        raise BadResponse(
            f"The service answered with {kind}", service=service, status_code=status_code
        ) from exc


@dataclass(frozen=True)
class HttpResult:
    status_code: int
    headers: httpx.Headers
    body: Any
    request_id: str | None
    url: str


ErrorClassifier = Callable[[int, Any, httpx.Headers], RunMonitorError | None]
"""A vendor hook: given status, decoded body (or text) and headers, return a specific error or None."""


def vendor_message(body: Any) -> str | None:
    """The human message from the error bodies our vendors use.

    Handles Cognite ``{"error":{"message"}}``, Dropwizard/Marquez ``{"code","message"}``,
    JSON:API ``{"errors":[{"detail"}]}``, Ory ``{"error":{"message"}}``, Code Stream
    ``{"message"}`` and plain strings.
    """
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            for key in ("message", "reason", "description"):
                if isinstance(error.get(key), str):
                    return str(error[key])
        if isinstance(error, str) and isinstance(body.get("error_description"), str):
            return f"{error}: {body['error_description']}"
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            detail = errors[0].get("detail") or errors[0].get("title") or errors[0].get("message")
            if isinstance(detail, str):
                return detail
        for key in ("message", "detail", "error_description", "title", "error"):
            if isinstance(body.get(key), str):
                return str(body[key])
    if isinstance(body, str) and body.strip():
        text = body.strip()
        if text.lower().startswith(("<!doctype", "<html")):
            return None
        return text[:300]
    return None


def error_for_status(
    service: str,
    status: int,
    body: Any,
    headers: httpx.Headers,
    classify: ErrorClassifier | None = None,
) -> RunMonitorError:
    """The single mapping from an HTTP error status to a RunMonitor error."""
    if classify is not None:
        specific = classify(status, body, headers)
        if specific is not None:
            return specific
    request_id = request_id_of(headers)
    detail = vendor_message(body)
    kw: dict[str, Any] = {"service": service, "status_code": status, "request_id": request_id}

    def msg(default: str) -> str:
        text = f"{default}: {detail}" if detail else default
        return secret_registry.scrub(text)

    if status == 401:
        return AuthFailed(msg("Sign-in needed: the service rejected the credentials"), **kw)
    if status == 403:
        return Forbidden(msg("The credentials lack permission for this"), **kw)
    if status == 404:
        return NotFound(msg("Not found"), **kw)
    if status == 429:
        retry_after = parse_retry_after(headers.get("retry-after"))
        return RateLimited(msg("Rate limited by the service"), retry_after=retry_after, **kw)
    if status in (408,):
        return TimedOut(msg("The service timed out the request"), **kw)
    if 400 <= status < 500:
        return InvalidRequest(msg("The service rejected the request"), **kw)
    if status >= 500:
        retry_after = parse_retry_after(headers.get("retry-after"))
        return ServerError(msg(f"The service failed (HTTP {status})"), retry_after=retry_after, **kw)
    return BadResponse(msg(f"Unexpected HTTP status {status}"), **kw)


def error_for_transport(service: str, exc: httpx.TransportError) -> RunMonitorError:
    """The single mapping from an httpx transport exception to a RunMonitor error."""
    if isinstance(exc, httpx.ConnectTimeout):
        return TimedOut(
            "Timed out connecting to the service", service=service, may_have_reached_service=False
        )
    if isinstance(exc, httpx.PoolTimeout):
        return TimedOut(
            "Too many requests waiting for a connection", service=service, may_have_reached_service=False
        )
    if isinstance(exc, httpx.TimeoutException):
        return TimedOut("The service did not answer in time", service=service)
    if isinstance(exc, httpx.ConnectError):
        return ConnectionFailed(
            f"Could not connect to the service ({_short(exc)})",
            service=service,
            may_have_reached_service=False,
        )
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return ConnectionFailed(
            f"The connection broke before a complete answer arrived ({_short(exc)})", service=service
        )
    if isinstance(exc, httpx.UnsupportedProtocol):
        return ConnectionFailed(
            "The URL does not use http:// or https://", service=service, may_have_reached_service=False
        )
    return ConnectionFailed(f"Network error ({_short(exc)})", service=service)


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return secret_registry.scrub(text[:200])


class HttpSession:
    """One service connection: an httpx.AsyncClient plus error mapping and size caps."""

    def __init__(
        self,
        service: str,
        base_url: str,
        *,
        auth: httpx.Auth | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 15.0,
        verify: bool | str = True,
        max_connections: int = 8,
        transport: httpx.AsyncBaseTransport | None = None,
        classify: ErrorClassifier | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.service = service
        self.classify = classify
        self.max_body_bytes = max_body_bytes
        base = base_url.rstrip("/") + "/"
        self.client = httpx.AsyncClient(
            base_url=base,
            auth=auth,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})},
            timeout=default_timeout(timeout),
            limits=default_limits(max_connections),
            verify=verify,
            transport=transport,
            follow_redirects=False,
            event_hooks={"response": [self._log_response]},
        )

    async def _log_response(self, response: httpx.Response) -> None:
        if not log.isEnabledFor(logging.DEBUG):
            return
        request = response.request
        log.debug(
            "%s %s %s -> %s",
            self.service,
            request.method,
            redact_url(str(request.url)),
            response.status_code,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        ok: Iterable[int] = (200,),
    ) -> HttpResult:
        """Send one request (no retries) and return the decoded answer or raise our error."""
        accepted = frozenset(ok)
        try:
            request = self.client.build_request(
                method,
                path.lstrip("/"),
                params={k: v for k, v in (params or {}).items() if v is not None},
                json=json_body,
                data=data,
                headers=headers,
            )
            response = await self.client.send(request, stream=True)
            try:
                content = await self._read_capped(response)
            finally:
                await response.aclose()
        except httpx.TransportError as exc:
            raise error_for_transport(self.service, exc) from exc
        except httpx.InvalidURL as exc:
            raise ConnectionFailed(
                f"Invalid URL ({_short(exc)})", service=self.service, may_have_reached_service=False
            ) from exc
        status = response.status_code
        if status in accepted:
            body = decode_json(content, service=self.service, status_code=status)
            return HttpResult(
                status, response.headers, body, request_id_of(response.headers), str(request.url)
            )
        try:
            body = decode_json(content, service=self.service, status_code=status)
        except BadResponse:
            body = content[:2000].decode("utf-8", "replace")
        if 300 <= status < 400:
            location = response.headers.get("location", "")
            raise BadResponse(
                f"The service redirected to {redact_url(location)!s}; check the base URL",
                service=self.service,
                status_code=status,
                may_have_reached_service=False,
            )
        raise error_for_status(self.service, status, body, response.headers, self.classify)

    async def _read_capped(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise BadResponse(
                f"The answer is too large ({int(declared)} bytes, limit {self.max_body_bytes})",
                service=self.service,
                status_code=response.status_code,
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise BadResponse(
                    f"The answer is too large (over {self.max_body_bytes} bytes)",
                    service=self.service,
                    status_code=response.status_code,
                )
            chunks.append(chunk)
        return b"".join(chunks)


def parse_time(value: Any) -> datetime | None:
    """Parse the timestamps our vendors send, leniently; None when absent or unreadable.

    Accepts ISO 8601 with or without zone (naive means UTC), Code Stream's
    ``2019-09-16 09:25:38.065065+00`` form, and epoch numbers (ms if large).
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        seconds = float(value)
        if seconds > 1e14:  # microseconds
            seconds /= 1e6
        elif seconds > 1e11:  # milliseconds
            seconds /= 1e3
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    text = value.strip().replace(" ", "T", 1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # "+00" or "+0530" offsets -> "+00:00" / "+05:30"
    if len(text) >= 3 and text[-3] in "+-" and text[-2:].isdigit() and "T" in text:
        text += ":00"
    elif len(text) >= 5 and text[-5] in "+-" and text[-4:].isdigit() and "T" in text:
        text = text[:-2] + ":" + text[-2:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
