"""The one HTTP client factory and the one place that maps HTTP failures to our errors.

Every service client talks HTTP through :class:`HttpSession`. It owns an
``httpx.AsyncClient`` with explicit timeouts, connection limits and a user agent;
it caps response sizes and the time a whole answer may take, parses JSON defensively
(bounded nesting and number sizes), logs requests without secrets, and turns transport
exceptions and error statuses into :mod:`runmonitor.domain.errors` types (every httpx
exception: a catch-all at the boundary lets none escape raw). Vendor specifics
(error body shapes, Connhex's quota 429) come in through a ``classify`` hook, so the
mapping itself stays in this module.

TLS and proxies: certificates are verified by default against httpx's default trust
store (certifi's Mozilla list, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set); a
profile can add its own CA file or turn verification off. A profile's proxy is used for
all its requests; without one, the ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` /
``NO_PROXY`` environment variables apply.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import re
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from runmonitor import __version__
from runmonitor.domain.errors import (
    AuthFailed,
    BadResponse,
    ConnectionFailed,
    Forbidden,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServerError,
    ServiceError,
    TimedOut,
)
from runmonitor.domain.redact import redact_url, secret_registry

log = logging.getLogger(__name__)

USER_AGENT = f"RunMonitor/{__version__} (+desktop run monitor; httpx/{httpx.__version__})"
MAX_BODY_BYTES = 8 * 1024 * 1024
#: Deeper JSON is refused: no vendor nests this deep, and recursive code further on
#: (redaction, storage, display) must never meet a structure near the recursion limit.
MAX_JSON_DEPTH = 100
#: Longer integers are refused, whatever ``sys.set_int_max_str_digits`` says (ids and
#: timestamps have about 20 digits).
MAX_JSON_INT_DIGITS = 100
#: The whole exchange (connect, sign-in, headers, body) may take this many times the timeout
#: (which applies per read), and at least MIN_DEADLINE seconds: a server that trickles its
#: answer byte by byte is cut off, a slow but steady one is not.
DEADLINE_FACTOR = 4.0
MIN_DEADLINE = 30.0
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


#: bytes.translate table: digits to b"1", everything else to b"0" (a C-speed scan for long runs).
_DIGIT_MAP = bytes(0x31 if 0x30 <= byte <= 0x39 else 0x30 for byte in range(256))
_LONG_DIGIT_RUN = b"1" * (MAX_JSON_INT_DIGITS + 1)


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_INT_DIGITS:
        raise _TooManyDigits(len(text.lstrip("-")))
    return int(text)


class _TooManyDigits(ValueError):
    def __init__(self, digits: int) -> None:
        super().__init__(f"a number with {digits} digits")


def _nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists/objects more than ``limit`` deep (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
    return False


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _replace_lone_surrogates(value: Any) -> Any:
    """``value`` with every lone surrogate (from a ``\\ud800``-style escape) replaced by U+FFFD.

    Only called on values within :data:`MAX_JSON_DEPTH`, so the recursion is bounded.
    """
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_replace_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_replace_lone_surrogates(k): _replace_lone_surrogates(v) for k, v in value.items()}
    return value


def decode_json(content: bytes, *, service: str, status_code: int | None = None) -> Any:
    """Decode a JSON body, turning anything that is not sane JSON into BadResponse.

    Besides malformed JSON this refuses text that is not valid UTF-8 (or UTF-16/32), numbers
    longer than :data:`MAX_JSON_INT_DIGITS` and nesting deeper than :data:`MAX_JSON_DEPTH`;
    none of them can escape as ``RecursionError`` or ``ValueError``. Lone surrogates written as
    escapes (``"\\ud800"``, valid JSON but not valid text: SQLite and Qt refuse them) become
    U+FFFD.
    """
    if not content.strip():
        return None

    def bad(what: str) -> BadResponse:
        return BadResponse(f"The service answered with {what}", service=service, status_code=status_code)

    try:
        # Decoded strictly first: json.loads(bytes) would let encoded surrogates through.
        text = content.decode(json.detect_encoding(content))
        # Integers are checked one by one only when a long run of digits exists at all.
        long_digits = _LONG_DIGIT_RUN in content.translate(_DIGIT_MAP)
        value = json.loads(text, parse_int=_parse_int if long_digits else None)
    except RecursionError:
        # The C decoder stops at the interpreter's recursion limit, long before any harm.
        raise bad(f"JSON nested too deeply to read (the limit is {MAX_JSON_DEPTH} levels)") from None
    except _TooManyDigits as exc:
        raise bad(f"{exc} (the limit is {MAX_JSON_INT_DIGITS})") from None
    except UnicodeDecodeError as exc:
        raise bad("text that is not valid UTF-8") from exc
    except ValueError as exc:  # JSONDecodeError, or Python's own integer-digits limit
        if not isinstance(exc, json.JSONDecodeError) and "digits" in str(exc):
            raise bad(f"a number with too many digits (the limit is {MAX_JSON_INT_DIGITS})") from None
        snippet = content[:80].decode("utf-8", "replace").strip()
        kind = "an HTML page" if snippet.lower().startswith(("<!doctype", "<html")) else "not JSON"
        raise bad(kind) from exc
    if (
        isinstance(value, (dict, list))
        and content.count(b"[") + content.count(b"{") > MAX_JSON_DEPTH
        and _nesting_exceeds(value, MAX_JSON_DEPTH)
    ):
        raise bad(f"JSON nested too deeply to read (the limit is {MAX_JSON_DEPTH} levels)")
    if _SURROGATE_ESCAPE.search(content):
        value = _replace_lone_surrogates(value)
    return value


@dataclass(frozen=True)
class HttpResult:
    status_code: int
    headers: httpx.Headers
    body: Any
    request_id: str | None
    url: str


ErrorClassifier = Callable[[int, Any, httpx.Headers], ServiceError | None]
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
) -> ServiceError:
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
    if status == 407:
        return ConnectionFailed(
            msg("The proxy asks for a sign-in, which RunMonitor does not send; use a proxy without one"),
            may_have_reached_service=False,
            **kw,
        )
    if 400 <= status < 500:
        return InvalidRequest(msg("The service rejected the request"), **kw)
    if status >= 500:
        retry_after = parse_retry_after(headers.get("retry-after"))
        return ServerError(msg(f"The service failed (HTTP {status})"), retry_after=retry_after, **kw)
    return BadResponse(msg(f"Unexpected HTTP status {status}"), **kw)


def error_for_transport(service: str, exc: httpx.TransportError) -> ServiceError:
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
    if isinstance(exc, httpx.ProxyError):
        return ConnectionFailed(
            f"The proxy refused the connection ({_short(exc)}); check the profile's proxy "
            "or the HTTPS_PROXY / HTTP_PROXY environment variables",
            service=service,
            may_have_reached_service=False,
        )
    if isinstance(exc, httpx.ConnectError):
        tls = _tls_failure(exc)  # a failed handshake: nothing was sent
        if tls is not None:
            return ConnectionFailed(_tls_message(tls), service=service, may_have_reached_service=False)
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


#: Every exception httpx raises: its four roots (``RequestError`` and ``HTTPStatusError`` are
#: ``HTTPError``s). :meth:`HttpSession.request` maps all of them through :func:`error_for_httpx`.
HTTPX_ERRORS: tuple[type[Exception], ...] = (
    httpx.HTTPError,
    httpx.InvalidURL,
    httpx.CookieConflict,
    httpx.StreamError,
)


def error_for_httpx(service: str, exc: Exception) -> ServiceError:
    """The single mapping from any httpx exception (one of :data:`HTTPX_ERRORS`) to a RunMonitor
    error: transport failures as :func:`error_for_transport` says, and the rest by what they
    prove about the request."""
    if isinstance(exc, httpx.TransportError):
        return error_for_transport(service, exc)
    if isinstance(exc, httpx.InvalidURL):
        return ConnectionFailed(
            f"Invalid URL ({_short(exc)})", service=service, may_have_reached_service=False
        )
    if isinstance(exc, httpx.DecodingError):
        # An answer arrived (so the request reached the service) whose body does not decode as
        # its Content-Encoding says, e.g. labelled gzip but not gzip.
        return BadResponse(
            f"The service's answer could not be decoded ({_short(exc)}); its body does not match "
            "the Content-Encoding it was sent with",
            service=service,
            may_have_reached_service=True,
        )
    if isinstance(exc, httpx.TooManyRedirects):
        return BadResponse(
            f"The service redirected too many times ({_short(exc)}); check the base URL", service=service
        )
    # Anything else (a stream read twice, a cookie conflict, a status error raised by a hook)
    # proves nothing about whether the request went out.
    return ConnectionFailed(
        f"The HTTP exchange failed ({type(exc).__name__}: {_short(exc)})",
        service=service,
        may_have_reached_service=True,
    )


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return secret_registry.scrub(text[:200])


def _tls_failure(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind an httpx exception (httpx and httpcore chain it as the cause)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


#: OpenSSL verify codes with their own advice; others read as "not trusted".
_X509_NOT_YET_VALID = 9
_X509_EXPIRED = 10
_X509_HOST_MISMATCH = (62, 64)  # host name, IP address


def _tls_message(error: ssl.SSLError) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        reason = secret_registry.scrub(str(error.verify_message or error.reason or "verification failed"))
        code = error.verify_code
        if code in _X509_HOST_MISMATCH:
            return (
                f"The server's certificate is not valid for this address: {reason} — check the "
                "host name in the base URL"
            )
        if code in (_X509_EXPIRED, _X509_NOT_YET_VALID):
            return (
                f"The server's certificate is out of date: {reason} — the service's administrators "
                "must renew it (or check this computer's clock)"
            )
        return (
            f"The server's certificate is not trusted: {reason} — set a custom CA for this profile "
            "(Custom CA certificates) if your organisation uses its own, or, only for a test server "
            "you trust, turn off TLS verification"
        )
    reason = secret_registry.scrub(str(error.reason or error.strerror or type(error).__name__))
    return (
        f"The secure (TLS) connection to the service failed ({reason}); check the base URL: "
        "a service that does not speak TLS needs http://"
    )


def tls_context(verify: bool, ca_bundle: str | None = None) -> ssl.SSLContext:
    """The SSL context for a connection: httpx's default trust store (certifi's Mozilla list,
    or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set), plus ``ca_bundle`` when given; or, with
    ``verify`` False, a context that checks nothing.

    Never a path string for httpx: ``verify=<str>`` is deprecated in httpx 0.28. The custom CA
    is added to the default store rather than replacing it, so other hosts the profile reaches
    (a public OAuth token endpoint, say) stay trusted. Raises OSError or ssl.SSLError when
    ``ca_bundle`` cannot be read as PEM.
    """
    if not verify:
        return httpx.create_ssl_context(verify=False)
    context = httpx.create_ssl_context(verify=True, trust_env=True)
    if ca_bundle:
        context.load_verify_locations(cafile=os.path.expanduser(ca_bundle.strip()))
    return context


def _proxy(url: str | None, tls: ssl.SSLContext) -> httpx.Proxy | None:
    if not url:
        return None
    # The connection's trust (custom CA, or verification off) applies to an https:// proxy too;
    # httpcore refuses an SSL context for an http:// one.
    return httpx.Proxy(url, ssl_context=tls if url.lower().startswith("https://") else None)


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
        verify: bool = True,
        ca_bundle: str | None = None,
        proxy: str | None = None,
        max_connections: int = 8,
        transport: httpx.AsyncBaseTransport | None = None,
        classify: ErrorClassifier | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        deadline: float | None = None,
    ) -> None:
        self.service = service
        self.classify = classify
        self.max_body_bytes = max_body_bytes
        self.deadline = deadline if deadline is not None else max(timeout * DEADLINE_FACTOR, MIN_DEADLINE)
        base = base_url.rstrip("/") + "/"
        #: Why every request fails before it is sent (set when the CA file went away or changed
        #: after the profile was checked); failing per request keeps a bad file a profile problem
        #: shown where connection problems are, instead of an error while clients are opened.
        self.unusable: str | None = None
        try:
            tls = tls_context(verify, ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            self.unusable = (
                f"The custom CA certificates cannot be used ({_short(exc)}); check the profile's "
                "Custom CA certificates file"
            )
            tls = tls_context(verify)
        self.client = httpx.AsyncClient(
            base_url=base,
            auth=auth,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})},
            timeout=default_timeout(timeout),
            limits=default_limits(max_connections),
            verify=tls,
            proxy=_proxy(proxy, tls),
            trust_env=True,  # without a profile proxy, HTTPS_PROXY / NO_PROXY etc. apply
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
        if self.unusable is not None:
            raise ConnectionFailed(self.unusable, service=self.service, may_have_reached_service=False)
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
            async with asyncio.timeout(self.deadline):
                response = await self.client.send(request, stream=True)
                try:
                    content = await self._read_capped(response)
                finally:
                    await response.aclose()
        except HTTPX_ERRORS as exc:  # the catch-all: no httpx exception leaves this module
            raise error_for_httpx(self.service, exc) from exc
        except TimeoutError as exc:  # the deadline, not a per-read timeout (those are httpx errors)
            raise TimedOut(
                f"The service took too long to send its answer (over {self.deadline:g} s)",
                service=self.service,
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
        error = error_for_status(self.service, status, body, response.headers, self.classify)
        if isinstance(error, AuthFailed) and response.extensions.get("runmonitor.fresh_token_refused"):
            error.fresh_token_refused = True
        raise error

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
        try:
            seconds = float(value)  # a huge int overflows here
            if seconds > 1e14:  # microseconds
                seconds /= 1e6
            elif seconds > 1e11:  # milliseconds
                seconds /= 1e3
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
