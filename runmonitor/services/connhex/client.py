"""The Connhex Exporter client: its connection settings, its error specifics (the queued-exports
quota, the gateway's missing identity) and the service itself (create, follow, list, delete)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import Field, SecretStr, field_validator

from runmonitor.domain.errors import AuthFailed, BadResponse, NotFound, QuotaReached, ServiceError
from runmonitor.domain.models import Capability, RunAction, RunRef, RunSnapshot, WatchSnapshot, newest_first
from runmonitor.domain.redact import redact_json, secret_registry
from runmonitor.domain.status import RunStatus
from runmonitor.domain.text import plural
from runmonitor.services.auth import bearer
from runmonitor.services.base import BaseUrl, Service, ServiceConfig
from runmonitor.services.connhex.request import ConnhexExportRequest
from runmonitor.services.connhex.status import (
    CREATED_KEYS,
    SERVICE_KEY,
    STATUS_MAP,
    JobInfo,
    StatusInfo,
    export_id_of,
    first_of,
    parse_status_body,
    text_of,
    unwrap,
)
from runmonitor.services.http import (
    ErrorClassifier,
    parse_retry_after,
    parse_time,
    request_id_of,
    vendor_message,
)

log = logging.getLogger(__name__)

QUOTA_MESSAGE = "Maximum number of queued exports reached"
MISSING_IDENTITY_MESSAGE = "Missing user identity id"
WAITING_DETAIL = "waiting for the first job"
DELETED_DETAIL = "export deleted"
ALL_EXPORTS = ("", "*")

# -- connection ------------------------------------------------------------------------------


class ConnhexConnection(ServiceConfig):
    base_url: BaseUrl = Field(
        title="Exporter API URL",
        description="The URL under which /exports is served, e.g. "
        "https://apis.<your-instance>.connhex.com/exporter. Connhex serves its REST APIs from "
        "apis.<your Connhex host>; the exporter's path prefix depends on the installation "
        "(ask your Connhex administrator, or look at the requests the Connhex web app makes).",
    )
    token: SecretStr = Field(
        title="Access token",
        description="A Connhex access token, sent as 'Authorization: Bearer <token>'. A gateway "
        "turns it into your identity; the token needs the exporter:exports:* permissions you "
        "want to use (create, get, list, delete). Paste the token alone, without 'Bearer '.",
        min_length=1,
    )

    @field_validator("token", mode="before")
    @classmethod
    def _plain_token(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.lower().startswith("bearer "):
                text = text[7:].strip()
            if any(ch.isspace() for ch in text):
                raise ValueError("a token has no spaces; paste only the token itself")
            return text
        return value


# -- the client ------------------------------------------------------------------------------


def classify_connhex_error(status: int, body: Any, headers: httpx.Headers) -> ServiceError | None:
    """Connhex specifics: the queued-exports quota and the gateway's missing identity."""
    message = vendor_message(body) or ""
    folded = message.casefold()
    common: dict[str, Any] = {
        "service": SERVICE_KEY,
        "status_code": status,
        "request_id": request_id_of(headers),
        "may_have_reached_service": False,
    }
    if status == 429 and QUOTA_MESSAGE.casefold() in folded:
        return QuotaReached(
            f"Too many exports are queued for this user; wait until some have finished ({message})",
            retry_after=parse_retry_after(headers.get("retry-after")),
            **common,
        )
    if status == 400 and MISSING_IDENTITY_MESSAGE.casefold() in folded:
        # The gateway in front of the exporter derives the caller's identity from the token;
        # without it the request reaches the exporter anonymously. That is a sign-in problem.
        return AuthFailed(
            "Sign-in needed: Connhex received no user identity for this token "
            "(missing, expired or not accepted by the gateway)",
            **common,
        )
    return None


