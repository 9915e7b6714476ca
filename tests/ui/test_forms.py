"""ModelForm: forms generated from the services' pydantic models, with real widgets."""

from __future__ import annotations

import ast
import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field, SecretStr
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDateTimeEdit,
    QDoubleSpinBox,
    QGroupBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
)

from runmonitor.services import registry
from runmonitor.simulator import Simulator
from runmonitor.ui.forms import ModelForm, ModelListEditor
from runmonitor.ui.theme import tone
from tests.ui.conftest import accessible_name, contrast

SERVICES = list(registry())
MODELS = [(key, which) for key in SERVICES for which in ("request", "connection")]


@pytest.fixture(scope="module")
def demo() -> dict[tuple[str, str], dict[str, Any]]:
    """Demo request and connection values of every service, from a real simulator."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    with Simulator() as sim:
        for key in SERVICES:
            found[(key, "request")] = sim.demo_request(key)
            found[(key, "connection")] = sim.demo_connection(key)
    return found


def model_of(key: str, which: str) -> type[BaseModel]:
    service = registry()[key]
    return service.request_model if which == "request" else service.config_model


def make(qtbot: Any, model: type[BaseModel], **kwargs: Any) -> ModelForm:
    form = ModelForm(model, **kwargs)
    qtbot.addWidget(form)
    form.resize(700, 900)
    form.show()
    return form


def shows_error(form: ModelForm, path: str, text: str) -> QLabel:
    """Assert the error ``text`` is shown beside field ``path``, inside that field's row."""
    label = form.error_label(path)
    assert text in label.text()
    assert label.isVisibleTo(form)
    row = form.field_row(path)
    assert row.isAncestorOf(label), "the error label must sit in the field's own row"
    assert row.isAncestorOf(form.field_widget(path)) or row.isAncestorOf(form.editor(path))
    assert "error" in form.field_widget(path).accessibleDescription()
    return label


# -- every service: build, prefill, round trip ---------------------------------------------------------


@pytest.mark.parametrize(("key", "which"), MODELS)
def test_demo_values_round_trip(qtbot: Any, demo: Any, key: str, which: str) -> None:
    model = model_of(key, which)
    values = demo[(key, which)]
    form = make(qtbot, model, values=values)
    assert form.field_names() == list(model.model_fields)
    expected = model.model_validate(values)
    instance = form.validate()
    assert instance is not None, form.errors()
    assert instance == expected
    assert form.errors() == {}
    # values() is plain JSON data the model accepts again
    again = model.model_validate(form.values())
    assert again == expected
    # set_values on a fresh form gives the same values
    other = make(qtbot, model)
    other.set_values(form.values())
    assert other.values() == form.values()


@pytest.mark.parametrize(("key", "which"), MODELS)
def test_every_input_is_named_labelled_and_marked(qtbot: Any, demo: Any, key: str, which: str) -> None:
    model = model_of(key, which)
    form = make(qtbot, model, values=demo[(key, which)])
    chain = form.focus_chain()
    assert chain, "a form with fields has something to focus"
    for widget in chain:
        assert accessible_name(widget).strip(), f"{type(widget).__name__} in {model.__name__} has no name"
    for name, info in model.model_fields.items():
        title = info.title or name
        spec = form.spec(name)
        label = form.field_label(name)
        widget = form.field_widget(name)
        if label is not None:
            assert label.buddy() is widget
            assert label.text().startswith(title)
            assert label.textFormat() == Qt.TextFormat.PlainText
        if spec.required:
            assert widget.accessibleDescription() == "required"
            assert (label.text() if label else widget.title()).endswith(" *")  # type: ignore[attr-defined]
        if info.description:
            assert widget.toolTip() == info.description


# -- the right widget for each type ---------------------------------------------------------------------


