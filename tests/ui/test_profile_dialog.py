"""ProfileDialog: new and edited profiles, secrets, warnings and a real connection test."""

from __future__ import annotations

import asyncio
import json
from datetime import time
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QLineEdit, QPushButton

from runmonitor.domain.errors import AuthFailed, ConnectionFailed, NotFound, TimedOut
from runmonitor.services import get as get_service
from runmonitor.services import registry
from runmonitor.simulator import Simulator
from runmonitor.storage.settings.model import NotificationPrefs, Profile, secret_fields
from runmonitor.ui.profile_dialog import STORED_PLACEHOLDER, ProfileDialog, outcome_of
from tests.ui.conftest import accessible_name, run

SERVICES = list(registry())
KEYRING_WARNING = "No keyring is available: keys are kept only until RunMonitor quits"


def make(qtbot: Any, service: str, **kwargs: Any) -> ProfileDialog:
    dialog = ProfileDialog(service, **kwargs)
    qtbot.addWidget(dialog)
    dialog.open()
    qtbot.waitExposed(dialog)
    return dialog


def fill(dialog: ProfileDialog, name: str, values: dict[str, Any]) -> None:
    dialog.name_edit.setText(name)
    current = dialog.form.values()
    dialog.form.set_values({**current, **values})


def simulator_tester(sim: Simulator, *, stored_from_sim: bool = True, calls: list[Any] | None = None) -> Any:
    """What the main window does: draft + stored secrets (here: the simulator's) + typed ones."""

    async def tester(draft: Profile, typed: dict[str, str]) -> str:
        if calls is not None:
            calls.append((draft, dict(typed)))
        secrets: dict[str, str | None] = {}
        if stored_from_sim:
            demo = sim.demo_connection(draft.service)
            secrets = {name: demo[name] for name in draft.secret_fields() if demo.get(name)}
        secrets.update(typed)
        config = draft.config(secrets)
        async with get_service(draft.service)(config) as client:
            return await client.check_connection()

    return tester


# -- new profile for every service ------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_new_profile_for_each_service(qtbot: Any, sim: Simulator, service: str) -> None:
    dialog = make(qtbot, service)
    model = registry()[service].config_model
    assert dialog.windowTitle() == f"New {registry()[service].display_name} profile"
    assert set(dialog.form.field_names()) == set(model.model_fields)
    # the service's own fields first, the common advanced ones last
    assert dialog.form.field_names()[-2:] == ["verify_tls", "timeout_seconds"]
    secrets = secret_fields(service)
    for name in secrets:
        line = dialog.form.field_widget(name)
        assert isinstance(line, QLineEdit)
        assert line.echoMode() == QLineEdit.EchoMode.Password
        assert line.placeholderText() == ""  # nothing is stored for a new profile
    assert dialog.focusWidget() is dialog.name_edit
    assert accessible_name(dialog.name_edit) == "Profile name"
    assert dialog.name_edit.accessibleDescription() == "required"

    demo = sim.demo_connection(service)
    fill(dialog, "  local sim  ", demo)
    with qtbot.waitSignal(dialog.saved, timeout=2000):
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert not dialog.isVisible()
    profile = dialog.result_profile()
    assert profile.service == service
    assert profile.name == "local sim"
    assert not set(secrets) & set(profile.connection), "secrets never go into the profile"
    assert profile.connection["base_url"] == demo["base_url"]
    typed = {name: demo[name] for name in secrets if demo.get(name)}
    assert dialog.result_secrets() == typed
    # the profile + secrets make the full, valid connection
    assert profile.config(dialog.result_secrets()).base_url == demo["base_url"]


def test_name_is_required_and_enter_does_not_save(qtbot: Any, sim: Simulator) -> None:
    dialog = make(qtbot, "invision")
    fill(dialog, "", sim.demo_connection("invision"))
    saved: list[bool] = []
    dialog.saved.connect(lambda: saved.append(True))
    qtbot.keyClick(dialog.name_edit, Qt.Key.Key_Return)
    qtbot.keyClick(dialog.form.field_widget("base_url"), Qt.Key.Key_Enter)
    assert saved == []
    assert dialog.isVisible()
    assert not any(b.autoDefault() or b.isDefault() for b in dialog.findChildren(QPushButton))

    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert saved == []
    assert dialog.isVisible()
    assert "enter a name" in dialog.name_error.label.text()
    assert dialog.name_row.isAncestorOf(dialog.name_error)
    assert dialog.focusWidget() is dialog.name_edit
    with pytest.raises(RuntimeError):
        dialog.result_profile()
    qtbot.keyClicks(dialog.name_edit, "sim")
    assert dialog.name_error.label.text() == ""  # typing clears it
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert saved == [True]


