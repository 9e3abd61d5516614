"""`topology validate` through the CLI: exit codes and the exact lines a person reads."""

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from medisync_topology.cli import main
from medisync_topology.validate import load_schema, load_topology, schema_errors

REPO = Path(__file__).resolve().parent.parent


def validate(tmp_path, text):
    path = tmp_path / "t.yaml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["validate", "-f", str(path)])
    lines = [line.replace(str(path), "t.yaml") for line in result.output.splitlines()]
    return result.exit_code, lines


def problems(tmp_path, text):
    code, lines = validate(tmp_path, text)
    assert code == 1, lines
    assert lines[0].startswith("Error: the topology is invalid")
    assert "Traceback" not in "\n".join(lines)
    return lines[1:]


def test_shipped_example_is_valid():
    result = CliRunner().invoke(main, ["validate", "-f", str(REPO / "topology.yaml")])
    assert result.exit_code == 0, result.output
    # Any valid topology, not today's counts: editing MediSync's topology must not break this test.
    topology = load_topology(REPO / "topology.yaml")
    said = re.fullmatch(r".*topology\.yaml is valid: (\d+) streams?, (\d+) consumers?(, .*)?\n", result.output)
    assert said and (int(said[1]), int(said[2])) == (len(topology.streams), topology.consumer_count()), result.output


def test_the_messaging_guides_overlapping_streams_are_caught(tmp_path):
    """The guide's SetupMediSyncStreams: EVENTS on medisync.> beside ALERTS and AUDIT."""
    text = """version: 1
owner: medisync
streams:
  EVENTS: {subjects: [medisync.>]}
  ALERTS: {subjects: [medisync.alert.>]}
  AUDIT: {subjects: [medisync.audit.>]}
"""
    assert problems(tmp_path, text) == [
        "t.yaml:5:23: streams.ALERTS.subjects[0]: subject 'medisync.alert.>' overlaps 'medisync.>' of stream EVENTS: a subject may belong to one stream only",
        "t.yaml:6:22: streams.AUDIT.subjects[0]: subject 'medisync.audit.>' overlaps 'medisync.>' of stream EVENTS: a subject may belong to one stream only",
    ]


def test_every_problem_is_listed_with_did_you_mean(tmp_path):
    text = """version: 1
owner: medisync
streams:
  EVENTS:
    subjects: [medisync.etl.>]
    max_agee: 7d
    storage: disk
  OTHER:
    subjects: [a..b]
"""
    assert problems(tmp_path, text) == [
        "t.yaml:6:5: streams.EVENTS.max_agee: unknown field 'max_agee': did you mean 'max_age'?",
        't.yaml:7:5: streams.EVENTS.storage: "disk" is not one of "file", "memory"',
        "t.yaml:9:16: streams.OTHER.subjects[0]: subject 'a..b' has an empty token ('..'): tokens are separated by single dots",
    ]


@pytest.mark.parametrize(
    "stream, expected",
    [
        ("subjects: [a.>, a.b]", "subject 'a.b' overlaps 'a.>' in the same stream"),
        ("subjects: ['>']", "a stream capturing '>' would also capture its own acks and the JetStream API; set no_ack: true"),
        ("subjects: [a.>]\n    consumers:\n      c: {filter_subject: b.x}", "filter 'b.x' matches none of stream S's subjects: a.>"),
        (
            "subjects: [a.>]\n    consumers:\n      c: {backoff: [1s, 2s, 3s], max_deliver: 2}",
            "backoff has more steps than max_deliver: a message is never delivered more than max_deliver times; the server refuses it (err_code 10116)",
        ),
        (
            "subjects: [a.>]\n    consumers:\n      c: {deliver_group: workers}",
            "deliver_group applies only to push consumers (with deliver_subject); add deliver_subject to make it a push consumer",
        ),
        (
            "subjects: [a.>]\n    consumers:\n      c: {deliver_subject: d.x, max_waiting: 10}",
            "max_waiting applies only to pull consumers (without deliver_subject)",
        ),
        (
            "subjects: [a.>]\n    consumers:\n      c: {deliver_subject: d.x, priority_policy: overflow, priority_groups: [g]}",
            "priority_groups applies only to pull consumers (without deliver_subject)",
        ),
        (
            "subjects: [a.>]\n    retention: workqueue\n    consumers:\n      c1: {filter_subject: a.>, ack_policy: explicit}\n      c2: {filter_subject: a.x, ack_policy: explicit}",
            "on a workqueue stream each message goes to one consumer: filter 'a.x' overlaps consumer c1's 'a.>'",
        ),
        ("mirror: {name: S}", "a stream cannot mirror or source from itself"),
        ("sources: [{name: NOPE}]", "stream NOPE is not in the topology; declare it"),
        ("subjects: [a.>]\n    max_age: -5s", "is not valid: A duration"),
        ("subjects: [a.>]\n    num_replicas: 6", "6 is greater than the maximum of 5"),
        (
            "subjects: [a.>]\n    retention: workqueue\n    consumers:\n      c: {filter_subject: a.x}",
            "consumers of a workqueue stream need ack_policy: explicit",
        ),
        ("subjects: [a.>]\n    max_msgs_per_subject: 99999999999999999999", "is too large: the server's limit is 9223372036854775807"),
    ],
)
def test_semantic_rules(tmp_path, stream, expected):
    found = problems(tmp_path, f"version: 1\nowner: medisync\nstreams:\n  S:\n    {stream}\n")
    assert any(expected in line for line in found), found


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "t.yaml:1:1: the file is empty"),
        ("- a\n- b\n", "expected a mapping"),
        ("version: 1\n\towner: x\n", "use spaces"),
        ("streams: {A: {}, A: {}}\n", "duplicate key"),
        ("version: 1\n", "'owner' is required"),
        ("version: 2\nowner: x\n", "version: 1 was expected"),
    ],
)
def test_bad_input_is_an_error_never_a_traceback(tmp_path, text, expected):
    found = problems(tmp_path, text)
    assert any(expected in line for line in found), found


