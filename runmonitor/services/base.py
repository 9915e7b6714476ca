"""What every service module declares, and the base class of the service clients.

A service module is data plus a client: a pydantic connection model (secrets are
``SecretStr``), a pydantic create-request model carrying the vendor's constraints
(titles, descriptions and defaults feed the generated forms), a status table, its
capabilities, and a :class:`Service` subclass that talks to the vendor API through
:class:`~runmonitor.services.http.HttpSession`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import ssl
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any, ClassVar, Generic, Self, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationInfo

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
    Unsupported,
)
from runmonitor.domain.models import (
    Capability,
    RunAction,
    RunRef,
    RunSnapshot,
    WatchSnapshot,
    summarize_runs,
)
from runmonitor.domain.redact import secret_registry
from runmonitor.domain.status import StatusMap
from runmonitor.services.http import ErrorClassifier, HttpSession

log = logging.getLogger(__name__)

#: Attempts at a create whose client-chosen id makes sending it again safe.
MAX_CREATE_ATTEMPTS = 3
#: Pause before the second and third attempt, in seconds.
CREATE_BACKOFF = (0.25, 0.75)
#: The longest Retry-After a create retry honours; longer waits are left to the caller.
MAX_CREATE_RETRY_AFTER = 5.0

T = TypeVar("T")


def worth_resending(exc: ServiceError) -> bool:
    """Whether a create with a client-chosen id should be sent again after ``exc``.

    Uncertain outcomes (5xx, a broken connection, a timeout, an unreadable success) are
    retried; answers that a resend cannot change (sign-in, permission, not found, invalid,
    rate limited) are not.
    """
    if isinstance(exc, (AuthFailed, Forbidden, NotFound, InvalidRequest, RateLimited)):
        return False
    return exc.may_have_reached_service or isinstance(
        exc, (ServerError, ConnectionFailed, TimedOut, BadResponse)
    )


def _check_base_url(value: str) -> str:
    text = value.strip()
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("must include a host name, e.g. https://example.com")
    if parts.username or parts.password:
        raise ValueError("must not contain a user name or password; use the credential fields")
    if parts.query or parts.fragment:
        raise ValueError("must not contain a query string or fragment")
    try:
        parts.port  # noqa: B018 - raises ValueError for an invalid port
    except ValueError:
        raise ValueError("has an invalid port number") from None
    return text.rstrip("/")


BaseUrl = Annotated[str, AfterValidator(_check_base_url)]
"""An http(s) URL with a host, without credentials, query or trailing slash."""

#: A CA bundle larger than this is not a certificate file (certifi's whole bundle is ~300 KB).
MAX_CA_BUNDLE_BYTES = 16 * 1024 * 1024


#: Validation context for values read back from the settings file: the file behind
#: ``ca_bundle`` is then not checked (a CA file moved away must not make the whole settings file
#: invalid; the profile's requests fail with a clear message instead). Values a person enters
#: are validated without it.
STORED_CONTEXT: dict[str, Any] = {"stored": True}


def _check_ca_bundle(value: str | None, info: ValidationInfo) -> str | None:
    """An existing, readable PEM file of CA certificates; kept as typed ("~" allowed)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    # The messages never repeat the path: errors must not echo what was typed.
    try:
        path = ca_bundle_path(text)
    except ValueError:  # e.g. a NUL character
        raise ValueError("is not a valid file path") from None
    if not path.is_absolute():
        raise ValueError("must be a full path to a PEM file (it may start with ~)")
    if isinstance(info.context, dict) and info.context.get("stored"):
        return text
    try:
        if not path.exists():
            raise ValueError("no such file")
        if not path.is_file():
            raise ValueError("is not a regular file")
        if path.stat().st_size > MAX_CA_BUNDLE_BYTES:
            raise ValueError("is too large to be a certificate bundle")
        if not os.access(path, os.R_OK):
            raise ValueError("cannot be read (check its permissions)")
        ssl.create_default_context(cafile=str(path))
    except ssl.SSLError:
        raise ValueError("holds no PEM certificates (expected -----BEGIN CERTIFICATE----- blocks)") from None
    except OSError as exc:
        raise ValueError(f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    return text


def ca_bundle_path(value: str) -> Path:
    """The file a ``ca_bundle`` value names, with "~" expanded."""
    return Path(os.path.expanduser(value.strip()))


def _check_proxy(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("must start with http:// or https:// (SOCKS proxies are not supported)")
    if "@" in parts.netloc:
        raise ValueError(
            "must not contain a user name or password: they would be saved in the settings file "
            "in plain text (proxies that need a sign-in are not supported)"
        )
    if not parts.hostname:
        raise ValueError("must include a host name, e.g. http://proxy.example.com:3128")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("has an invalid port number") from None
    if port is None:
        raise ValueError("must include a port, e.g. http://proxy.example.com:3128")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("must be only scheme, host and port, e.g. http://proxy.example.com:3128")
    return f"{parts.scheme}://{parts.netloc}"


CaBundle = Annotated[str | None, AfterValidator(_check_ca_bundle)]
"""The path of a readable PEM file of CA certificates, or None."""
ProxyUrl = Annotated[str | None, AfterValidator(_check_proxy)]
"""An http(s) proxy URL with host and port and without credentials, or None."""


def is_loopback_host(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServiceConfig(BaseModel):
    """Connection fields common to every service. Subclasses add their own."""

    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, validate_default=True, hide_input_in_errors=True
    )

    base_url: BaseUrl = Field(title="Base URL", description="Address of the service's API.")
    verify_tls: bool = Field(
        default=True,
        title="Verify TLS certificates",
        description="Turn off only for a test server you trust; the connection is then not private.",
    )
    timeout_seconds: float = Field(
        default=15.0, gt=0, le=300, title="Timeout (s)", description="How long to wait for an answer."
    )
    ca_bundle: CaBundle = Field(
        default=None,
        title="Custom CA certificates (PEM file)",
        description="Also trust the certificate authorities in this PEM file for this service, e.g. "
        "your company's CA. Empty: only the default trust store, which is the Mozilla CA list "
        "shipped with RunMonitor (certifi), or the file or folder named by the SSL_CERT_FILE or "
        "SSL_CERT_DIR environment variable when one is set; certificates added to the operating "
        "system's store are not used.",
    )
    proxy: ProxyUrl = Field(
        default=None,
        title="Proxy",
        description="Send this profile's requests through this proxy, e.g. "
        "http://proxy.example.com:3128 (no user name or password). Empty: the HTTPS_PROXY, "
        "HTTP_PROXY, ALL_PROXY and NO_PROXY environment variables apply. A proxy set here is used "
        "for every request of this profile; NO_PROXY does not apply to it.",
    )

    @classmethod
    def secret_field_names(cls) -> list[str]:
        names = []
        for name, info in cls.model_fields.items():
            annotation = info.annotation
            if annotation is SecretStr or (
                getattr(annotation, "__args__", None) and SecretStr in annotation.__args__  # type: ignore[union-attr]
            ):
                names.append(name)
        return names

    def secret_values(self) -> list[str]:
        values = []
        for name in self.secret_field_names():
            secret = getattr(self, name)
            if isinstance(secret, SecretStr):
                values.append(secret.get_secret_value())
        return values

    def warnings(self) -> list[str]:
        """Things a person should be told about this connection (shown beside the profile)."""
        notes = []
        if urlsplit(self.base_url).scheme == "http" and not is_loopback_host(self.base_url):
            notes.append("Plain http:// to a remote host: credentials and data travel unencrypted.")
        if not self.verify_tls:
            notes.append("TLS certificate verification is off for this connection.")
            if self.ca_bundle:
                notes.append("The custom CA certificates are not used while TLS verification is off.")
        # A proxy sees plain http:// traffic in full, even to a loopback base URL (that one has no
        # warning above). https:// goes through the proxy in a CONNECT tunnel: the proxy learns
        # the host and port, never the content, so an http:// proxy URL is not a warning itself.
        if self.proxy and urlsplit(self.base_url).scheme == "http" and is_loopback_host(self.base_url):
            notes.append("Plain http:// through a proxy: the proxy can read credentials and data.")
        return notes


class CreateRequest(BaseModel):
    """Base of the create-run request models."""

    # Inputs can hold secrets (a pipeline input called "password"): never echo them in errors.
    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, validate_default=True, hide_input_in_errors=True
    )

    def target(self) -> str:
        """The pipeline/job/data flow this request starts a run of (shown in tables)."""
        raise NotImplementedError


ConfigT = TypeVar("ConfigT", bound=ServiceConfig)
RequestT = TypeVar("RequestT", bound=CreateRequest)


class Service(ABC, Generic[ConfigT, RequestT]):
    """A client for one vendor API, bound to one connection."""

    key: ClassVar[str]
    display_name: ClassVar[str]
    vendor: ClassVar[str]
    summary: ClassVar[str]
    target_label: ClassVar[str]
    #: Where the service's tab stands (lowest first); ties go by key.
    order: ClassVar[int] = 100
    #: The target that means "every target" (a watch of the whole account), when the service
    #: has one; the watch field shows it as its placeholder and uses it when left empty.
    all_targets: ClassVar[str | None] = None
    config_model: ClassVar[type[ServiceConfig]]
    request_model: ClassVar[type[CreateRequest]]
    status_map: ClassVar[StatusMap]
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    actions: ClassVar[tuple[RunAction, ...]] = ()
    #: The action a "Cancel" button maps to, when the service has one.
    cancel_action: ClassVar[RunAction | None] = None

    def __init__(self, config: ConfigT, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        secret_registry.register(config.secret_values())
        self.http = HttpSession(
            self.key,
            self.api_root(),
            auth=self.build_auth(transport),
            headers=self.extra_headers(),
            timeout=config.timeout_seconds,
            verify=config.verify_tls,
            ca_bundle=config.ca_bundle,
            proxy=config.proxy,
            transport=transport,
            classify=self.classify_error,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.config.base_url!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- hooks for subclasses -------------------------------------------------------------
    def api_root(self) -> str:
        """The URL every API path is relative to (default: the configured base URL)."""
        return self.config.base_url

    def build_auth(self, transport: httpx.AsyncBaseTransport | None) -> httpx.Auth | None:
        return None

    def extra_headers(self) -> dict[str, str]:
        return {}

    @property
    def classify_error(self) -> ErrorClassifier | None:
        return None

    # -- the capability every service has ------------------------------------------------
    @abstractmethod
    async def create_run(self, request: RequestT) -> RunSnapshot:
        """Start (or report) a run. Sent once unless a retry is provably safe."""

    @abstractmethod
    async def get_status(self, ref: RunRef) -> RunSnapshot:
        """Read one run's current status."""

    @abstractmethod
    async def check_connection(self) -> str:
        """Make one cheap authenticated call; return a short description of what answered."""

    # -- optional capabilities ------------------------------------------------------------
    async def list_runs(self, target: str, *, limit: int = 20) -> list[RunSnapshot]:
        """The most recent runs of ``target``, newest first."""
        raise Unsupported(f"{self.display_name} cannot list runs", service=self.key)

    async def watch(self, target: str, *, limit: int = 20) -> WatchSnapshot:
        """The recent runs of a pipeline/job, including those someone else started."""
        if Capability.LIST_RUNS not in self.capabilities:
            raise Unsupported(f"{self.display_name} cannot watch a {self.target_label}", service=self.key)
        runs = await self.list_runs(target, limit=limit)
        return summarize_runs(self.key, target, runs)

    async def perform(self, ref: RunRef, action: RunAction, *, reason: str | None = None) -> RunSnapshot:
        """Act on a run (cancel, pause, …) and return its status afterwards."""
        raise Unsupported(f"{self.display_name} cannot {action.value} a run", service=self.key)

    def client_run_id(self, request: RequestT) -> str | None:
        """The id the client chose for the run this request creates, where the service takes one."""
        return None

    def ref_for_client_id(self, target: str, client_run_id: str) -> RunRef:
        """How to ask about a run by the id the client chose for it."""
        return self.ref(target, client_run_id)

    def list_target_for(self, request: RequestT) -> str:
        """What to list to find the runs this request creates (default: its target)."""
        return request.target()

    def prepare_request(self, request: RequestT) -> RequestT:
        """The request as it will be sent: with its client-chosen id filled in, where the
        service takes one. Callers store this before sending, so that a create whose answer
        was lost can be matched after a crash; :meth:`create_run` calls it too."""
        return request

    async def create_idempotently(
        self,
        send: Callable[[], Awaitable[T]],
        *,
        is_duplicate: Callable[[ServiceError], bool],
        read_back: Callable[[], Awaitable[T]],
        duplicate_message: str,
        label: str,
    ) -> T:
        """Send a create whose id the client chose, retrying uncertain failures with that id.

        An "already exists" answer after an attempt that may have reached the service means
        that attempt worked: the run is read back. The same answer when nothing can have
        reached the service means the id was reused: :class:`InvalidRequest`. When it gives
        up, the error says whether *any* attempt may have created the run.
        """
        reached = False
        for attempt in range(1, MAX_CREATE_ATTEMPTS + 1):
            try:
                return await send()
            except ServiceError as exc:
                if is_duplicate(exc):
                    if not reached:
                        raise InvalidRequest(
                            duplicate_message,
                            service=self.key,
                            status_code=exc.status_code,
                            request_id=exc.request_id,
                        ) from exc
                    log.info("%s: %s already exists after a retry; reading it back", self.key, label)
                    try:
                        return await read_back()
                    except ServiceError as read_error:
                        read_error.may_have_reached_service = True  # it does exist
                        raise
                reached = reached or exc.may_have_reached_service
                if attempt == MAX_CREATE_ATTEMPTS or not worth_resending(exc):
                    exc.may_have_reached_service = reached
                    raise
                delay = CREATE_BACKOFF[min(attempt - 1, len(CREATE_BACKOFF) - 1)]
                retry_after = getattr(exc, "retry_after", None)
                if isinstance(retry_after, (int, float)):
                    delay = max(delay, min(float(retry_after), MAX_CREATE_RETRY_AFTER))
                log.info(
                    "%s: create of %s failed (%s), attempt %d of %d; sending it again with the same id",
                    self.key,
                    label,
                    exc.kind,
                    attempt,
                    MAX_CREATE_ATTEMPTS,
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def run_url(self, ref: RunRef) -> str | None:
        """A link to the run in the vendor's own UI, where one can be built."""
        return None

    def ref(self, target: str, run_id: str, **extra: str) -> RunRef:
        return RunRef(service=self.key, target=target, run_id=run_id, extra=extra)

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {
            "key": cls.key,
            "name": cls.display_name,
            "vendor": cls.vendor,
            "target": cls.target_label,
            "capabilities": sorted(c.value for c in cls.capabilities),
            "actions": [a.value for a in cls.actions],
        }
