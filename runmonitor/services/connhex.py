"""Connhex Exporter: asynchronous data exports of an IoT platform.

Create: ``POST /exports`` (``oneTime`` or ``recurring``; a recurring export repeats every
``periodicity``, an ISO 8601 duration) answers 201 with the export. Follow: ``GET
/exports/{id}/status``. List: ``GET /exports``. Delete: ``DELETE /exports/{id}`` (204).
Auth is a bearer token; a gateway in front of the exporter turns it into the caller's
identity, so a 400 "Missing user identity id" means the token did not get through.

What runs here is a *job*: "a job represents the execution of an export", and a
recurring export produces a new job every period and never finishes as a whole. So a
:class:`RunRef` is ``target`` = export id, ``run_id`` = job id (``extra["type"]`` holds the
export type). When no job id is known yet (the export has no job, or its status could
not be read right after creation) ``run_id`` is the export id itself, meaning "the
export's latest job".

Undocumented and therefore read tolerantly: the body of ``GET /exports/{id}/status``
(see :func:`parse_status_body`), the list's pagination, and the real URL prefix under
``apis.<your host>``. A 429 "Maximum number of queued exports reached" is a quota (wait
for queued exports to finish), not a rate limit.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from typing import Annotated, Any
from urllib.parse import quote
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import httpx
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)

from runmonitor.domain.errors import AuthFailed, BadResponse, NotFound, QuotaReached, ServiceError
from runmonitor.domain.models import Capability, RunAction, RunRef, RunSnapshot, WatchSnapshot, newest_first
from runmonitor.domain.redact import redact_json, secret_registry
from runmonitor.domain.status import RunStatus, StatusMap
from runmonitor.services.auth import bearer
from runmonitor.services.base import BaseUrl, CreateRequest, Service, ServiceConfig
from runmonitor.services.http import (
    ErrorClassifier,
    parse_retry_after,
    parse_time,
    request_id_of,
    vendor_message,
)

log = logging.getLogger(__name__)

SERVICE_KEY = "connhex"

# -- job status ------------------------------------------------------------------------------

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

QUOTA_MESSAGE = "Maximum number of queued exports reached"
MISSING_IDENTITY_MESSAGE = "Missing user identity id"
WAITING_DETAIL = "waiting for the first job"
DELETED_DETAIL = "export deleted"
ALL_EXPORTS = ("", "*")

# -- ISO 8601 durations ----------------------------------------------------------------------

_NUMBER = r"\d{1,9}(?:[.,]\d{1,9})?"
_DURATION_RE = re.compile(
    rf"P(?:(?P<years>{_NUMBER})Y)?(?:(?P<months>{_NUMBER})M)?(?:(?P<weeks>{_NUMBER})W)?"
    rf"(?:(?P<days>{_NUMBER})D)?"
    rf"(?:T(?:(?P<hours>{_NUMBER})H)?(?:(?P<minutes>{_NUMBER})M)?(?:(?P<seconds>{_NUMBER})S)?)?"
)
_UNITS = ("years", "months", "weeks", "days", "hours", "minutes", "seconds")
_UNIT_SECONDS = {
    # Calendar units have no fixed length; these are the approximations used for ordering
    # and for the simulator's schedule (a year is 365 days, a month 30 days).
    "years": 365 * 86400.0,
    "months": 30 * 86400.0,
    "weeks": 7 * 86400.0,
    "days": 86400.0,
    "hours": 3600.0,
    "minutes": 60.0,
    "seconds": 1.0,
}
DURATION_EXAMPLES = "e.g. P1D, PT15M, P1W, P3M or P1Y2M10DT2H30M"


@dataclass(frozen=True)
class IsoDuration:
    """An ISO 8601 duration (``PnYnMnWnDTnHnMnS``), parsed strictly."""

    text: str
    years: float = 0.0
    months: float = 0.0
    weeks: float = 0.0
    days: float = 0.0
    hours: float = 0.0
    minutes: float = 0.0
    seconds: float = 0.0

    def approx_seconds(self) -> float:
        """Length in seconds, with a year as 365 days and a month as 30 days."""
        return float(sum(getattr(self, unit) * _UNIT_SECONDS[unit] for unit in _UNITS))


def parse_iso_duration(value: str) -> IsoDuration:
    """Parse an ISO 8601 duration such as ``P1Y2M10DT2H30M`` or ``PT15M``.

    Accepted: the designators Y, M, W, D before ``T`` and H, M, S after it, in that order,
    each at most once; a decimal fraction (``.`` or ``,``) only on the last component
    (``P0.5D``, ``PT1.5S``); weeks may be combined with other units (ISO 8601-2).
    Refused with a reason: empty text, a sign, lower-case designators, ``P`` or ``PT`` with
    nothing after them, time units without ``T`` (``P1H``), a missing ``P`` (``1D``), and a
    total length of zero. Raises ValueError.
    """
    text = value.strip()
    if not text:
        raise ValueError(f"must not be empty; enter an ISO 8601 duration ({DURATION_EXAMPLES})")
    if text[0] in "+-":
        raise ValueError("must not have a sign; durations here are always positive")
    if text[0] != "P":
        if text[0] == "p" or re.search(r"[a-z]", text):
            raise ValueError(f"ISO 8601 designators are upper case ({DURATION_EXAMPLES})")
        raise ValueError(f"must start with 'P' ({DURATION_EXAMPLES})")
    if re.search(r"[a-z]", text):
        raise ValueError(f"ISO 8601 designators are upper case ({DURATION_EXAMPLES})")
    match = _DURATION_RE.fullmatch(text)
    if match is None:
        date_part = text[1:].split("T", 1)[0]
        if re.search(r"\d[HS]", date_part):
            raise ValueError("hours, minutes and seconds must come after 'T' (e.g. PT1H, P1DT12H)")
        raise ValueError(f"is not an ISO 8601 duration ({DURATION_EXAMPLES})")
    present = [unit for unit in _UNITS if match.group(unit) is not None]
    if not present:
        raise ValueError(f"needs at least one number and unit after 'P' ({DURATION_EXAMPLES})")
    if text.endswith("T"):
        raise ValueError("has a 'T' with no hours, minutes or seconds after it")
    for unit in present[:-1]:
        if re.search(r"[.,]", match.group(unit)):
            raise ValueError("only the last (smallest) unit may have a decimal fraction")
    values = {unit: float(match.group(unit).replace(",", ".")) for unit in present}
    duration = IsoDuration(text=text.replace(",", "."), **values)
    if duration.approx_seconds() <= 0:
        raise ValueError("must be longer than zero")
    return duration


def _check_duration(value: str) -> str:
    return parse_iso_duration(value).text


Iso8601Duration = Annotated[str, AfterValidator(_check_duration)]
"""A strictly validated, positive ISO 8601 duration (sent as typed, with ``,`` as ``.``)."""

# -- small validators --------------------------------------------------------------------------

_EMAIL_RE = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


def check_email(value: str) -> str:
    text = value.strip()
    if len(text) > 254 or not _EMAIL_RE.fullmatch(text) or len(text.split("@", 1)[0]) > 64:
        raise ValueError(f"{text!r} is not an e-mail address such as ops@example.com")
    return text


@cache
def _zones_folded() -> dict[str, str]:
    return {name.casefold(): name for name in available_timezones()}


def check_timezone(value: str) -> str:
    """An IANA time zone name (``Europe/Rome``, ``UTC``), validated with zoneinfo."""
    text = value.strip()
    if not text:
        raise ValueError("must not be empty; enter an IANA time zone such as UTC or Europe/Rome")
    if text.casefold() == "utc":
        return "UTC"
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        canonical = _zones_folded().get(text.casefold())
        if canonical is None:
            raise ValueError(f"{text!r} is not an IANA time zone name (e.g. UTC, Europe/Rome)") from None
        return canonical
    return text


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if value.timestamp() < 0:
        raise ValueError("must not be before 1970-01-01 (Unix time starts there)")
    return value.astimezone(UTC)


def _epoch(value: datetime) -> int | float:
    seconds = value.timestamp()
    return int(seconds) if seconds == int(seconds) else seconds


_FILENAME_BAD = re.compile(r"[\\/:*?\"<>|\x00-\x1f]")

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


# -- create request --------------------------------------------------------------------------


class _Part(BaseModel):
    """Nested parts of the create form: strict like the request itself."""

    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, validate_default=True, hide_input_in_errors=True
    )


class ExportType(StrEnum):
    ONE_TIME = "oneTime"
    RECURRING = "recurring"


class FileExtension(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    PDF = "pdf"


class Template(StrEnum):
    TABULAR = "tabular"
    EXPANDED = "expanded"


class AggregationFunction(StrEnum):
    AVG = "avg"
    MAX = "max"
    MIN = "min"
    SUM = "sum"
    STDDEV = "stddev"
    VARIANCE = "variance"


class Transform(StrEnum):
    DELTA = "delta"


class NotificationMedium(StrEnum):
    EMAIL = "email"
    TELEGRAM = "telegram"
    SLACK = "slack"
    DISCORD = "discord"


class NotificationPolicy(StrEnum):
    ON_SUCCESS = "onSuccess"
    ON_FAILURE = "onFailure"


class Column(_Part):
    id: str = Field(
        title="Column id",
        description="The data field to keep, e.g. name, time, value, unit, publisher or channel for "
        "message exports (<type>.<attribute>, e.g. device.serial, for resource exports).",
        min_length=1,
        max_length=200,
        pattern=r"^\S+$",
    )
    label: str = Field(
        title="Column label",
        description="The header this column gets in the file (rename or translate it here).",
        min_length=1,
        max_length=200,
    )


class ExportFormat(_Part):
    extension: FileExtension = Field(
        default=FileExtension.CSV, title="File type", description="The file format of the export."
    )
    timezone: str = Field(
        default="UTC",
        title="Time zone",
        description="IANA time zone every timestamp in the file is converted to, e.g. UTC or Europe/Rome.",
    )
    template: Template = Field(
        default=Template.TABULAR,
        title="Layout",
        description="tabular: one row per data point; expanded: one column per metric.",
    )
    columns: list[Column] = Field(
        default_factory=list,
        title="Columns",
        description="Keep only these columns, in this order, with these headers. Empty keeps all.",
        max_length=100,
    )
    csv_delimiter: str | None = Field(
        default=None,
        title="CSV delimiter",
        description="One character separating CSV fields (default: comma). Only for CSV files.",
        min_length=1,
        max_length=1,
    )

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("columns")
    @classmethod
    def _unique_columns(cls, value: list[Column]) -> list[Column]:
        seen: set[str] = set()
        for column in value:
            if column.id in seen:
                raise ValueError(f"column {column.id!r} is listed twice")
            seen.add(column.id)
        return value

    @field_validator("csv_delimiter")
    @classmethod
    def _delimiter_for_csv(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("extension") not in (None, FileExtension.CSV):
            raise ValueError("only applies to CSV files; clear it or choose csv")
        return value

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "extension": self.extension.value,
            "timezone": self.timezone,
            "template": self.template.value,
        }
        if self.columns:
            body["columns"] = [{"id": c.id, "label": c.label} for c in self.columns]
        if self.csv_delimiter is not None:
            body["csvDelimiter"] = self.csv_delimiter
        return body


class Decimation(_Part):
    interval: str = Field(
        title="Interval",
        description="Aggregate the data points of each interval into one: a positive whole number "
        "and a unit s, m, h, d or w, e.g. 15m or 1h.",
        pattern=r"^[1-9]\d{0,5}[smhdw]$",
    )
    function: AggregationFunction = Field(
        default=AggregationFunction.AVG,
        title="Function",
        description="How the points of an interval are combined.",
    )


class ExportItem(_Part):
    target: str = Field(
        title="Data source",
        description="What to export, typically a URN such as "
        "urn:cpt:smartdevice:nid:D0CF5EFFFE26FDAB1:onoff; several comma-separated values "
        "export several sources.",
        min_length=1,
        max_length=2000,
    )
    target_label: str | None = Field(
        default=None,
        title="Data source label",
        description="A label that replaces the data source in the file; comma-separated when there "
        "are several sources (one label per source).",
        max_length=2000,
    )
    channel_id: UUID = Field(
        title="Channel id",
        description="The id of the channel the data arrives on, e.g. 0115c85d-ef3e-4de9-9732-d0c5c4f2c482.",
    )
    subtopic: str = Field(
        title="Subtopic",
        description="The subtopic the data is read from, e.g. events.data.",
        min_length=1,
        max_length=200,
        pattern=r"^[^\s.]+(\.[^\s.]+)*$",
    )
    from_time: datetime | None = Field(
        default=None,
        title="From",
        description="Start of the time range (sent as Unix seconds; a time without a zone is UTC). "
        "Leave empty together with To and Period to export everything.",
    )
    to_time: datetime | None = Field(
        default=None,
        title="To",
        description="End of the time range (sent as Unix seconds; a time without a zone is UTC).",
    )
    period: Iso8601Duration | None = Field(
        default=None,
        title="Period",
        description="Instead of From/To: the time range back from when each job runs, as an ISO 8601 "
        f"duration ({DURATION_EXAMPLES}). Useful for recurring exports.",
    )
    decimation: Decimation | None = Field(
        default=None,
        title="Decimation",
        description="Aggregate the data before exporting it (optional).",
    )
    transform: Transform | None = Field(
        default=None,
        title="Transform",
        description="delta: export the difference between consecutive values (e.g. meter readings).",
    )
    filename: str | None = Field(
        default=None,
        title="File name",
        description="Name of the exported file, without extension.",
        min_length=1,
        max_length=200,
    )

    @field_validator("target")
    @classmethod
    def _targets(cls, value: str) -> str:
        parts = [part.strip() for part in value.split(",")]
        if any(not part for part in parts):
            raise ValueError("has an empty value between commas")
        if any(any(ch.isspace() for ch in part) for part in parts):
            raise ValueError("a data source identifier has no spaces")
        return ",".join(parts)

    @field_validator("target_label")
    @classmethod
    def _labels(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or value == "":
            return None
        labels = [part.strip() for part in value.split(",")]
        target = info.data.get("target")
        if isinstance(target, str):
            count = len(target.split(","))
            if len(labels) != count:
                raise ValueError(
                    f"needs one label per data source: {count} source(s), {len(labels)} label(s)"
                )
        return ",".join(labels)

    @field_validator("from_time", "to_time")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return _as_utc(value)

    @field_validator("to_time")
    @classmethod
    def _after_from(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("from_time")
        if value is not None and isinstance(start, datetime) and value <= start:
            raise ValueError("must be later than From")
        return value

    @field_validator("period")
    @classmethod
    def _period_or_range(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and (info.data.get("from_time") or info.data.get("to_time")):
            raise ValueError("give either a Period or a From/To range, not both")
        return value

    @field_validator("filename")
    @classmethod
    def _filename(cls, value: str | None) -> str | None:
        if value is not None and (_FILENAME_BAD.search(value) or value in (".", "..")):
            raise ValueError('must be a plain file name without folders or the characters \\ / : * ? " < > |')
        return value

    def to_body(self) -> dict[str, Any]:
        target: dict[str, Any] = {"value": self.target}
        if self.target_label:
            target["label"] = self.target_label
        params: dict[str, Any] = {
            "target": target,
            "channelId": str(self.channel_id),
            "subtopic": self.subtopic,
        }
        if self.from_time is not None:
            params["from"] = _epoch(self.from_time)
        if self.to_time is not None:
            params["to"] = _epoch(self.to_time)
        if self.period is not None:
            params["period"] = self.period
        if self.decimation is not None:
            params["decimation"] = {"ds": self.decimation.interval, "dsf": self.decimation.function.value}
        if self.transform is not None:
            params["transform"] = self.transform.value
        item: dict[str, Any] = {"params": params}
        if self.filename:
            item["filename"] = self.filename
        return item


class Notification(_Part):
    medium: NotificationMedium = Field(
        default=NotificationMedium.EMAIL,
        title="Send by",
        description="How the notification is delivered (through Connhex Notifications).",
    )
    policy: NotificationPolicy = Field(
        default=NotificationPolicy.ON_SUCCESS,
        title="When",
        description="onSuccess: when a job has finished; onFailure: when a job failed.",
    )
    recipient: str | None = Field(
        default=None,
        title="Recipient",
        description="Who receives it: an e-mail address for e-mail, otherwise the chat or channel id. "
        "Empty sends it to you (the owner of the token).",
        max_length=254,
    )
    title: str = Field(
        title="Title", description="Subject of the notification.", min_length=1, max_length=256
    )
    text: str = Field(title="Text", description="Body of the notification.", min_length=1, max_length=10000)

    @field_validator("recipient")
    @classmethod
    def _recipient(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or value == "":
            return None
        if info.data.get("medium") == NotificationMedium.EMAIL:
            return check_email(value)
        if any(ch.isspace() for ch in value):
            raise ValueError("a chat or channel id has no spaces")
        return value

    def to_body(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "policy": self.policy.value,
            "medium": self.medium.value,
            "title": self.title,
            "text": self.text,
        }
        if self.recipient:
            message["target"] = self.recipient
        return message


class ConnhexExportRequest(CreateRequest):
    type: ExportType = Field(
        default=ExportType.ONE_TIME,
        title="Export type",
        description="oneTime runs once; recurring runs again every Periodicity, each run being a new job.",
    )
    periodicity: Iso8601Duration | None = Field(
        default=None,
        title="Periodicity",
        description=f"How often a recurring export runs, as an ISO 8601 duration ({DURATION_EXAMPLES}). "
        "Required for recurring exports, not allowed for one-time exports.",
    )
    period_start: datetime | None = Field(
        default=None,
        title="Period start",
        description="When the recurring schedule starts (default: when the export is created). "
        "Recurring exports only; a time without a zone is UTC.",
    )
    items: list[ExportItem] = Field(
        title="Items",
        description="What to export: one row per data source, channel and time range.",
        min_length=1,
        max_length=100,
    )
    format: ExportFormat = Field(
        default_factory=ExportFormat,
        title="Format",
        description="File type, time zone, layout and column selection.",
    )
    notifications: list[Notification] = Field(
        default_factory=list,
        title="Notifications",
        description="Optional messages sent when a job succeeds or fails.",
        max_length=20,
    )

    @field_validator("periodicity")
    @classmethod
    def _periodicity_for_type(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("type")
        if kind == ExportType.RECURRING and value is None:
            raise ValueError(f"is required for a recurring export ({DURATION_EXAMPLES})")
        if kind == ExportType.ONE_TIME and value is not None:
            raise ValueError("only applies to recurring exports; clear it or choose recurring")
        return value

    @field_validator("period_start")
    @classmethod
    def _period_start_for_type(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        value = _as_utc(value)
        if value is not None and info.data.get("type") == ExportType.ONE_TIME:
            raise ValueError("only applies to recurring exports")
        return value

    def target(self) -> str:
        first = self.items[0].target
        more = len(self.items) - 1
        return f"{first} (+{more} more)" if more else first

    def to_body(self) -> dict[str, Any]:
        """The JSON body of ``POST /exports`` in the vendor's names."""
        body: dict[str, Any] = {
            "type": self.type.value,
            "format": self.format.to_body(),
            "items": [item.to_body() for item in self.items],
            # The reference marks "notification" as required, with a required list of messages.
            "notification": {"messages": [n.to_body() for n in self.notifications]},
        }
        if self.periodicity is not None:
            body["periodicity"] = self.periodicity
        if self.period_start is not None:
            body["periodStart"] = _epoch(self.period_start)
        return body


