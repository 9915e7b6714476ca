"""Where RunMonitor keeps its files: RUNMONITOR_HOME or the platform's per-user directories."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from runmonitor.storage.paths import AppPaths, app_paths


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_runmonitor_home_puts_everything_under_it(tmp_path: Path) -> None:
    home = tmp_path / "portable"
    paths = app_paths({"RUNMONITOR_HOME": str(home)})
    assert paths == AppPaths(
        config_dir=home / "config",
        data_dir=home / "data",
        state_dir=home / "state",
        log_dir=home / "logs",
        cache_dir=home / "cache",
    )
    assert paths.history_path == home / "data" / "history.sqlite3"
    assert not home.exists()  # computing paths creates nothing


def test_environment_is_read_when_no_mapping_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNMONITOR_HOME", str(tmp_path))
    assert app_paths().data_dir == tmp_path / "data"


def test_platform_defaults_without_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    monkeypatch.setenv("RUNMONITOR_HOME", str(tmp_path / "ignored"))
    paths = app_paths({})  # an explicit empty environment: RUNMONITOR_HOME is not set there
    dirs = [paths.config_dir, paths.data_dir, paths.state_dir, paths.log_dir, paths.cache_dir]
    assert all("runmonitor" in d.parts for d in dirs)
    assert not any(tmp_path / "ignored" in d.parents for d in dirs)
    if sys.platform.startswith("linux"):
        # On macOS and Windows config and data share a directory by platform convention.
        assert len(set(dirs)) == 5
        assert paths.config_dir == tmp_path / "xdg_config_home" / "runmonitor"
        assert paths.data_dir == tmp_path / "xdg_data_home" / "runmonitor"
        assert paths.history_path == tmp_path / "xdg_data_home" / "runmonitor" / "history.sqlite3"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_ensure_creates_private_directories(tmp_path: Path) -> None:
    paths = app_paths({"RUNMONITOR_HOME": str(tmp_path / "home")})
    assert paths.ensure() is paths
    for directory in paths.all_dirs:
        assert directory.is_dir()
        assert mode(directory) == 0o700
    paths.log_dir.chmod(0o755)
    paths.ensure()  # idempotent, and tightens a loosened directory again
    assert mode(paths.log_dir) == 0o700