class Connhex(Service[ConnhexConnection, ConnhexExportRequest]):
    key = SERVICE_KEY
    display_name = "Connhex Exporter"
    vendor = "Connhex"
    summary = "Export IoT data once or on a schedule, and follow each export job."
    target_label = "Export"
    order = 40
    all_targets = "*"
    config_model = ConnhexConnection
    request_model = ConnhexExportRequest
    status_map = STATUS_MAP
    capabilities = frozenset({Capability.LIST_RUNS, Capability.WATCH, Capability.ACTIONS})
    actions = (RunAction.DELETE,)
    cancel_action = RunAction.DELETE

    #: Page size asked for when listing every export.
    max_page_size = 100

    def build_auth(self, transport: httpx.AsyncBaseTransport | None) -> httpx.Auth:
        return bearer(self.config.token)

    @property
    def classify_error(self) -> ErrorClassifier:
        return classify_connhex_error

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _export_path(export_id: str, suffix: str = "") -> str:
        if not export_id or export_id in ALL_EXPORTS:
            raise NotFound("No export id given", service=SERVICE_KEY)
        return f"exports/{quote(export_id, safe='')}{suffix}"

    def _snapshot(self, ref: RunRef, job: JobInfo | None, raw: Any) -> RunSnapshot:
        if job is None:
            return RunSnapshot(ref=ref, status=RunStatus.PENDING, detail=WAITING_DETAIL, raw=raw)
        mapped = self.status_map.map(job.status)
        message = job.message
        if message is None and job.notification:
            message = f"notification: {job.notification}"
        return RunSnapshot.from_mapped(
            ref,
            mapped,
            message=secret_registry.scrub(message) if message else None,
            created_at=job.created_at,
            started_at=job.started_at,
            ended_at=job.ended_at,
            raw=raw,
        )

    def _job_ref(self, export_id: str, job: JobInfo | None, export_type: str | None) -> RunRef:
        extra = {"type": export_type} if export_type else {}
        return self.ref(export_id, job.id if job is not None and job.id else export_id, **extra)

    async def _read_status(self, export_id: str) -> tuple[Any, StatusInfo]:
        result = await self.http.request("GET", self._export_path(export_id, "/status"))
        body = redact_json(result.body)
        info = parse_status_body(body)
        if info.export_id is not None and info.export_id != export_id:
            raise BadResponse("Connhex answered about a different export", service=self.key)
        return body, info

    # -- the service -----------------------------------------------------------------------
    def list_target_for(self, request: ConnhexExportRequest) -> str:
        # Each export is its own target; a new export shows up in the list of all exports.
        return "*"

    async def create_run(self, request: ConnhexExportRequest) -> RunSnapshot:
        result = await self.http.request("POST", "exports", json_body=request.to_body(), ok=(200, 201))
        created = redact_json(result.body)
        export_id = export_id_of(created)
        if export_id is None:
            raise BadResponse(
                "Connhex accepted the export but answered without its id; check the export list "
                "before creating it again",
                service=self.key,
                status_code=result.status_code,
                request_id=result.request_id,
                may_have_reached_service=True,
            )
        export_type = created.get("type") if isinstance(created, dict) else None
        if export_type not in ("oneTime", "recurring"):
            export_type = request.type.value
        # The create answer carries no job; one read shows the first job (and its id). If the
        # read fails, the export exists anyway: follow "its latest job" instead.
        status_body: Any = None
        job: JobInfo | None = None
        try:
            status_body, info = await self._read_status(export_id)
            job = info.latest()
        except ServiceError as exc:
            log.info("connhex: export %s created; first status read failed: %s", export_id, exc)
        ref = self._job_ref(export_id, job, export_type)
        return self._snapshot(ref, job, {"export": created, "status": status_body})

    async def get_status(self, ref: RunRef) -> RunSnapshot:
        body, info = await self._read_status(ref.target)
        if ref.run_id and ref.run_id != ref.target:
            job = info.find(ref.run_id)
            if job is None:
                if info.has_job_ids:
                    raise NotFound(
                        f"Export {ref.target} no longer lists job {ref.run_id}",
                        service=self.key,
                    )
                job = info.latest()
        else:
            job = info.latest()
        return self._snapshot(ref, job, body)

    async def check_connection(self) -> str:
        result = await self.http.request("GET", "exports", params={"pageSize": 1})
        body = result.body
        if not isinstance(body, (dict, list)):
            raise BadResponse(
                "Connhex answered the export list with something that is not a list", service=self.key
            )
        total = body.get("total") if isinstance(body, dict) else None
        if isinstance(total, int) and not isinstance(total, bool):
            return f"Connhex Exporter answered: {plural(total, 'export')} visible with this token"
        return "Connhex Exporter answered and accepted the token"

    async def list_runs(self, target: str, *, limit: int = 20) -> list[RunSnapshot]:
        """Jobs of export ``target``, newest first; ``""`` or ``"*"``: the latest job of every export."""
        limit = max(1, limit)
        if target.strip() in ALL_EXPORTS:
            return await self._list_exports(limit)
        _, info = await self._read_status(target)
        if not info.jobs:
            ref = self._job_ref(target, None, info.export_type)
            return [self._snapshot(ref, None, None)]
        return [
            self._snapshot(self._job_ref(target, job, info.export_type), job, job.raw)
            for job in info.jobs[:limit]
        ]

    async def _list_exports(self, limit: int) -> list[RunSnapshot]:
        # Pagination and sort order of GET /exports are undocumented beyond page/pageSize/sort
        # parameters: read pages (at most ``limit`` entries, a bounded number of pages) and
        # sort here, newest job (or export) first.
        size = min(limit, self.max_page_size)
        entries: list[Any] = []
        for page in range(1, 1 + -(-limit // size)):
            params: dict[str, Any] = {"pageSize": size} if page == 1 else {"pageSize": size, "page": page}
            result = await self.http.request("GET", "exports", params=params)
            body = redact_json(result.body)
            chunk = body.get("results", body.get("data")) if isinstance(body, dict) else body
            if not isinstance(chunk, list):
                raise BadResponse(
                    "Connhex answered the export list without a list of results", service=self.key
                )
            entries.extend(chunk)
            total = body.get("total") if isinstance(body, dict) else None
            if len(chunk) < size or (isinstance(total, int) and len(entries) >= total):
                break
        snapshots: list[RunSnapshot] = []
        for entry in entries:
            export_id = export_id_of(entry)
            if export_id is None or not isinstance(entry, dict):
                raise BadResponse("Connhex listed an export without an id", service=self.key)
            entry = unwrap(entry)
            entry_for_jobs = {k: v for k, v in entry.items() if k != "id"}
            try:
                info = parse_status_body(entry_for_jobs)
            except BadResponse:
                info = StatusInfo(export_id, None, ())
            job = info.latest()
            export_type = info.export_type or text_of(entry.get("type"))
            snapshot = self._snapshot(self._job_ref(export_id, job, export_type), job, entry)
            if snapshot.created_at is None:
                created = parse_time(first_of(entry, CREATED_KEYS))
                snapshot = snapshot.model_copy(update={"created_at": created})
            snapshots.append(snapshot)
        return newest_first(snapshots)[:limit]

    async def watch(self, target: str, *, limit: int = 20) -> WatchSnapshot:
        return await super().watch(target.strip() or "*", limit=limit)

    async def perform(self, ref: RunRef, action: RunAction, *, reason: str | None = None) -> RunSnapshot:
        """DELETE removes the whole export: queued jobs never run and a recurring export stops."""
        if action is not RunAction.DELETE:
            return await super().perform(ref, action, reason=reason)
        await self.http.request("DELETE", self._export_path(ref.target), ok=(200, 202, 204))
        return RunSnapshot(
            ref=ref,
            status=RunStatus.CANCELLED,
            detail=DELETED_DETAIL,
            raw={"deleted": ref.target},
        )


SERVICE = Connhex