# -- tolerant reading of the (undocumented) status body --------------------------------------

_STATUS_KEYS = ("status", "exportStatus", "export_status", "jobStatus", "job_status", "state")
_NESTED_STATUS_KEYS = ("export", "exportStatus", "export_status", "status", "value", "state")
_JOB_LIST_KEYS = ("jobs", "exportJobs", "export_jobs", "executions", "history")
_JOB_KEYS = ("lastJob", "latestJob", "last_job", "latest_job", "currentJob", "current_job", "job")
_JOB_ID_KEYS = ("id", "jobId", "job_id", "_id", "uuid")
_EXPORT_ID_KEYS = ("exportId", "export_id", "exportRequestId", "requestId")
_CREATED_KEYS = ("createdAt", "created_at", "created", "creationDate")
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


def _first(obj: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in obj and obj[key] is not None:
            return obj[key]
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _status_value(obj: dict[str, Any]) -> str | None:
    value = _first(obj, _STATUS_KEYS)
    if isinstance(value, dict):
        value = _first(value, _NESTED_STATUS_KEYS)
    return value if isinstance(value, str) and value.strip() else None


def _unwrap(obj: dict[str, Any]) -> dict[str, Any]:
    """Flatten JSON:API style ``{"data": {"id", "attributes": {...}}}`` wrappers."""
    data = obj.get("data")
    if isinstance(data, dict) and not any(k in obj for k in (*_STATUS_KEYS, *_JOB_LIST_KEYS)):
        obj = data
    attributes = obj.get("attributes")
    if isinstance(attributes, dict):
        obj = {**{k: v for k, v in obj.items() if k != "attributes"}, **attributes}
    return obj


def _job(obj: dict[str, Any], *, with_id: bool = True) -> JobInfo:
    obj = _unwrap(obj)
    status = _status_value(obj)
    ended = parse_time(_first(obj, _ENDED_KEYS))
    if ended is None and status in _FINISHED:
        ended = parse_time(_first(obj, _UPDATED_KEYS))
    message = _first(obj, _MESSAGE_KEYS)
    if isinstance(message, dict):
        message = vendor_message({"error": message}) or vendor_message(message)
    notification = _first(obj, _NOTIFICATION_KEYS)
    if notification is None and isinstance(obj.get("status"), dict):
        notification = _first(obj["status"], ("notification", "notificationStatus"))
    return JobInfo(
        id=_text(_first(obj, _JOB_ID_KEYS)) if with_id else None,
        status=status,
        created_at=parse_time(_first(obj, _CREATED_KEYS)),
        started_at=parse_time(_first(obj, _STARTED_KEYS)),
        ended_at=ended,
        message=message.strip()[:500] if isinstance(message, str) and message.strip() else None,
        notification=_text(notification),
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
    obj = _unwrap(body)
    data = obj.get("data")
    if isinstance(data, list) and not any(key in obj for key in (*_STATUS_KEYS, *_JOB_LIST_KEYS, *_JOB_KEYS)):
        return parse_status_body(data)  # JSON:API style {"data": [job, ...]}
    export_id = _text(_first(obj, _EXPORT_ID_KEYS))
    export_type = _text(obj.get("type")) if obj.get("type") in ("oneTime", "recurring") else None
    job_list = _first(obj, _JOB_LIST_KEYS)
    single = _first(obj, _JOB_KEYS)
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


def _export_id_of(body: Any) -> str | None:
    if isinstance(body, dict):
        obj = _unwrap(body)
        return _text(obj.get("id")) or _text(_first(obj, _EXPORT_ID_KEYS))
    return None


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
        export_id = _export_id_of(created)
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
            return f"Connhex Exporter answered: {total} export(s) visible with this token"
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
            export_id = _export_id_of(entry)
            if export_id is None or not isinstance(entry, dict):
                raise BadResponse("Connhex listed an export without an id", service=self.key)
            entry = _unwrap(entry)
            entry_for_jobs = {k: v for k, v in entry.items() if k != "id"}
            try:
                info = parse_status_body(entry_for_jobs)
            except BadResponse:
                info = StatusInfo(export_id, None, ())
            job = info.latest()
            export_type = info.export_type or _text(entry.get("type"))
            snapshot = self._snapshot(self._job_ref(export_id, job, export_type), job, entry)
            if snapshot.created_at is None:
                created = parse_time(_first(entry, _CREATED_KEYS))
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
