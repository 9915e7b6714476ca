"""Reading a pydantic model's fields into what a form shows (no Qt here).

:class:`FieldSpec` is one field as a form needs it: its kind of editor, title, help, default,
whether it may be empty and its limits. :func:`errors_by_path` turns a ``ValidationError`` into
messages per dotted field path. The rest converts values between the model and the widgets.
"""

from __future__ import annotations

import re
import types
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo

__all__ = [
    "MISSING",
    "FieldSpec",
    "clean_message",
    "errors_by_path",
    "model_label",
    "plain_values",
    "to_datetime",
]


class _Missing:
    """Marks a field the form leaves out of ``values()`` so the model's default applies."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class FieldSpec:
    """What the form needs to know about one model field."""

    name: str
    kind: str
    inner: Any
    nullable: bool
    required: bool
    title: str
    description: str
    default: Any
    min_length: int | None = None
    max_length: int | None = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    @classmethod
    def of(cls, name: str, info: FieldInfo) -> FieldSpec:
        inner, nullable, extra = _unwrap(info.annotation)
        limits: dict[str, Any] = {}
        for item in [*info.metadata, *extra]:
            for attr in ("min_length", "max_length", "ge", "gt", "le", "lt"):
                value = getattr(item, attr, None)
                if value is not None and isinstance(
                    item, (annotated_types.BaseMetadata, annotated_types.GroupedMetadata)
                ):
                    limits.setdefault(attr, value)
        required = info.is_required()
        default: Any = MISSING
        if not required:
            try:
                default = info.get_default(call_default_factory=True)
            except TypeError:  # a factory that needs the validated data
                default = MISSING
        title = info.title or name.replace("_", " ").capitalize()
        return cls(
            name=name,
            kind=_kind_of(inner),
            inner=inner,
            nullable=nullable,
            required=required,
            title=title,
            description=(info.description or "").strip(),
            default=default,
            **limits,
        )

    @property
    def bounded(self) -> bool:
        return any(v is not None for v in (self.ge, self.gt, self.le, self.lt))

    @property
    def item_model(self) -> type[BaseModel]:
        """The model of one item of a list-of-models field."""
        model = _plain_type(get_args(self.inner)[0])
        assert _is_model(model)
        return model  # type: ignore[no-any-return]


def _unwrap(annotation: Any) -> tuple[Any, bool, list[Any]]:
    """(inner type, may be None, Annotated metadata) with Optional/Annotated stripped."""
    nullable = False
    extra: list[Any] = []
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            args = get_args(annotation)
            annotation = args[0]
            extra.extend(args[1:])
            continue
        if origin in (Union, types.UnionType):
            args = get_args(annotation)
            rest = [a for a in args if a is not type(None)]
            nullable = nullable or len(rest) < len(args)
            if len(rest) == 1:
                annotation = rest[0]
                continue
        return annotation, nullable, extra


def _plain_type(annotation: Any) -> Any:
    return _unwrap(annotation)[0]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _kind_of(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "choice"
    if origin in (list, dict):
        args = [_plain_type(a) for a in get_args(tp)]
        if origin is dict and args == [str, str]:
            return "dict"
        if origin is list and args == [str]:
            return "strlist"
        if origin is list and len(args) == 1 and _is_model(args[0]):
            return "modellist"
        return "json"
    if not isinstance(tp, type):
        return "json"
    if issubclass(tp, SecretStr):
        return "secret"
    if issubclass(tp, bool):
        return "bool"
    if issubclass(tp, Enum):
        return "choice"
    if issubclass(tp, int):
        return "int"
    if issubclass(tp, float):
        return "float"
    if issubclass(tp, str):
        return "str"
    if issubclass(tp, datetime):
        return "datetime"
    if issubclass(tp, date):
        return "date"
    if issubclass(tp, time):
        return "time"
    if issubclass(tp, uuid.UUID):
        return "uuid"
    if issubclass(tp, BaseModel):
        return "model"
    return "json"


def model_label(model: type[BaseModel]) -> str:
    """A human name for one item of a list of ``model``: ExportItem → "Export item"."""
    title = model.model_config.get("title")
    if title:
        return str(title)
    words = re.findall(r"[A-Z]+(?=[A-Z][a-z]|$)|[A-Z]?[a-z]+|\d+", model.__name__.lstrip("_"))
    if not words:
        return "Item"
    text = " ".join(words)
    return text[0].upper() + text[1:].lower()


def plain_values(value: Any) -> Any:
    """A model instance as a mapping of its field values (secrets kept, not masked)."""
    if isinstance(value, BaseModel):
        return {name: getattr(value, name) for name in type(value).model_fields}
    return value


def clean_message(message: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def errors_by_path(error: ValidationError) -> dict[str, str]:
    """Validation errors as dotted path → message (several messages for one path are joined)."""
    found: dict[str, list[str]] = {}
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"])
        message = clean_message(str(item["msg"]))
        bucket = found.setdefault(path, [])
        if message not in bucket:
            bucket.append(message)
    return {path: "\n".join(messages) for path, messages in found.items()}


def to_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None