def test_bad_base_url_is_refused_beside_the_field(qtbot: Any) -> None:
    dialog = make(qtbot, "marquez")
    fill(dialog, "prod", {"base_url": "ftp://marquez.example.com"})
    saved: list[bool] = []
    dialog.saved.connect(lambda: saved.append(True))
    assert dialog.save() is False
    assert saved == []
    assert dialog.isVisible()
    label = dialog.form.error_label("base_url")
    assert label.text() == "must start with http:// or https://"
    assert label.isVisibleTo(dialog)
    assert dialog.form.field_row("base_url").isAncestorOf(label)
    assert dialog.focusWidget() is dialog.form.field_widget("base_url")

    dialog.form.field_widget("base_url").setText("https://marquez.example.com/")
    assert dialog.save() is True
    assert saved == [True]
    assert dialog.result_profile().connection["base_url"] == "https://marquez.example.com"


def test_a_typed_secret_is_checked_beside_its_field(qtbot: Any) -> None:
    dialog = make(qtbot, "connhex")
    fill(dialog, "prod", {"base_url": "https://apis.example.com/exporter", "token": "two words"})
    assert dialog.save() is False
    assert "no spaces" in dialog.form.error_label("token").text()
    dialog.form.field_widget("token").setText("Bearer abc123")
    assert dialog.save() is True
    assert dialog.result_secrets() == {"token": "Bearer abc123"}


# -- editing: stored secrets ------------------------------------------------------------------------------


def stored_invision_profile() -> Profile:
    return Profile(
        service="invision", name="prod", connection={"base_url": "https://bi.example.com/invision"}
    )


def test_stored_secret_placeholder_and_empty_keeps_it(qtbot: Any) -> None:
    profile = stored_invision_profile()
    dialog = make(qtbot, "invision", profile=profile, stored_secrets={"api_key": True})
    assert dialog.windowTitle().startswith("Edit profile “prod”")
    assert dialog.name_edit.text() == "prod"
    key = dialog.form.field_widget("api_key")
    assert key.text() == ""
    assert key.placeholderText() == STORED_PLACEHOLDER
    assert "leave empty to keep" in key.accessibleDescription()
    assert dialog.form.field_widget("base_url").text() == "https://bi.example.com/invision"

    dialog.name_edit.setText("production")
    with qtbot.waitSignal(dialog.saved, timeout=2000):
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    saved = dialog.result_profile()
    assert saved.id == profile.id  # same keyring entry
    assert saved.created_at == profile.created_at
    assert saved.updated_at >= profile.updated_at
    assert saved.name == "production"
    assert dialog.result_secrets() == {}  # empty: keep the stored key


def test_a_typed_secret_replaces_the_stored_one(qtbot: Any) -> None:
    dialog = make(qtbot, "invision", profile=stored_invision_profile(), stored_secrets={"api_key": True})
    qtbot.keyClicks(dialog.form.field_widget("api_key"), "new-key-123")
    assert dialog.save() is True
    assert dialog.result_secrets() == {"api_key": "new-key-123"}


def test_secret_warning_banner_stands_above_the_secret_fields(qtbot: Any) -> None:
    dialog = make(qtbot, "cognite", secret_warning=KEYRING_WARNING)
    banner = dialog.secret_banner
    assert banner is not None
    assert banner.isVisibleTo(dialog)
    assert banner.text() == KEYRING_WARNING
    assert banner.label.textFormat() == Qt.TextFormat.PlainText
    layout = dialog.form.layout_
    banner_row, _ = layout.getWidgetPosition(banner)
    for name in secret_fields("cognite"):
        row, _ = layout.getWidgetPosition(dialog.form.field_row(name))
        assert banner_row < row
    first_plain, _ = layout.getWidgetPosition(dialog.form.field_row("base_url"))
    assert first_plain < banner_row
    # no secrets, no banner
    marquez_less = make(qtbot, "invision")
    assert marquez_less.secret_banner is None


# -- live connection warnings -----------------------------------------------------------------------------


