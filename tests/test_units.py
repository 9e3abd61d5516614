"""Durations and sizes: every accepted spelling, every refusal with its message, exact round trips."""

import random

import pytest

from medisync_topology.errors import TopologyError
from medisync_topology.units import (
    INT64_MAX,
    UNLIMITED,
    UnitError,
    format_duration,
    format_size,
    parse_duration,
    parse_size,
)

S = 10**9
MINUTE, HOUR, DAY = 60 * S, 3600 * S, 86400 * S
KiB, MiB, GiB, TiB, PiB = (1024**n for n in range(1, 6))


@pytest.mark.parametrize(
    "value, ns",
    [
        (0, 0),
        (1, 1),
        (30 * S, 30 * S),
        (INT64_MAX, INT64_MAX),
        (2.0e9, 2 * S),  # a whole float, as JSON tooling may produce
        ("0", 0),
        ("1ns", 1),
        ("1us", 1000),
        ("1\u00b5s", 1000),  # micro sign
        ("1\u03bcs", 1000),  # Greek mu
        ("500ms", 500 * 10**6),
        ("30s", 30 * S),
        ("5m", 5 * MINUTE),
        ("2h", 2 * HOUR),
        ("7d", 7 * DAY),
        ("0s", 0),
        ("1h30m", HOUR + 30 * MINUTE),
        ("1d2h3m4s5ms6us7ns", DAY + 2 * HOUR + 3 * MINUTE + 4 * S + 5 * 10**6 + 6000 + 7),
        ("30m1h", HOUR + 30 * MINUTE),  # any order, as Go's time.ParseDuration
        ("1.5h", 90 * MINUTE),
        ("1.5s", 1500 * 10**6),
        ("0.5us", 500),
        ("1.000000001s", S + 1),
        ("1m1ms", MINUTE + 10**6),  # "ms" is not read as "m" followed by "s"
        ("-1", UNLIMITED),
        (-1, UNLIMITED),
    ],
)
def test_parse_duration_accepts(value, ns):
    assert parse_duration(value) == ns


DURATION_HELP = (
    "use a number with a unit (ns, us, ms, s, m, h, d), e.g. 30s, 5m, 1h30m, 7d, or an integer number of nanoseconds"
)


@pytest.mark.parametrize(
    "value, message",
    [
        ("7days", f"'7days' is not a duration: {DURATION_HELP}"),
        ("", f"'' is not a duration: {DURATION_HELP}"),
        ("30", f"'30' is not a duration: {DURATION_HELP}"),
        ("1w", f"'1w' is not a duration: {DURATION_HELP}"),
        ("30S", f"'30S' is not a duration: {DURATION_HELP}"),
        ("1h 30m", f"'1h 30m' is not a duration: {DURATION_HELP}"),
        (" 30s", f"' 30s' is not a duration: {DURATION_HELP}"),
        (".5s", f"'.5s' is not a duration: {DURATION_HELP}"),
        ("+5s", f"'+5s' is not a duration: {DURATION_HELP}"),
        ("--5s", f"'--5s' is not a duration: {DURATION_HELP}"),
        ("s", f"'s' is not a duration: {DURATION_HELP}"),
        ("\u0663s", f"'\u0663s' is not a duration: {DURATION_HELP}"),  # Arabic-Indic digit three
        (True, f"True is not a duration: {DURATION_HELP}"),
        (None, f"None is not a duration: {DURATION_HELP}"),
        ([1], f"[1] is not a duration: {DURATION_HELP}"),
        (float("nan"), f"nan is not a duration: {DURATION_HELP}"),
        (float("inf"), f"inf is not a duration: {DURATION_HELP}"),
        (
            "-5s",
            "'-5s' is negative: a duration must be 0 or more "
            "(the one exception is -1, which JetStream reads as unlimited where a field allows it)",
        ),
        (
            -2,
            "-2 is negative: a duration must be 0 or more "
            "(the one exception is -1, which JetStream reads as unlimited where a field allows it)",
        ),
        ("0.5ns", f"'0.5ns' is not a whole number of nanoseconds: {DURATION_HELP}"),
        ("1.0000000001s", f"'1.0000000001s' is not a whole number of nanoseconds: {DURATION_HELP}"),
        (1.5, f"1.5 is not a whole number of nanoseconds: {DURATION_HELP}"),
        (
            "106752d",
            "'106752d' is too large: JetStream stores a duration as a 64-bit integer, "
            f"at most {INT64_MAX} nanoseconds",
        ),
        (
            INT64_MAX + 1,
            f"{INT64_MAX + 1} is too large: JetStream stores a duration as a 64-bit integer, "
            f"at most {INT64_MAX} nanoseconds",
        ),
    ],
)
def test_parse_duration_refuses(value, message):
    with pytest.raises(UnitError) as caught:
        parse_duration(value)
    assert str(caught.value) == message


