"""The form generated from a pydantic model: one row per field, validated by the model itself.

:class:`ModelForm` lays out an editor per field (:func:`make_editor` picks it), reads the form
back as JSON-compatible values, validates them with the model and shows each message beside
the field it concerns. Nested models and lists of them get nested forms.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLayoutItem,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from runmonitor.ui.forms.editors import (
    BoolEditor,
    ChoiceEditor,
    FieldEditor,
    KeyValueEditor,
    SpinEditor,
    StringListEditor,
    TemporalEditor,
    TextEditor,
    action_button,
)
from runmonitor.ui.forms.feedback import FieldError, HelpLabel
from runmonitor.ui.forms.spec import (
    MISSING,
    FieldSpec,
    clean_message,
    errors_by_path,
    model_label,
    plain_values,
)

__all__ = ["ModelForm", "ModelListEditor", "make_editor"]

#: Descriptions longer than this also get a grey help line under the field (always a tooltip).
LONG_DESCRIPTION = 80


# -- fields that hold forms of their own ---------------------------------------------------------------


def _group_box(editor: FieldEditor, spec: FieldSpec) -> tuple[QVBoxLayout, QGroupBox]:
    """The editor's margin-less column and a group box titled after the field (not yet added)."""
    outer = QVBoxLayout(editor)
    outer.setContentsMargins(0, 0, 0, 0)
    box = QGroupBox(spec.title + (" *" if spec.required else ""))
    box.setAccessibleName(spec.title)
    if spec.description:
        box.setToolTip(spec.description)
    return outer, box


def _box_layout(box: QGroupBox, spec: FieldSpec) -> QVBoxLayout:
    """The group box's column, opening with the field's help line when it has one."""
    inner = QVBoxLayout(box)
    inner.setContentsMargins(10, 6, 10, 10)
    if spec.description:
        inner.addWidget(HelpLabel(spec.description))
    return inner


class _NestedEditor(FieldEditor):
    """A nested model: a group box around a nested form, checkable when the field may be empty."""

    def __init__(self, spec: FieldSpec, owner: ModelForm, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        self.spanning = True
        outer, self.box = _group_box(self, spec)
        self.optional = spec.nullable or (not spec.required and spec.default is None)
        if self.optional:
            self.box.setCheckable(True)
            self.box.setChecked(False)
            self.box.setAccessibleDescription("check to fill in; unchecked leaves it empty")
            self.box.toggled.connect(self.changed)
        inner = _box_layout(self.box, spec)
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
        value = plain_values(value)
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


class ModelListEditor(FieldEditor):
    """A list of nested models: one framed form per item with Remove, and an Add button.

    ``min_length``/``max_length`` of the field are respected: Remove is disabled at the
    minimum (a required list starts with one item), Add at the maximum.
    """

    def __init__(self, spec: FieldSpec, owner: ModelForm, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        self.spanning = True
        self.owner = owner
        self.item_label = model_label(spec.item_model)
        self.minimum = spec.min_length or 0
        self.maximum = spec.max_length
        outer, self.box = _group_box(self, spec)
        self.input = self.box
        inner = _box_layout(self.box, spec)
        inner.setSpacing(8)
        self.empty_label = QLabel(f"No {spec.title.lower()} yet.")
        self.empty_label.setTextFormat(Qt.TextFormat.PlainText)
        self.empty_label.setAccessibleName(f"{spec.title}: none")
        inner.addWidget(self.empty_label)
        self.rows_layout = QVBoxLayout()
        self.rows_layout.setContentsMargins(0, 0, 0, 0)
        self.rows_layout.setSpacing(8)
        inner.addLayout(self.rows_layout)
        buttons = QHBoxLayout()
        self.add_button = action_button(
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
        remove = action_button("Remove", "")
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
        items = [plain_values(v) for v in value] if isinstance(value, (list, tuple)) else []
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
        return _by_row(form.local_errors() for form in self.forms())

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
        return _by_row(form.errors() for form in self.forms())

    def resolve(self, rest: str) -> tuple[ModelForm, str] | None:
        head, _, tail = rest.partition(".")
        if head.isdigit() and int(head) < len(self._rows):
            return self.forms()[int(head)]._resolve(tail)
        return None


def _by_row(messages_per_row: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """The messages of each row's form, their paths under the row's index ("2.to_time")."""
    found: dict[str, str] = {}
    for index, messages in enumerate(messages_per_row):
        for path, message in messages.items():
            found[f"{index}.{path}" if path else str(index)] = message
    return found


def make_editor(spec: FieldSpec, owner: ModelForm) -> FieldEditor:
    kind = spec.kind
    if kind == "bool":
        return BoolEditor(spec)
    if kind in ("int", "float"):
        if spec.bounded and not spec.nullable:
            return SpinEditor(spec)
        return TextEditor(spec)
    if kind == "choice":
        return ChoiceEditor(spec)
    if kind in ("datetime", "date", "time"):
        return TemporalEditor(spec)
    if kind == "dict":
        return KeyValueEditor(spec)
    if kind == "strlist":
        return StringListEditor(spec)
    if kind == "model":
        return _NestedEditor(spec, owner)
    if kind == "modellist":
        return ModelListEditor(spec, owner)
    return TextEditor(spec)  # str, secret, uuid, json


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
    editor: FieldEditor
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
        self.form_error.label.setAccessibleName(f"Problems with the {model_label(model).lower()}")
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
        editor = make_editor(spec, self)
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

    def editor(self, path: str) -> FieldEditor:
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
        data = plain_values(values)
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
            message = clean_message(raw)
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
