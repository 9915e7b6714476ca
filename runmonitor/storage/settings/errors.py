"""What the settings package raises: settings that cannot be saved, profile files refused."""

from __future__ import annotations

from collections.abc import Sequence

from runmonitor.domain.errors import RunMonitorError


class SettingsError(RunMonitorError):
    """Settings cannot be saved, or a file cannot be exported or imported; the message says why."""


class ProfileImportError(SettingsError):
    """An import file is refused, or an import plan cannot be applied. Nothing was imported.

    ``problems`` lists each reason, e.g. ``"profiles.1.connection.base_url: must start with http://…"``.
    """

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        self.problems = list(problems)
        if self.problems:
            message = f"{message}: {'; '.join(self.problems)}"
        super().__init__(message)