def test_widgets_per_type(qtbot: Any) -> None:
    cognite = make(qtbot, registry()["cognite"].config_model)
    assert isinstance(cognite.field_widget("base_url"), QLineEdit)
    assert isinstance(cognite.field_widget("verify_tls"), QCheckBox)
    assert cognite.field_widget("verify_tls").isChecked()  # the default is prefilled
    timeout = cognite.field_widget("timeout_seconds")
    assert isinstance(timeout, QDoubleSpinBox)
    assert timeout.value() == 15.0
    assert 0 < timeout.minimum() <= 0.01  # gt=0
    assert timeout.maximum() == 300  # le=300
    auth = cognite.field_widget("auth_kind")
    assert isinstance(auth, QComboBox)
    assert [auth.itemText(i) for i in range(auth.count())] == ["client_credentials", "token", "api_key"]
    secret = cognite.field_widget("client_secret")
    assert isinstance(secret, QLineEdit)
    assert secret.echoMode() == QLineEdit.EchoMode.Password
    assert isinstance(cognite.field_widget("scopes"), QListWidget)

    report = make(qtbot, registry()["cognite"].request_model)
    status = report.field_widget("status")
    assert status.currentText() == "seen"
    # the enum's docstring is the tooltip of its items
    assert "three values Cognite accepts" in status.itemData(0, Qt.ItemDataRole.ToolTipRole)
    created = report.field_widget("created_time")
    assert isinstance(created, QDateTimeEdit)
    assert created.calendarPopup()
    assert created.timeZone().id() == b"UTC"
    assert "created_time" not in report.values()  # "Not set" by default: the model's default applies
    assert report.field_widget("external_id").maxLength() == 255

    marquez = make(qtbot, registry()["marquez"].request_model)
    assert isinstance(marquez.field_widget("args"), QTableWidget)
    run_id = marquez.field_widget("run_id")
    assert run_id.placeholderText().startswith("e.g. ")
    generate = marquez.editor("run_id").extra_button
    assert isinstance(generate, QPushButton)

    invision = make(qtbot, registry()["invision"].request_model)
    assert invision.editor("data_flow_id").extra_button is None  # required: nothing to generate

    connhex = make(qtbot, registry()["connhex"].request_model)
    items = connhex.editor("items")
    assert isinstance(items, ModelListEditor)
    assert len(items.forms()) == 1  # min_length=1: one row to start with
    assert isinstance(connhex.field_widget("format"), ModelForm)
    decimation = connhex.field_widget("items.0.decimation")
    assert isinstance(decimation, QGroupBox)
    assert decimation.isCheckable()
    assert not decimation.isChecked()
    assert connhex.field_widget("items.0.transform").currentText() == "(not set)"

    codestream = make(qtbot, registry()["codestream"].request_model)
    assert isinstance(codestream.field_widget("input"), QTableWidget)
    assert isinstance(codestream.field_widget("tags"), QListWidget)
    assert codestream.field_widget("comments").maxLength() > 2000  # long text is never cut


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


class Sample(BaseModel):
    """A model with the types the five services do not use."""

    count: int = Field(default=3, ge=1, le=10, title="Count")
    ratio: float | None = Field(default=None, title="Ratio")
    size: int = Field(default=0, title="Size")
    mode: Literal["fast", "safe"] = Field(default="safe", title="Mode")
    colour: Colour | None = Field(default=None, title="Colour")
    day: date | None = Field(default=None, title="Day")
    weights: dict[str, int] = Field(default_factory=dict, title="Weights")
    password: SecretStr = Field(title="Password")


def test_less_common_types(qtbot: Any) -> None:
    form = make(qtbot, Sample)
    count = form.field_widget("count")
    assert isinstance(count, QSpinBox)
    assert (count.minimum(), count.maximum(), count.value()) == (1, 10, 3)
    assert isinstance(form.field_widget("ratio"), QLineEdit)  # optional number: empty means not set
    assert isinstance(form.field_widget("size"), QLineEdit)  # unbounded number
    mode = form.field_widget("mode")
    assert [mode.itemText(i) for i in range(mode.count())] == ["fast", "safe"]
    assert mode.currentText() == "safe"
    assert isinstance(form.field_widget("day"), QDateEdit)
    weights = form.field_widget("weights")
    assert isinstance(weights, QLineEdit)  # dict[str, int]: JSON text
    assert weights.text() == "{}"

    form.field_widget("ratio").setText("0,5")
    form.field_widget("size").setText("42")
    form.editor("day").unset.setChecked(False)
    form.field_widget("day").setDate(date(2024, 2, 29))
    weights.setText('{"a": 1}')
    form.field_widget("password").setText("hunter2-very-secret")
    values = form.values()
    assert values["ratio"] == 0.5
    assert values["size"] == 42
    assert values["day"] == "2024-02-29"
    assert values["weights"] == {"a": 1}
    instance = form.validate()
    assert isinstance(instance, Sample)
    assert instance.password.get_secret_value() == "hunter2-very-secret"

    weights.setText("{not json")
    form.field_widget("size").setText("many")
    assert form.validate() is None
    shows_error(form, "weights", "is not valid JSON")
    shows_error(form, "size", "valid integer")