def test_unit_error_is_a_topology_error_and_a_value_error():
    # cli.py reports TopologyError cleanly; callers that only know ValueError still catch it.
    with pytest.raises(TopologyError):
        parse_duration("soon")
    with pytest.raises(ValueError):
        parse_size("big")


@pytest.mark.parametrize(
    "ns, text",
    [
        (0, "0s"),
        (-1, "-1"),
        (-5, "-5"),  # never sent by the server; shown rather than crashing a render
        (1, "1ns"),
        (1000, "1us"),
        (500 * 10**6, "500ms"),
        (30 * S, "30s"),
        (5 * MINUTE, "5m"),
        (2 * HOUR, "2h"),
        (7 * DAY, "7d"),
        (HOUR + 30 * MINUTE, "1h30m"),
        (1500 * 10**6, "1s500ms"),
        (25 * HOUR, "1d1h"),
        (DAY + 1, "1d1ns"),
        (120 * S, "2m"),
    ],
)
def test_format_duration(ns, text):
    assert format_duration(ns) == text
    if ns >= -1:
        assert parse_duration(text) == ns


SAMPLE_NUMBERS = [0, 1, 999, 1000, 1001, 1023, 1024, 1025, 1536, 10**6, 2**20, 10**9, 2**30, 10**10, INT64_MAX]
SAMPLE_NUMBERS += random.Random(20261126).sample(range(INT64_MAX), 200)
SAMPLE_NUMBERS += [n * unit for n in (1, 3, 7, 90, 1000) for unit in (S, MINUTE, HOUR, DAY, KiB, GiB, 10**3, 10**9)]


@pytest.mark.parametrize("ns", SAMPLE_NUMBERS)
def test_duration_round_trips_exactly(ns):
    assert parse_duration(format_duration(ns)) == ns


