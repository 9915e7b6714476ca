"""The project's own error types, under one root: :class:`RunMonitorError`.

Everything RunMonitor raises on purpose derives from the root, so a front end can tell an
expected failure (say it in plain words) from a bug (report it with its traceback).
Transport and HTTP failures are mapped to :class:`ServiceError` and its kinds in exactly one
place (:mod:`runmonitor.services.http`); everything above the service clients handles only
these types. Messages are meant for people and never contain secrets.
"""

from __future__ import annotations


class RunMonitorError(Exception):
    """The root of every error RunMonitor raises on purpose (its message is for people)."""


class ProfileGone(RunMonitorError):
    """A profile id that no longer names a profile (it was removed while work for it was pending)."""

    def __init__(self, profile_id: str) -> None:
        super().__init__(f"profile {profile_id} no longer exists")
        self.profile_id = profile_id


class ServiceError(RunMonitorError):
    """Base class of every error RunMonitor reports about a service.

    ``may_have_reached_service`` says whether the failed request could have been
    processed by the service anyway (a timeout after the request was sent, a
    dropped connection, a 5xx from a proxy, a success answer we could not read).
    A create whose error says False is proven not to have created anything and
    may be sent again; one that says True must not be retried blindly.
    """

    kind = "error"
    may_have_reached_service_default = True

    def __init__(
        self,
        message: str,
        *,
        service: str | None = None,
        status_code: int | None = None,
        request_id: str | None = None,
        may_have_reached_service: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.service = service
        self.status_code = status_code
        self.request_id = request_id
        self.may_have_reached_service = (
            self.may_have_reached_service_default
            if may_have_reached_service is None
            else may_have_reached_service
        )

    def __str__(self) -> str:
        parts = [self.message]
        if self.status_code is not None:
            parts.append(f"(HTTP {self.status_code})")
        if self.request_id:
            parts.append(f"[request id {self.request_id}]")
        return " ".join(parts)


class ConnectionFailed(ServiceError):
    """The service could not be reached, or the connection broke mid-request."""

    kind = "connection_failed"


class TimedOut(ServiceError):
    """The service did not answer in time."""

    kind = "timed_out"


class AuthFailed(ServiceError):
    """The credentials are missing, wrong or expired: sign-in is needed."""

    kind = "auth_failed"
    may_have_reached_service_default = False
    #: The service refused a token that its login endpoint had just issued: the credentials
    #: work, so this is worth retrying for a while before asking anyone to sign in.
    fresh_token_refused: bool = False


class Forbidden(ServiceError):
    """The credentials are valid but lack a permission."""

    kind = "forbidden"
    may_have_reached_service_default = False


class NotFound(ServiceError):
    """The pipeline, job, data flow, export or run does not exist."""

    kind = "not_found"
    may_have_reached_service_default = False


class InvalidRequest(ServiceError):
    """The service rejected the request as invalid (HTTP 400/409/422)."""

    kind = "invalid_request"
    may_have_reached_service_default = False


class RateLimited(ServiceError):
    """Too many requests; ``retry_after`` is the wait the service asked for, in seconds."""

    kind = "rate_limited"
    may_have_reached_service_default = False

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class QuotaReached(RateLimited):
    """A quota is full (e.g. Connhex's queued exports); wait for work to finish."""

    kind = "quota_reached"


class ServerError(ServiceError):
    """The service failed (HTTP 5xx). ``retry_after`` is set when the service sent one."""

    kind = "server_error"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class BadResponse(ServiceError):
    """The answer was not JSON, was too large, or did not have the expected shape."""

    kind = "bad_response"


class Unsupported(ServiceError):
    """The service has no such capability (e.g. InVision has no cancel)."""

    kind = "unsupported"
    may_have_reached_service_default = False


ERROR_KINDS: tuple[type[ServiceError], ...] = (
    ConnectionFailed,
    TimedOut,
    AuthFailed,
    Forbidden,
    NotFound,
    InvalidRequest,
    RateLimited,
    QuotaReached,
    ServerError,
    BadResponse,
    Unsupported,
)


def check_outcome(exc: BaseException) -> tuple[str, str]:
    """How a failed connection check reads to a person: ("signin" | "unreachable" | "failed", text).

    Used by ``runmonitor profiles test``, the window's Test connection and the profile dialog.
    """
    message = str(exc).strip() or type(exc).__name__

    def said(prefix: str) -> str:
        return message if message.lower().startswith(prefix.lower()) else f"{prefix}: {message}"

    if isinstance(exc, (AuthFailed, Forbidden)):  # a missing secret is an AuthFailed too
        return "signin", said("Sign-in needed")
    if isinstance(exc, (ConnectionFailed, TimedOut)):
        return "unreachable", said("Unreachable")
    return "failed", said("Failed")