def test_secret_show_toggle_and_uuid_generate(qtbot: Any) -> None:
    form = make(qtbot, registry()["invision"].config_model)
    key = form.field_widget("api_key")
    toggle = form.editor("api_key").extra_button
    assert isinstance(toggle, QToolButton)
    assert accessible_name(toggle) == "Show API key"
    qtbot.mouseClick(toggle, Qt.MouseButton.LeftButton)
    assert key.echoMode() == QLineEdit.EchoMode.Normal
    assert toggle.text() == "Hide"
    qtbot.mouseClick(toggle, Qt.MouseButton.LeftButton)
    assert key.echoMode() == QLineEdit.EchoMode.Password

    marquez = make(qtbot, registry()["marquez"].request_model)
    generate = marquez.editor("run_id").extra_button
    assert generate is not None
    qtbot.mouseClick(generate, Qt.MouseButton.LeftButton)
    made = uuid.UUID(marquez.field_widget("run_id").text())
    assert made.version == 4


def test_datetime_round_trip_in_utc(qtbot: Any) -> None:
    form = make(qtbot, registry()["marquez"].request_model)
    form.set_values({"job": "daily", "nominal_start_time": "2024-05-01T02:00:00+02:00"})
    start = form.editor("nominal_start_time")
    assert start.is_set()
    assert form.field_widget("nominal_start_time").text() == "2024-05-01 00:00:00 UTC"
    assert form.values()["nominal_start_time"] == "2024-05-01T00:00:00+00:00"
    assert not form.editor("nominal_end_time").is_set()
    assert "nominal_end_time" not in form.values()
    instance = form.validate()
    assert instance is not None
    assert instance.nominal_start_time == datetime(2024, 5, 1, tzinfo=UTC)  # type: ignore[attr-defined]


def test_changed_signal_on_edit(qtbot: Any) -> None:
    form = make(qtbot, registry()["connhex"].request_model)
    with qtbot.waitSignal(form.changed, timeout=1000):
        qtbot.keyClicks(form.field_widget("items.0.subtopic"), "events")
    with qtbot.waitSignal(form.changed, timeout=1000):
        form.field_widget("format.extension").setCurrentIndex(1)


# -- bad input beside THAT field, then good input clears it ---------------------------------------------


BAD_INPUT = {
    "cognite": ({"message": "x" * 1001}, "message", "at most 1000 characters", {"message": "ok"}),
    "marquez": (
        {"nominal_start_time": "2024-05-02T00:00:00Z", "nominal_end_time": "2024-05-01T00:00:00Z"},
        "nominal_end_time",
        "must not be before the nominal start time",
        {"nominal_end_time": "2024-05-03T00:00:00Z"},
    ),
    "invision": ({"data_flow_id": "not-a-uuid"}, "data_flow_id", "valid UUID", None),
    "connhex": (
        {"type": "recurring"},
        "periodicity",
        "is required for a recurring export",
        {"periodicity": "P1D"},
    ),
    "codestream": ({"tags": ["runmonitor", ""]}, "tags", "tags must not be empty", {"tags": ["runmonitor"]}),
}


@pytest.mark.parametrize("key", SERVICES)
def test_bad_input_shows_error_beside_the_field(qtbot: Any, demo: Any, key: str) -> None:
    model = model_of(key, "request")
    bad, path, text, fix = BAD_INPUT[key]
    good = dict(demo[(key, "request")])
    if key == "connhex":
        good["items"] = [{**good["items"][0], "period": None}]  # a period is fine for recurring too
    form = make(qtbot, model, values={**good, **bad})
    assert form.validate() is None
    label = shows_error(form, path, text)
    # the other fields are untouched
    others = [name for name in form.field_names() if name != path]
    assert all(form.error_label(name).text() == "" for name in others)
    assert form.errors().keys() == {path}
    # the field with the error has the focus, for keyboard users
    focused = form.focusWidget()
    assert focused is not None
    assert focused is form.field_widget(path) or form.field_widget(path).isAncestorOf(focused)

    fixed = {**good, **bad, **(fix or {})} if fix else good
    form.set_values(fixed)
    instance = form.validate()
    assert instance is not None, form.errors()
    assert label.text() == ""
    assert not label.isVisibleTo(form)
    assert form.errors() == {}
    assert form.field_widget(path).accessibleDescription() in ("", "required")


