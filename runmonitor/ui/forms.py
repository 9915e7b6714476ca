"""Forms generated from pydantic models.

The services declare their connection and create-request fields once, as pydantic models
(titles, descriptions, defaults, constraints). :class:`ModelForm` builds a form from such a
model, reads it back as JSON-compatible values, and validates with the model itself, showing
each message beside the field it concerns.

Widget per field type:

===============================  =====================================================
``str``                          QLineEdit (hard length limit for short fields; long text
                                 is never cut: the model reports what is too long)
``SecretStr``                    QLineEdit in password mode with a "Show" toggle
``bool``                         QCheckBox
``int`` / ``float``              QSpinBox / QDoubleSpinBox within ge/le/gt/lt; a QLineEdit
                                 when unbounded or optional (empty = not set)
``Enum`` / ``Literal``           QComboBox (item text = value)
``datetime`` / ``date``/``time`` QDateTimeEdit (UTC, calendar) / QDateEdit / QTimeEdit, with
                                 a "Not set" box when the field may be empty
``UUID``                         QLineEdit with an example; "Generate" when optional
``dict[str, str]``               key/value QTableWidget with Add / Remove
``list[str]``                    QListWidget with editable items, Add / Remove
``list[Model]``                  one framed nested form per item, Remove on each, Add
``Model``                        QGroupBox with a nested form (checkable when optional)
anything else                    QLineEdit holding JSON
===============================  =====================================================
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import types
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import Enum
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from PySide6.QtCore import QDate, QDateTime, QEvent, QSize, Qt, QTime, QTimeZone, Signal
from PySide6.QtGui import (
    QAccessible,
    QAccessibleEvent,
    QFont,
    QPalette,
)
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QApplication,
    QBoxLayout,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDateTimeEdit,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLayout,
    QLayoutItem,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTimeEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from runmonitor.ui.icons import feedback_icon
from runmonitor.ui.theme import RECOLOUR_EVENTS, muted, tone

log = logging.getLogger(__name__)

__all__ = [
    "MISSING",
    "RECOLOUR_EVENTS",
    "FieldError",
    "FieldSpec",
    "HelpLabel",
    "ModelForm",
    "ModelListEditor",
    "errors_by_path",
    "feedback_icon",
    "muted",
    "tone",
]


class _Missing:
    """Marks a field the form leaves out of ``values()`` so the model's default applies."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

#: Descriptions longer than this also get a grey help line under the field (always a tooltip).
LONG_DESCRIPTION = 80
#: Strings whose limit is at most this get a hard QLineEdit limit; longer limits are only reported.
HARD_LENGTH_LIMIT = 255
#: QLineEdit's own default limit is 32767 characters; fields without a limit take more.
NO_LIMIT = 1_000_000
UUID_EXAMPLE = "e.g. 123e4567-e89b-12d3-a456-426614174000"
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


class HelpLabel(QLabel):
    """A small grey line of help under a field (plain text, wrapped)."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.setText(text)
        font = QFont(self.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.9))
        self.setFont(font)
        self._recolour()

    def _recolour(self) -> None:
        # Derived from the parent's (or the application's) palette, never from our own
        # already-tinted one, so repeated palette changes do not drift.
        parent = self.parentWidget()
        base = parent.palette() if parent is not None else QApplication.palette(self)
        palette = QPalette(base)
        palette.setColor(QPalette.ColorRole.WindowText, muted(base))
        self.setPalette(palette)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.ApplicationPaletteChange, QEvent.Type.ParentChange):
            self._recolour()


class FieldError(QWidget):
    """An error message under a field: warning icon + red text, hidden while there is none.

    The text label is plain text, named "Error: <field>" for assistive technology, and an
    Alert event is sent when a message appears.
    """

    def __init__(self, subject: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.subject = subject
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        self.icon = QLabel()
        self.icon.setAccessibleName("Error")
        self.icon.setFixedSize(14, 14)
        row.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignTop)
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setWordWrap(True)
        self.label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setAccessibleName(f"Error: {subject}" if subject else "Error")
        row.addWidget(self.label, 1)
        self.setAccessibleName(self.label.accessibleName())
        self.hide()
        self._recolour()

    def message(self) -> str:
        return self.label.text() if not self.isHidden() else ""

    def set_message(self, text: str | None) -> None:
        text = text or ""
        appeared = bool(text) and text != self.label.text()
        self.label.setText(text)
        self.label.setAccessibleDescription(text)
        self.setVisible(bool(text))
        if appeared and QAccessible.isActive():
            QAccessible.updateAccessibility(QAccessibleEvent(self.label, QAccessible.Event.Alert))

    def _recolour(self) -> None:
        colour = tone("error", self.palette())
        palette = QPalette(self.label.palette())
        palette.setColor(QPalette.ColorRole.WindowText, colour)
        self.label.setPalette(palette)
        ratio = self.devicePixelRatioF() if self.isVisible() else 1.0
        self.icon.setPixmap(
            feedback_icon("warning", colour, 14, max(ratio, 1.0)).pixmap(QSize(14, 14), ratio)
        )

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in RECOLOUR_EVENTS:
            self._recolour()


# -- reading the model ---------------------------------------------------------------------------------


class CheckOutcome(QWidget):
    """How a check (a test connection, a test command) is going: a busy bar while it runs, then
    a feedback icon and a line of text in the outcome's colour, recoloured with the palette."""

    ICON_NAMES: ClassVar[dict[str, str]] = {"ok": "Success", "signin": "Sign-in needed"}

    def __init__(self, busy_name: str, result_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setTextVisible(False)
        self.busy.setFixedSize(70, 10)
        self.busy.setAccessibleName(busy_name)
        self.busy.hide()
        self.icon = QLabel()
        self.icon.setFixedSize(16, 16)
        self.icon.hide()
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setAccessibleName(result_name)
        self.label.hide()
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(6)
        row.addWidget(self.busy, 0, Qt.AlignmentFlag.AlignVCenter)
        row.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.label, 1)
        #: None (nothing shown), "testing", or the shape of the outcome shown ("ok", "failed"…).
        self.shape: str | None = None
        #: The colour kind of the outcome shown ("ok", "warning", "error").
        self.kind: str | None = None

    def start(self, text: str) -> None:
        self.busy.show()
        self.icon.hide()
        self.shape, self.kind = "testing", None
        self.label.setText(text)
        self.label.setPalette(self.palette())
        self.label.show()

    def stop(self) -> None:
        self.busy.hide()

    def show_outcome(self, shape: str, kind: str, text: str) -> None:
        self.shape, self.kind = shape, kind
        colour = tone(kind, self.palette())
        self.icon.setPixmap(feedback_icon(shape, colour, 16, self.devicePixelRatioF()).pixmap(QSize(16, 16)))
        self.icon.setAccessibleName(self.ICON_NAMES.get(shape, "Problem"))
        self.icon.show()
        self._colour_label()
        self.label.setText(text)
        self.label.setAccessibleDescription(text)
        self.label.show()

    def clear(self) -> None:
        self.shape = self.kind = None
        self.icon.hide()
        self.label.hide()

    def _colour_label(self) -> None:
        palette = QPalette(self.palette())
        palette.setColor(QPalette.ColorRole.WindowText, tone(self.kind or "error", self.palette()))
        self.label.setPalette(palette)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in RECOLOUR_EVENTS and self.shape not in (None, "testing"):
            self._colour_label()


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


