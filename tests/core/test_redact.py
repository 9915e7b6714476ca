"""Secrets stay out of URLs, logs and stored raw bodies."""

from __future__ import annotations

import logging

import pytest

from runmonitor.domain.redact import RedactingFilter, SecretRegistry, is_secret_name, redact_json, redact_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://h/x?api_key=abc&flow=1", "https://h/x?api_key=***&flow=1"),
        ("https://h/x?access_token=abc", "https://h/x?access_token=***"),
        ("https://user:pw@h/x", "https://user:***@h/x"),
        ("https://h/x?a=1", "https://h/x?a=1"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    "name", ["api_key", "apiKey", "x-api-key", "refreshToken", "client_secret", "password"]
)
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["status", "runId", "message", "tokenType", "keyword"])
def test_not_secret_names(name: str) -> None:
    assert not is_secret_name(name)


def test_redact_json_masks_nested_secret_values() -> None:
    body = {"token": "abc", "tokenType": "Bearer", "items": [{"refreshToken": "r", "id": 1}], "empty": None}
    assert redact_json(body) == {
        "token": "***",
        "tokenType": "Bearer",
        "items": [{"refreshToken": "***", "id": 1}],
        "empty": None,
    }


def test_logging_filter_scrubs_registered_secrets(caplog: pytest.LogCaptureFixture) -> None:
    registry = SecretRegistry()
    registry.register(["hunter2-long-secret", None, "ab"])  # too short values are ignored
    logger = logging.getLogger("runmonitor.test.redact")
    logger.addFilter(RedactingFilter(registry))
    try:
        with caplog.at_level(logging.INFO, logger="runmonitor.test.redact"):
            logger.info("login with %s failed", "hunter2-long-secret")
            try:
                raise ValueError("bad secret hunter2-long-secret")
            except ValueError:
                logger.exception("oops")
    finally:
        logger.filters.clear()
    text = caplog.text
    assert "hunter2-long-secret" not in text
    assert "login with *** failed" in text
    assert "bad secret ***" in text
    assert registry.scrub("ab") == "ab"
