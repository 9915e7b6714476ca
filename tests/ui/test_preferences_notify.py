"""Preferences → Notifications: defaults, grouping, the command on events and its test run.

Saves go through the real window (its applier hands the changes to Workspace.update_preferences,
which validates against Settings and writes settings.json); the command's test runs real
programs (this Python) in the background on the qasync loop.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QDialogButtonBox

from runmonitor.notify.hooks import hook_env
from runmonitor.storage.settings.model import FIXED, HOOK_KINDS, HookConfig, Settings
from runmonitor.ui.main_window import MainWindow
from runmonitor.ui.preferences import (
    HOOK_EVENT_CHOICES,
    NOTIFY_PAGE,
    PreferencesDialog,
    hook_json,
    sample_kind,
    sample_notification,
)
from tests.ui.conftest import accessible_name, run


def settings_file(window: MainWindow) -> dict[str, Any]:
    path: Path = window.context.workspace.paths.config_dir / "settings.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def press_ok(qtbot: Any, dialog: PreferencesDialog) -> None:
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)


def choose_events(dialog: PreferencesDialog, kinds: set[str]) -> None:
    for kind, box in dialog.hook_events.boxes.items():
        box.setChecked(kind in kinds)


def python_command(code: str) -> str:
    """A command line running ``code`` with this Python (quoted as the hook will split it)."""
    return shlex.join([sys.executable, "-c", code])


async def no_applier(changes: dict[str, Any], storage: str | None) -> str | None:
    raise AssertionError(f"nothing should be saved here: {changes}")


def standalone(qtbot: Any, settings: Settings | None = None) -> PreferencesDialog:
    dialog = PreferencesDialog(settings or Settings(), no_applier)
    qtbot.addWidget(dialog)
    dialog.pages.setCurrentIndex(NOTIFY_PAGE)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


# -- the events grid ----------------------------------------------------------------------------------


def test_the_grid_offers_known_kinds_with_human_labels(qtbot: Any) -> None:
    kinds = [kind for kind, *_ in HOOK_EVENT_CHOICES]
    labels = [label for _, label, _ in HOOK_EVENT_CHOICES]
    assert set(kinds) <= HOOK_KINDS
    assert len(set(kinds)) == len(kinds) and len(set(labels)) == len(labels)
    # Bookkeeping kinds are left out on purpose (see the module docstring).
    assert not {"created", "added", "changed", "stale", "recovered", "create_queued"} & set(kinds)
    dialog = standalone(qtbot)
    boxes = dialog.hook_events.boxes
    assert boxes["auth_needed"].text() == "Sign-in needed"
    assert boxes["create_unconfirmed"].text() == "Creation unconfirmed"
    assert all(accessible_name(box).startswith("Run for: ") for box in boxes.values())
    # No command yet: the box is off, the fields are disabled and start from HookConfig's defaults.
    assert not dialog.hook_enabled.isChecked()
    assert not dialog.hook_form.field_widget("command").isEnabled()
    assert dialog.hook_events.value() == HookConfig.model_fields["events"].default
    # The grid is on the keyboard path, between the command and its timeout.
    chain = dialog.hook_form.focus_chain()
    command = chain.index(dialog.hook_form.field_widget("command"))
    timeout = chain.index(dialog.hook_form.field_widget("timeout_s"))
    grid = [chain.index(box) for box in boxes.values()]
    assert command < min(grid) and max(grid) < timeout
    assert chain[-1] is dialog.hook_test_button


# -- saving through the window ------------------------------------------------------------------------


def test_a_command_with_chosen_events_is_saved_into_settings_json(qtbot: Any, window: MainWindow) -> None:
    workspace = window.context.workspace
    assert workspace.settings.hook is None
    dialog = window.open_preferences()
    dialog.pages.setCurrentIndex(NOTIFY_PAGE)
    qtbot.mouseClick(dialog.hook_enabled, Qt.MouseButton.LeftButton, pos=dialog.hook_enabled.rect().center())
    if not dialog.hook_enabled.isChecked():  # the click missed the box on this style
        dialog.hook_enabled.setChecked(True)
    assert dialog.hook_form.field_widget("command").isEnabled()
    dialog.hook_form.field_widget("command").setText("notify-team --channel 'ops room'")
    choose_events(dialog, {"failed", "auth_needed", FIXED})
    dialog.hook_form.set_values({**dialog.hook_form.values(), "timeout_s": 12.5, "include_quiet": True})
    press_ok(qtbot, dialog)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=5000)

    hook = workspace.settings.hook
    assert hook is not None
    assert hook.argv() == ["notify-team", "--channel", "ops room"]
    assert hook.events == frozenset({"failed", "auth_needed", FIXED})
    assert hook.timeout_s == 12.5 and hook.include_quiet
    saved = settings_file(window)["hook"]
    assert saved["command"] == "notify-team --channel 'ops room'"
    assert sorted(saved["events"]) == ["auth_needed", "failed", "fixed"]
    assert saved["timeout_s"] == 12.5

    # Opened again, the page shows what is stored.
    again = window.open_preferences()
    assert again.hook_enabled.isChecked()
    assert again.hook_form.field_widget("command").text() == "notify-team --channel 'ops room'"
    assert again.hook_events.value() == frozenset({"failed", "auth_needed", FIXED})
    again.reject()


def test_a_command_that_cannot_be_split_is_refused_beside_the_field(qtbot: Any, window: MainWindow) -> None:
    workspace = window.context.workspace
    before = settings_file(window)
    dialog = window.open_preferences()
    dialog.pages.setCurrentIndex(0)
    dialog.hook_enabled.setChecked(True)
    dialog.hook_form.field_widget("command").setText("notify-team 'unbalanced")
    dialog.notify_options.set_values({**dialog.notify_options.values(), "max_per_flush": 9})
    press_ok(qtbot, dialog)
    assert dialog.isVisible()
    assert dialog.pages.currentIndex() == NOTIFY_PAGE
    label = dialog.hook_form.error_label("command")
    assert "cannot be split into a program and arguments" in label.text()
    assert label.isVisibleTo(dialog)
    assert dialog.hook_form.field_row("command").isAncestorOf(label)
    assert dialog.focusWidget() is dialog.hook_form.field_widget("command")
    # Nothing at all was saved, not even the valid change on the same page.
    assert workspace.settings.hook is None
    assert workspace.settings.notify_options.max_per_flush == 4
    assert settings_file(window) == before

    # No event chosen: refused beside the grid.
    dialog.hook_form.field_widget("command").setText("notify-team ok")
    choose_events(dialog, set())
    press_ok(qtbot, dialog)
    assert dialog.isVisible()
    assert dialog.hook_form.errors() == {}
    assert "choose at least one event" in dialog.hook_events.error.message()
    assert dialog.hook_events.error.isVisibleTo(dialog)
    choose_events(dialog, {"failed"})
    assert dialog.hook_events.error.message() == ""  # choosing clears it
    press_ok(qtbot, dialog)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=5000)
    assert workspace.settings.hook is not None and workspace.settings.hook.events == {"failed"}
    assert workspace.settings.notify_options.max_per_flush == 9


def test_turning_the_command_off_stores_null_and_keeps_hand_written_kinds(
    qtbot: Any, window: MainWindow
) -> None:
    workspace = window.context.workspace
    stored = HookConfig(command="notify-team", events=frozenset({"failed", "stale"}))
    run(qtbot, workspace.update_preferences({"hook": hook_json(stored)}))
    dialog = window.open_preferences()
    dialog.pages.setCurrentIndex(NOTIFY_PAGE)
    assert dialog.hook_enabled.isChecked()
    # "stale" is not offered, but it is kept and named.
    assert not any(box.isChecked() for kind, box in dialog.hook_events.boxes.items() if kind != "failed")
    assert dialog.hook_events.value() == {"failed", "stale"}
    assert "stale" in dialog.hook_events.extra_note.text()
    assert dialog.hook_events.extra_note.isVisibleTo(dialog)
    # Another change on the page leaves the command (and its hand-written kind) alone.
    dialog.notifications.set_values({**dialog.notifications.values(), "on_start": True})
    found = dialog.changes()
    assert found is not None and "hook" not in found[0]
    dialog.hook_enabled.setChecked(False)
    assert not dialog.hook_form.isEnabled()
    press_ok(qtbot, dialog)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=5000)
    assert workspace.settings.hook is None
    assert workspace.settings.notifications.on_start
    saved = settings_file(window)
    assert "hook" in saved and saved["hook"] is None


def test_grouping_options_are_saved(qtbot: Any, window: MainWindow) -> None:
    workspace = window.context.workspace
    dialog = window.open_preferences()
    fixed = dialog.notify_options.field_widget("notify_fixed")
    assert isinstance(fixed, QCheckBox) and fixed.text() == "Notify when a failure is fixed"
    options = {"coalesce_window_s": 12.5, "max_per_flush": 2, "notify_fixed": False}
    dialog.notify_options.set_values(options)
    found = dialog.changes()
    assert found is not None
    assert found[0] == {"notify_options": options}
    press_ok(qtbot, dialog)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=5000)
    assert workspace.settings.notify_options.model_dump() == options
    assert settings_file(window)["notify_options"] == options


# -- refusals and defaults ----------------------------------------------------------------------------


def test_a_refusal_is_routed_to_the_right_form(qtbot: Any) -> None:
    dialog = standalone(qtbot, Settings(hook=HookConfig(command="notify-team")))
    dialog.pages.setCurrentIndex(0)
    dialog._show_refusal(
        {
            "notify_options.max_per_flush": "too many",
            "hook.command": "no such thing",
            "hook.events": "not that one",
            "hook": "the whole command is off",
        }
    )
    assert dialog.pages.currentIndex() == NOTIFY_PAGE
    assert dialog.notify_options.errors() == {"max_per_flush": "too many"}
    assert dialog.hook_form.errors() == {"command": "no such thing", "": "the whole command is off"}
    assert dialog.hook_events.error.message() == "not that one"
    assert dialog.notifications.errors() == {} and dialog.general.errors() == {}
    assert dialog.outcome.text() == "Not saved: see the marked fields."


def test_restore_defaults_on_the_page_keeps_the_command(qtbot: Any) -> None:
    settings = Settings.model_validate(
        {
            "notifications": {"on_success": True},
            "notify_options": {"max_per_flush": 7},
            "hook": {"command": "notify-team", "events": ["gone"]},
        }
    )
    dialog = standalone(qtbot, settings)
    dialog.restore_page_defaults()
    assert dialog.notifications.values()["on_success"] is False
    assert dialog.notify_options.values()["max_per_flush"] == 4
    assert dialog.hook_enabled.isChecked()
    assert dialog.hook_events.value() == {"gone"}
    found = dialog.changes()
    assert found is not None and set(found[0]) == {"notifications", "notify_options"}


# -- Test command -------------------------------------------------------------------------------------


def test_the_sample_carries_the_first_chosen_kind() -> None:
    assert sample_kind({"gone", "succeeded"}) == "succeeded"  # the grid's order
    assert sample_kind({FIXED}) == FIXED
    env = hook_env(sample_notification(FIXED))
    assert env["RUNMONITOR_EVENT"] == "fixed"
    assert env["RUNMONITOR_STATUS"] == "SUCCEEDED"
    assert env["RUNMONITOR_TARGET"] == "sample"
    assert env["RUNMONITOR_TITLE"].startswith("Test: ")


def test_test_command_runs_it_in_the_background_and_shows_success(qtbot: Any, qloop: Any) -> None:
    dialog = standalone(qtbot)
    dialog.hook_enabled.setChecked(True)
    code = "import os; print('event=' + os.environ['RUNMONITOR_EVENT'], os.environ['RUNMONITOR_PROFILE'])"
    dialog.hook_form.field_widget("command").setText(python_command(code))
    choose_events(dialog, {"cancelled", "gone"})
    qtbot.mouseClick(dialog.hook_test_button, Qt.MouseButton.LeftButton)
    # The click only started it: the window keeps going while the command runs.
    assert dialog.is_testing_hook()
    assert dialog.hook_busy.isVisibleTo(dialog)
    assert not dialog.hook_test_button.isEnabled()
    assert dialog.hook_result.text() == "Running the command…"
    qtbot.waitUntil(lambda: not dialog.is_testing_hook(), timeout=10000)
    assert dialog.hook_result.text() == "It worked (exit status 0): event=cancelled Sample profile"
    assert accessible_name(dialog.hook_icon) == "Success"
    assert dialog.hook_test_button.isEnabled()
    assert not dialog.hook_busy.isVisibleTo(dialog)
    # Editing the command hides an outcome that no longer applies.
    dialog.hook_form.field_widget("command").setText(python_command("print(1)"))
    assert not dialog.hook_result.isVisibleTo(dialog)


def test_test_command_reports_exit_status_and_timeout(qtbot: Any, qloop: Any) -> None:
    dialog = standalone(qtbot)
    dialog.hook_enabled.setChecked(True)
    command = dialog.hook_form.field_widget("command")
    command.setText(python_command("import sys; print('\\n  disk full  \\nmore'); sys.exit(3)"))
    dialog.hook_test_button.click()
    qtbot.waitUntil(lambda: not dialog.is_testing_hook(), timeout=10000)
    assert dialog.hook_result.text() == "Exit status 3: disk full"
    assert accessible_name(dialog.hook_icon) == "Problem"

    command.setText(python_command("import time; print('working', flush=True); time.sleep(30)"))
    dialog.hook_form.set_values({**dialog.hook_form.values(), "timeout_s": 0.5})
    dialog.hook_test_button.click()
    qtbot.waitUntil(lambda: not dialog.is_testing_hook(), timeout=10000)
    assert dialog.hook_result.text().startswith("Stopped after 0.5 s (the timeout)")


def test_test_command_with_a_missing_program_says_not_found(qtbot: Any, qloop: Any) -> None:
    dialog = standalone(qtbot)
    dialog.hook_enabled.setChecked(True)
    dialog.hook_form.field_widget("command").setText("runmonitor-no-such-program-4711 --flag")
    dialog.hook_test_button.click()
    qtbot.waitUntil(lambda: not dialog.is_testing_hook(), timeout=10000)
    assert dialog.hook_result.text() == "Program not found: 'runmonitor-no-such-program-4711'"
    assert dialog.hook_result.isVisibleTo(dialog)
    assert accessible_name(dialog.hook_icon) == "Problem"


def test_test_command_refuses_invalid_fields_without_running(qtbot: Any, qloop: Any) -> None:
    dialog = standalone(qtbot)
    dialog.hook_enabled.setChecked(True)
    dialog.hook_form.field_widget("command").setText("notify 'open")
    dialog.hook_test_button.click()
    assert not dialog.is_testing_hook()
    assert dialog.hook_result.text() == "Fix the marked fields first."
    assert "cannot be split" in dialog.hook_form.errors()["command"]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_closing_the_dialog_stops_a_command_under_test(qtbot: Any, qloop: Any, tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    dialog = standalone(qtbot)
    dialog.hook_enabled.setChecked(True)
    code = f"import os, time; open({str(marker)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    dialog.hook_form.field_widget("command").setText(python_command(code))
    dialog.hook_test_button.click()
    qtbot.waitUntil(lambda: marker.exists() and marker.read_text().strip() != "", timeout=10000)
    pid = int(marker.read_text())
    assert _alive(pid)
    dialog.reject()
    assert not dialog.is_testing_hook()
    qtbot.waitUntil(lambda: not _alive(pid), timeout=10000)
    assert not dialog.hook_busy.isVisibleTo(dialog)
