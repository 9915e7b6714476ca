#!/usr/bin/env python3
"""Developer entry point: sets up ``.venv`` on first use, then runs what you ask.

    python3 dev.py demo        # the app on its built-in demo services
    python3 dev.py test        # lint, type checks and the whole test suite
    python3 dev.py pytest ...  # pytest with your own arguments
    python3 dev.py run ...     # the runmonitor command with your own arguments

Needs only Python 3.11+ with venv and pip. The environment is rebuilt when
pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("RUNMONITOR_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".runmonitor-installed"


def _fingerprint() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure_env() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"RunMonitor needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        print(f"Creating a virtual environment in {VENV} …", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    if STAMP.exists() and STAMP.read_text() == _fingerprint():
        return
    print("Installing RunMonitor and its development tools …", flush=True)
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(_fingerprint())


def run(*args: str) -> int:
    return subprocess.run([str(PYTHON), *args], cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("help", [])
    if command in ("help", "-h", "--help"):
        print(__doc__)
        return 0
    ensure_env()
    if command == "demo":
        return run("-m", "runmonitor", "--demo", *rest)
    if command == "run":
        return run("-m", "runmonitor", *rest)
    if command == "pytest":
        return run("-m", "pytest", *rest)
    if command == "test":
        steps = [
            ("ruff", ["-m", "ruff", "check", "."]),
            ("mypy", ["-m", "mypy"]),
            ("pytest", ["-m", "pytest", *rest]),
        ]
        for name, args in steps:
            print(f"== {name}", flush=True)
            code = run(*args)
            if code != 0:
                # pytest's 5 means no test ran: that is a failure too.
                print(f"== {name} failed (exit {code})", flush=True)
                return code or 1
        return 0
    print(f"unknown command {command!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
