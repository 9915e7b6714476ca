"""How RunMonitor writes numbers for people: durations and counted nouns, one rule each.

Every front end (window, tray, notifications, command line, ``doctor``) uses these, so a
duration reads the same wherever it is shown.
"""

from __future__ import annotations

import math

#: Units from the largest down, with their length in seconds.
_UNITS = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))


def format_duration(seconds: float) -> str:
    """A duration as its two largest units, the second left out when it is zero.

    ``45`` → "45 s", ``125`` → "2 min 5 s", ``3900`` → "1 h 5 min", ``7200`` → "2 h",
    ``183600`` → "2 d 3 h". Fractions round to the nearest second; negative, NaN and
    infinite values (a clock that went back, nothing measured) read "0 s".
    """
    total = round(seconds) if math.isfinite(seconds) and seconds > 0 else 0
    for index, (unit, size) in enumerate(_UNITS):
        if total >= size or unit == "s":
            first, rest = divmod(total, size)
            text = f"{first} {unit}"
            if index + 1 < len(_UNITS):
                small_unit, small_size = _UNITS[index + 1]
                second = rest // small_size
                if second:
                    text += f" {second} {small_unit}"
            return text
    raise AssertionError("unreachable: seconds is the last unit")


def plural_noun(word: str) -> str:
    """The plural of an English noun as RunMonitor uses them ("run" → "runs",
    "match" → "matches", "status" → "statuses", "entry" → "entries")."""
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return f"{word}es"
    if word.endswith("y") and len(word) > 1 and word[-2] not in "aeiou":
        return f"{word[:-1]}ies"
    return f"{word}s"


def plural(count: int, word: str, plural_form: str | None = None) -> str:
    """``count`` and the noun, singular for exactly one: "1 run", "0 runs", "3 matches"."""
    return f"{count} {word if count == 1 else plural_form or plural_noun(word)}"
