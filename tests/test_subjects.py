"""Subject validity, overlap and subset, and JetStream names, against the server's own rules."""

import itertools
import sys

import pytest

from medisync_topology import subjects
from medisync_topology.subjects import (
    MAX_NAME_LENGTH,
    SubjectIndex,
    bucket_name_problem,
    name_problem,
    subject_is_subset,
    subject_problem,
    subjects_overlap,
)


@pytest.mark.parametrize(
    "subject",
    [
        "medisync",
        "medisync.etl.>",
        "medisync.etl.*.completed",
        ">",
        "*",
        "*.*",
        "a.*.>",
        "a*",  # literal token to the server
        "a>b",  # likewise
        "a.b*c.>",
        "$JS.EVENT.>",
        "medisync.ärzte.*",
    ],
)
def test_valid_subjects(subject):
    assert subject_problem(subject) is None


@pytest.mark.parametrize(
    "subject, message",
    [
        ("", "subject is empty"),
        ("a b", "subject 'a b' contains whitespace"),
        (" ", "subject ' ' contains whitespace"),
        ("a.\t", "subject 'a.\\t' contains whitespace"),
        ("a.b\n", "subject 'a.b\\n' contains whitespace"),
        ("a.\u00a0", "subject 'a.\\xa0' contains whitespace"),
        (".a", "subject '.a' starts with '.': tokens are separated by single dots"),
        (".", "subject '.' starts with '.': tokens are separated by single dots"),
        ("a.", "subject 'a.' ends with '.': tokens are separated by single dots"),
        ("a.>.", "subject 'a.>.' ends with '.': tokens are separated by single dots"),
        ("a..b", "subject 'a..b' has an empty token ('..'): tokens are separated by single dots"),
        (
            "a.>.b",
            "subject 'a.>.b' has '>' before its last token: '>' matches the rest of a subject, so it must come last",
        ),
        (
            ">.>",
            "subject '>.>' has '>' before its last token: '>' matches the rest of a subject, so it must come last",
        ),
    ],
)
def test_invalid_subjects(subject, message):
    assert subject_problem(subject) == message


@pytest.mark.parametrize(
    "a, b, overlap",
    [
        ("medisync.>", "medisync.alert.>", True),
        ("medisync.etl.>", "medisync.document.>", False),
        ("a.b", "a.b", True),
        ("a.b", "a.c", False),
        ("a.b", "a.b.c", False),
        ("a.*", "a.b", True),
        ("a.*", "b.*", False),
        ("a.*", "a.b.>", False),  # a.* is exactly two tokens, a.b.> at least three
        ("a.*.c", "a.b.>", True),
        ("a.*", "*.b", True),
        ("*.*", "a", False),
        ("a.>", "a", False),  # '>' needs at least one token
        (">", "a", True),
        (">", "a.b.c", True),
        (">", ">", True),
        ("a.*.>", "a.b", False),
        ("a.*.>", "*.b.c.d", True),
        ("a*", "ab", False),  # literal tokens, not wildcards
        ("a*", "a*", True),
        ("*x", "y", False),
    ],
)
def test_subjects_overlap(a, b, overlap):
    assert subjects_overlap(a, b) is overlap
    assert subjects_overlap(b, a) is overlap


@pytest.mark.parametrize(
    "inner, outer, subset",
    [
        ("medisync.etl.*.completed", "medisync.etl.>", True),
        ("medisync.etl.>", "medisync.etl.>", True),
        ("medisync.etl.>", "medisync.>", True),
        ("medisync.>", "medisync.etl.>", False),
        ("medisync.etl", "medisync.etl.>", False),  # '>' needs at least one more token
        ("a.b", "a.b", True),
        ("a.b", "a.c", False),
        ("a.b", "a.*", True),
        ("a.*", "a.*", True),
        ("a.*", "a.b", False),
        ("a.*", "a.>", True),
        ("a.>", "a.*", False),
        ("a.b.c", "a.*", False),
        ("a", "a.*", False),
        ("a.b", ">", True),
        (">", ">", True),
        ("*", ">", True),
        (">", "*", False),
        (">", "a.>", False),
        ("*.b", "a.*", False),
        ("a.*.c", "*.*.*", True),
        ("a*", "a.*", False),
        ("a.b*", "a.*", True),
        ("a.*", "a.b*", False),  # b* is a literal token, not a wildcard
    ],
)
def test_subject_is_subset(inner, outer, subset):
    assert subject_is_subset(inner, outer) is subset


@pytest.mark.parametrize("inner, outer", [("a.b", "a.*"), ("a.*.c", "a.>"), ("x", ">"), ("a.*", "a.*")])
def test_a_subset_always_overlaps(inner, outer):
    assert subjects_overlap(inner, outer)