def test_connection_warnings_follow_the_fields(qtbot: Any) -> None:
    dialog = make(qtbot, "invision")
    assert dialog.notes.notes() == []
    assert not dialog.notes.isVisibleTo(dialog)
    url = dialog.form.field_widget("base_url")
    qtbot.keyClicks(url, "http://bi.example.com/invision")
    assert any(note.startswith("Plain http://") for note in dialog.notes.notes())
    assert dialog.notes.isVisibleTo(dialog)
    url.setText("http://127.0.0.1:8080/invision")  # loopback: fine
    assert dialog.notes.notes() == []
    tls = dialog.form.field_widget("verify_tls")
    qtbot.mouseClick(tls, Qt.MouseButton.LeftButton, pos=tls.rect().center() - tls.rect().center() / 2)
    if tls.isChecked():  # the click landed outside the indicator on this style: toggle by keyboard
        tls.setFocus()
        qtbot.keyClick(tls, Qt.Key.Key_Space)
    assert not tls.isChecked()
    assert dialog.notes.notes() == ["TLS certificate verification is off for this connection."]
    banner = dialog.notes.banners[0]
    assert banner.label.text() == "TLS certificate verification is off for this connection."
    assert banner.icon.pixmap() is not None and not banner.icon.pixmap().isNull()
    # still shown while the URL is half-typed
    url.setText("http://bi")
    assert "TLS certificate verification is off for this connection." in dialog.notes.notes()


# -- test connection --------------------------------------------------------------------------------------


def test_outcome_mapping() -> None:
    assert outcome_of(AuthFailed("wrong key"))[1] == "Sign-in needed: wrong key"
    assert (
        outcome_of(AuthFailed("Sign-in needed: the gateway said no"))[1]
        == "Sign-in needed: the gateway said no"
    )
    assert outcome_of(ConnectionFailed("refused"))[1] == "Unreachable: refused"
    assert outcome_of(TimedOut("slow"))[0] == "unreachable"
    assert outcome_of(NotFound("no such flow"))[1] == "Failed: no such flow"


def test_connection_test_against_the_simulator_ok(qtbot: Any, qloop: Any, sim: Simulator) -> None:
    calls: list[Any] = []
    dialog = make(qtbot, "invision", tester=simulator_tester(sim, stored_from_sim=False, calls=calls))
    demo = sim.demo_connection("invision")
    fill(dialog, "", demo)
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    assert not dialog.test_button.isEnabled()
    assert dialog.test_result.text() == "Testing…"
    assert dialog.test_busy.isVisibleTo(dialog)
    qtbot.waitUntil(lambda: dialog.test_outcome == "ok", timeout=10_000)
    assert dialog.test_result.text().startswith("OK: InVision is reachable")
    assert dialog.test_icon.isVisibleTo(dialog)
    assert dialog.test_button.isEnabled()
    assert not dialog.test_busy.isVisibleTo(dialog)
    draft, typed = calls[0]
    assert typed == {"api_key": demo["api_key"]}
    assert "api_key" not in draft.connection
    assert dialog.isVisible()  # testing does not save


def test_connection_test_with_a_stored_secret(qtbot: Any, qloop: Any, sim: Simulator) -> None:
    profile = Profile(service="connhex", name="sim", connection={"base_url": sim.base_url("connhex")})
    calls: list[Any] = []
    dialog = make(
        qtbot,
        "connhex",
        profile=profile,
        stored_secrets={"token": True},
        tester=simulator_tester(sim, calls=calls),
    )
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.test_outcome == "ok", timeout=10_000)
    assert calls[0][1] == {}  # nothing typed: the tester used the stored secret
    assert calls[0][0].id == profile.id


def test_connection_test_with_a_wrong_key_says_sign_in_needed(qtbot: Any, qloop: Any, sim: Simulator) -> None:
    dialog = make(qtbot, "invision", tester=simulator_tester(sim))
    fill(dialog, "sim", {**sim.demo_connection("invision"), "api_key": "wrong-key"})
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.test_outcome == "signin", timeout=10_000)
    assert dialog.test_result.text().startswith("Sign-in needed")
    assert dialog.test_result.textFormat() == Qt.TextFormat.PlainText
    assert accessible_name(dialog.test_icon) == "Sign-in needed"


def test_connection_test_unreachable(qtbot: Any, qloop: Any, sim: Simulator) -> None:
    port = sim.port
    sim.stop()  # nothing listens there any more
    dialog = make(qtbot, "invision", tester=simulator_tester(sim, stored_from_sim=False))
    fill(
        dialog,
        "gone",
        {"base_url": f"http://127.0.0.1:{port}/invision", "api_key": "k", "timeout_seconds": 5},
    )
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.test_outcome == "unreachable", timeout=15_000)
    assert dialog.test_result.text().startswith("Unreachable")


