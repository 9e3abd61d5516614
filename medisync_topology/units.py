"""Durations and sizes in human units, and counts in words.

topology.yaml says ``7d`` and ``512MiB``; the JetStream API speaks integer nanoseconds and
bytes. Parsing and formatting round-trip exactly (``parse_duration(format_duration(n)) == n``),
so a plan never shows a change that is only a different spelling of the same value.

-1 is passed through by both parsers and both formatters: JetStream reads -1 as "unlimited"
in many limit fields (max_msgs, max_bytes, max_msg_size, ...). Whether a field accepts it is
the rules table's business, not this module's. Any other negative value is refused.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from functools import lru_cache
from typing import Any, Callable

from medisync_topology.errors import TopologyError
from medisync_topology.fields import UNLIMITED

# The server decodes these fields into Go int64 (time.Duration, int64 byte counts).
INT64_MAX = 2**63 - 1

_NS_PER_UNIT = {
    "ns": 1,
    "us": 10**3,
    "\u00b5s": 10**3,  # micro sign, as Go's time.ParseDuration accepts
    "\u03bcs": 10**3,  # Greek small mu, likewise
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
    "d": 86400 * 10**9,
}
# Largest first; ASCII "us" only, so output is always typeable.
_DURATION_FORMAT_UNITS = tuple((u, _NS_PER_UNIT[u]) for u in ("d", "h", "m", "s", "ms", "us", "ns"))

_BYTES_PER_BINARY_UNIT = {"KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4, "PiB": 1024**5}
_BYTES_PER_SI_UNIT = {"KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4, "PB": 1000**5}
_BYTES_PER_UNIT = {"B": 1, **_BYTES_PER_SI_UNIT, **_BYTES_PER_BINARY_UNIT}
_SIZE_UNITS_BY_LOWER = {unit.lower(): unit for unit in _BYTES_PER_UNIT}

# [0-9], not \d: \d would also accept non-ASCII digits such as "٣".
_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
_DURATION_TERM = re.compile(rf"({_NUMBER})(ns|us|\u00b5s|\u03bcs|ms|s|m|h|d)")
_DURATION_TEXT = re.compile(rf"(?:{_DURATION_TERM.pattern})+")
_SIZE_TEXT = re.compile(rf"({_NUMBER})([A-Za-z]*)")

_DURATION_HELP = (
    "use a number with a unit (ns, us, ms, s, m, h, d), e.g. 30s, 5m, 1h30m, 7d, "
    "or an integer number of nanoseconds"
)
_SIZE_HELP = (
    "use an integer number of bytes, or a number with a unit: B, KB, MB, GB, TB, PB (powers of 1000) "
    "or KiB, MiB, GiB, TiB, PiB (powers of 1024), e.g. 512MiB, 10GB, 1.5GiB"
)


class UnitError(TopologyError, ValueError):
    """A duration or size that cannot be read; the message says how to write it."""


def parse_duration(value: int | float | str) -> int:
    """Nanoseconds from an integer (already ns), ``"0"``, or Go-style text such as ``"1h30m"``.

    Decimals are allowed while the result is whole nanoseconds (``"1.5h"``, not ``"0.5ns"``).
    Units: ns, us (or µs), ms, s, m, h, d. -1 (integer or ``"-1"``) passes through as unlimited.
    """
    if type(value) is int and (0 <= value <= INT64_MAX or value == UNLIMITED):
        return value  # already nanoseconds: the common case, and what every live config holds
    return _parse(value, "duration", "nanoseconds", _DURATION_HELP, _duration_from_text)


def parse_size(value: int | float | str) -> int:
    """Bytes from an integer, a bare number string, or a number with a unit.

    SI units (KB, MB, GB, TB, PB) are powers of 1000; binary units (KiB, MiB, GiB, TiB, PiB)
    are powers of 1024. Units are case-sensitive, so ``"1kb"`` is refused rather than guessed.
    The result must be whole bytes (``"1.5GiB"`` is, ``"1.5B"`` is not).
    -1 (integer or ``"-1"``) passes through as unlimited.
    """
    if type(value) is int and (0 <= value <= INT64_MAX or value == UNLIMITED):
        return value
    return _parse(value, "size", "bytes", _SIZE_HELP, _size_from_text)


def format_duration(ns: int) -> str:
    """Exact text for a nanosecond count, largest units first: ``"7d"``, ``"1h30m"``, ``"1s500ms"``.

    0 is ``"0s"``; -1 (unlimited) is ``"-1"``. Other negatives, which the server never sends for
    durations, are shown as plain integers rather than failing a render.
    """
    if ns == 0:
        return "0s"
    if ns < 0:
        return str(ns)
    parts = []
    for unit, size in _DURATION_FORMAT_UNITS:
        count, ns = divmod(ns, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def format_size(n: int) -> str:
    """The shortest exact text for a byte count: ``"1GiB"``, ``"512MiB"``, ``"10GB"``, else ``"1500"``.

    Binary units win a tie with SI units, and units win a tie with plain bytes (``"1KiB"``, not
    ``"1024"``). 0 and -1 (unlimited) are shown as plain integers.
    """
    if n <= 0:
        return str(n)
    candidates = [_exact_in_largest_unit(n, _BYTES_PER_BINARY_UNIT), _exact_in_largest_unit(n, _BYTES_PER_SI_UNIT)]
    candidates = [text for text in candidates if text is not None] + [str(n)]
    return min(candidates, key=len)  # min keeps the first of equals, hence the order above


def _exact_in_largest_unit(n: int, bytes_per_unit: dict[str, int]) -> str | None:
    for unit, size in reversed(bytes_per_unit.items()):
        if n % size == 0:
            return f"{n // size}{unit}"
    return None


def _parse(value: object, what: str, base_unit: str, help: str, from_text: Callable[[str], Fraction | str]) -> int:
    if type(value) is str:  # a file says `30s` and `7d` for thousands of resources: each text is read once
        return _parse_text(value, what, base_unit, help, from_text)
    return _parse_value(value, what, base_unit, help, from_text)


@lru_cache(maxsize=4096)
def _parse_text(text: str, what: str, base_unit: str, help: str, from_text: Callable[[str], Fraction | str]) -> int:
    return _parse_value(text, what, base_unit, help, from_text)


def _parse_value(
    value: object, what: str, base_unit: str, help: str, from_text: Callable[[str], Fraction | str]
) -> int:
    # bool is an int in Python, but `max_age: yes` in YAML is a mistake, not 1 nanosecond.
    not_a_number = isinstance(value, bool) or not isinstance(value, (int, float, str))
    if not_a_number or (isinstance(value, float) and not math.isfinite(value)):
        raise UnitError(f"{value!r} is not a {what}: {help}")
    if value == "-1":
        return UNLIMITED
    if isinstance(value, str):
        negative = value.startswith("-")
        amount = from_text(value[1:] if negative else value)
        if isinstance(amount, str):
            raise UnitError(f"{value!r} is not a {what}: {amount}")
        if negative:
            amount = -amount
    else:
        amount = Fraction(value)
    if amount == UNLIMITED:
        return UNLIMITED
    if amount < 0:
        raise UnitError(
            f"{value!r} is negative: a {what} must be 0 or more "
            f"(the one exception is -1, which JetStream reads as unlimited where a field allows it)"
        )
    if amount.denominator != 1:
        raise UnitError(f"{value!r} is not a whole number of {base_unit}: {help}")
    if amount > INT64_MAX:
        raise UnitError(
            f"{value!r} is too large: JetStream stores a {what} as a 64-bit integer, "
            f"at most {INT64_MAX} {base_unit}"
        )
    return int(amount)


def _duration_from_text(text: str) -> Fraction | str:
    """The amount in nanoseconds, or what is wrong with the text."""
    # Go's time.ParseDuration also accepts a bare "0" and nothing else without a unit.
    if text == "0":
        return Fraction(0)
    if not _DURATION_TEXT.fullmatch(text):
        return _DURATION_HELP
    return sum(
        (Fraction(number) * _NS_PER_UNIT[unit] for number, unit in _DURATION_TERM.findall(text)),
        Fraction(0),
    )


def _size_from_text(text: str) -> Fraction | str:
    """The amount in bytes, or what is wrong with the text."""
    match = _SIZE_TEXT.fullmatch(text)
    if match is None:
        return _SIZE_HELP
    number, unit = match.groups()
    if unit and unit not in _BYTES_PER_UNIT:
        meant = _SIZE_UNITS_BY_LOWER.get(unit.lower())
        if meant is not None:
            return f"units are case-sensitive, did you mean {number}{meant}? ({_SIZE_HELP})"
        return f"unknown unit {unit!r}; {_SIZE_HELP}"
    return Fraction(number) * _BYTES_PER_UNIT.get(unit, 1)


def by_field(value: Any, key: str, convert: Callable[[str, Any, tuple], Any], path: tuple = ()) -> Any:
    """``value``, found under ``key``, with ``convert(name, leaf, path)`` applied to each plain value in it.

    ``name`` is the field the leaf sits under, which says what it is (fields.UNIT_BY_NAME, ...) at any
    depth: list items take their list's name (``backoff``) and path (a listed object its index too),
    keys of nested objects their own (``consumer_limits.inactive_threshold``); ``metadata`` is the
    user's own and left as it is.
    """
    if key == "metadata":
        return value
    if isinstance(value, dict):
        return {k: by_field(v, k, convert, path + (k,)) for k, v in value.items()}
    if isinstance(value, list):
        return [by_field(item, key, convert, path + (i,) * isinstance(item, dict)) for i, item in enumerate(value)]
    return convert(key, value, path)


def plural(n: int, noun: str) -> str:
    """A count in words: "1 stream", "2 streams", "1,234 messages"."""
    return f"{n:,} {noun}{'s' * (n != 1)}"
