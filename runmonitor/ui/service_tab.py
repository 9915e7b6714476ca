"""One tab per service: profile selector, toolbar, run table and details; it acts through the
window's :class:`~runmonitor.ui.controller.Controller`."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from runmonitor.domain.models import Capability, RunAction
from runmonitor.services.base import Service
from runmonitor.storage.history import RunRecord
from runmonitor.storage.settings.model import Profile
from runmonitor.ui.controller import Controller
from runmonitor.ui.create_dialog import CreateRunDialog
from runmonitor.ui.runs_view import RunsView, spawn

ACTION_TITLES = {
    RunAction.CANCEL: "Cancel",
    RunAction.PAUSE: "Pause",
    RunAction.RESUME: "Resume",
    RunAction.START: "Mark started",
    RunAction.COMPLETE: "Mark completed",
    RunAction.FAIL: "Mark failed",
    RunAction.ABORT: "Abort",
    RunAction.DELETE: "Delete export",
}


class ServiceTab(QWidget):
    problem = Signal(str, str, str)  # key, level, text

    def __init__(self, controller: Controller, service: type[Service[Any, Any]]) -> None:
        super().__init__()
        self.controller = controller
        self.service = service
        self.setAccessibleName(f"{service.display_name} tab")

        self.profile_box = QComboBox()
        self.profile_box.setAccessibleName(f"{service.display_name} profile")
        self.profile_box.setMinimumContentsLength(18)
        profile_label = QLabel("&Profile:")
        profile_label.setBuddy(self.profile_box)
        self.manage_button = QToolButton()
        self.manage_button.setText("Manage profiles…")
        self.manage_button.setAccessibleName(f"Manage {service.display_name} profiles")
        self.manage_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        manage = QMenu(self.manage_button)
        manage.addAction("New profile…", self.new_profile)
        manage.addAction("Edit this profile…", self.edit_profile)
        manage.addAction("Test connection", self.test_profile)
        manage.addSeparator()
        manage.addAction("Remove this profile…", self.remove_profile)
        self.manage_button.setMenu(manage)
        self.health = QLabel()
        self.health.setTextFormat(Qt.TextFormat.PlainText)
        self.health.setAccessibleName(f"{service.display_name} connection health")
        top = QHBoxLayout()
        top.addWidget(profile_label)
        top.addWidget(self.profile_box)
        top.addWidget(self.manage_button)
        top.addWidget(self.health, 1)

        self.toolbar = QToolBar(f"{service.display_name} actions")
        self.toolbar.setAccessibleName(f"{service.display_name} actions")
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.new_action = self._action("New run…", self.new_run, "Create a run with this profile")
        self.refresh_action = self._action("Refresh", self.refresh, "Check the followed runs now")
        self.cancel_action: QAction | None = None
        if service.cancel_action is not None:
            title = ACTION_TITLES[service.cancel_action]
            self.cancel_action = self._action(title, self.cancel_selected, f"{title} the selected run")
        self.watch_action: QAction | None = None
        if Capability.WATCH in service.capabilities:
            thing = service.target_label.lower()
            article = "an" if thing[:1] in "aeiou" else "a"
            self.watch_action = self._action(
                f"Watch {article} {thing}…",
                self.watch_target,
                f"Follow the runs of {article} {thing} that others start",
            )
        self.rerun_action = self._action(
            "Re-run", self.rerun, "Create a run with the selected run's parameters"
        )

        self.view = RunsView(show_service=False, name=service.display_name)
        self.view.selection_changed.connect(self._selection_changed)
        self.view.details.action_requested.connect(self._action_requested)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.view, 1)
        self.profile_box.currentIndexChanged.connect(self._profile_changed)
        controller.status_changed.connect(self.update_health)
        controller.profiles_changed.connect(self._profiles_changed)
        self._update_actions()

    # -- building blocks ----------------------------------------------------------------------
    def _action(self, title: str, slot: Any, tip: str) -> QAction:
        action = QAction(title, self)
        action.setToolTip(tip)
        action.setStatusTip(tip)
        action.triggered.connect(slot)
        self.toolbar.addAction(action)
        button = self.toolbar.widgetForAction(action)
        if button is not None:
            button.setAccessibleName(title.rstrip("…"))
        return action

    def profiles(self) -> list[Profile]:
        return self.controller.context.profiles(self.service.key)

    def current_profile(self) -> Profile | None:
        profile_id = self.profile_box.currentData()
        return next((p for p in self.profiles() if str(p.id) == profile_id), None)

    def reload_profiles(self, select: str | None = None) -> None:
        current = select or self.profile_box.currentData()
        self.profile_box.blockSignals(True)
        self.profile_box.clear()
        for profile in self.profiles():
            self.profile_box.addItem(profile.name, str(profile.id))
        if not self.profiles():
            self.profile_box.addItem("No profile yet — add one", None)
        index = self.profile_box.findData(current)
        self.profile_box.setCurrentIndex(max(0, index))
        self.profile_box.blockSignals(False)
        self._profile_changed()

    def _profiles_changed(self, service: str, select: str | None) -> None:
        if service in ("", self.service.key):
            self.reload_profiles(select=select)

    def _profile_changed(self, *_: object) -> None:
        profile = self.current_profile()
        self.view.proxy.set_profile(str(profile.id) if profile else None)
        self.update_health()
        self._update_actions()

    def update_health(self) -> None:
        profile = self.current_profile()
        if profile is None:
            self.health.setText("Add a profile to start runs on this service.")
            return
        self.health.setText(self.controller.health_text(profile))

    def _selection_changed(self, record: RunRecord | None) -> None:
        self._update_actions()
        self.controller.show_details(self.view.details, record)

    def _update_actions(self) -> None:
        record = self.view.selected()
        has_profile = self.current_profile() is not None
        self.new_action.setEnabled(has_profile)
        self.refresh_action.setEnabled(True)
        if self.cancel_action is not None:
            self.cancel_action.setEnabled(record is not None and not record.terminal)
        if self.watch_action is not None:
            self.watch_action.setEnabled(has_profile)
        self.rerun_action.setEnabled(record is not None and record.request is not None and has_profile)

    # -- actions -------------------------------------------------------------------------------
    def new_run(self, _: object = None, values: dict[str, Any] | None = None) -> CreateRunDialog | None:
        profile = self.current_profile()
        if profile is None:
            self.new_profile()
            return None
        profile_id = str(profile.id)
        if values is None:
            # In the demo, the form starts with values the simulated service knows.
            values = self.controller.demo_request(self.service.key)

        async def create(request: Any) -> RunRecord:
            return await self.controller.create_run(profile_id, request)

        dialog = CreateRunDialog(
            self.service.display_name,
            profile.name,
            self.service.request_model,
            create,
            values=values,
            parent=self,
        )
        dialog.created.connect(self._created)
        self.controller.keep(dialog)
        dialog.open()
        return dialog

    def _created(self, record: object) -> None:
        if isinstance(record, RunRecord):
            self.controller.run_changed(record)
            self.view.select_run(record.id)

    def rerun(self) -> None:
        record = self.view.selected()
        if record is not None and record.request is not None:
            self.new_run(values=dict(record.request))

    def refresh(self) -> None:
        self.controller.refresh()

    def cancel_selected(self) -> None:
        if self.service.cancel_action is not None:
            self._action_requested(self.service.cancel_action)

    def _action_requested(self, action: RunAction) -> None:
        record = self.view.selected()
        if record is None:
            return
        spawn(self.controller.perform(record, action), self._report)

    def _report(self, error: BaseException) -> None:
        self.controller.report(f"action-{self.service.key}", error)

    def watch_target(self) -> None:
        profile = self.current_profile()
        if profile is None:
            return
        dialog = QDialog(self)
        dialog.setWindowTitle(self.watch_action.text().rstrip("…") if self.watch_action else "Watch")
        field = QLineEdit()
        field.setAccessibleName(self.service.target_label)
        field.setPlaceholderText(self.service.all_targets or self.service.target_label)
        label = QLabel(f"{self.service.target_label} to watch for new runs:")
        label.setBuddy(field)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        layout = QVBoxLayout(dialog)
        layout.addWidget(label)
        layout.addWidget(field)
        layout.addWidget(buttons)
        buttons.accepted.connect(dialog.accept)
        buttons.rejected.connect(dialog.reject)

        def accepted() -> None:
            target = field.text().strip() or self.service.all_targets or ""
            if target:
                spawn(self.controller.watch(str(profile.id), target), self._report)

        dialog.accepted.connect(accepted)
        self.controller.keep(dialog)
        dialog.open()

    def new_profile(self) -> None:
        self.controller.open_profile_dialog(self.service.key, None)

    def edit_profile(self) -> None:
        profile = self.current_profile()
        self.controller.open_profile_dialog(self.service.key, profile)

    def test_profile(self) -> None:
        profile = self.current_profile()
        if profile is not None:
            self.controller.test_profile(profile)

    def remove_profile(self) -> None:
        profile = self.current_profile()
        if profile is not None:
            self.controller.confirm_remove_profile(profile)
