"""How often the polling engine asks about a run, and how it backs off."""

from __future__ import annotations

import random

from pydantic import BaseModel, ConfigDict, Field, field_validator


class PollSchedule(BaseModel):
    """Polling preferences: global defaults, overridable per profile.

    ``steps`` maps the age of a run (seconds since RunMonitor first saw it) to the pause
    between status checks: fast while a run is young, slower as it ages.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    steps: tuple[tuple[float, float], ...] = Field(
        default=((0, 2.0), (60, 5.0), (600, 15.0), (3600, 60.0), (6 * 3600, 300.0)),
        title="Check intervals by age",
        description="(age in seconds, seconds between checks) pairs, ascending by age.",
    )
    jitter: float = Field(
        default=0.1, ge=0, le=0.5, title="Jitter", description="Random spread of each interval (0.1 = ±10%)."
    )
    max_backoff: float = Field(
        default=300.0, gt=0, le=3600, title="Longest back-off (s)", description="Cap on waits after errors."
    )
    watch_interval: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        title="Watch interval (s)",
        description="Seconds between looks for new runs of a watched pipeline or job.",
    )
    heartbeat_interval: float = Field(
        default=60.0,
        gt=0,
        title="Heartbeat interval (s)",
        description="How often a running Cognite extractor reports 'seen'.",
    )
    heartbeat_multiple: float = Field(
        default=3.0,
        ge=1,
        title="Silent after (× heartbeat)",
        description="A running run whose heartbeats stop for this many intervals becomes UNKNOWN.",
    )
    not_found_limit: int = Field(
        default=3,
        ge=1,
        title="Give up after 'not found'",
        description="Consecutive 'not found' answers after which a run counts as gone and is not "
        "checked any more.",
    )

    @field_validator("steps")
    @classmethod
    def _ascending(cls, steps: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
        if not steps:
            raise ValueError("at least one (age, interval) step is needed")
        ages = [age for age, _ in steps]
        if ages[0] != 0:
            raise ValueError("the first step must start at age 0")
        if ages != sorted(ages) or len(set(ages)) != len(ages):
            raise ValueError("steps must be in strictly ascending order of age")
        if any(interval <= 0 for _, interval in steps):
            raise ValueError("intervals must be positive")
        return steps

    def interval_for(self, age: float) -> float:
        """The pause between checks for a run of this age, without jitter."""
        interval = self.steps[0][1]
        for start, value in self.steps:
            if age >= start:
                interval = value
            else:
                break
        return interval

    def jittered(self, seconds: float, rng: random.Random) -> float:
        if self.jitter <= 0:
            return seconds
        return seconds * rng.uniform(1 - self.jitter, 1 + self.jitter)

    def backoff(self, failures: int, base: float, rng: random.Random) -> float:
        """Exponential back-off after ``failures`` consecutive errors, capped, with full jitter
        on the upper half so many runs failing together do not retry in step."""
        ceiling = min(self.max_backoff, base * (2 ** max(0, failures - 1)))
        return rng.uniform(ceiling / 2, ceiling)

    @property
    def base_interval(self) -> float:
        return self.steps[0][1]
