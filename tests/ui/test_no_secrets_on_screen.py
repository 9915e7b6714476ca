"""Secrets never reach the screen's text, nor a URL: every piece of text the window and the
profile dialog show (labels, fields as displayed, tooltips, window titles, banners) is scanned
for the known test secrets after a run has been created and followed."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QAbstractButton, QLabel, QLineEdit, QPlainTextEdit, QTextEdit, QWidget

from runmonitor.services import get
from runmonitor.simulator import Simulator
from runmonitor.ui.main_window import MainWindow
from tests.conftest import AUDIT_SECRETS
from tests.ui.conftest import run


def screen_text(root: QWidget) -> list[str]:
    texts = [root.windowTitle(), root.toolTip()]
    for widget in root.findChildren(QWidget):
        texts += [
            widget.toolTip(),
            widget.accessibleName(),
            widget.accessibleDescription(),
            widget.windowTitle(),
        ]
        if isinstance(widget, QLabel | QAbstractButton):
            texts.append(widget.text())
        elif isinstance(widget, QLineEdit):
            texts += [widget.displayText(), widget.placeholderText()]
        elif isinstance(widget, QPlainTextEdit | QTextEdit):
            texts.append(widget.toPlainText())
    return [t for t in texts if t]


def test_no_secret_is_shown_or_put_in_a_url(qtbot: Any, window: MainWindow) -> None:
    sim: Simulator = window.context.simulator
    sim.force("invision", "success")
    profile = window.context.profiles("invision")[0]
    request = get("invision").request_model.model_validate(sim.demo_request("invision"))
    record = run(qtbot, window.context.engine.create_run(str(profile.id), request))
    window.run_changed(record)
    tab = window.service_tabs["invision"]
    window.tabs.setCurrentWidget(tab)
    tab.view.table.selectRow(0)
    qtbot.waitUntil(lambda: tab.view.details.record() is not None, timeout=5000)
    window.controller.open_profile_dialog("invision", profile)
    qtbot.waitUntil(lambda: bool(window.controller.dialogs), timeout=5000)
    dialog = window.controller.dialogs[-1]
    shown = screen_text(window) + screen_text(dialog)
    assert len(shown) > 50  # the scan saw the window, the details and the dialog
    for secret in AUDIT_SECRETS:
        assert not any(secret in text for text in shown), secret
    # InVision's key travels in a header, never in the address.
    requests = sim.requests("invision")
    assert requests
    for secret in AUDIT_SECRETS:
        assert not any(secret in r.path or secret in r.query for r in requests), secret
