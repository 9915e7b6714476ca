"""The log file: written where README says, secrets masked, our handlers replaced not stacked."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from runmonitor.domain.redact import secret_registry
from runmonitor.storage.logs import LOG_NAME, setup_logging
from runmonitor.storage.paths import app_paths


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in before:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def test_log_file_has_the_messages_but_never_a_secret(tmp_path: Path, restore_root: None) -> None:
    paths = app_paths({"RUNMONITOR_HOME": str(tmp_path)})
    secret = "tok-logfile-0123456789abcdef"
    secret_registry.register([secret])
    target = setup_logging(paths, debug=False)
    assert target == paths.log_dir / LOG_NAME
    setup_logging(paths, debug=False)  # twice: still one file handler of ours
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_runmonitor", False)]
    assert len(ours) == 2  # stderr + file
    log = logging.getLogger("runmonitor.test")
    log.info("connecting with %s to the service", secret)
    log.debug("debug lines are off by default")
    for handler in ours:
        handler.flush()
    text = target.read_text()
    assert "connecting with" in text
    assert secret not in text
    assert "debug lines are off" not in text


def test_an_unwritable_log_folder_falls_back_to_stderr(tmp_path: Path, restore_root: None) -> None:
    blocker = tmp_path / "home"
    blocker.write_text("a file where the folder should be")
    paths = app_paths({"RUNMONITOR_HOME": str(blocker)})
    assert setup_logging(paths) is None
    assert any(getattr(h, "_runmonitor", False) for h in logging.getLogger().handlers)
