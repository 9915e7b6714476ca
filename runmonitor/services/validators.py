"""Generic field checks any service's forms may use: ISO 8601 durations, e-mail addresses,
IANA time zones and Unix-time datetimes.

Each check takes the text a person typed and returns the value to send, or raises ValueError
with a reason meant for that person (pydantic shows it next to the field).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator

# -- ISO 8601 durations ----------------------------------------------------------------------

_NUMBER = r"\d{1,9}(?:[.,]\d{1,9})?"
_DURATION_RE = re.compile(
    rf"P(?:(?P<years>{_NUMBER})Y)?(?:(?P<months>{_NUMBER})M)?(?:(?P<weeks>{_NUMBER})W)?"
    rf"(?:(?P<days>{_NUMBER})D)?"
    rf"(?:T(?:(?P<hours>{_NUMBER})H)?(?:(?P<minutes>{_NUMBER})M)?(?:(?P<seconds>{_NUMBER})S)?)?"
)
_UNITS = ("years", "months", "weeks", "days", "hours", "minutes", "seconds")
_UNIT_SECONDS = {
    # Calendar units have no fixed length; these are the approximations used for ordering
    # and for the simulator's schedule (a year is 365 days, a month 30 days).
    "years": 365 * 86400.0,
    "months": 30 * 86400.0,
    "weeks": 7 * 86400.0,
    "days": 86400.0,
    "hours": 3600.0,
    "minutes": 60.0,
    "seconds": 1.0,
}
DURATION_EXAMPLES = "e.g. P1D, PT15M, P1W, P3M or P1Y2M10DT2H30M"


@dataclass(frozen=True)
class IsoDuration:
    """An ISO 8601 duration (``PnYnMnWnDTnHnMnS``), parsed strictly."""

    text: str
    years: float = 0.0
    months: float = 0.0
    weeks: float = 0.0
    days: float = 0.0
    hours: float = 0.0
    minutes: float = 0.0
    seconds: float = 0.0

    def approx_seconds(self) -> float:
        """Length in seconds, with a year as 365 days and a month as 30 days."""
        return float(sum(getattr(self, unit) * _UNIT_SECONDS[unit] for unit in _UNITS))


def parse_iso_duration(value: str) -> IsoDuration:
    """Parse an ISO 8601 duration such as ``P1Y2M10DT2H30M`` or ``PT15M``.

    Accepted: the designators Y, M, W, D before ``T`` and H, M, S after it, in that order,
    each at most once; a decimal fraction (``.`` or ``,``) only on the last component
    (``P0.5D``, ``PT1.5S``); weeks may be combined with other units (ISO 8601-2).
    Refused with a reason: empty text, a sign, lower-case designators, ``P`` or ``PT`` with
    nothing after them, time units without ``T`` (``P1H``), a missing ``P`` (``1D``), and a
    total length of zero. Raises ValueError.
    """
    text = value.strip()
    if not text:
        raise ValueError(f"must not be empty; enter an ISO 8601 duration ({DURATION_EXAMPLES})")
    if text[0] in "+-":
        raise ValueError("must not have a sign; durations here are always positive")
    if text[0] != "P":
        if text[0] == "p" or re.search(r"[a-z]", text):
            raise ValueError(f"ISO 8601 designators are upper case ({DURATION_EXAMPLES})")
        raise ValueError(f"must start with 'P' ({DURATION_EXAMPLES})")
    if re.search(r"[a-z]", text):
        raise ValueError(f"ISO 8601 designators are upper case ({DURATION_EXAMPLES})")
    match = _DURATION_RE.fullmatch(text)
    if match is None:
        date_part = text[1:].split("T", 1)[0]
        if re.search(r"\d[HS]", date_part):
            raise ValueError("hours, minutes and seconds must come after 'T' (e.g. PT1H, P1DT12H)")
        raise ValueError(f"is not an ISO 8601 duration ({DURATION_EXAMPLES})")
    present = [unit for unit in _UNITS if match.group(unit) is not None]
    if not present:
        raise ValueError(f"needs at least one number and unit after 'P' ({DURATION_EXAMPLES})")
    if text.endswith("T"):
        raise ValueError("has a 'T' with no hours, minutes or seconds after it")
    for unit in present[:-1]:
        if re.search(r"[.,]", match.group(unit)):
            raise ValueError("only the last (smallest) unit may have a decimal fraction")
    values = {unit: float(match.group(unit).replace(",", ".")) for unit in present}
    duration = IsoDuration(text=text.replace(",", "."), **values)
    if duration.approx_seconds() <= 0:
        raise ValueError("must be longer than zero")
    return duration


def _check_duration(value: str) -> str:
    return parse_iso_duration(value).text


Iso8601Duration = Annotated[str, AfterValidator(_check_duration)]
"""A strictly validated, positive ISO 8601 duration (sent as typed, with ``,`` as ``.``)."""

# -- e-mail addresses and time zones ---------------------------------------------------------

_EMAIL_RE = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


def check_email(value: str) -> str:
    """An e-mail address (``ops@example.com``), trimmed; the local part at most 64 characters."""
    text = value.strip()
    if len(text) > 254 or not _EMAIL_RE.fullmatch(text) or len(text.split("@", 1)[0]) > 64:
        raise ValueError(f"{text!r} is not an e-mail address such as ops@example.com")
    return text


@cache
def _zones_folded() -> dict[str, str]:
    return {name.casefold(): name for name in available_timezones()}


def check_timezone(value: str) -> str:
    """An IANA time zone name (``Europe/Rome``, ``UTC``), validated with zoneinfo."""
    text = value.strip()
    if not text:
        raise ValueError("must not be empty; enter an IANA time zone such as UTC or Europe/Rome")
    if text.casefold() == "utc":
        return "UTC"
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        canonical = _zones_folded().get(text.casefold())
        if canonical is None:
            raise ValueError(f"{text!r} is not an IANA time zone name (e.g. UTC, Europe/Rome)") from None
        return canonical
    return text


# -- Unix time -------------------------------------------------------------------------------


def check_unix_time(value: datetime | None) -> datetime | None:
    """``value`` in UTC (a time without a zone is UTC); refused before 1970-01-01."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if value.timestamp() < 0:
        raise ValueError("must not be before 1970-01-01 (Unix time starts there)")
    return value.astimezone(UTC)


def unix_seconds(value: datetime) -> int | float:
    """Seconds since 1970 as sent in JSON: a whole number when there is no fraction."""
    seconds = value.timestamp()
    return int(seconds) if seconds == int(seconds) else seconds
