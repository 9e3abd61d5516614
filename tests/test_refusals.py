"""refusals.py offline: validate locates every refusal the file alone decides; apply explains the
server's err_codes in the words of its errors.json. tests/test_rules_server.py proves each refusal
against real servers."""

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_promise import CONSUMER_VALUES, ORIGINS, STREAM_VALUES, fill, some_of
from test_validate import problems, validate

from medisync_topology import apply, refusals, rules
from medisync_topology.model import to_api_value
from medisync_topology.client import JetStreamAPIError
from medisync_topology.ops import CreateResource, Ref


@pytest.mark.parametrize(
    "stream, expected",
    [
        ("subjects: [a.>]\n    consumers:\n      c: {deliver_policy: last_per_subject}",
         "t.yaml:7:11: streams.S.consumers.c.deliver_policy: the deliver policy and the start position disagree"),
        ("subjects: [a.>]\n    consumers:\n      c: {deliver_subject: d.x, ack_policy: none, max_ack_pending: 10}",
         "t.yaml:7:51: streams.S.consumers.c.max_ack_pending: a push consumer with ack_policy none cannot have max_ack_pending"),
        ("subjects: [a.>]\n    consumers:\n      c: {priority_groups: [g]}",
         "t.yaml:7:11: streams.S.consumers.c.priority_groups: priority_groups need a priority_policy"),
        ("subjects: [a.>]\n    discard_new_per_subject: true",
         "t.yaml:6:5: streams.S.discard_new_per_subject: discard_new_per_subject needs discard: new"),
        ("subjects: [a.>]\n    allow_msg_counter: true\n    retention: interest",
         "t.yaml:7:5: streams.S.retention: a counter stream (allow_msg_counter) needs retention: limits"),
        ("subjects: [a.>]\n    max_age: 1m\n    duplicate_window: 2m",
         "t.yaml:7:5: streams.S.duplicate_window: duplicate_window may not be longer than max_age"),
        ("subjects: [a.>]\n    allow_rollup_hdrs: true\n    deny_purge: true",
         "t.yaml:7:5: streams.S.deny_purge: roll-ups (allow_rollup_hdrs"),
        ("sources: [{name: S2, filter_subject: b.>, subject_transforms: [{src: b.x, dest: c.x}]}]\n  S2: {subjects: [b.>]}",
         "t.yaml:5:26: streams.S.sources[0].filter_subject: a source takes filter_subject or subject_transforms, not both"),
        ("subjects: [a.>]\n    retention: workqueue\n    consumers:\n      c: {ack_policy: explicit, deliver_policy: last}",
         "t.yaml:8:33: streams.S.consumers.c.deliver_policy: consumers of a workqueue stream must deliver all messages"),
        ("subjects: [a.>]\n    consumer_limits: {max_ack_pending: 10}\n    consumers:\n      c: {max_ack_pending: 20}",
         "t.yaml:8:11: streams.S.consumers.c.max_ack_pending: max_ack_pending exceeds the stream's consumer_limits"),
        ("mirror: {name: S2}\n    max_msg_size: 1KiB\n  S2: {subjects: [b.>], max_msg_size: 2KiB}",
         "t.yaml:6:5: streams.S.max_msg_size: a mirror's max_msg_size must be at least its origin's"),
    ],
)
def test_validate_locates_refusals(tmp_path, stream, expected):
    found = problems(tmp_path, f"version: 1\nowner: medisync\nstreams:\n  S:\n    {stream}\n")
    assert any(line.startswith(expected) and "the server refuses it (err_code" in line for line in found), found


def test_a_refusal_that_is_not_there_is_not_reported(tmp_path):
    text = ("version: 1\nowner: m\nstreams:\n  S:\n    subjects: [a.>]\n    discard: new\n"
            "    max_msgs_per_subject: 1\n    discard_new_per_subject: true\n"
            "    consumers:\n      c: {deliver_policy: last_per_subject, filter_subject: a.x}\n")
    assert validate(tmp_path, text)[0] == 0


def test_apply_explains_err_codes_in_the_servers_words():
    op = CreateResource(Ref("consumer", "c", "S"), {"durable_name": "c"})
    error = JetStreamAPIError("$JS.API.CONSUMER.CREATE.S.c", 400, 10101, "consumer must be deliver all on workqueue stream")
    text = asyncio.run(apply._explain(None, op, error))
    assert text == ("consumer must be deliver all on workqueue stream (err_code 10101): "
                    "a consumer on a workqueue stream must deliver all messages (deliver_policy all)")


def test_transforms_the_server_cannot_make_are_located(tmp_path):
    text = ("version: 1\nowner: m\nstreams:\n  S:\n    subjects: [a.>]\n    subject_transform: {src: 'a.*', dest: 'b.{{wildcard(2)}}'}\n"
            "    republish: {src: a.>, dest: r.x}\n")
    found = problems(tmp_path, text)
    assert [line.split(": ")[1] for line in found] == ["streams.S.subject_transform.dest", "streams.S.republish.dest"]
    assert "{{wildcard(2)}} names a wildcard" not in found[0]  # the refusal's words, one message per refusal
    assert found[0].endswith("the server refuses it (err_code 10156)") and found[1].endswith("(err_code 10052)")


def test_what_a_refusal_needs_is_a_field_of_its_kind():
    named = [(kind, r.needs) for kind, table in refusals.REFUSALS.items() for r in table if r.needs]
    assert len(named) > 50 and all(needs in rules.RULES[kind] for kind, needs in named)


def _in_api_units(config: dict) -> dict:
    return {k: to_api_value(k, v, (k,), None, []) for k, v in config.items()}


@st.composite
def declared_configs(draw):
    """(server line, origins by name, stream B, consumer c of B) as a file declares them, in API units, from the
    values of test_promise: some the server refuses."""
    version = draw(st.sampled_from([None, (2, 10, 0), (2, 11, 0), (2, 12, 0), (2, 14, 0)]))
    origin = draw(st.sampled_from(ORIGINS))
    names = {"p": "b", "s": "B", "c": "c"}
    origins = {"A": rules.complete_stream({"name": "A", "subjects": ["a.>"], "max_msg_size": 4096, "allow_direct": True},
                                          version)}
    subjects = {} if "mirror" in origin else {"subjects": ["b.>"]}
    stream = _in_api_units({"name": "B", **subjects, **origin, **fill(draw(some_of(STREAM_VALUES, 8)), **names)})
    consumer = _in_api_units({"durable_name": "c", **fill(draw(some_of(CONSUMER_VALUES, 8)), **names)})
    return version, origins, stream, consumer


@st.composite
def complete_configs(draw):
    """declared_configs, complete as apply sends them."""
    version, origins, stream, consumer = draw(declared_configs())
    stream = rules.complete_stream(stream, version, origins)
    return version, origins, stream, rules.complete_consumer(consumer, stream, version)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(configs=complete_configs())
def test_a_refusal_passed_over_for_a_field_it_needs_would_have_found_nothing(configs):
    """refusals_of calls no refusal whose ``needs`` field the config lacks: each of those finds nothing there."""
    version, origins, stream, consumer = configs
    for kind, config, context in (("stream", stream, origins), ("consumer", consumer, stream)):
        every = {(r.name, path) for r in refusals.REFUSALS[kind] if r.applies_to(version) for path in r.find(config, context)}
        assert {(f.refusal.name, f.path) for f in refusals.refusals_of(kind, config, context, version)} == every
