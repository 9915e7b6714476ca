"""What a person fills in to create a Connhex export: the request schema of ``POST /exports``
(strict, with reasons for every refusal) and its translation into the vendor's JSON."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from runmonitor.domain.text import plural
from runmonitor.services.base import CreateRequest
from runmonitor.services.validators import (
    DURATION_EXAMPLES,
    Iso8601Duration,
    check_email,
    check_timezone,
    check_unix_time,
    unix_seconds,
)

_FILENAME_BAD = re.compile(r"[\\/:*?\"<>|\x00-\x1f]")


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
                    f"needs one label per data source: {plural(count, 'source')}, "
                    f"{plural(len(labels), 'label')}"
                )
        return ",".join(labels)

    @field_validator("from_time", "to_time")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return check_unix_time(value)

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
            params["from"] = unix_seconds(self.from_time)
        if self.to_time is not None:
            params["to"] = unix_seconds(self.to_time)
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
        value = check_unix_time(value)
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
            body["periodStart"] = unix_seconds(self.period_start)
        return body