def test_binary_garbage_and_missing_files(tmp_path):
    garbage = tmp_path / "g.yaml"
    garbage.write_bytes(b"\x00\xff\xfe" * 50)
    result = CliRunner().invoke(main, ["validate", "-f", str(garbage)])
    assert result.exit_code == 1 and "not a text file" in result.output
    result = CliRunner().invoke(main, ["validate", "-f", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 1 and "Traceback" not in result.output


def test_schema_and_semantic_problems_are_listed_together(tmp_path):
    """A schema error in one field does not hide the rules about the rest of its stream, nor others."""
    text = """version: 1
owner: medisync
streams:
  EVENTS:
    subjects: [medisync.>]
    max_agee: 7d
    consumers:
      c: {filter_subject: other.x, max_deliver: x}
  ALERTS:
    subjects: [medisync.alert.>]
"""
    assert problems(tmp_path, text) == [
        "t.yaml:6:5: streams.EVENTS.max_agee: unknown field 'max_agee': did you mean 'max_age'?",
        "t.yaml:8:11: streams.EVENTS.consumers.c.filter_subject: filter 'other.x' matches none of stream EVENTS's subjects: medisync.>",
        't.yaml:8:36: streams.EVENTS.consumers.c.max_deliver: "x" is not of type integer',
        "t.yaml:10:16: streams.ALERTS.subjects[0]: subject 'medisync.alert.>' overlaps 'medisync.>' of stream EVENTS: a subject may belong to one stream only",
    ]


def test_the_summary_counts_buckets(tmp_path):
    text = "version: 1\nowner: m\nstreams: {}\nkey_value: {a: {}, b: {}}\nobject_stores: {docs: {}}\n"
    code, lines = validate(tmp_path, text)
    assert (code, lines) == (0, ["t.yaml is valid: 0 streams, 0 consumers, 2 KV buckets, 1 object store"])


def test_sources_may_name_streams_managed_elsewhere_when_listed(tmp_path):
    text = "version: 1\nowner: m\nexisting_streams: [ORDERS]\nstreams:\n  COPY: {sources: [{name: ORDERS}]}\n"
    assert validate(tmp_path, text)[0] == 0
    found = problems(tmp_path, text.replace("[ORDERS]", "[ORDERS, COPY]"))
    assert found == ["t.yaml:3:28: existing_streams[1]: stream COPY is declared under streams too: it is either managed here or elsewhere"]


def test_one_bad_subject_does_not_hide_the_others(tmp_path):
    text = 'version: 1\nowner: m\nstreams:\n  C:\n    subjects: ["d..e", "h i", "f.>.g"]\n'
    found = problems(tmp_path, text)
    assert [line.split(": ")[1] for line in found] == ["streams.C.subjects[0]", "streams.C.subjects[1]", "streams.C.subjects[2]"]


def test_type_errors_use_yaml_words_and_sizes_are_range_checked_once(tmp_path):
    text = "version: 1\nowner: m\nstreams:\n  A:\n    subjects: [a.>]\n    max_age: yes\n    max_bytes: 99999999999999999999999\n"
    found = problems(tmp_path, text)
    assert found[0] == "t.yaml:6:5: streams.A.max_age: true is not of type integer or string"
    assert len(found) == 2 and "max_bytes" in found[1]



def test_data_the_compiled_check_cannot_read_is_judged_by_jsonschema():
    # jsonschema-rs refuses a key that is not a string (ValueError) where jsonschema judges it; the loader
    # makes none today, but whatever it makes must be judged, never crash.
    import jsonschema

    data = {"version": 1, "owner": "medisync", "streams": {"S": {"metadata": {1: "x"}}}, "bogus": True}
    expected = [e.message for e in jsonschema.Draft202012Validator(load_schema()).iter_errors(data)]
    assert expected and [e.message for e in schema_errors(data)] == expected
    assert schema_errors({"version": 1, "owner": "medisync", "streams": {"S": {"subjects": ["s.>"]}}}) == []
