"""Keeping secrets out of logs, URLs shown to people and stored raw responses."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"

# Query parameter and JSON key names whose values are secrets, compared case-insensitively
# with "-" and "_" ignored (so api_key, apiKey and x-api-key all match).
_SECRET_NAMES = {
    "apikey",
    "xapikey",
    "key",
    "token",
    "accesstoken",
    "refreshtoken",
    "idtoken",
    "clientsecret",
    "secret",
    "password",
    "passwd",
    "authorization",
    "cookie",
    "setcookie",
    "code",
}


def is_secret_name(name: str) -> bool:
    folded = re.sub(r"[-_\s]", "", name).casefold()
    return folded in _SECRET_NAMES or folded.endswith(("token", "secret", "password", "apikey"))


def redact_url(url: str) -> str:
    """Mask userinfo passwords and secret-looking query parameters of ``url``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{user}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if is_secret_name(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_json(value: Any) -> Any:
    """A copy of a decoded JSON document with the values of secret-named keys masked."""
    if isinstance(value, dict):
        return {
            k: (MASK if isinstance(k, str) and is_secret_name(k) and v not in (None, "") else redact_json(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_json(v) for v in value]
    return value


class SecretRegistry:
    """Known secret values, scrubbed from any text that passes through :meth:`scrub`.

    Service clients register the secrets of their connection here, and the logging
    filter below scrubs every log record, so a secret that ends up in an exception
    message or a vendor's error body is still never written to a log.
    """

    MIN_LENGTH = 4

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None

    def register(self, values: Iterable[str | None]) -> None:
        with self._lock:
            added = False
            for value in values:
                if value and len(value) >= self.MIN_LENGTH and value not in self._values:
                    self._values.add(value)
                    added = True
            if added:
                ordered = sorted(self._values, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def scrub(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub(MASK, text)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._pattern = None


secret_registry = SecretRegistry()


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs registered secrets from the formatted message."""

    def __init__(self, registry: SecretRegistry = secret_registry) -> None:
        super().__init__()
        self.registry = registry

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = self.registry.scrub(message)
        if scrubbed != message:
            record.msg = scrubbed
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # Format the traceback now, scrubbed, so handlers print the safe text.
            formatter = logging.Formatter()
            record.exc_text = self.registry.scrub(formatter.formatException(record.exc_info))
            record.exc_info = None
        return True
