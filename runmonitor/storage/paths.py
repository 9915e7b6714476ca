"""Where RunMonitor keeps its files.

By default the platform's per-user directories (``platformdirs``, app name ``runmonitor``).
When ``RUNMONITOR_HOME`` is set, everything lives under that one directory instead, for
tests and portable use::

    $RUNMONITOR_HOME/config  data  state  logs  cache
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "runmonitor"
HOME_ENV = "RUNMONITOR_HOME"
DIR_MODE = 0o700


@dataclass(frozen=True)
class AppPaths:
    config_dir: Path
    data_dir: Path
    state_dir: Path
    log_dir: Path
    cache_dir: Path

    @property
    def history_path(self) -> Path:
        return self.data_dir / "history.sqlite3"

    @property
    def all_dirs(self) -> tuple[Path, ...]:
        return (self.config_dir, self.data_dir, self.state_dir, self.log_dir, self.cache_dir)

    def ensure(self) -> AppPaths:
        """Create the directories (private to the user: 0o700) and return ``self``.

        Only the leaf directories are RunMonitor's; parents (``~/.local/share``) are created
        with the default mode when missing and never chmod-ed.
        """
        for directory in self.all_dirs:
            ensure_private_dir(directory)
        return self


def ensure_private_dir(directory: Path) -> None:
    """Create ``directory`` (and missing parents) and make it 0o700."""
    directory.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    if os.name == "posix":
        os.chmod(directory, DIR_MODE)  # mkdir's mode is filtered by the umask


def app_paths(env: Mapping[str, str] | None = None) -> AppPaths:
    """The application's directories; ``env`` defaults to ``os.environ``. Nothing is created."""
    environ = os.environ if env is None else env
    home = environ.get(HOME_ENV, "").strip()
    if home:
        root = Path(home).expanduser().absolute()
        return AppPaths(
            config_dir=root / "config",
            data_dir=root / "data",
            state_dir=root / "state",
            log_dir=root / "logs",
            cache_dir=root / "cache",
        )
    return AppPaths(
        config_dir=platformdirs.user_config_path(APP_NAME, appauthor=False),
        data_dir=platformdirs.user_data_path(APP_NAME, appauthor=False),
        state_dir=platformdirs.user_state_path(APP_NAME, appauthor=False),
        log_dir=platformdirs.user_log_path(APP_NAME, appauthor=False),
        cache_dir=platformdirs.user_cache_path(APP_NAME, appauthor=False),
    )