def test_nested_error_lands_beside_the_nested_field(qtbot: Any, demo: Any) -> None:
    values = demo[("connhex", "request")]
    item = {**values["items"][0], "channel_id": "nope", "period": None}
    form = make(qtbot, registry()["connhex"].request_model, values={**values, "items": [item]})
    assert form.validate() is None
    shows_error(form, "items.0.channel_id", "valid UUID")
    frame = form.editor("items").frames()[0]
    assert frame.isAncestorOf(form.error_label("items.0.channel_id"))
    assert form.error_label("items").text() == ""  # not on the list as a whole


def test_set_errors_with_dotted_paths(qtbot: Any, demo: Any) -> None:
    values = demo[("connhex", "request")]
    form = make(qtbot, registry()["connhex"].request_model, values=values)
    form.editor("items").add_row({"target": "b", "subtopic": "x"})
    form.set_errors(
        {
            "items.1.to_time": "must be later than From",
            "format.columns": "column 'time' is listed twice",
            "items.0.decimation.interval": "bad interval",
            "nonsense.path": "from the server",
            "": "the service refused the export",
        }
    )
    to_time = shows_error(form, "items.1.to_time", "must be later than From")
    assert form.editor("items").frames()[1].isAncestorOf(to_time)
    assert not form.editor("items").frames()[0].isAncestorOf(to_time)
    shows_error(form, "format.columns", "listed twice")
    shows_error(form, "items.0.decimation.interval", "bad interval")
    top = form.form_error.label
    assert top.isVisibleTo(form)
    assert "nonsense.path: from the server" in top.text()
    assert "the service refused the export" in top.text()
    assert form.errors() == {
        "": top.text(),
        "items.1.to_time": "must be later than From",
        "format.columns": "column 'time' is listed twice",
        "items.0.decimation.interval": "bad interval",
    }
    form.clear_errors()
    assert form.errors() == {}
    assert not top.isVisibleTo(form)


def test_error_colours_are_readable_on_light_and_dark() -> None:
    light, dark = QPalette(), QPalette()
    light.setColor(QPalette.ColorRole.Window, QColor("#efefef"))
    dark.setColor(QPalette.ColorRole.Window, QColor("#2b2b2b"))
    for kind in ("error", "warning", "ok"):
        assert contrast(tone(kind, light), QColor("#efefef")) >= 4.5
        assert contrast(tone(kind, dark), QColor("#2b2b2b")) >= 4.5
    assert tone("error", light) != tone("error", dark)


# -- editors with Add / Remove -------------------------------------------------------------------------


