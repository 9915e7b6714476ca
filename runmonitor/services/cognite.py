"""Cognite Data Fusion: extraction pipeline runs.

A CDF "run" is a status *report* that the client posts, not something CDF executes.
Reporting a run is ``POST /api/v1/projects/{project}/extpipes/runs`` with exactly one
item ``{externalId, status: success|failure|seen, message?, createdTime?}``. There is
no GET by run id: a report is followed by reading the pipeline's reports back with
``POST …/extpipes/runs/list`` (newest first), filtered by the pipeline's externalId
and ``createdTime.min`` = our report's createdTime, which we keep in ``RunRef.extra``
so a restart can poll again.

How a report is followed: the reports at or after ours form the session ours belongs
to. The *first* ``success``/``failure`` report among them ends that session (our own
``success``/``failure`` report is terminal at once); until one arrives, the newest
report is a ``seen`` heartbeat and the run is RUNNING. Taking the first terminal report
rather than simply the newest report keeps a run finished when a later extractor
session starts heartbeating on the same pipeline. A RUNNING run carries the time of
that newest ``seen`` report as ``heartbeat_at``, so a poller can tell when an extractor
went silent.

How a pipeline's runs are listed (``list_runs``, and so ``watch``): CDF has no notion of
a run beyond its reports, so the reports are grouped into extractor *sessions*. The
newest reports are read (newest first, a bounded number of pages, until enough
``success``/``failure`` reports are in hand) and walked oldest first: a session starts
at the oldest report read or at the report following a ``success``/``failure`` report,
takes in the ``seen`` heartbeats that follow, and ends with (and includes) the first
``success``/``failure`` report. A lone ``success``/``failure`` report is a session of
one. A session is one run: its ``run_id`` is its first report's id and its reference
carries that report's createdTime, so following it with ``get_status`` gives the same
answer as the listing (status, message and ``ended_at`` from the terminal report, or
RUNNING with ``heartbeat_at`` from the newest heartbeat). Sessions are inferred from
the order of the reports alone: two extractors reporting on one pipeline at the same
time merge into one session, and when the page budget runs out inside a very long
session, the oldest session listed starts at the oldest report read.

Creates are sent once and never retried: there is no client-chosen id, and a repeated
report is a duplicate (Cognite's own SDK retries this path only on 429, which we leave
to the caller because a 429 proves nothing was created).

Auth: OAuth 2.0 client credentials (the usual way), a bearer token obtained elsewhere,
or the legacy ``api-key`` header that Cognite retired in 2023 (Python SDK 6.0).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from runmonitor.domain.errors import (
    AuthFailed,
    BadResponse,
    Forbidden,
    InvalidRequest,
    NotFound,
    ServiceError,
)
from runmonitor.domain.models import Capability, RunRef, RunSnapshot, WatchSnapshot
from runmonitor.domain.redact import redact_json, secret_registry
from runmonitor.domain.status import RunStatus, StatusMap
from runmonitor.services.auth import HeaderAuth, OAuth2ClientCredentials, bearer
from runmonitor.services.base import BaseUrl, CreateRequest, Service, ServiceConfig
from runmonitor.services.http import ErrorClassifier, parse_time, request_id_of, vendor_message

STATUS_MAP = StatusMap(
    {
        "success": (RunStatus.SUCCEEDED, None),
        "failure": (RunStatus.FAILED, None),
        # A liveness heartbeat: the extractor is alive and has not finished yet.
        "seen": (RunStatus.RUNNING, "heartbeat"),
    },
    # The API answers in lower case; the response ``status`` is a free string, so be
    # tolerant of other casings (some SDKs spell the enum in upper case).
    case_sensitive=False,
)

TERMINAL_REPORTS = frozenset({"success", "failure"})

#: Reports read per page when following a run (the API's default page size).
FOLLOW_PAGE = 100
#: Pages of terminal reports read at most when many reports followed ours.
MAX_TERMINAL_PAGES = 5
#: Reports per page when listing sessions (the API's maximum; the first page is sized for
#: about ten reports per session wanted), and the most pages read.
LIST_PAGE = 1000
MAX_LIST_PAGES = 5
#: How far in the future a report's createdTime may be (clock skew between machines).
MAX_FUTURE_SKEW = timedelta(minutes=5)

# "Valid URL names contains between 3 and 32 characters, and may only contain English
# letters, digits and hyphens, must contain at least one letter and may not start or end
# with a hyphen." [CDF spec, ProjectUrlName]
_PROJECT_RE = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9](?:[A-Za-z0-9-]{1,30})[A-Za-z0-9]$")

ACL_HINT = (
    "reporting a run needs extractionrunsAcl:WRITE and datasetsAcl:READ, reading runs back "
    "extractionrunsAcl:READ, watching a pipeline extractionpipelinesAcl:READ"
)


class AuthKind(StrEnum):
    CLIENT_CREDENTIALS = "client_credentials"
    TOKEN = "token"
    API_KEY = "api_key"


class ReportStatus(StrEnum):
    """The three values Cognite accepts for a run report [CDF spec ``ExtPipeRunStatus``]."""

    SUCCESS = "success"
    FAILURE = "failure"
    SEEN = "seen"


def _required(kind: AuthKind, field: str, value: object, info: ValidationInfo) -> None:
    if info.data.get("auth_kind") is kind and (value is None or value == "" or value == []):
        raise PydanticCustomError(
            "missing_for_auth_kind",
            "{field} is required when signing in with {kind}",
            {"field": field, "kind": kind.value},
        )


class CogniteConnection(ServiceConfig):
    base_url: BaseUrl = Field(
        title="Cluster URL",
        description="The address of your CDF cluster, without /api/v1: e.g. https://api.cognitedata.com "
        "or https://westeurope-1.cognitedata.com. Your CDF admin or the Fusion sign-in page "
        "(the 'cluster' in its address) tells you which.",
    )
    project: str = Field(
        title="Project",
        description="The CDF project's URL name (3-32 letters, digits or hyphens), as shown after "
        "fusion.cognite.com/ in the browser.",
    )
    auth_kind: AuthKind = Field(
        default=AuthKind.CLIENT_CREDENTIALS,
        title="Sign in with",
        description="client_credentials: an app registration in your identity provider (recommended). "
        "token: a bearer token you obtained elsewhere (expires, usually within an hour). "
        "api_key: legacy CDF API key; Cognite retired API keys in 2023.",
    )
    token_url: BaseUrl | None = Field(
        default=None,
        title="Token URL",
        description="Your identity provider's OAuth 2.0 token endpoint, e.g. "
        "https://login.microsoftonline.com/<tenant id>/oauth2/v2.0/token for Entra ID.",
    )
    client_id: str | None = Field(
        default=None,
        title="Client ID",
        description="The application (client) ID of the app registration that has access to the project.",
    )
    client_secret: SecretStr | None = Field(
        default=None,
        title="Client secret",
        description="A client secret of that app registration (its value, not its ID).",
    )
    scopes: list[str] = Field(
        default_factory=list,
        title="Scopes",
        description="OAuth scopes to ask for. Leave empty for '<cluster URL>/.default', which is what "
        "Entra ID expects for CDF.",
    )
    audience: str | None = Field(
        default=None,
        title="Audience",
        description="Only for identity providers that need one (e.g. Auth0): the API audience. "
        "Leave empty for Entra ID.",
    )
    token: SecretStr | None = Field(
        default=None,
        title="Bearer token",
        description="An access token for the project, without the 'Bearer ' prefix. "
        "It cannot be renewed by RunMonitor: replace it when it expires.",
    )
    api_key: SecretStr | None = Field(
        default=None,
        title="API key (legacy)",
        description="A legacy CDF API key, sent in the api-key header. Cognite retired API keys in "
        "2023; only old or self-hosted setups still accept them.",
    )

    @field_validator("base_url")
    @classmethod
    def _no_api_path(cls, value: str) -> str:
        if "/api/v1" in urlsplit(value).path:
            raise PydanticCustomError(
                "cluster_url",
                "enter only the cluster URL (e.g. https://westeurope-1.cognitedata.com), "
                "without /api/v1/projects/…",
            )
        return value

    @field_validator("project")
    @classmethod
    def _project_name(cls, value: str) -> str:
        if not _PROJECT_RE.match(value):
            raise PydanticCustomError(
                "project_name",
                "a CDF project name has 3-32 characters: English letters, digits and hyphens, "
                "at least one letter, not starting or ending with a hyphen",
            )
        return value

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: list[str]) -> list[str]:
        cleaned = [scope.strip() for scope in value]
        if any(not scope or any(ch.isspace() for ch in scope) for scope in cleaned):
            raise PydanticCustomError("scope", "each scope must be one non-empty word without spaces")
        return cleaned

    @field_validator("token_url", "client_id", "client_secret")
    @classmethod
    def _client_credentials_fields(cls, value: object, info: ValidationInfo) -> object:
        field = {"token_url": "Token URL", "client_id": "Client ID", "client_secret": "Client secret"}
        secret = value.get_secret_value() if isinstance(value, SecretStr) else value
        _required(AuthKind.CLIENT_CREDENTIALS, field[info.field_name or ""], secret, info)
        return value

    @field_validator("token")
    @classmethod
    def _token_field(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        _required(AuthKind.TOKEN, "Bearer token", value.get_secret_value() if value else None, info)
        return value

    @field_validator("api_key")
    @classmethod
    def _api_key_field(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        _required(AuthKind.API_KEY, "API key", value.get_secret_value() if value else None, info)
        return value

    def effective_scopes(self) -> list[str]:
        return self.scopes or [f"{self.base_url}/.default"]

    def warnings(self) -> list[str]:
        notes = super().warnings()
        if self.auth_kind is AuthKind.API_KEY:
            notes.append(
                "API keys are legacy: Cognite retired them in 2023 (Python SDK 6.0). "
                "Use client credentials if your project allows it."
            )
        if self.auth_kind is AuthKind.TOKEN:
            notes.append("A pasted bearer token expires (usually within an hour) and cannot be renewed.")
        if (
            self.auth_kind is AuthKind.CLIENT_CREDENTIALS
            and self.token_url
            and urlsplit(self.token_url).scheme == "http"
            and urlsplit(self.token_url).hostname not in ("127.0.0.1", "localhost", "::1")
        ):
            notes.append("Plain http:// token URL: the client secret travels unencrypted.")
        return notes


class CogniteRunReport(CreateRequest):
    external_id: str = Field(
        title="Extraction pipeline",
        description="The external ID of the extraction pipeline to report for (1-255 characters), as "
        "shown on the pipeline's page in CDF (Data management → Integrate → Extraction pipelines).",
        min_length=1,
        max_length=255,
    )
    status: ReportStatus = Field(
        default=ReportStatus.SEEN,
        title="Status",
        description="seen: the extractor is alive and working (a heartbeat; RunMonitor then follows the "
        "pipeline's reports until success or failure). success / failure: report a finished run.",
    )
    message: str | None = Field(
        default=None,
        title="Message",
        description="Optional text shown with the run in CDF, e.g. the reason of a failure "
        "(at most 1000 characters).",
        max_length=1000,
    )
    created_time: datetime | None = Field(
        default=None,
        title="Time of the report",
        description="When the reported event happened; empty means now (CDF's clock). A time without a "
        "zone is taken as UTC. May not lie more than a few minutes in the future.",
    )

    @field_validator("message")
    @classmethod
    def _empty_message_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("created_time")
    @classmethod
    def _created_time(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        if value < datetime(1970, 1, 1, tzinfo=UTC):
            raise PydanticCustomError("created_time", "must not be before 1970")
        # A report dated in the future would sort above every real report sent after it
        # and hide them from anyone reading the pipeline's latest status; allow only clock skew.
        if value > datetime.now(UTC) + MAX_FUTURE_SKEW:
            raise PydanticCustomError(
                "created_time", "must not be more than 5 minutes in the future (check the clock)"
            )
        return value

    def created_time_ms(self) -> int | None:
        if self.created_time is None:
            return None
        return int(self.created_time.timestamp() * 1000)

    def body(self) -> dict[str, Any]:
        """The createRuns request body: always exactly one item."""
        item: dict[str, Any] = {"externalId": self.external_id, "status": self.status.value}
        if self.message is not None:
            item["message"] = self.message
        created = self.created_time_ms()
        if created is not None:
            item["createdTime"] = created
        return {"items": [item]}

    def target(self) -> str:
        return self.external_id


# -- parsing helpers --------------------------------------------------------------------


def _error_object(body: Any) -> dict[str, Any] | None:
    """Cognite's ``{"error": {...}}`` or the unwrapped ``DefaultError`` the extpipes spec names."""
    if not isinstance(body, dict):
        return None
    inner = body.get("error")
    if isinstance(inner, dict):
        return inner
    if "code" in body or "missing" in body or "duplicated" in body:
        return body
    return None


