"""The common status vocabulary every vendor status maps onto."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class RunStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    UNKNOWN = "UNKNOWN"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES

    @property
    def label(self) -> str:
        return self.value.capitalize()


TERMINAL_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})


@dataclass(frozen=True)
class MappedStatus:
    """A vendor status normalised: the common status, the vendor's own value and a detail."""

    status: RunStatus
    vendor: str | None
    detail: str | None = None

    @property
    def terminal(self) -> bool:
        return self.status.terminal


@dataclass(frozen=True)
class StatusMap:
    """One service's table from vendor status values to the common vocabulary.

    ``entries`` maps each known vendor value to ``(status, detail)``. Values not in
    the table (and ``None``) map to UNKNOWN, never to an exception.
    """

    entries: Mapping[str, tuple[RunStatus, str | None]]
    case_sensitive: bool = True
    _folded: Mapping[str, tuple[RunStatus, str | None]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        folded = {self._fold(k): v for k, v in self.entries.items()}
        object.__setattr__(self, "_folded", folded)

    def _fold(self, value: str) -> str:
        return value if self.case_sensitive else value.strip().casefold()

    @property
    def vendor_values(self) -> Iterable[str]:
        return self.entries.keys()

    def map(self, vendor: object) -> MappedStatus:
        if not isinstance(vendor, str):
            return MappedStatus(RunStatus.UNKNOWN, None if vendor is None else str(vendor), None)
        hit = self._folded.get(self._fold(vendor))
        if hit is None:
            return MappedStatus(RunStatus.UNKNOWN, vendor, f"unrecognised status {vendor!r}")
        status, detail = hit
        return MappedStatus(status, vendor, detail)
