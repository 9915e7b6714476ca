"""Shared fixtures: a real simulator on 127.0.0.1 per test, and helpers to follow runs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYTEST_QT_API", "pyside6")

from runmonitor.simulator import Simulator

SPECS_DIR = Path(__file__).resolve().parents[2] / "shared" / "specs"


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
