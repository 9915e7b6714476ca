"""The editing widget of one model field, per kind of field (see :class:`FieldSpec`).

Each editor reads and writes the JSON-compatible value of its field (``MISSING`` when it is
left empty, so the model's default applies) and reports problems it finds itself, such as
text that is not JSON. Nested models and lists of them are in :mod:`.model_form`, since
they hold forms of their own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

from pydantic import SecretStr
from PySide6.QtCore import QDate, QDateTime, Qt, QTime, QTimeZone, Signal
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QBoxLayout,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDateTimeEdit,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTimeEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from runmonitor.ui.forms.spec import MISSING, FieldSpec, plain_values, to_datetime

if TYPE_CHECKING:
    from runmonitor.ui.forms.model_form import ModelForm

__all__ = [
    "BoolEditor",
    "ChoiceEditor",
    "FieldEditor",
    "KeyValueEditor",
    "SpinEditor",
    "StringListEditor",
    "TemporalEditor",
    "TextEditor",
    "action_button",
    "add_remove_buttons",
]

#: Strings whose limit is at most this get a hard QLineEdit limit; longer limits are only reported.
HARD_LENGTH_LIMIT = 255
#: QLineEdit's own default limit is 32767 characters; fields without a limit take more.
NO_LIMIT = 1_000_000
UUID_EXAMPLE = "e.g. 123e4567-e89b-12d3-a456-426614174000"
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


def _qdatetime(moment: datetime) -> QDateTime:
    """``moment`` as a QDateTime in UTC (whole seconds), for the date-time editor."""
    return QDateTime.fromSecsSinceEpoch(int(moment.timestamp()), QTimeZone(QTimeZone.Initialization.UTC))


def action_button(text: str, accessible: str, parent: QWidget | None = None) -> QPushButton:
    """A push button inside a form (Add, Remove, Generate) that Enter never presses by default."""
    button = QPushButton(text, parent)
    button.setAccessibleName(accessible)
    # In a dialog, Enter must not press an Add/Remove/Generate button the user is not on.
    button.setAutoDefault(False)
    button.setDefault(False)
    return button


def add_remove_buttons(
    outer: QBoxLayout, names: tuple[str, str], clicked: tuple[Callable[[], None], Callable[[], None]]
) -> tuple[QPushButton, QPushButton]:
    """An Add / Remove button row under a list editor (accessible ``names``, ``clicked`` handlers);
    Remove starts disabled (nothing selected)."""
    buttons = QHBoxLayout()
    buttons.setSpacing(6)
    add = action_button("Add", names[0])
    remove = action_button("Remove", names[1])
    remove.setEnabled(False)
    add.clicked.connect(clicked[0])
    remove.clicked.connect(clicked[1])
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


class FieldEditor(QWidget):
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
        self.set_value(None if self.spec.default is MISSING else plain_values(self.spec.default))

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

    def _vbox(self) -> QVBoxLayout:
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(4)
        return column

    def _list_view(
        self,
        outer: QVBoxLayout,
        view: QTableWidget | QListWidget,
        names: tuple[str, str],
        clicked: tuple[Callable[[], None], Callable[[], None]],
        selected: Callable[[], bool],
    ) -> tuple[QPushButton, QPushButton]:
        """``view`` as the input with Add / Remove under it (see :func:`add_remove_buttons`);
        Remove is enabled while ``selected()``, and editing an entry is a change."""
        self.input = view
        outer.addWidget(view)
        add, remove = add_remove_buttons(outer, names, clicked)
        view.itemSelectionChanged.connect(lambda: remove.setEnabled(selected()))
        view.itemChanged.connect(self.changed)
        return add, remove


class TextEditor(FieldEditor):
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
                generate = action_button("Generate", f"Generate a new {spec.title}")
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


class BoolEditor(FieldEditor):
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


class SpinEditor(FieldEditor):
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


class ChoiceEditor(FieldEditor):
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


class TemporalEditor(FieldEditor):
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
        self.edit.setDateTime(_qdatetime(now))

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
                moment = to_datetime(value)
                if moment is not None:
                    self.edit.setDateTime(_qdatetime(moment))
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


class KeyValueEditor(FieldEditor):
    """dict[str, str]: a two-column table with Add and Remove."""

    def __init__(self, spec: FieldSpec, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        outer = self._vbox()
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
        self.add_button, self.remove_button = self._list_view(
            outer,
            self.table,
            (f"Add a {spec.title} row", f"Remove the selected {spec.title} row"),
            (self._add_clicked, self._remove_clicked),
            lambda: bool(self.table.selectionModel().selectedRows()),
        )

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


class StringListEditor(FieldEditor):
    """list[str]: a list of editable items with Add and Remove."""

    def __init__(self, spec: FieldSpec, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        outer = self._vbox()
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
        self.add_button, self.remove_button = self._list_view(
            outer,
            self.list,
            (f"Add to {spec.title}", f"Remove the selected entry from {spec.title}"),
            (self._add_clicked, self._remove_clicked),
            lambda: bool(self.list.selectedItems()),
        )
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
