"""Importing profiles: what the file holds, and a choice for each profile that clashes."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from runmonitor.domain.text import plural
from runmonitor.services import registry
from runmonitor.storage.settings.transfer import ImportPlan
from runmonitor.ui.run_model import plain_tooltip

CHOICES = [
    ("rename", "Import as a copy (new name)"),
    ("replace", "Replace the existing profile (its stored secrets stay)"),
    ("skip", "Skip: keep the existing profile"),
]


class ImportDialog(QDialog):
    """Lists the imported profiles; the person decides each clash before anything is changed."""

    def __init__(self, path: Path, plan: ImportPlan, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plan = plan
        self.setWindowTitle("Import profiles")
        self.setAccessibleName("Import profiles")
        clashes = {c.index: c for c in plan.clashes}
        intro = QLabel()
        intro.setTextFormat(Qt.TextFormat.PlainText)
        intro.setWordWrap(True)
        text = f"{path.name} holds {plural(len(plan.profiles), 'profile')}. Secrets are never in an export: "
        text += "enter them after the import."
        if clashes:
            text += f" {len(clashes)} clash with profiles you have; choose what happens to each."
        intro.setText(text)
        self.table = QTableWidget(len(plan.profiles), 3)
        self.table.setAccessibleName("Profiles in the file")
        self.table.setHorizontalHeaderLabels(["Profile", "Service", "What happens"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.choices: dict[int, QComboBox] = {}
        names = {key: service.display_name for key, service in registry().items()}
        for row, profile in enumerate(plan.profiles):
            name = QTableWidgetItem(profile.name)
            name.setFlags(name.flags() & ~Qt.ItemFlag.ItemIsEditable)
            service = QTableWidgetItem(names.get(profile.service, profile.service))
            service.setFlags(service.flags() & ~Qt.ItemFlag.ItemIsEditable)
            self.table.setItem(row, 0, name)
            self.table.setItem(row, 1, service)
            clash = clashes.get(row)
            if clash is None:
                added = QTableWidgetItem("Added")
                added.setFlags(added.flags() & ~Qt.ItemFlag.ItemIsEditable)
                self.table.setItem(row, 2, added)
                continue
            box = QComboBox()
            box.setAccessibleName(f"What happens to {profile.name}")
            box.setToolTip(plain_tooltip(clash.text))
            for value, label in CHOICES:
                box.addItem(label, value)
            self.table.setCellWidget(row, 2, box)
            self.choices[row] = box
        self.table.resizeColumnsToContents()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.import_button = buttons.addButton("Import", QDialogButtonBox.ButtonRole.AcceptRole)
        self.import_button.setDefault(True)
        buttons.accepted.connect(self._decide)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self.resize(640, 320)

    def choose(self, row: int, choice: str) -> None:
        box = self.choices[row]
        box.setCurrentIndex(box.findData(choice))

    def _decide(self) -> None:
        for row, box in self.choices.items():
            self.plan.decide(row, box.currentData())
        self.accept()
