"""Reading Connhex's job status: the vendor's status table and a tolerant parser for the
(undocumented) body of ``GET /exports/{id}/status`` and of list entries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from runmonitor.domain.errors import BadResponse
from runmonitor.domain.status import RunStatus, StatusMap
from runmonitor.services.http import parse_time, vendor_message

SERVICE_KEY = "connhex"

STATUS_MAP = StatusMap(
    {
        "notProcessed": (RunStatus.PENDING, None),
        "inProgress": (RunStatus.RUNNING, None),
        "done": (RunStatus.SUCCEEDED, None),
        "failed": (RunStatus.FAILED, None),
        # Judgement call (apis.md §4): expiry deletes the files of a job that had finished
        # successfully, so the job did succeed; the detail says its result is gone.
        "expired": (RunStatus.SUCCEEDED, "result expired"),
    },
    case_sensitive=False,
)

# -- tolerant reading of the (undocumented) status body --------------------------------------

_STATUS_KEYS = ("status", "exportStatus", "export_status", "jobStatus", "job_status", "state")
_NESTED_STATUS_KEYS = ("export", "exportStatus", "export_status", "status", "value", "state")
_JOB_LIST_KEYS = ("jobs", "exportJobs", "export_jobs", "executions", "history")
_JOB_KEYS = ("lastJob", "latestJob", "last_job", "latest_job", "currentJob", "current_job", "job")
_JOB_ID_KEYS = ("id", "jobId", "job_id", "_id", "uuid")
_EXPORT_ID_KEYS = ("exportId", "export_id", "exportRequestId", "requestId")
CREATED_KEYS = ("createdAt", "created_at", "created", "creationDate")
_STARTED_KEYS = ("startedAt", "started_at", "startTimestamp", "startTime", "started", "start")
_ENDED_KEYS = ("finishedAt", "finished_at", "completedAt", "completed_at", "endedAt", "ended_at", "endTime")
_UPDATED_KEYS = ("updatedAt", "updated_at", "lastUpdate")
_MESSAGE_KEYS = ("error", "errorMessage", "error_message", "failureReason", "reason", "message")
_NOTIFICATION_KEYS = ("notificationStatus", "notification_status", "notificationDeliveryStatus")
_FINISHED = frozenset({"done", "failed"})


@dataclass(frozen=True)
class JobInfo:
    """One export job as read from a status or list answer."""

    id: str | None
    status: str | None
    created_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    message: str | None = None
    notification: str | None = None
    raw: Any = None

    @property
    def when(self) -> datetime | None:
        return self.created_at or self.started_at


@dataclass(frozen=True)
class StatusInfo:
    """What a status answer says about an export: its jobs, newest first."""

    export_id: str | None
    export_type: str | None
    jobs: tuple[JobInfo, ...] = field(default_factory=tuple)

    def latest(self) -> JobInfo | None:
        return self.jobs[0] if self.jobs else None

    def find(self, job_id: str) -> JobInfo | None:
        return next((job for job in self.jobs if job.id == job_id), None)

    @property
    def has_job_ids(self) -> bool:
        return any(job.id for job in self.jobs)


def first_of(obj: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in obj and obj[key] is not None:
            return obj[key]
    return None


def text_of(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _status_value(obj: dict[str, Any]) -> str | None:
    value = first_of(obj, _STATUS_KEYS)
    if isinstance(value, dict):
        value = first_of(value, _NESTED_STATUS_KEYS)
    return value if isinstance(value, str) and value.strip() else None


def unwrap(obj: dict[str, Any]) -> dict[str, Any]:
    """Flatten JSON:API style ``{"data": {"id", "attributes": {...}}}`` wrappers."""
    data = obj.get("data")
    if isinstance(data, dict) and not any(k in obj for k in (*_STATUS_KEYS, *_JOB_LIST_KEYS)):
        obj = data
    attributes = obj.get("attributes")
    if isinstance(attributes, dict):
        obj = {**{k: v for k, v in obj.items() if k != "attributes"}, **attributes}
    return obj


def _job(obj: dict[str, Any], *, with_id: bool = True) -> JobInfo:
    obj = unwrap(obj)
    status = _status_value(obj)
    ended = parse_time(first_of(obj, _ENDED_KEYS))
    if ended is None and status in _FINISHED:
        ended = parse_time(first_of(obj, _UPDATED_KEYS))
    message = first_of(obj, _MESSAGE_KEYS)
    if isinstance(message, dict):
        message = vendor_message({"error": message}) or vendor_message(message)
    notification = first_of(obj, _NOTIFICATION_KEYS)
    if notification is None and isinstance(obj.get("status"), dict):
        notification = first_of(obj["status"], ("notification", "notificationStatus"))
    return JobInfo(
        id=text_of(first_of(obj, _JOB_ID_KEYS)) if with_id else None,
        status=status,
        created_at=parse_time(first_of(obj, CREATED_KEYS)),
        started_at=parse_time(first_of(obj, _STARTED_KEYS)),
        ended_at=ended,
        message=message.strip()[:500] if isinstance(message, str) and message.strip() else None,
        notification=text_of(notification),
        raw=obj,
    )


def _newest_first(jobs: list[JobInfo]) -> tuple[JobInfo, ...]:
    """Jobs newest first by creation/start time; jobs without a time go last.

    Without any timestamps the list is taken to be in creation order (oldest first).
    """
    if not any(job.when for job in jobs):
        return tuple(reversed(jobs))
    oldest = datetime.min.replace(tzinfo=UTC)
    dated = sorted((job for job in jobs if job.when), key=lambda job: job.when or oldest, reverse=True)
    undated = [job for job in jobs if job.when is None]
    return (*dated, *reversed(undated))


def parse_status_body(body: Any) -> StatusInfo:
    """Read an export's jobs from a ``GET /exports/{id}/status`` (or list entry) answer.

    The schema is undocumented, so this accepts several plausible shapes: an object with a
    list of jobs (``jobs``, ``exportJobs``, …) and/or a single job (``lastJob``, ``job``, …)
    and/or a top-level status (``status``, ``exportStatus``, ``state``; a string or an object
    such as ``{"export": "done", "notification": "sent"}``); JSON:API ``data``/``attributes``
    wrappers; a bare list of jobs; or a bare status string. Jobs are ordered newest first by
    their creation/start time (without any timestamps, the list is taken as oldest first).
    Raises BadResponse when nothing status-like is found.
    """
    if isinstance(body, str) and body.strip():
        return StatusInfo(None, None, (JobInfo(id=None, status=body.strip(), raw=body),))
    if isinstance(body, list):
        jobs = [_job(item) for item in body if isinstance(item, dict)]
        if len(jobs) != len(body):
            raise BadResponse("Connhex answered with a list that is not a list of jobs", service=SERVICE_KEY)
        return StatusInfo(None, None, _newest_first(jobs))
    if not isinstance(body, dict):
        raise BadResponse("Connhex answered without an export status", service=SERVICE_KEY)
    obj = unwrap(body)
    data = obj.get("data")
    if isinstance(data, list) and not any(key in obj for key in (*_STATUS_KEYS, *_JOB_LIST_KEYS, *_JOB_KEYS)):
        return parse_status_body(data)  # JSON:API style {"data": [job, ...]}
    export_id = text_of(first_of(obj, _EXPORT_ID_KEYS))
    export_type = text_of(obj.get("type")) if obj.get("type") in ("oneTime", "recurring") else None
    job_list = first_of(obj, _JOB_LIST_KEYS)
    single = first_of(obj, _JOB_KEYS)
    if job_list is not None:
        if not isinstance(job_list, list) or not all(isinstance(item, dict) for item in job_list):
            raise BadResponse(
                "Connhex answered with jobs that are not a list of objects", service=SERVICE_KEY
            )
        jobs = [_job(item) for item in job_list]
        if isinstance(single, dict):
            extra = _job(single)
            if extra.id is None or all(job.id != extra.id for job in jobs):
                jobs.append(extra)
        if not jobs and _status_value(obj) is not None:
            jobs = [_job(obj, with_id=False)]
        return StatusInfo(export_id, export_type, _newest_first(jobs))
    if isinstance(single, dict):
        return StatusInfo(export_id, export_type, (_job(single),))
    if any(key in obj for key in _STATUS_KEYS):
        if _status_value(obj) is None:
            return StatusInfo(export_id, export_type, ())
        # A flat object: the export's own status. Its "id" is likely the export's, not a job's.
        return StatusInfo(export_id, export_type, (_job(obj, with_id=False),))
    raise BadResponse("Connhex answered without an export status", service=SERVICE_KEY)


def export_id_of(body: Any) -> str | None:
    if isinstance(body, dict):
        obj = unwrap(body)
        return text_of(obj.get("id")) or text_of(first_of(obj, _EXPORT_ID_KEYS))
    return None