def test_a_broken_tester_shows_failed_and_logs(qtbot: Any, qloop: Any, caplog: Any) -> None:
    async def tester(draft: Profile, typed: dict[str, str]) -> str:
        raise ValueError("bug in the tester")

    dialog = make(qtbot, "invision", tester=tester)
    fill(dialog, "x", {"base_url": "https://bi.example.com", "api_key": "k"})
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.test_outcome == "failed", timeout=5000)
    assert dialog.test_result.text() == "Failed: ValueError: bug in the tester"
    assert "failed unexpectedly" in caplog.text
    assert dialog.test_button.isEnabled()


def test_connection_test_refuses_invalid_fields(qtbot: Any, qloop: Any) -> None:
    calls: list[Any] = []

    async def tester(draft: Profile, typed: dict[str, str]) -> str:
        calls.append(draft)
        return "should not run"

    dialog = make(qtbot, "invision", tester=tester)
    fill(dialog, "x", {"base_url": "not a url"})
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    assert dialog.form.error_label("base_url").text() != ""
    assert dialog.test_result.text() == "Fix the marked fields first."
    assert dialog.test_button.isEnabled()
    assert calls == []


def test_closing_while_testing_cancels_the_test(qtbot: Any, qloop: Any) -> None:
    started = asyncio.Event()
    state: dict[str, bool] = {}

    async def tester(draft: Profile, typed: dict[str, str]) -> str:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            state["cancelled"] = True
            raise
        return "never"

    dialog = make(qtbot, "invision", tester=tester)
    fill(dialog, "x", {"base_url": "https://bi.example.com", "api_key": "k"})
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(started.is_set, timeout=5000)
    assert dialog.is_testing()
    assert not dialog.test_button.isEnabled()
    # a second click while testing starts nothing new
    dialog._on_test_clicked()
    dialog.reject()
    qtbot.waitUntil(lambda: state.get("cancelled", False), timeout=5000)
    assert not dialog.is_testing()
    assert not dialog.isVisible()


def test_no_tester_no_test_button(qtbot: Any) -> None:
    dialog = make(qtbot, "invision")
    assert not dialog.test_row.isVisibleTo(dialog)


def test_keyboard_path_through_the_dialog(qtbot: Any) -> None:
    dialog = make(qtbot, "invision", tester=simulator_tester(Simulator()))
    order = [dialog.name_edit]
    widget = dialog.name_edit.nextInFocusChain()
    while widget is not dialog.name_edit and len(order) < 60:
        order.append(widget)
        widget = widget.nextInFocusChain()
    index = {id(w): i for i, w in enumerate(order)}
    form = dialog.form
    sequence = [
        dialog.name_edit,
        form.field_widget("base_url"),
        form.field_widget("api_key"),
        form.field_widget("verify_tls"),
        form.field_widget("timeout_seconds"),
        dialog.test_button,
        dialog.save_button,
        dialog.cancel_button,
    ]
    positions = [index[id(w)] for w in sequence]
    assert positions == sorted(positions)
    for widget in sequence:
        assert accessible_name(widget).strip()


# -- notifications ------------------------------------------------------------------------------------------

GLOBAL_PREFS = NotificationPrefs(on_success=True, quiet_from=time(22, 0), quiet_until=time(7, 0))


def test_a_new_profile_uses_the_global_defaults(qtbot: Any, sim: Simulator) -> None:
    dialog = make(qtbot, "invision", default_notifications=GLOBAL_PREFS)
    section = dialog.notifications
    assert section.use_defaults.isChecked()
    assert section.isVisibleTo(dialog)
    assert not section.form.isVisibleTo(dialog)
    assert section.summary.text().startswith(
        "Failures, successes and cancellations are notified; quiet hours 22:00–07:00."
    )
    fill(dialog, "sim", sim.demo_connection("invision"))
    assert dialog.save() is True
    assert dialog.result_profile().notifications is None
    # Without defaults handed in, the summary describes the model's own defaults.
    plain = make(qtbot, "invision")
    assert plain.notifications.summary.text().startswith(
        "Failures and cancellations are notified; no quiet hours."
    )