def _describe_identities(values: list[Any]) -> str:
    names = []
    for value in values[:5]:
        if isinstance(value, dict):
            if "externalId" in value:
                names.append(repr(str(value["externalId"])))
            elif "id" in value:
                names.append(f"id {value['id']}")
    if len(values) > 5:
        names.append(f"and {len(values) - 5} more")
    return ", ".join(names) or "(unnamed)"


def _ms(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _is_terminal(item: dict[str, Any]) -> bool:
    return str(item.get("status")).lower() in TERMINAL_REPORTS


def _sessions(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Reports (newest first, as the API sorts them) grouped into sessions, oldest first.

    A session starts at the oldest report or after a ``success``/``failure`` report and
    ends with (and includes) the next ``success``/``failure`` report; only the newest
    session can be open.
    """
    sessions: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    for item in reversed(items):
        current.append(item)
        if _is_terminal(item):
            sessions.append(current)
            current = []
    if current:
        sessions.append(current)
    return sessions


def _report_id(item: dict[str, Any]) -> str:
    value = item.get("id")
    if isinstance(value, bool) or not isinstance(value, (int, str)) or str(value) == "":
        raise BadResponse("Cognite answered with a run report without an id", service="cognite")
    return str(value)


class Cognite(Service[CogniteConnection, CogniteRunReport]):
    key = "cognite"
    display_name = "Cognite Data Fusion"
    vendor = "Cognite"
    summary = (
        "Report extraction pipeline runs (success, failure or a 'seen' heartbeat) and watch "
        "a pipeline's reports, including those sent by extractors elsewhere."
    )
    target_label = "Extraction pipeline"
    order = 10
    config_model = CogniteConnection
    request_model = CogniteRunReport
    status_map = STATUS_MAP
    capabilities = frozenset({Capability.LIST_RUNS, Capability.WATCH})

    def __init__(
        self, config: CogniteConnection, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        #: Pipeline externalId → internal id, learned from watch(); used for links to Fusion.
        self._pipeline_ids: dict[str, int] = {}
        super().__init__(config, transport=transport)

    # -- hooks --------------------------------------------------------------------------
    def api_root(self) -> str:
        return f"{self.config.base_url}/api/v1/projects/{self.config.project}"

    def build_auth(self, transport: httpx.AsyncBaseTransport | None) -> httpx.Auth:
        config = self.config
        if config.auth_kind is AuthKind.TOKEN:
            assert config.token is not None  # the config model requires it for this kind
            return bearer(config.token)
        if config.auth_kind is AuthKind.API_KEY:
            assert config.api_key is not None
            return HeaderAuth("api-key", config.api_key)
        assert config.token_url and config.client_id and config.client_secret is not None
        return OAuth2ClientCredentials(
            self.key,
            config.token_url,
            config.client_id,
            config.client_secret,
            config.effective_scopes(),
            audience=config.audience,
        )

    def extra_headers(self) -> dict[str, str]:
        # Cognite's SDKs name the calling application in x-cdp-app (shown in CDF's request logs).
        return {"x-cdp-app": "RunMonitor"}

    @property
    def classify_error(self) -> ErrorClassifier:
        return self._classify

    def _classify(self, status: int, body: Any, headers: httpx.Headers) -> ServiceError | None:
        error = _error_object(body)
        kw: dict[str, Any] = {
            "service": self.key,
            "status_code": status,
            "request_id": request_id_of(headers),
        }
        detail = vendor_message(body)
        project = self.config.project

        def scrub(text: str) -> str:
            return secret_registry.scrub(text)

        if status in (400, 404) and error is not None:
            missing = error.get("missing")
            if isinstance(missing, list) and missing:
                # Cognite answers an unknown externalId with 400 and "missing"; for a person
                # that is simply "this pipeline does not exist (or you cannot see it)".
                return NotFound(
                    scrub(
                        f"Extraction pipeline {_describe_identities(missing)} does not exist in project "
                        f"{project!r} (or these credentials cannot see it)"
                    ),
                    **kw,
                )
            duplicated = error.get("duplicated")
            if isinstance(duplicated, list) and duplicated:
                return InvalidRequest(
                    scrub(f"Cognite refused duplicates: {_describe_identities(duplicated)}"), **kw
                )
        if status == 401 and self.config.auth_kind is AuthKind.API_KEY:
            return AuthFailed(
                "Sign-in needed: Cognite rejected the API key. API keys are legacy (retired by Cognite in "
                "2023); switch this profile to client credentials if the project no longer accepts them",
                **kw,
            )
        if status == 401 and self.config.auth_kind is AuthKind.TOKEN:
            return AuthFailed(
                "Sign-in needed: Cognite rejected the bearer token (expired or not valid for project "
                f"{project!r}); paste a fresh token",
                **kw,
            )
        if status == 403:
            text = f"The credentials lack access to project {project!r} ({ACL_HINT})"
            return Forbidden(scrub(f"{text}: {detail}" if detail else text), **kw)
        return None

    # -- the run reports ----------------------------------------------------------------
    def _report_ref(self, target: str, first: dict[str, Any]) -> RunRef:
        """The reference of the run that starts with report ``first``."""
        extra = {"reported": str(first.get("status"))}
        created = _ms(first.get("createdTime"))
        if created is not None:
            extra["created_time"] = str(created)
        pipeline_id = self._pipeline_ids.get(target)
        if pipeline_id is not None:
            extra["pipeline_id"] = str(pipeline_id)
        return self.ref(target, _report_id(first), **extra)

    def _decided(self, ref: RunRef, deciding: dict[str, Any], created: int | None, raw: Any) -> RunSnapshot:
        """The run ``ref`` (first reported at ``created``) as report ``deciding`` leaves it."""
        mapped = self.status_map.map(deciding.get("status"))
        message = deciding.get("message") if isinstance(deciding.get("message"), str) else None
        decided_at = parse_time(_ms(deciding.get("createdTime")))
        heartbeat = not mapped.terminal and str(deciding.get("status")).lower() == ReportStatus.SEEN
        started = parse_time(created)
        return RunSnapshot.from_mapped(
            ref,
            mapped,
            message=message,
            created_at=started,
            started_at=started,
            ended_at=decided_at if mapped.terminal else None,
            heartbeat_at=decided_at if heartbeat else None,
            raw=raw,
        )

    def _item_snapshot(self, target: str, item: dict[str, Any], raw: Any) -> RunSnapshot:
        ref = self._report_ref(target, item)
        return self._decided(ref, item, _ms(item.get("createdTime")), raw)

    @staticmethod
    def _items(body: Any, what: str) -> list[dict[str, Any]]:
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            raise BadResponse(f"Cognite answered {what} without an items list", service="cognite")
        items: list[dict[str, Any]] = []
        for item in body["items"]:
            if not isinstance(item, dict):
                raise BadResponse(f"Cognite answered {what} with malformed items", service="cognite")
            items.append(item)
        return items

    async def create_run(self, request: CogniteRunReport) -> RunSnapshot:
        # Sent once, never retried: a repeated report is a duplicate run in CDF.
        result = await self.http.request("POST", "extpipes/runs", json_body=request.body(), ok=(200, 201))
        items = self._items(result.body, "the run report")
        if len(items) != 1:
            raise BadResponse(
                f"Cognite answered the run report with {len(items)} items instead of 1", service=self.key
            )
        item = dict(items[0])
        item.setdefault("status", request.status.value)
        if _ms(item.get("createdTime")) is None and request.created_time_ms() is not None:
            item["createdTime"] = request.created_time_ms()
        return self._item_snapshot(request.external_id, item, result.body)

    async def _runs_page(
        self,
        target: str,
        *,
        limit: int,
        created_min: int | None = None,
        statuses: list[str] | None = None,
        cursor: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None, Any]:
        filter_: dict[str, Any] = {"externalId": target}
        if created_min is not None:
            filter_["createdTime"] = {"min": created_min}
        if statuses:
            filter_["statuses"] = statuses
        body: dict[str, Any] = {"filter": filter_, "limit": limit}
        if cursor:
            body["cursor"] = cursor
        result = await self.http.request("POST", "extpipes/runs/list", json_body=body)
        items = self._items(result.body, "the list of runs")
        next_cursor = result.body.get("nextCursor")
        return items, next_cursor if isinstance(next_cursor, str) and next_cursor else None, result.body

    async def get_status(self, ref: RunRef) -> RunSnapshot:
        created = _ms(ref.extra.get("created_time"))
        items, cursor, raw = await self._runs_page(ref.target, limit=FOLLOW_PAGE, created_min=created)
        if created is None:
            # A reference without the report time (should not happen): find our report by id.
            ours = next((i for i in items if str(i.get("id")) == ref.run_id), None)
            created = _ms(ours.get("createdTime")) if ours else None
            if ours is None or created is None:
                return self._unknown(ref, raw, "our report is not among the pipeline's latest reports")
            items = [i for i in items if (_ms(i.get("createdTime")) or 0) >= created]
            cursor = None
        # Newest first from the API; the session is read oldest first.
        ascending = list(reversed(items))
        first_terminal = next((i for i in ascending if _is_terminal(i)), None)
        if cursor is not None:
            # More reports followed ours than one page holds: the one that ended our session
            # may be older than this page, so look at the terminal reports only.
            first_terminal = await self._first_terminal(ref.target, created) or first_terminal
        if first_terminal is not None:
            deciding = first_terminal
        elif items:
            deciding = items[0]
        else:
            return self._unknown(ref, raw, "no report at or after ours")
        return self._decided(ref, deciding, created, raw)

    async def _first_terminal(self, target: str, created: int | None) -> dict[str, Any] | None:
        found: dict[str, Any] | None = None
        cursor: str | None = None
        for _ in range(MAX_TERMINAL_PAGES):
            items, cursor, _raw = await self._runs_page(
                target, limit=1000, created_min=created, statuses=sorted(TERMINAL_REPORTS), cursor=cursor
            )
            if items:
                found = items[-1]  # the oldest on this page
            if cursor is None:
                break
        return found

    def _unknown(self, ref: RunRef, raw: Any, detail: str) -> RunSnapshot:
        return RunSnapshot(ref=ref, status=RunStatus.UNKNOWN, vendor_status=None, detail=detail, raw=raw)

    async def list_runs(self, target: str, *, limit: int = 20) -> list[RunSnapshot]:
        """The newest extractor sessions of pipeline ``target``, one run each (see the module)."""
        limit = max(1, min(limit, 1000))
        items = await self._recent_reports(target, limit)
        runs = []
        for session in reversed(_sessions(items)[-limit:]):
            first, deciding = session[0], session[-1]
            ref = self._report_ref(target, first)
            runs.append(self._decided(ref, deciding, _ms(first.get("createdTime")), deciding))
        return runs

    async def _recent_reports(self, target: str, limit: int) -> list[dict[str, Any]]:
        """The pipeline's newest reports, newest first: enough for ``limit`` whole sessions.

        ``limit + 1`` terminal reports bound the newest ``limit`` sessions (the oldest of
        them starts after the last terminal report read); reading stops there, at the end
        of the reports, or after :data:`MAX_LIST_PAGES` pages.
        """
        items: list[dict[str, Any]] = []
        terminals = 0
        cursor: str | None = None
        page = min(LIST_PAGE, max(FOLLOW_PAGE, 10 * limit))
        for _ in range(MAX_LIST_PAGES):
            batch, cursor, _raw = await self._runs_page(target, limit=page, cursor=cursor)
            items.extend(batch)
            terminals += sum(1 for item in batch if _is_terminal(item))
            if cursor is None or terminals > limit:
                break
            page = LIST_PAGE
        return items

    async def watch(self, target: str, *, limit: int = 20) -> WatchSnapshot:
        result = await self.http.request(
            "POST", "extpipes/byids", json_body={"items": [{"externalId": target}]}
        )
        pipelines = self._items(result.body, "the pipeline lookup")
        pipeline = next((p for p in pipelines if p.get("externalId") == target), None)
        if pipeline is None:
            raise NotFound(
                f"Extraction pipeline {target!r} does not exist in project {self.config.project!r}",
                service=self.key,
            )
        pipeline_id = _ms(pipeline.get("id"))
        if pipeline_id is not None:
            self._pipeline_ids[target] = pipeline_id
        runs = await self.list_runs(target, limit=limit)
        last_message = pipeline.get("lastMessage")
        return WatchSnapshot(
            service=self.key,
            target=target,
            runs=runs,
            last_success=parse_time(_ms(pipeline.get("lastSuccess"))),
            last_failure=parse_time(_ms(pipeline.get("lastFailure"))),
            last_seen=parse_time(_ms(pipeline.get("lastSeen"))),
            last_message=last_message if isinstance(last_message, str) else None,
            raw=redact_json(pipeline),
        )

    async def check_connection(self) -> str:
        result = await self.http.request("POST", "extpipes/list", json_body={"limit": 1})
        self._items(result.body, "the pipeline list")
        host = urlsplit(self.config.base_url).hostname or self.config.base_url
        return (
            f"Signed in to CDF project {self.config.project!r} on {host}; extraction pipelines are readable"
        )

    def run_url(self, ref: RunRef) -> str | None:
        """The pipeline's page in Cognite Data Fusion (runs are listed there).

        Fusion addresses a pipeline by its internal id (``/{project}/extpipes/extpipe/{id}``,
        as Cognite's own UI code builds it) with the API cluster in ``?cluster=``. The id is
        known once the pipeline was watched; without it there is no link. Only for
        ``*.cognitedata.com`` clusters (a simulator or proxy has no Fusion UI).
        """
        host = urlsplit(self.config.base_url).hostname or ""
        if not host.endswith(".cognitedata.com"):
            return None
        pipeline_id = ref.extra.get("pipeline_id") or self._pipeline_ids.get(ref.target)
        if pipeline_id is None:
            return None
        return (
            f"https://fusion.cognite.com/{quote(self.config.project)}/extpipes/extpipe/"
            f"{quote(str(pipeline_id))}?cluster={quote(host)}"
        )


SERVICE = Cognite
