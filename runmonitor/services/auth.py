"""Authentication schemes used by the services, as httpx.Auth flows.

* :class:`HeaderAuth`: a fixed header (``Authorization: Bearer …``, ``x-api-key``, ``api-key``).
* :class:`TokenExchangeAuth`: get a bearer token from a login endpoint, cache it until it
  expires, and on a 401 get a fresh one and resend the request once. Subclasses:
  :class:`OAuth2ClientCredentials` (Cognite) and :class:`RefreshTokenLogin` (Code Stream).

A 401 proves the request was not processed, so resending it once with a new token is
safe even for creates.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Generator
from typing import Any

import httpx
from pydantic import SecretStr

from runmonitor.domain.errors import AuthFailed, BadResponse
from runmonitor.services.http import MAX_BODY_BYTES, decode_json, error_for_status, vendor_message


class HeaderAuth(httpx.Auth):
    """Sends one fixed header carrying a secret."""

    def __init__(self, header: str, secret: SecretStr, *, prefix: str = "") -> None:
        self.header = header
        self._secret = secret
        self.prefix = prefix

    def __repr__(self) -> str:
        return f"HeaderAuth({self.header!r}, '**********')"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self.header] = self.prefix + self._secret.get_secret_value()
        yield request


def bearer(token: SecretStr) -> HeaderAuth:
    return HeaderAuth("Authorization", token, prefix="Bearer ")


#: Set on a response whose 401 came right after a successful login (see TokenExchangeAuth).
FRESH_TOKEN_REFUSED = "runmonitor.fresh_token_refused"


class TokenExchangeAuth(httpx.Auth):
    """Bearer tokens obtained from a login endpoint, cached, renewed once on 401."""

    requires_response_body = True
    #: Used when the login answer does not say how long the token lives.
    default_lifetime = 25 * 60.0
    #: Renew this long before the announced expiry.
    skew = 60.0

    def __init__(self, service: str) -> None:
        self.service = service
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock: asyncio.Lock | None = None
        self.logins = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(service={self.service!r})"

    # Subclasses describe their login request and how to read its answer.
    def build_token_request(self) -> httpx.Request:
        raise NotImplementedError

    def read_token(self, body: Any) -> tuple[str, float | None]:
        raise NotImplementedError

    def invalidate(self) -> None:
        self._token = None
        self._expires_at = 0.0

    def _valid(self) -> bool:
        return self._token is not None and time.monotonic() < self._expires_at

    def _lock_for_loop(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def _login(self, original: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        login = self.build_token_request()
        # The login request is built outside the client: give it the client's timeouts and
        # user agent, or a login endpoint that never answers would hang forever.
        if "timeout" in original.extensions:
            login.extensions["timeout"] = original.extensions["timeout"]
        if "User-Agent" in original.headers:
            login.headers.setdefault("User-Agent", original.headers["User-Agent"])
        response = yield login
        # httpx has read the answer (an auth flow needs it whole); it is refused past the same
        # size cap, and parsed with the same JSON limits, as any answer.
        await response.aread()
        content = response.content
        if len(content) > MAX_BODY_BYTES:
            raise BadResponse("The login endpoint's answer is too large", service=self.service)
        body: Any
        try:
            body = decode_json(content, service=self.service, status_code=response.status_code)
        except BadResponse:
            body = content[:2000].decode("utf-8", errors="replace")
        if response.status_code in (400, 401, 403):
            detail = vendor_message(body)
            raise AuthFailed(
                "Sign-in failed: the login endpoint rejected the credentials"
                + (f": {detail}" if detail else ""),
                service=self.service,
                status_code=response.status_code,
            )
        if response.status_code != 200:
            raise error_for_status(self.service, response.status_code, body, response.headers)
        try:
            token, lifetime = self.read_token(body)
        except (KeyError, TypeError, ValueError) as exc:
            raise BadResponse("The login endpoint answered without a token", service=self.service) from exc
        if not token:
            raise BadResponse("The login endpoint answered without a token", service=self.service)
        self.logins += 1
        self._token = token
        life = lifetime if lifetime and lifetime > 0 else self.default_lifetime
        self._expires_at = time.monotonic() + max(1.0, life - min(self.skew, life / 2))

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        fresh = False
        async with self._lock_for_loop():
            if not self._valid():
                login = self._login(request)
                response = None
                try:
                    while True:
                        sent = await login.asend(response)  # type: ignore[arg-type]
                        response = yield sent
                except StopAsyncIteration:
                    pass
                fresh = True
            token = self._token
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401 or fresh:
            return
        # The cached token was rejected (expired or revoked): log in again, resend once.
        async with self._lock_for_loop():
            if self._token == token:
                self.invalidate()
                login = self._login(request)
                answer = None
                try:
                    while True:
                        sent = await login.asend(answer)  # type: ignore[arg-type]
                        answer = yield sent
                except StopAsyncIteration:
                    pass
            token = self._token
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            # Refused although the login just worked: the token, not the credentials, is the
            # problem (revoked, clock skew, a proxy that drops it). The caller can tell.
            response.extensions[FRESH_TOKEN_REFUSED] = True

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("RunMonitor only uses asynchronous HTTP clients")


class OAuth2ClientCredentials(TokenExchangeAuth):
    """OAuth 2.0 client credentials grant (RFC 6749 §4.4), as Cognite uses with Entra ID etc."""

    def __init__(
        self,
        service: str,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        scopes: list[str],
        audience: str | None = None,
    ) -> None:
        super().__init__(service)
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.scopes = scopes
        self.audience = audience

    def build_token_request(self) -> httpx.Request:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._client_secret.get_secret_value(),
        }
        if self.scopes:
            form["scope"] = " ".join(self.scopes)
        if self.audience:
            form["audience"] = self.audience
        return httpx.Request("POST", self.token_url, data=form, headers={"Accept": "application/json"})

    def read_token(self, body: Any) -> tuple[str, float | None]:
        token = body["access_token"]
        expires = body.get("expires_in")
        return str(token), float(expires) if expires is not None else None


class RefreshTokenLogin(TokenExchangeAuth):
    """VMware Aria Automation: ``POST /iaas/api/login {"refreshToken"}`` → ``{"token"}``."""

    def __init__(self, service: str, login_url: str, refresh_token: SecretStr) -> None:
        super().__init__(service)
        self.login_url = login_url
        self._refresh_token = refresh_token

    def build_token_request(self) -> httpx.Request:
        body = json.dumps({"refreshToken": self._refresh_token.get_secret_value()}).encode()
        return httpx.Request(
            "POST",
            self.login_url,
            content=body,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )

    def read_token(self, body: Any) -> tuple[str, float | None]:
        return str(body["token"]), None
