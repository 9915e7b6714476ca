"""The suite's secret audit itself must be able to fail."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ALLOWED_SECRET_FILES, AUDIT_SECRETS, scan_for_secrets


def test_the_audit_knows_the_simulator_credentials() -> None:
    assert "sim-invision-key-5f2c" in AUDIT_SECRETS
    assert len(AUDIT_SECRETS) >= 6


def test_the_audit_finds_a_planted_secret_and_ignores_the_keyring(tmp_path: Path) -> None:
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "app.log").write_text(f"login with {AUDIT_SECRETS[0]} failed")
    (tmp_path / "clean.json").write_text('{"api_key": "***"}')
    (tmp_path / ALLOWED_SECRET_FILES[0]).write_text(AUDIT_SECRETS[0])
    try:
        scanned, leaks = scan_for_secrets([tmp_path])
    finally:
        (tmp_path / "nested" / "app.log").unlink()  # planted here only; the suite's own audit follows
    assert scanned == 2
    assert len(leaks) == 1
    assert "app.log" in leaks[0]
    assert AUDIT_SECRETS[0] not in leaks[0]  # the report itself does not repeat the secret