@pytest.mark.parametrize(
    "value, size",
    [
        (0, 0),
        (1024, 1024),
        (INT64_MAX, INT64_MAX),
        (1.0e3, 1000),
        ("0", 0),
        ("1024", 1024),
        ("1.0", 1),
        ("1024B", 1024),
        ("1KB", 1000),
        ("100KB", 100_000),
        ("10MB", 10**7),
        ("10GB", 10**10),
        ("2TB", 2 * 10**12),
        ("1PB", 10**15),
        ("1KiB", KiB),
        ("512MiB", 512 * MiB),
        ("1.5GiB", 3 * GiB // 2),
        ("4TiB", 4 * TiB),
        ("1PiB", PiB),
        ("1.5KB", 1500),
        ("0.5KiB", 512),
        ("-1", UNLIMITED),
        (-1, UNLIMITED),
    ],
)
def test_parse_size_accepts(value, size):
    assert parse_size(value) == size


SIZE_HELP = (
    "use an integer number of bytes, or a number with a unit: B, KB, MB, GB, TB, PB (powers of 1000) "
    "or KiB, MiB, GiB, TiB, PiB (powers of 1024), e.g. 512MiB, 10GB, 1.5GiB"
)


@pytest.mark.parametrize(
    "value, message",
    [
        ("", f"'' is not a size: {SIZE_HELP}"),
        ("MiB", f"'MiB' is not a size: {SIZE_HELP}"),
        ("512 MiB", f"'512 MiB' is not a size: {SIZE_HELP}"),
        ("1e9", f"'1e9' is not a size: {SIZE_HELP}"),
        ("1k", f"'1k' is not a size: unknown unit 'k'; {SIZE_HELP}"),
        ("1EiB", f"'1EiB' is not a size: unknown unit 'EiB'; {SIZE_HELP}"),
        ("10gb", f"'10gb' is not a size: units are case-sensitive, did you mean 10GB? ({SIZE_HELP})"),
        ("1.5gib", f"'1.5gib' is not a size: units are case-sensitive, did you mean 1.5GiB? ({SIZE_HELP})"),
        ("1KIB", f"'1KIB' is not a size: units are case-sensitive, did you mean 1KiB? ({SIZE_HELP})"),
        ("1b", f"'1b' is not a size: units are case-sensitive, did you mean 1B? ({SIZE_HELP})"),
        (False, f"False is not a size: {SIZE_HELP}"),
        ({"max": 1}, f"{{'max': 1}} is not a size: {SIZE_HELP}"),
        (
            "-10MB",
            "'-10MB' is negative: a size must be 0 or more "
            "(the one exception is -1, which JetStream reads as unlimited where a field allows it)",
        ),
        (
            -1024,
            "-1024 is negative: a size must be 0 or more "
            "(the one exception is -1, which JetStream reads as unlimited where a field allows it)",
        ),
        ("1.5B", f"'1.5B' is not a whole number of bytes: {SIZE_HELP}"),
        ("1.5", f"'1.5' is not a whole number of bytes: {SIZE_HELP}"),
        ("0.1KiB", f"'0.1KiB' is not a whole number of bytes: {SIZE_HELP}"),
        (
            "8192PiB",
            "'8192PiB' is too large: JetStream stores a size as a 64-bit integer, "
            f"at most {INT64_MAX} bytes",
        ),
    ],
)
def test_parse_size_refuses(value, message):
    with pytest.raises(UnitError) as caught:
        parse_size(value)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "size, text",
    [
        (0, "0"),
        (-1, "-1"),
        (1, "1"),
        (512, "512"),
        (1000, "1KB"),
        (1024, "1KiB"),  # a unit wins the tie with "1024"
        (1536, "1536"),  # not whole in any unit
        (2048, "2KiB"),
        (1024 * 1000, "1024KB"),  # shorter than the also exact "1000KiB"
        (9875 * 1024, "9875KiB"),  # binary wins the tie with the also exact "10112KB"
        (512 * MiB, "512MiB"),
        (GiB, "1GiB"),
        (10**9, "1GB"),
        (10**10, "10GB"),  # not "9765625KiB", though that is also exact
        (3 * GiB // 2, "1536MiB"),
        (5 * TiB, "5TiB"),
        (PiB * 3, "3PiB"),
        (10**15, "1PB"),
        (INT64_MAX, str(INT64_MAX)),
    ],
)
def test_format_size(size, text):
    assert format_size(size) == text
    assert parse_size(text) == size


@pytest.mark.parametrize("size", SAMPLE_NUMBERS)
def test_size_round_trips_exactly(size):
    assert parse_size(format_size(size)) == size


@pytest.mark.parametrize("text", ["7d", "1h30m", "1s500ms", "0s", "-1", "1d1ns"])
def test_canonical_duration_text_is_stable(text):
    assert format_duration(parse_duration(text)) == text


@pytest.mark.parametrize("text", ["512MiB", "10GB", "1KiB", "1500", "0", "-1"])
def test_canonical_size_text_is_stable(text):
    assert format_size(parse_size(text)) == text
