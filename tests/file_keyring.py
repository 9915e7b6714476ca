"""A keyring backend for CLI tests that run RunMonitor in subprocesses.

Each ``runmonitor`` process must find the secrets the previous one stored, on machines
with and without a Secret Service. Selected with
``PYTHON_KEYRING_BACKEND=tests.file_keyring.FileKeyring`` and
``RUNMONITOR_TEST_KEYRING=<path>``. It stands in for the OS keyring, so the suite's
secret audit allows its file (and only its file) to hold secrets.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

KEYRING_ENV = "RUNMONITOR_TEST_KEYRING"


class FileKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    @property
    def path(self) -> Path:
        return Path(os.environ[KEYRING_ENV])

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        return {str(k): str(v) for k, v in data.items()}

    def _save(self, data: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_suffix(".tmp")
        temp.write_text(json.dumps(data))
        os.chmod(temp, 0o600)
        os.replace(temp, self.path)

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}\n{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data[f"{service}\n{username}"] = password
        self._save(data)

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        if f"{service}\n{username}" not in data:
            raise PasswordDeleteError("not found")
        del data[f"{service}\n{username}"]
        self._save(data)