def test_own_choices_start_from_the_defaults_and_survive_toggling(qtbot: Any, sim: Simulator) -> None:
    dialog = make(qtbot, "invision", default_notifications=GLOBAL_PREFS, tester=simulator_tester(sim))
    section = dialog.notifications
    section.use_defaults.setChecked(False)
    assert section.form.isVisibleTo(dialog)
    assert section.form.values() == GLOBAL_PREFS.model_dump(mode="json")
    section.form.set_values({**section.form.values(), "on_start": True})
    section.use_defaults.setChecked(True)
    section.use_defaults.setChecked(False)
    assert section.form.values()["on_start"] is True  # what was typed is kept
    # The section is on the keyboard path between the connection fields and "Test connection".
    order = [dialog.name_edit]
    widget = dialog.name_edit.nextInFocusChain()
    while widget is not dialog.name_edit and len(order) < 80:
        order.append(widget)
        widget = widget.nextInFocusChain()
    sequence = [
        dialog.form.field_widget("timeout_seconds"),
        section.use_defaults,
        section.form.field_widget("on_failure"),
        section.form.field_widget("quiet_until"),
        dialog.test_button,
        dialog.save_button,
    ]
    positions = [order.index(w) for w in sequence]
    assert positions == sorted(positions)
    assert accessible_name(section.use_defaults) == "Use the global notification defaults"


def test_invalid_quiet_hours_are_refused_beside_the_field(qtbot: Any, sim: Simulator) -> None:
    dialog = make(qtbot, "invision", default_notifications=NotificationPrefs())
    fill(dialog, "sim", sim.demo_connection("invision"))
    section = dialog.notifications
    section.use_defaults.setChecked(False)
    section.form.set_values({**section.form.values(), "quiet_from": "21:30:00"})
    saved: list[bool] = []
    dialog.saved.connect(lambda: saved.append(True))
    assert dialog.save() is False
    assert saved == [] and dialog.isVisible()
    with pytest.raises(RuntimeError):
        dialog.result_profile()
    label = section.form.error_label("quiet_until")
    assert "need both a start and an end" in label.text()
    assert label.isVisibleTo(dialog)
    assert section.form.field_row("quiet_until").isAncestorOf(label)
    assert section.form.errors() == {"quiet_until": label.text()}  # not a line at the top
    assert dialog.form.errors() == {}
    # Back to the defaults: nothing to refuse (the own choices are not stored).
    section.use_defaults.setChecked(True)
    assert section.form.errors() == {}
    section.use_defaults.setChecked(False)
    section.form.set_values({**section.form.values(), "quiet_until": "06:15:00"})
    assert dialog.save() is True
    prefs = dialog.result_profile().notifications
    assert prefs is not None
    assert (prefs.quiet_from, prefs.quiet_until) == (time(21, 30), time(6, 15))


def test_a_profile_override_is_saved_read_back_and_removed(qtbot: Any, window: Any) -> None:
    workspace = window.context.workspace
    settings_path = workspace.paths.config_dir / "settings.json"
    profile = window.context.profiles("marquez")[0]
    assert profile.notifications is None

    def edit(current: Profile) -> ProfileDialog:
        return make(
            qtbot,
            "marquez",
            profile=current,
            stored_secrets=run(qtbot, workspace.stored_secrets(current)),
            default_notifications=workspace.settings.notifications,
        )

    def stored_prefs() -> Any:
        data = json.loads(settings_path.read_text())
        return next(p for p in data["profiles"] if p["id"] == str(profile.id))["notifications"]

    dialog = edit(profile)
    assert dialog.notifications.use_defaults.isChecked()
    dialog.notifications.use_defaults.setChecked(False)
    form = dialog.notifications.form
    form.set_values({**form.values(), "on_success": True, "on_failure": False})
    form.set_values({**form.values(), "quiet_from": "23:00:00", "quiet_until": "06:00:00"})
    assert dialog.save() is True
    run(qtbot, workspace.update_profile(dialog.result_profile(), dialog.result_secrets()))

    saved = workspace.profile(str(profile.id))
    own = workspace.settings.notifications_for(saved)
    assert own != workspace.settings.notifications
    assert (own.on_success, own.on_failure, own.quiet_from) == (True, False, time(23, 0))
    assert stored_prefs()["on_success"] is True and stored_prefs()["quiet_until"] == "06:00:00"

    again = edit(saved)
    assert not again.notifications.use_defaults.isChecked()
    assert again.notifications.form.values()["quiet_from"] == "23:00:00"
    again.notifications.use_defaults.setChecked(True)
    assert again.save() is True
    run(qtbot, workspace.update_profile(again.result_profile(), again.result_secrets()))
    back = workspace.profile(str(profile.id))
    assert back.notifications is None
    assert workspace.settings.notifications_for(back) == workspace.settings.notifications
    assert stored_prefs() is None