def test_key_value_table_add_and_remove(qtbot: Any) -> None:
    form = make(qtbot, registry()["codestream"].request_model)
    editor = form.editor("input")
    table = form.field_widget("input")
    assert table.rowCount() == 0
    assert not editor.remove_button.isEnabled()
    qtbot.mouseClick(editor.add_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(editor.add_button, Qt.MouseButton.LeftButton)
    assert table.rowCount() == 2
    table.setItem(0, 0, QTableWidgetItem("branch"))
    table.setItem(0, 1, QTableWidgetItem("main"))
    table.setItem(1, 0, QTableWidgetItem("env"))
    table.setItem(1, 1, QTableWidgetItem("prod"))
    assert form.values()["input"] == {"branch": "main", "env": "prod"}

    table.selectRow(0)
    assert editor.remove_button.isEnabled()
    qtbot.mouseClick(editor.remove_button, Qt.MouseButton.LeftButton)
    assert table.rowCount() == 1
    assert form.values()["input"] == {"env": "prod"}

    # a repeated name is reported beside the table, not silently merged
    qtbot.mouseClick(editor.add_button, Qt.MouseButton.LeftButton)
    table.setItem(1, 0, QTableWidgetItem("env"))
    table.setItem(1, 1, QTableWidgetItem("dev"))
    form.field_widget("pipeline_id").setText("8365ef3b-8bf3-48aa-bd5d-7113fcff827c")
    assert form.validate() is None
    shows_error(form, "input", "'env' is listed twice")


def test_string_list_add_and_remove(qtbot: Any) -> None:
    form = make(qtbot, registry()["codestream"].request_model)
    form.field_widget("pipeline_id").setText("8365ef3b-8bf3-48aa-bd5d-7113fcff827c")
    editor = form.editor("tags")
    tags = form.field_widget("tags")
    qtbot.mouseClick(editor.add_button, Qt.MouseButton.LeftButton)
    assert tags.count() == 1
    assert tags.item(0).flags() & Qt.ItemFlag.ItemIsEditable
    tags.item(0).setText("nightly")
    qtbot.mouseClick(editor.add_button, Qt.MouseButton.LeftButton)
    tags.item(1).setText("release")
    assert form.values()["tags"] == ["nightly", "release"]
    tags.setCurrentRow(0)
    qtbot.mouseClick(editor.remove_button, Qt.MouseButton.LeftButton)
    assert form.values()["tags"] == ["release"]
    instance = form.validate()
    assert instance is not None
    assert instance.tags == ["release"]  # type: ignore[attr-defined]


def test_nested_list_of_models_add_and_remove(qtbot: Any, demo: Any) -> None:
    values = demo[("connhex", "request")]
    form = make(qtbot, registry()["connhex"].request_model, values=values)
    items = form.editor("items")
    assert isinstance(items, ModelListEditor)
    assert len(items.forms()) == 1
    assert not items.remove_buttons()[0].isEnabled()  # at the minimum of one item

    qtbot.mouseClick(items.add_button, Qt.MouseButton.LeftButton)
    assert len(items.forms()) == 2
    assert all(button.isEnabled() for button in items.remove_buttons())
    second = items.forms()[1]
    assert form.focusWidget() is second.field_widget("target")
    second.field_widget("target").setText("urn:b")
    second.field_widget("channel_id").setText(str(uuid.uuid4()))
    second.field_widget("subtopic").setText("events.other")
    instance = form.validate()
    assert instance is not None, form.errors()
    assert [item.target for item in instance.items] == [values["items"][0]["target"], "urn:b"]  # type: ignore[attr-defined]

    qtbot.mouseClick(items.remove_buttons()[0], Qt.MouseButton.LeftButton)
    assert len(items.forms()) == 1
    assert form.values()["items"][0]["target"] == "urn:b"
    assert items.frames()[0].findChild(QLabel).text() == "Export item 1"  # renumbered

    notes = form.editor("notifications")
    assert notes.forms() == []
    assert notes.empty_label.isVisibleTo(form)
    qtbot.mouseClick(notes.add_button, Qt.MouseButton.LeftButton)
    assert len(notes.forms()) == 1
    assert not notes.empty_label.isVisibleTo(form)
    qtbot.mouseClick(notes.remove_buttons()[0], Qt.MouseButton.LeftButton)
    assert notes.forms() == []
    assert form.values()["notifications"] == []


def test_tab_order_follows_the_fields_after_rows_are_added(qtbot: Any, demo: Any) -> None:
    form = make(qtbot, registry()["connhex"].request_model, values=demo[("connhex", "request")])
    qtbot.mouseClick(form.editor("items").add_button, Qt.MouseButton.LeftButton)
    chain = []
    widget = form.field_widget("type")
    for _ in range(200):
        chain.append(widget)
        widget = widget.nextInFocusChain()
        if widget is chain[0]:
            break
    positions = {id(w): i for i, w in enumerate(chain)}

    def at(path: str) -> int:
        return positions[id(form.field_widget(path))]

    assert at("type") < at("periodicity") < at("items.0.target") < at("items.0.subtopic")
    assert at("items.0.subtopic") < at("items.1.target") < at("items.1.subtopic")
    assert at("items.1.subtopic") < positions[id(form.editor("items").add_button)] < at("format.timezone")


def test_enter_in_a_field_does_not_press_a_button(qtbot: Any) -> None:
    form = make(qtbot, registry()["codestream"].request_model)
    buttons = form.findChildren(QPushButton)
    assert buttons
    assert not any(button.autoDefault() or button.isDefault() for button in buttons)
    before = form.values()
    qtbot.keyClick(form.field_widget("pipeline_id"), Qt.Key.Key_Return)
    assert form.values() == before
    assert form.field_widget("input").rowCount() == 0


def test_reading_the_fields_needs_no_qt() -> None:
    # forms/spec.py is the Qt-free half of the forms: it must stay usable (and testable) without Qt
    from runmonitor.ui.forms import FieldSpec, spec

    tree = ast.parse(Path(spec.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in imported if name.split(".")[0] in ("PySide6", "qasync", "shiboken6")}

    class Model(BaseModel):
        count: int | None = Field(None, ge=1, le=9, title="How many")

    field = FieldSpec.of("count", Model.model_fields["count"])
    assert (field.kind, field.nullable, field.required, field.title) == ("int", True, False, "How many")
    assert (field.ge, field.le, field.default) == (1, 9, None)
