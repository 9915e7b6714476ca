"""The New run dialog: a form generated from the service's request model."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from runmonitor.domain.errors import InvalidRequest, NotFound, ServiceError
from runmonitor.engine import QueuedForQuota
from runmonitor.services.base import CreateRequest
from runmonitor.ui.forms import ModelForm
from runmonitor.ui.runs_view import spawn

Creator = Callable[[CreateRequest], Awaitable[object]]


class CreateRunDialog(QDialog):
    """Validates beside each field before anything is sent; shows the service's answer in the form."""

    created = Signal(object)  # whatever the creator returned (a RunRecord)

    def __init__(
        self,
        service_name: str,
        profile_name: str,
        request_model: type[CreateRequest],
        creator: Creator,
        *,
        values: Mapping[str, Any] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"New {service_name} run — {profile_name}")
        self.setAccessibleName(self.windowTitle())
        self.request_model = request_model
        self.creator = creator
        self.form = ModelForm(request_model, values=values)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.form)
        self.outcome = QLabel()
        self.outcome.setTextFormat(Qt.TextFormat.PlainText)
        self.outcome.setWordWrap(True)
        self.outcome.setAccessibleName("Outcome of the create")
        self.outcome.setVisible(False)
        buttons = QDialogButtonBox()
        self.create_button = QPushButton("Create run")
        self.create_button.setDefault(True)
        self.create_button.setAccessibleName("Create the run")
        buttons.addButton(self.create_button, QDialogButtonBox.ButtonRole.AcceptRole)
        cancel = buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        cancel.setAccessibleName("Close without creating")
        self.create_button.clicked.connect(self._submit)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.outcome)
        layout.addWidget(buttons)
        self.resize(560, 520)
        self._task: object = None

    def _show(self, text: str, *, error: bool) -> None:
        self.outcome.setText(text)
        self.outcome.setStyleSheet("color: #b3261e;" if error else "")
        self.outcome.setVisible(bool(text))

    def _submit(self) -> None:
        request = self.form.validate()
        if request is None:
            self._show("Some fields need attention (see beside them).", error=True)
            return
        self.create_button.setEnabled(False)
        self._show("Creating…", error=False)
        self._task = spawn(self.submit(request))

    async def submit(self, request: Any) -> None:
        try:
            result = await self.creator(request)
        except QueuedForQuota as exc:
            self._show(str(exc), error=False)
            self.created.emit(None)
            self.accept()
            return
        except (InvalidRequest, NotFound) as exc:
            # The service refused this request: show why, keep everything that was typed.
            self.form.set_errors({"": exc.message})
            self._show(f"{exc.message}", error=True)
        except ServiceError as exc:
            extra = (
                " It may have been created anyway: check the run list."
                if exc.may_have_reached_service
                else ""
            )
            self._show(f"{exc}{extra}", error=True)
        else:
            self.created.emit(result)
            self.accept()
            return
        finally:
            self.create_button.setEnabled(True)
