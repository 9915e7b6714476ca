"""Shared fixtures and the suite-wide secret audit.

- A real simulator on 127.0.0.1 per test (``sim``), and the vendor specs when present.
- ``RUNMONITOR_HOME`` points at a fresh folder for the whole session: nothing the suite does
  touches the user's real settings, history or logs.
- At the end, every file the suite made the app write (that folder and pytest's temporary
  folders) is searched for the known test secrets; a leak fails the run.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYTEST_QT_API", "pyside6")
SUITE_HOME = Path(tempfile.mkdtemp(prefix="runmonitor-suite-"))
os.environ["RUNMONITOR_HOME"] = str(SUITE_HOME)

from runmonitor.simulator import Simulator  # noqa: E402
from runmonitor.simulator.server import discover_sims  # noqa: E402

SPECS_DIR = Path(__file__).resolve().parents[2] / "shared" / "specs"

#: Secrets every test knows: the simulator's credentials (not the public ones, such as an OAuth
#: client id, which belongs in a profile), and values tests plant on purpose.
PUBLIC_CREDENTIALS = {"client_id"}
AUDIT_SECRETS = sorted(
    {
        value
        for cls in discover_sims().values()
        for name, value in cls.default_credentials.items()
        if len(value) >= 12 and name not in PUBLIC_CREDENTIALS
    }
    | {"audit-secret-7Qx2-kept-out-of-files", "hunter2-very-secret"}
)
#: The only files allowed to hold secrets: the keyring stand-in and the opt-in plaintext store.
ALLOWED_SECRET_FILES = ("test-keyring.json", "secrets.json")


def scan_for_secrets(roots: list[Path], secrets: list[str] = AUDIT_SECRETS) -> tuple[int, list[str]]:
    """(files scanned, "path: secret" leaks) under ``roots``."""
    scanned, leaks = 0, []
    needles = [s.encode() for s in secrets]
    for root in roots:
        if not root.exists():
            continue
        for path in root.rglob("*"):
            if not path.is_file() or path.is_symlink() or path.name in ALLOWED_SECRET_FILES:
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue
            scanned += 1
            leaks.extend(f"{path}: holds {needle.decode()[:6]}…" for needle in needles if needle in data)
    return scanned, leaks


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    roots = [SUITE_HOME]
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is not None:
        try:
            roots.append(factory.getbasetemp())
        except (OSError, ValueError):
            pass
    scanned, leaks = scan_for_secrets(roots)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("-", f"secret audit: {scanned} files written by the suite, {len(leaks)} leaks")
        for leak in leaks:
            reporter.write_line(f"LEAK {leak}", red=True)
    if leaks:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """A fresh simulator of all services on a free loopback port, clock at real speed."""
    simulator = Simulator(seed=1234, time_scale=1.0)
    with simulator:
        yield simulator


@pytest.fixture
def specs_dir() -> Path:
    if not SPECS_DIR.is_dir():
        pytest.skip(f"vendor specs not found at {SPECS_DIR} (they live in ../shared/specs beside the repo)")
    return SPECS_DIR