@pytest.mark.parametrize(
    "name",
    ["EVENTS", "etl-notifier", "orders_v2", "a", "ÄRZTE", "a@b", "$name", "x" * MAX_NAME_LENGTH, "ä" * 127],
)
def test_valid_names(name):
    assert name_problem(name, "stream name") is None


FORBIDDEN = "names cannot contain '.', '*', '>', '/' or '\\'"


@pytest.mark.parametrize(
    "name, message",
    [
        ("", "stream name is empty"),
        ("my stream", "stream name 'my stream' contains whitespace"),
        ("tab\there", "stream name 'tab\\there' contains whitespace"),
        ("line\n", "stream name 'line\\n' contains whitespace"),
        ("nbsp\u00a0", "stream name 'nbsp\\xa0' contains whitespace"),
        ("a.b", f"stream name 'a.b' contains '.': {FORBIDDEN}"),
        ("a*", f"stream name 'a*' contains '*': {FORBIDDEN}"),
        ("a>", f"stream name 'a>' contains '>': {FORBIDDEN}"),
        ("a/b", f"stream name 'a/b' contains '/': {FORBIDDEN}"),
        ("a\\b", f"stream name 'a\\\\b' contains '\\\\': {FORBIDDEN}"),
        ("a.b/c*", f"stream name 'a.b/c*' contains '.', '*', '/': {FORBIDDEN}"),
        ("x" * 256, f"stream name {'x' * 20!r}... is 256 bytes long: at most 255 are allowed"),
        ("ä" * 128, f"stream name {'ä' * 20!r}... is 256 bytes long: at most 255 are allowed"),  # bytes, as Go's len
    ],
)
def test_invalid_names(name, message):
    assert name_problem(name, "stream name") == message


def test_name_message_uses_what():
    assert name_problem("my consumer", "consumer name") == "consumer name 'my consumer' contains whitespace"


@pytest.mark.parametrize("name", ["sessions", "SESSIONS", "patient-cache_v2", "0", "-", "_", "x" * 252])
def test_valid_bucket_names(name):
    assert bucket_name_problem(name, "key-value bucket", stream_prefix="KV_") is None


BUCKET_CHARS = "only letters A-Z a-z, digits 0-9, '_' and '-' are allowed"


@pytest.mark.parametrize(
    "name, message",
    [
        ("", "key-value bucket is empty"),
        ("my bucket", f"key-value bucket 'my bucket' contains ' ': {BUCKET_CHARS}"),
        ("a.b", f"key-value bucket 'a.b' contains '.': {BUCKET_CHARS}"),
        ("a$b@c$", f"key-value bucket 'a$b@c$' contains '$', '@': {BUCKET_CHARS}"),
        ("ärzte", f"key-value bucket 'ärzte' contains 'ä': {BUCKET_CHARS}"),
        ("cache\n", f"key-value bucket 'cache\\n' contains '\\n': {BUCKET_CHARS}"),  # Go's $ is end of text
        ("x" * 253, f"key-value bucket {'x' * 20!r}... is 253 bytes long: at most 252 are allowed"),
    ],
)
def test_invalid_bucket_names(name, message):
    assert bucket_name_problem(name, "key-value bucket", stream_prefix="KV_") == message


def test_bucket_length_limit_follows_stream_prefix():
    # The object store's stream is OBJ_<name>, one byte longer a prefix than KV_<name>.
    assert bucket_name_problem("x" * 252, "object store", stream_prefix="OBJ_") == (
        f"object store {'x' * 20!r}... is 252 bytes long: at most 251 are allowed"
    )
    assert bucket_name_problem("x" * 251, "object store", stream_prefix="OBJ_") is None
    assert bucket_name_problem("x" * 255, "bucket") is None


def test_subject_index_finds_exactly_the_overlapping_subjects():
    """The index must agree with subjects_overlap on every pair, wildcards anywhere."""
    tokens = ["a", "b", "*", ">"]
    candidates = sorted({
        ".".join(parts)
        for n in (1, 2, 3)
        for parts in itertools.product(tokens, repeat=n)
        if subject_problem(".".join(parts)) is None
    })
    index = SubjectIndex()
    for subject in candidates:
        index.add(subject, subject)
    for subject in candidates:
        expected = sorted(other for other in candidates if subjects_overlap(subject, other))
        assert sorted(index.overlapping(subject)) == expected, subject


def test_whitespace_is_what_str_isspace_says_in_every_character():
    assert [c for c in map(chr, range(sys.maxunicode + 1)) if subjects._has_whitespace(f"a{c}b") != c.isspace()] == []