def _model_label(model: type[BaseModel]) -> str:
    """A human name for one item of a list of ``model``: ExportItem → "Export item"."""
    title = model.model_config.get("title")
    if title:
        return str(title)
    words = re.findall(r"[A-Z]+(?=[A-Z][a-z]|$)|[A-Z]?[a-z]+|\d+", model.__name__.lstrip("_"))
    if not words:
        return "Item"
    text = " ".join(words)
    return text[0].upper() + text[1:].lower()


def _plain(value: Any) -> Any:
    """A model instance as a mapping of its field values (secrets kept, not masked)."""
    if isinstance(value, BaseModel):
        return {name: getattr(value, name) for name in type(value).model_fields}
    return value


def _clean_message(message: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def errors_by_path(error: ValidationError) -> dict[str, str]:
    """Validation errors as dotted path → message (several messages for one path are joined)."""
    found: dict[str, list[str]] = {}
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"])
        message = _clean_message(str(item["msg"]))
        bucket = found.setdefault(path, [])
        if message not in bucket:
            bucket.append(message)
    return {path: "\n".join(messages) for path, messages in found.items()}


def _to_datetime(value: Any) -> datetime | None:
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


def _qdatetime(moment: datetime) -> QDateTime:
    return QDateTime.fromSecsSinceEpoch(int(moment.timestamp()), QTimeZone(QTimeZone.Initialization.UTC))


def _button(text: str, accessible: str, parent: QWidget | None = None) -> QPushButton:
    button = QPushButton(text, parent)
    button.setAccessibleName(accessible)
    # In a dialog, Enter must not press an Add/Remove/Generate button the user is not on.
    button.setAutoDefault(False)
    button.setDefault(False)
    return button


def _add_remove_buttons(
    outer: QBoxLayout, add_name: str, remove_name: str
) -> tuple[QPushButton, QPushButton]:
    """An Add / Remove button row under a list editor; Remove starts disabled (nothing selected)."""
    buttons = QHBoxLayout()
    buttons.setSpacing(6)
    add = _button("Add", add_name)
    remove = _button("Remove", remove_name)
    remove.setEnabled(False)
    buttons.addWidget(add)
    buttons.addWidget(remove)
    buttons.addStretch(1)
    outer.addLayout(buttons)
    return add, remove


# -- widgets that ignore the mouse wheel unless focused (no accidental changes while scrolling) -------


class _NoWheelMixin:
    def wheelEvent(self, event: Any) -> None:
        if self.hasFocus():  # type: ignore[attr-defined]
            super().wheelEvent(event)  # type: ignore[misc]
        else:
            event.ignore()


class _SpinBox(_NoWheelMixin, QSpinBox):
    pass


class _DoubleSpinBox(_NoWheelMixin, QDoubleSpinBox):
    pass


class _ComboBox(_NoWheelMixin, QComboBox):
    pass


class _DateTimeEdit(_NoWheelMixin, QDateTimeEdit):
    pass


class _DateEdit(_NoWheelMixin, QDateEdit):
    pass


class _TimeEdit(_NoWheelMixin, QTimeEdit):
    pass


# -- field editors -------------------------------------------------------------------------------------


class _Editor(QWidget):
    """One field's editing widget(s). ``input`` is the main focusable widget."""

    changed = Signal()

    def __init__(self, spec: FieldSpec, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec = spec
        self.input: QWidget = self
        #: Groups and lists show their own title and help; the form then adds no label or help line.
        self.spanning = False

    # values
    def value(self) -> Any:
        raise NotImplementedError

    def set_value(self, value: Any) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        self.set_value(None if self.spec.default is MISSING else _plain(self.spec.default))

    def local_errors(self) -> dict[str, str]:
        """Problems the form itself finds (e.g. text that is not JSON); "" is the field itself."""
        return {}

    # errors below this field (nested forms)
    def route_error(self, rest: str, message: str) -> bool:
        return False

    def clear_nested_errors(self) -> None:
        pass

    def nested_errors(self) -> dict[str, str]:
        return {}

    def resolve(self, rest: str) -> tuple[ModelForm, str] | None:
        return None

    def _hbox(self) -> QHBoxLayout:
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(6)
        return row


class _TextEditor(_Editor):
    """str, SecretStr, UUID, unbounded/optional numbers and JSON fallbacks: a QLineEdit."""

    def __init__(self, spec: FieldSpec, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        row = self._hbox()
        self.line = QLineEdit()
        self.input = self.line
        self.line.setAccessibleName(spec.title)
        self.line.setClearButtonEnabled(spec.kind != "secret")
        limit = spec.max_length
        self.line.setMaxLength(limit if limit is not None and limit <= HARD_LENGTH_LIMIT else NO_LIMIT)
        row.addWidget(self.line, 1)
        self.extra_button: QAbstractButton | None = None
        if spec.kind == "secret":
            self.line.setEchoMode(QLineEdit.EchoMode.Password)
            self.line.setInputMethodHints(
                Qt.InputMethodHint.ImhHiddenText
                | Qt.InputMethodHint.ImhSensitiveData
                | Qt.InputMethodHint.ImhNoPredictiveText
                | Qt.InputMethodHint.ImhNoAutoUppercase
            )
            toggle = QToolButton()
            toggle.setText("Show")
            toggle.setCheckable(True)
            toggle.setAccessibleName(f"Show {spec.title}")
            toggle.setToolTip("Show or hide what you typed")
            toggle.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            toggle.toggled.connect(self._reveal)
            row.addWidget(toggle)
            self.extra_button = toggle
        elif spec.kind == "uuid":
            self.line.setPlaceholderText(UUID_EXAMPLE)
            if not spec.required:
                generate = _button("Generate", f"Generate a new {spec.title}")
                generate.setToolTip("Fill in a new random UUID")
                generate.clicked.connect(lambda: self.line.setText(str(uuid.uuid4())))
                row.addWidget(generate)
                self.extra_button = generate
        elif spec.kind in ("int", "float"):
            self.line.setPlaceholderText("a whole number" if spec.kind == "int" else "a number")
            self.line.setInputMethodHints(Qt.InputMethodHint.ImhFormattedNumbersOnly)
        elif spec.kind == "json":
            self.line.setPlaceholderText('JSON, e.g. [1, 2] or {"key": "value"}')
        elif spec.kind == "str" and isinstance(spec.default, str) and spec.default:
            self.line.setPlaceholderText(f"default: {spec.default}")
        self.line.textChanged.connect(self.changed)

    def _reveal(self, shown: bool) -> None:
        self.line.setEchoMode(QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password)
        button = self.extra_button
        if button is not None:
            button.setText("Hide" if shown else "Show")
            button.setAccessibleName(f"{'Hide' if shown else 'Show'} {self.spec.title}")

    def value(self) -> Any:
        text = self.line.text()
        if not text.strip():
            return MISSING
        kind = self.spec.kind
        if kind == "int":
            try:
                return int(text.strip())
            except ValueError:
                return text
        if kind == "float":
            try:
                return float(text.strip().replace(",", "."))
            except ValueError:
                return text
        if kind == "json":
            try:
                return json.loads(text)
            except ValueError:
                return text
        return text

    def local_errors(self) -> dict[str, str]:
        if self.spec.kind == "json" and self.line.text().strip():
            try:
                json.loads(self.line.text())
            except ValueError as exc:
                return {"": f"is not valid JSON: {exc}"}
        return {}

    def set_value(self, value: Any) -> None:
        if value is None or value is MISSING:
            text = ""
        elif isinstance(value, SecretStr):
            text = value.get_secret_value()
        elif isinstance(value, Enum):
            text = str(value.value)
        elif self.spec.kind == "json" and not isinstance(value, str):
            text = json.dumps(value, default=str)
        else:
            text = str(value)
        self.line.setText(text)


class _BoolEditor(_Editor):
    def __init__(self, spec: FieldSpec, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        row = self._hbox()
        self.box = QCheckBox(spec.title)
        self.input = self.box
        self.box.setAccessibleName(spec.title)
        row.addWidget(self.box)
        row.addStretch(1)
        self.box.toggled.connect(self.changed)

    def value(self) -> Any:
        return self.box.isChecked()

    def set_value(self, value: Any) -> None:
        self.box.setChecked(bool(value))


class _SpinEditor(_Editor):
    def __init__(self, spec: FieldSpec, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        row = self._hbox()
        spin: QSpinBox | QDoubleSpinBox
        if spec.kind == "int":
            spin = _SpinBox()
            low = _INT_MIN
            if spec.ge is not None:
                low = int(spec.ge)
            elif spec.gt is not None:
                low = int(spec.gt) + 1
            high = _INT_MAX
            if spec.le is not None:
                high = int(spec.le)
            elif spec.lt is not None:
                high = int(spec.lt) - 1
            spin.setRange(max(low, _INT_MIN), min(high, _INT_MAX))
        else:
            spin = _DoubleSpinBox()
            spin.setDecimals(2)
            step = 0.01
            low_f = -1e12
            if spec.ge is not None:
                low_f = float(spec.ge)
            elif spec.gt is not None:
                low_f = float(spec.gt) + step
            high_f = 1e12
            if spec.le is not None:
                high_f = float(spec.le)
            elif spec.lt is not None:
                high_f = float(spec.lt) - step
            spin.setRange(low_f, high_f)
        spin.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        spin.setAccessibleName(spec.title)
        spin.setKeyboardTracking(True)
        spin.setMinimumWidth(110)
        self.spin = spin
        self.input = spin
        row.addWidget(spin)
        row.addStretch(1)
        spin.valueChanged.connect(self.changed)

    def value(self) -> Any:
        return self.spin.value()

    def set_value(self, value: Any) -> None:
        if value is None or value is MISSING:
            value = self.spin.minimum() if self.spec.default is MISSING else self.spec.default
        try:
            number = float(value)
        except (TypeError, ValueError):
            return
        if isinstance(self.spin, QSpinBox):
            self.spin.setValue(int(number))
        else:
            self.spin.setValue(number)


class _ChoiceEditor(_Editor):
    """Enum or Literal: item text = value; tooltip = the enum's docstring or the value."""

    def __init__(self, spec: FieldSpec, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        row = self._hbox()
        self.combo = _ComboBox()
        self.combo.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.combo.setAccessibleName(spec.title)
        self.input = self.combo
        self.optional = spec.nullable or (not spec.required and spec.default is None)
        if self.optional:
            self.combo.addItem("(not set)", None)
            self.combo.setItemData(0, "Leave empty", Qt.ItemDataRole.ToolTipRole)
        for value, tip in self._choices(spec.inner):
            self.combo.addItem(str(value), value)
            self.combo.setItemData(self.combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        row.addWidget(self.combo)
        row.addStretch(1)
        self.combo.currentIndexChanged.connect(self.changed)

    @staticmethod
    def _choices(tp: Any) -> list[tuple[Any, str]]:
        if get_origin(tp) is Literal:
            return [(v, str(v)) for v in get_args(tp)]
        own_doc = tp.__dict__.get("__doc__")
        out = []
        for member in tp:
            member_doc = member.__dict__.get("__doc__") if hasattr(member, "__dict__") else None
            if member_doc and member_doc != own_doc:
                tip = member_doc
            elif own_doc:
                tip = f"{member.value} — {own_doc.strip()}"
            else:
                tip = str(member.value)
            out.append((member.value, tip))
        return out

    def value(self) -> Any:
        data = self.combo.currentData()
        return MISSING if data is None else data

    def set_value(self, value: Any) -> None:
        if isinstance(value, Enum):
            value = value.value
        index = self.combo.findData(value) if value is not None else (0 if self.optional else -1)
        if index < 0 and value is not None:
            index = self.combo.findText(str(value))
        if index >= 0:
            self.combo.setCurrentIndex(index)
        elif not self.optional and self.combo.count():
            self.combo.setCurrentIndex(0)


class _TemporalEditor(_Editor):
    """datetime (UTC) / date / time, with a "Not set" box when the field may be empty."""

    def __init__(self, spec: FieldSpec, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        row = self._hbox()
        edit: QDateTimeEdit
        if spec.kind == "datetime":
            edit = _DateTimeEdit()
            edit.setTimeZone(QTimeZone(QTimeZone.Initialization.UTC))
            edit.setDisplayFormat("yyyy-MM-dd HH:mm:ss 'UTC'")
            edit.setCalendarPopup(True)
        elif spec.kind == "date":
            edit = _DateEdit()
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setCalendarPopup(True)
        else:
            edit = _TimeEdit()
            edit.setDisplayFormat("HH:mm")
        edit.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        edit.setAccessibleName(spec.title)
        self.edit = edit
        self.input = edit
        row.addWidget(edit)
        self.unset: QCheckBox | None = None
        if spec.nullable or (not spec.required and spec.default is None):
            self.unset = QCheckBox("Not set")
            self.unset.setAccessibleName(f"{spec.title}: not set")
            self.unset.setToolTip("Leave this field empty")
            self.unset.toggled.connect(self._on_unset)
            row.addWidget(self.unset)
        row.addStretch(1)
        edit.dateTimeChanged.connect(self.changed)
        self._now()

    def _now(self) -> None:
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        self.edit.setDateTime(
            QDateTime.fromSecsSinceEpoch(int(now.timestamp()), QTimeZone(QTimeZone.Initialization.UTC))
        )

    def _on_unset(self, unset: bool) -> None:
        self.edit.setEnabled(not unset)
        self.changed.emit()

    def is_set(self) -> bool:
        return self.unset is None or not self.unset.isChecked()

    def value(self) -> Any:
        if not self.is_set():
            return MISSING
        kind = self.spec.kind
        if kind == "datetime":
            return datetime.fromtimestamp(self.edit.dateTime().toSecsSinceEpoch(), UTC).isoformat()
        if kind == "date":
            d = self.edit.date()
            return date(d.year(), d.month(), d.day()).isoformat()
        t = self.edit.time()
        return time(t.hour(), t.minute(), t.second()).isoformat()

    def set_value(self, value: Any) -> None:
        kind = self.spec.kind
        empty = value is None or value is MISSING or value == ""
        if not empty:
            if kind == "datetime":
                moment = _to_datetime(value)
                if moment is not None:
                    self.edit.setDateTime(
                        QDateTime.fromSecsSinceEpoch(
                            int(moment.timestamp()), QTimeZone(QTimeZone.Initialization.UTC)
                        )
                    )
                else:
                    empty = True
            elif kind == "date":
                try:
                    d = value if isinstance(value, date) else date.fromisoformat(str(value))
                    self.edit.setDate(QDate(d.year, d.month, d.day))
                except ValueError:
                    empty = True
            else:
                try:
                    t = value if isinstance(value, time) else time.fromisoformat(str(value))
                    self.edit.setTime(QTime(t.hour, t.minute, t.second))
                except ValueError:
                    empty = True
        if self.unset is not None:
            self.unset.setChecked(empty)
            self.edit.setEnabled(not empty)


class _KeyValueEditor(_Editor):
    """dict[str, str]: a two-column table with Add and Remove."""

    def __init__(self, spec: FieldSpec, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(4)
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Name", "Value"])
        self.table.setAccessibleName(spec.title)
        self.table.setAccessibleDescription("Name and value pairs; use Add to add a row")
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setTabKeyNavigation(False)  # Tab leaves the table: the keyboard path stays linear
        self.table.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.AnyKeyPressed
            | QAbstractItemView.EditTrigger.SelectedClicked
        )
        row_height = self.table.verticalHeader().defaultSectionSize()
        header_height = self.table.horizontalHeader().sizeHint().height()
        # Compact: room for three pairs; more scroll.
        self.table.setFixedHeight(header_height + row_height * 3 + 2 * self.table.frameWidth())
        self.input = self.table
        outer.addWidget(self.table)
        self.add_button, self.remove_button = _add_remove_buttons(
            outer, f"Add a {spec.title} row", f"Remove the selected {spec.title} row"
        )
        self.add_button.clicked.connect(self._add_clicked)
        self.remove_button.clicked.connect(self._remove_clicked)
        self.table.itemSelectionChanged.connect(
            lambda: self.remove_button.setEnabled(bool(self.table.selectionModel().selectedRows()))
        )
        self.table.itemChanged.connect(self.changed)

    def add_row(self, key: str = "", value: str = "") -> int:
        row = self.table.rowCount()
        self.table.insertRow(row)
        self.table.setItem(row, 0, QTableWidgetItem(key))
        self.table.setItem(row, 1, QTableWidgetItem(value))
        self.changed.emit()
        return row

    def _add_clicked(self) -> None:
        row = self.add_row()
        self.table.setCurrentCell(row, 0)
        self.table.setFocus()
        item = self.table.item(row, 0)
        if item is not None:
            self.table.editItem(item)

    def _remove_clicked(self) -> None:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()}, reverse=True)
        for row in rows:
            self.table.removeRow(row)
        if rows:
            self.changed.emit()

    def rows(self) -> list[tuple[str, str]]:
        out = []
        for row in range(self.table.rowCount()):
            key_item, value_item = self.table.item(row, 0), self.table.item(row, 1)
            out.append((key_item.text() if key_item else "", value_item.text() if value_item else ""))
        return out

    def value(self) -> Any:
        found: dict[str, str] = {}
        for key, value in self.rows():
            if not key and not value:
                continue
            found[key.strip() if key.strip() else key] = value
        return found

    def local_errors(self) -> dict[str, str]:
        seen: set[str] = set()
        for key, value in self.rows():
            if not key and not value:
                continue
            name = key.strip()
            if name and name in seen:
                return {"": f"the name {name!r} is listed twice"}
            seen.add(name)
        return {}

    def set_value(self, value: Any) -> None:
        blocker = self.table.blockSignals(True)
        self.table.setRowCount(0)
        self.table.blockSignals(blocker)
        if isinstance(value, Mapping):
            for key, text in value.items():
                self.add_row(str(key), "" if text is None else str(text))
        self.changed.emit()


class _StringListEditor(_Editor):
    """list[str]: a list of editable items with Add and Remove."""

    def __init__(self, spec: FieldSpec, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(4)
        self.list = QListWidget()
        self.list.setAccessibleName(spec.title)
        self.list.setAccessibleDescription("One entry per line; use Add to add one")
        self.list.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.SelectedClicked
        )
        row_height = max(self.list.fontMetrics().height() + 6, 20)
        self.list.setFixedHeight(
            row_height * 3 + 2 * self.list.frameWidth() + 4
        )  # three entries; more scroll
        self.input = self.list
        outer.addWidget(self.list)
        self.add_button, self.remove_button = _add_remove_buttons(
            outer, f"Add to {spec.title}", f"Remove the selected entry from {spec.title}"
        )
        self.add_button.clicked.connect(self._add_clicked)
        self.remove_button.clicked.connect(self._remove_clicked)
        self.list.itemSelectionChanged.connect(
            lambda: self.remove_button.setEnabled(bool(self.list.selectedItems()))
        )
        self.list.itemChanged.connect(self.changed)
        self._sync_limit()

    def add_item(self, text: str = "") -> QListWidgetItem:
        item = QListWidgetItem(text)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
        self.list.addItem(item)
        self._sync_limit()
        self.changed.emit()
        return item

    def _sync_limit(self) -> None:
        limit = self.spec.max_length
        self.add_button.setEnabled(limit is None or self.list.count() < limit)

    def _add_clicked(self) -> None:
        item = self.add_item()
        self.list.setCurrentItem(item)
        self.list.setFocus()
        self.list.editItem(item)

    def _remove_clicked(self) -> None:
        rows = sorted((self.list.row(item) for item in self.list.selectedItems()), reverse=True)
        for row in rows:
            self.list.takeItem(row)
        self._sync_limit()
        if rows:
            self.changed.emit()

    def items(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def value(self) -> Any:
        return self.items()

    def set_value(self, value: Any) -> None:
        blocker = self.list.blockSignals(True)
        self.list.clear()
        self.list.blockSignals(blocker)
        if isinstance(value, (list, tuple)):
            for text in value:
                self.add_item("" if text is None else str(text))
        self._sync_limit()
        self.changed.emit()


class _NestedEditor(_Editor):
    """A nested model: a group box around a nested form, checkable when the field may be empty."""

    def __init__(self, spec: FieldSpec, owner: ModelForm, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        self.spanning = True
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.box = QGroupBox(spec.title + (" *" if spec.required else ""))
        self.box.setAccessibleName(spec.title)
        if spec.description:
            self.box.setToolTip(spec.description)
        self.optional = spec.nullable or (not spec.required and spec.default is None)
        if self.optional:
            self.box.setCheckable(True)
            self.box.setChecked(False)
            self.box.setAccessibleDescription("check to fill in; unchecked leaves it empty")
            self.box.toggled.connect(self.changed)
        inner = QVBoxLayout(self.box)
        inner.setContentsMargins(10, 6, 10, 10)
        if spec.description:
            inner.addWidget(HelpLabel(spec.description))
        self.form = ModelForm(spec.inner, parent=self.box, _nested=True)
        inner.addWidget(self.form)
        self.form.changed.connect(self.changed)
        self.form.structure_changed.connect(owner._on_structure_changed)
        self.input = self.box if self.optional else self.form
        outer.addWidget(self.box)

    def is_set(self) -> bool:
        return not self.optional or self.box.isChecked()

    def value(self) -> Any:
        return self.form.values() if self.is_set() else MISSING

    def set_value(self, value: Any) -> None:
        value = _plain(value)
        if isinstance(value, Mapping):
            self.form.set_values(value)
            if self.optional:
                self.box.setChecked(True)
        else:
            self.form.set_values({})
            if self.optional:
                self.box.setChecked(False)

    def local_errors(self) -> dict[str, str]:
        return self.form.local_errors() if self.is_set() else {}

    def route_error(self, rest: str, message: str) -> bool:
        if not rest:
            return False
        self.form._apply_errors({rest: message}, unknown_beside=None)
        return True

    def clear_nested_errors(self) -> None:
        self.form.clear_errors()

    def nested_errors(self) -> dict[str, str]:
        return self.form.errors()

    def resolve(self, rest: str) -> tuple[ModelForm, str] | None:
        return self.form._resolve(rest)


class ModelListEditor(_Editor):
    """A list of nested models: one framed form per item with Remove, and an Add button.

    ``min_length``/``max_length`` of the field are respected: Remove is disabled at the
    minimum (a required list starts with one item), Add at the maximum.
    """

    def __init__(self, spec: FieldSpec, owner: ModelForm, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        self.spanning = True
        self.owner = owner
        self.item_label = _model_label(spec.item_model)
        self.minimum = spec.min_length or 0
        self.maximum = spec.max_length
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.box = QGroupBox(spec.title + (" *" if spec.required else ""))
        self.box.setAccessibleName(spec.title)
        if spec.description:
            self.box.setToolTip(spec.description)
        self.input = self.box
        inner = QVBoxLayout(self.box)
        inner.setContentsMargins(10, 6, 10, 10)
        inner.setSpacing(8)
        if spec.description:
            inner.addWidget(HelpLabel(spec.description))
        self.empty_label = QLabel(f"No {spec.title.lower()} yet.")
        self.empty_label.setTextFormat(Qt.TextFormat.PlainText)
        self.empty_label.setAccessibleName(f"{spec.title}: none")
        inner.addWidget(self.empty_label)
        self.rows_layout = QVBoxLayout()
        self.rows_layout.setContentsMargins(0, 0, 0, 0)
        self.rows_layout.setSpacing(8)
        inner.addLayout(self.rows_layout)
        buttons = QHBoxLayout()
        self.add_button = _button(
            f"Add {self.item_label.lower()}", f"Add {self.item_label.lower()} to {spec.title}"
        )
        self.add_button.clicked.connect(self._add_clicked)
        buttons.addWidget(self.add_button)
        buttons.addStretch(1)
        inner.addLayout(buttons)
        outer.addWidget(self.box)
        self._rows: list[tuple[QFrame, QLabel, QPushButton, ModelForm]] = []
        self._sync()

    # rows
    def forms(self) -> list[ModelForm]:
        return [form for *_, form in self._rows]

    def frames(self) -> list[QFrame]:
        return [frame for frame, *_ in self._rows]

    def remove_buttons(self) -> list[QPushButton]:
        return [button for _, _, button, _ in self._rows]

    def add_row(self, values: Mapping[str, Any] | None = None, *, notify: bool = True) -> ModelForm:
        frame = QFrame()
        frame.setFrameShape(QFrame.Shape.StyledPanel)
        frame.setFrameShadow(QFrame.Shadow.Plain)
        layout = QVBoxLayout(frame)
        layout.setContentsMargins(10, 6, 10, 8)
        layout.setSpacing(4)
        header = QHBoxLayout()
        title = QLabel()
        title.setTextFormat(Qt.TextFormat.PlainText)
        bold = QFont(title.font())
        bold.setBold(True)
        title.setFont(bold)
        header.addWidget(title)
        header.addStretch(1)
        remove = _button("Remove", "")
        header.addWidget(remove)
        layout.addLayout(header)
        form = ModelForm(self.spec.item_model, values=values, parent=frame, _nested=True)
        layout.addWidget(form)
        self.rows_layout.addWidget(frame)
        frame.show()  # at once, not on the next event-loop pass (errors may be set right away)
        self._rows.append((frame, title, remove, form))
        remove.clicked.connect(lambda: self.remove_row(self.forms().index(form)))
        form.changed.connect(self.changed)
        form.structure_changed.connect(self.owner._on_structure_changed)
        self._sync()
        if notify:
            self._structure_changed()
        return form

    def remove_row(self, index: int) -> None:
        if not 0 <= index < len(self._rows) or len(self._rows) <= self.minimum:
            return
        frame, *_ = self._rows.pop(index)
        self.rows_layout.removeWidget(frame)
        frame.hide()
        frame.deleteLater()
        self.clear_nested_errors()  # paths shift with the rows
        self._sync()
        self._structure_changed()
        if self._rows:
            self.remove_buttons()[min(index, len(self._rows) - 1)].setFocus()
        else:
            self.add_button.setFocus()

    def _add_clicked(self) -> None:
        form = self.add_row()
        chain = form.focus_chain()
        if chain:
            chain[0].setFocus()
            _ensure_visible(chain[0])

    def _structure_changed(self) -> None:
        self.owner._on_structure_changed()
        self.changed.emit()

    def _sync(self) -> None:
        count = len(self._rows)
        for index, (_, title, remove, _form) in enumerate(self._rows):
            name = f"{self.item_label} {index + 1}"
            title.setText(name)
            title.setAccessibleName(name)
            remove.setAccessibleName(f"Remove {name.lower()}")
            remove.setToolTip(f"Remove {name.lower()}")
            remove.setEnabled(count > self.minimum)
        self.add_button.setEnabled(self.maximum is None or count < self.maximum)
        self.empty_label.setVisible(count == 0)

    # values
    def value(self) -> Any:
        return [form.values() for form in self.forms()]

    def set_value(self, value: Any) -> None:
        items = [_plain(v) for v in value] if isinstance(value, (list, tuple)) else []
        if not items and self.spec.required:
            items = [{}] * max(self.minimum, 1)
        for frame, *_ in self._rows:
            self.rows_layout.removeWidget(frame)
            frame.hide()
            frame.deleteLater()
        self._rows.clear()
        for item in items:
            self.add_row(item if isinstance(item, Mapping) else {}, notify=False)
        self._sync()
        self._structure_changed()

    def local_errors(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for index, form in enumerate(self.forms()):
            for path, message in form.local_errors().items():
                found[f"{index}.{path}" if path else str(index)] = message
        return found

    # errors
    def route_error(self, rest: str, message: str) -> bool:
        head, _, tail = rest.partition(".")
        if not head.isdigit() or int(head) >= len(self._rows):
            return False
        self.forms()[int(head)]._apply_errors({tail: message}, unknown_beside=None)
        return True

    def clear_nested_errors(self) -> None:
        for form in self.forms():
            form.clear_errors()

    def nested_errors(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for index, form in enumerate(self.forms()):
            for path, message in form.errors().items():
                found[f"{index}.{path}" if path else str(index)] = message
        return found

    def resolve(self, rest: str) -> tuple[ModelForm, str] | None:
        head, _, tail = rest.partition(".")
        if head.isdigit() and int(head) < len(self._rows):
            return self.forms()[int(head)]._resolve(tail)
        return None


def _make_editor(spec: FieldSpec, owner: ModelForm) -> _Editor:
    kind = spec.kind
    if kind == "bool":
        return _BoolEditor(spec)
    if kind in ("int", "float"):
        if spec.bounded and not spec.nullable:
            return _SpinEditor(spec)
        return _TextEditor(spec)
    if kind == "choice":
        return _ChoiceEditor(spec)
    if kind in ("datetime", "date", "time"):
        return _TemporalEditor(spec)
    if kind == "dict":
        return _KeyValueEditor(spec)
    if kind == "strlist":
        return _StringListEditor(spec)
    if kind == "model":
        return _NestedEditor(spec, owner)
    if kind == "modellist":
        return ModelListEditor(spec, owner)
    return _TextEditor(spec)  # str, secret, uuid, json


def _ensure_visible(widget: QWidget) -> None:
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QScrollArea):
            parent.ensureWidgetVisible(widget, 20, 40)
            return
        parent = parent.parentWidget()


# -- the form -------------------------------------------------------------------------------------------


@dataclass
class _Row:
    spec: FieldSpec
    editor: _Editor
    container: QWidget
    label: QLabel | None
    error: FieldError
    help: HelpLabel | None


class ModelForm(QWidget):
    """A form for a pydantic model, validated by the model, errors beside their fields.

    ``values()`` is JSON-compatible: empty optional fields are left out so the model's defaults
    apply, numbers are numbers, datetimes ISO 8601 text in UTC, secrets their plain text (only
    ever handed to the model). ``set_values`` fills the given fields and resets the others to
    their defaults. Error paths are dotted (``items.0.to_time``); a path that names no field
    goes to the form-level error line at the top.
    """

    changed = Signal()
    #: Rows of a nested list were added or removed (the tab order has been refreshed).
    structure_changed = Signal()

    def __init__(
        self,
        model: type[BaseModel],
        *,
        values: Mapping[str, Any] | None = None,
        exclude: Collection[str] = (),
        order: Iterable[str] = (),
        parent: QWidget | None = None,
        _nested: bool = False,
    ) -> None:
        super().__init__(parent)
        self.model = model
        self.nested = _nested
        self._setting = False
        self._rows: dict[str, _Row] = {}
        outer = QVBoxLayout(self)
        # A top-level form usually sits straight in a scroll area: keep its frames off the edges.
        margin = 0 if _nested else 6
        outer.setContentsMargins(margin, margin, margin, margin)
        outer.setSpacing(6)
        self.form_error = FieldError("form")
        self.form_error.label.setAccessibleName(f"Problems with the {_model_label(model).lower()}")
        outer.addWidget(self.form_error)
        self.layout_ = QFormLayout()
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.layout_.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
        self.layout_.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.layout_.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.layout_.setHorizontalSpacing(12)
        self.layout_.setVerticalSpacing(8)
        outer.addLayout(self.layout_)
        excluded = set(exclude)
        names = [n for n in model.model_fields if n not in excluded]
        first = [n for n in order if n in names]
        names = first + [n for n in names if n not in first]
        for name in names:
            self._add_field(FieldSpec.of(name, model.model_fields[name]))
        if not _nested and any(row.spec.required for row in self._rows.values()):
            note = HelpLabel("Fields marked * are required.")
            note.setAccessibleName("Fields marked with an asterisk are required")
            outer.insertWidget(1, note)
        self.set_values(values or {})
        self._refresh_tab_order()

    # -- building ---------------------------------------------------------------------------------
    def _add_field(self, spec: FieldSpec) -> None:
        editor = _make_editor(spec, self)
        container = QWidget()
        box = QVBoxLayout(container)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(2)
        box.addWidget(editor)
        help_label = None
        if spec.description and not editor.spanning and len(spec.description) > LONG_DESCRIPTION:
            help_label = HelpLabel(spec.description)
            box.addWidget(help_label)
        error = FieldError(spec.title)
        box.addWidget(error)
        box.addStretch(1)  # spare height goes below, never between a field and its help or error
        tip = spec.description
        if tip:
            editor.input.setToolTip(tip)
        if spec.required:
            editor.input.setAccessibleDescription("required")
        label: QLabel | None = None
        if editor.spanning:
            self.layout_.addRow(container)
        elif spec.kind == "bool":
            self.layout_.addRow(QLabel(""), container)
        else:
            label = QLabel(spec.title + (" *" if spec.required else ""))
            label.setTextFormat(Qt.TextFormat.PlainText)
            label.setBuddy(editor.input)
            if tip:
                label.setToolTip(tip)
            if spec.kind in ("dict", "strlist"):
                label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
            else:
                # As tall as a one-line input, so the label's text sits level with the field's text.
                label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
                label.setFixedHeight(max(editor.input.sizeHint().height(), label.sizeHint().height()))
            self.layout_.addRow(label, container)
        container.setObjectName(f"row_{spec.name}")
        container.setAccessibleName(spec.title)
        self._rows[spec.name] = _Row(spec, editor, container, label, error, help_label)
        editor.changed.connect(self._on_editor_changed)

    def insert_row(self, before: str | None, widget: QWidget, label: QLabel | str | None = None) -> None:
        """Put an extra row (e.g. a name field or a banner) above field ``before`` (None: at the top;
        an unknown name: at the end). With ``label`` it is a labelled row, else it spans both columns."""
        index = self.layout_.rowCount()
        if before is None:
            index = 0
        elif before in self._rows:
            position = self.layout_.getWidgetPosition(self._rows[before].container)
            index = int(position[0])  # type: ignore[index]
        if label is None:
            self.layout_.insertRow(index, widget)
        else:
            self.layout_.insertRow(index, label if isinstance(label, QLabel) else QLabel(label), widget)
        self._refresh_tab_order()

    # -- access (tests, dialogs) --------------------------------------------------------------------
    def field_names(self) -> list[str]:
        return list(self._rows)

    def spec(self, name: str) -> FieldSpec:
        form, leaf = self._resolve_or_raise(name)
        return form._rows[leaf].spec

    def editor(self, path: str) -> _Editor:
        form, leaf = self._resolve_or_raise(path)
        return form._rows[leaf].editor

    def field_widget(self, name: str) -> QWidget:
        """The main input of a field (dotted paths reach into nested forms: ``items.0.target``)."""
        return self.editor(name).input

    def field_row(self, name: str) -> QWidget:
        """The widget holding a field's editor, help line and error label."""
        form, leaf = self._resolve_or_raise(name)
        return form._rows[leaf].container

    def field_label(self, name: str) -> QLabel | None:
        form, leaf = self._resolve_or_raise(name)
        return form._rows[leaf].label

    def error_label(self, name: str) -> QLabel:
        """The text label of a field's error (empty and hidden when there is none)."""
        form, leaf = self._resolve_or_raise(name)
        return form._rows[leaf].error.label

    def field_error(self, name: str) -> FieldError:
        form, leaf = self._resolve_or_raise(name)
        return form._rows[leaf].error

    def _resolve(self, path: str) -> tuple[ModelForm, str] | None:
        head, _, rest = path.partition(".")
        row = self._rows.get(head)
        if row is None:
            return None
        if not rest:
            return self, head
        return row.editor.resolve(rest)

    def _resolve_or_raise(self, path: str) -> tuple[ModelForm, str]:
        found = self._resolve(path)
        if found is None:
            raise KeyError(f"{self.model.__name__} form has no field {path!r}")
        return found

    # -- values -----------------------------------------------------------------------------------------
    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, row in self._rows.items():
            value = row.editor.value()
            if value is not MISSING:
                out[name] = value
        return out

    def set_values(self, values: Mapping[str, Any] | BaseModel) -> None:
        data = _plain(values)
        self._setting = True
        try:
            for name, row in self._rows.items():
                if name in data:
                    row.editor.set_value(data[name])
                else:
                    row.editor.reset()
        finally:
            self._setting = False
        self.changed.emit()

    def _on_editor_changed(self) -> None:
        if not self._setting:
            self.changed.emit()

    # -- validation and errors --------------------------------------------------------------------------
    def local_errors(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for name, row in self._rows.items():
            for rest, message in row.editor.local_errors().items():
                found[f"{name}.{rest}" if rest else name] = message
        return found

    def validate(self) -> BaseModel | None:
        """The model instance, or None after showing every problem beside its field."""
        local = self.local_errors()
        try:
            instance = self.model.model_validate(self.values())
        except ValidationError as exc:
            self.set_errors({**errors_by_path(exc), **local})
            self.focus_first_error()
            return None
        if local:
            self.set_errors(local)
            self.focus_first_error()
            return None
        self.clear_errors()
        return instance

    def set_errors(self, errors: Mapping[str, str]) -> None:
        """Show ``errors`` (dotted path → message) beside their fields, replacing earlier ones."""
        self.clear_errors()
        self._apply_errors(errors, unknown_beside=None)

    def _apply_errors(self, errors: Mapping[str, str], unknown_beside: FieldError | None) -> None:
        unknown: list[str] = []
        per_field: dict[str, list[str]] = {}
        for path, raw in errors.items():
            message = _clean_message(raw)
            head, _, rest = path.partition(".")
            row = self._rows.get(head)
            if row is None:
                unknown.append(f"{path}: {message}" if path else message)
            elif rest and row.editor.route_error(rest, message):
                continue
            else:
                per_field.setdefault(head, []).append(f"{rest}: {message}" if rest else message)
        for name, messages in per_field.items():
            row = self._rows[name]
            current = row.error.message()
            text = "\n".join([current, *messages] if current else messages)
            row.error.set_message(text)
            base = "required" if row.spec.required else ""
            row.editor.input.setAccessibleDescription(f"{base}; error: {text}" if base else f"error: {text}")
        if unknown:
            target = unknown_beside or self.form_error
            current = target.message()
            target.set_message("\n".join([current, *unknown] if current else unknown))

    def clear_errors(self) -> None:
        self.form_error.set_message(None)
        for row in self._rows.values():
            row.error.set_message(None)
            row.editor.input.setAccessibleDescription("required" if row.spec.required else "")
            row.editor.clear_nested_errors()

    def errors(self) -> dict[str, str]:
        """The messages shown now, by dotted path ("" for the form-level line)."""
        found: dict[str, str] = {}
        if self.form_error.message():
            found[""] = self.form_error.message()
        for name, row in self._rows.items():
            if row.error.message():
                found[name] = row.error.message()
            for rest, message in row.editor.nested_errors().items():
                found[f"{name}.{rest}" if rest else name] = message
        return found

    def focus_first_error(self) -> None:
        for path in self.errors():
            if not path:
                continue
            try:
                widget = self.field_widget(path)
            except KeyError:
                continue
            if widget.isEnabled() and widget.focusPolicy() != Qt.FocusPolicy.NoFocus:
                widget.setFocus(Qt.FocusReason.OtherFocusReason)
            _ensure_visible(self.field_row(path))
            return

    # -- keyboard path ----------------------------------------------------------------------------------
    def focus_chain(self) -> list[QWidget]:
        """The focusable widgets of this form in reading order."""
        out: list[QWidget] = []
        _walk_layout(self.layout(), out)
        return out

    def _refresh_tab_order(self) -> None:
        chain = self.focus_chain()
        for first, second in itertools.pairwise(chain):
            QWidget.setTabOrder(first, second)

    def _on_structure_changed(self) -> None:
        self._refresh_tab_order()
        self.structure_changed.emit()


def _walk_layout(layout: QLayout | None, out: list[QWidget]) -> None:
    if layout is None:
        return
    items: list[QLayoutItem] = []
    if isinstance(layout, QFormLayout):
        for row in range(layout.rowCount()):
            for role in (
                QFormLayout.ItemRole.LabelRole,
                QFormLayout.ItemRole.FieldRole,
                QFormLayout.ItemRole.SpanningRole,
            ):
                item = layout.itemAt(row, role)
                if item is not None:
                    items.append(item)
    else:
        for i in range(layout.count()):
            entry = layout.itemAt(i)
            if entry is not None:
                items.append(entry)
    for item in items:
        widget = item.widget()
        if widget is not None:
            _walk_widget(widget, out)
        elif item.layout() is not None:
            _walk_layout(item.layout(), out)


def _walk_widget(widget: QWidget, out: list[QWidget]) -> None:
    policy = widget.focusPolicy()
    if policy & Qt.FocusPolicy.TabFocus == Qt.FocusPolicy.TabFocus and not isinstance(widget, QLabel):
        out.append(widget)
    _walk_layout(widget.layout(), out)
