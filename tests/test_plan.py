"""The pure diff: desired topology vs a live state built by hand, no server.

The live side is what the server reports for a config, which rules.complete_* predicts (the
real-server tests in test_apply.py prove that prediction).
"""

import pytest

from medisync_topology import rules
from medisync_topology.live import LiveState, LiveStream
from medisync_topology.loader import parse_document
from medisync_topology.model import build_topology
from medisync_topology.ops import DeleteResource, ReplaceResource, UpdateResource
from medisync_topology.plan import OWNER_KEY, make_plan

VERSION = "2.15.1"

BASE = """
version: 1
owner: medisync
streams:
  EVENTS:
    subjects: [medisync.etl.>, medisync.tally.>]
    max_age: 7d
    consumers:
      etl:
        ack_policy: explicit
        filter_subject: medisync.etl.>
  AUDIT:
    subjects: [medisync.audit.>]
    deny_delete: true
    protect: true
"""


def topology(text=BASE):
    model, problems = build_topology(parse_document(text, "t.yaml"))
    assert problems == []
    return model


def live_from(text=BASE, owner="medisync", messages=0, **stream_overrides):
    """The live state the server would report after applying ``text`` (with ``owner``)."""
    desired = topology(text)
    streams = {}
    for name, spec in desired.streams.items():
        config = {**spec.config, **stream_overrides.get(name, {})}
        if owner:
            config["metadata"] = {OWNER_KEY: owner, "_nats.ver": VERSION}
        config = rules.complete_stream(config, rules.parse_version(VERSION))
        consumers = {}
        for cname, cspec in spec.consumers.items():
            cconfig = dict(cspec.config)
            if owner:
                cconfig["metadata"] = {OWNER_KEY: owner}
            consumers[cname] = rules.complete_consumer(cconfig, config, rules.parse_version(VERSION))
        streams[name] = LiveStream(config, {"messages": messages, "bytes": messages * 100}, consumers)
    return LiveState(VERSION, streams)


def actions(plan):
    return [(op.action, str(op.ref)) for op in plan.operations]


def test_empty_server_creates_streams_then_their_consumers():
    plan = make_plan(topology(), LiveState(VERSION, {}))
    assert actions(plan) == [
        ("create", "stream AUDIT"),
        ("create", "stream EVENTS"),
        ("create", "consumer EVENTS/etl"),
    ]
    assert all(op.config["metadata"][OWNER_KEY] == "medisync" for op in plan.operations)
    assert plan.findings == []


def test_applied_state_has_no_changes():
    plan = make_plan(topology(), live_from())
    assert plan.operations == [] and plan.findings == []


def test_subject_order_is_not_a_change():
    live = live_from()
    live.streams["EVENTS"].config["subjects"].reverse()
    assert make_plan(topology(), live).operations == []


def test_changed_field_is_an_update_with_old_and_new():
    plan = make_plan(topology(BASE.replace("max_age: 7d", "max_age: 14d")), live_from())
    [op] = plan.operations
    assert isinstance(op, UpdateResource) and str(op.ref) == "stream EVENTS"
    assert [(c.path, c.old, c.new, c.forces_replacement) for c in op.changes] == [
        ("max_age", 7 * 86400 * 10**9, 14 * 86400 * 10**9, False)
    ]


def test_storage_change_replaces_and_recreates_consumers_with_data_at_risk():
    plan = make_plan(topology(BASE.replace("max_age: 7d", "max_age: 7d\n    storage: memory")), live_from(messages=42))
    assert actions(plan) == [("replace", "stream EVENTS"), ("create", "consumer EVENTS/etl")]
    replace = plan.operations[0]
    assert isinstance(replace, ReplaceResource) and replace.forced_by == ["storage"]
    assert (replace.data_at_risk.messages, replace.data_at_risk.bytes, replace.data_at_risk.consumers) == (42, 4200, 1)


def test_consumer_field_the_server_will_not_update_forces_replacement():
    plan = make_plan(topology(BASE.replace("ack_policy: explicit", "ack_policy: all")), live_from())
    [op] = plan.operations
    assert isinstance(op, ReplaceResource) and op.forced_by == ["ack_policy"]


def test_replacing_a_protected_stream_is_an_error():
    text = BASE.replace("deny_delete: true", "deny_delete: true\n    storage: memory")
    plan = make_plan(topology(text), live_from())
    assert plan.operations == []
    [error] = plan.errors
    assert error.reason == "protected" and "stream AUDIT is protect: true" in error.message


def test_one_way_flag_turned_off_is_impossible():
    plan = make_plan(topology(BASE.replace("deny_delete: true", "deny_delete: false")), live_from())
    assert plan.operations == []
    [error] = plan.errors
    assert error.reason == "impossible" and "deny_delete cannot be turned off" in error.message


def test_removed_resources_are_deleted_only_with_prune_consumers_first():
    text = BASE.split("  AUDIT:")[0].replace("    consumers:\n      etl:\n        ack_policy: explicit\n        filter_subject: medisync.etl.>\n", "")
    live = live_from()
    plan = make_plan(topology(text), live)
    assert plan.operations == []
    assert sorted((f.reason, str(f.ref)) for f in plan.findings) == [
        ("needs_prune", "consumer EVENTS/etl"),
        ("needs_prune", "stream AUDIT"),
    ]
    plan = make_plan(topology(text), live, prune=True)
    assert actions(plan) == [("delete", "consumer EVENTS/etl"), ("delete", "stream AUDIT")]
    assert isinstance(plan.operations[1], DeleteResource)


def test_consumers_the_server_made_for_sources_and_mirrors_are_not_ours_to_mention_or_prune():
    # What nats-server 2.15 puts on a workqueue origin for a sourcing stream, and (direct: true)
    # what servers before sourcing consumers made for a mirror.
    sourcing = {"durable_name": "JS_SRC_7qkpMN0w", "name": "JS_SRC_7qkpMN0w", "ack_policy": "flow_control",
                "deliver_subject": "$JS.S.9fwqarZ6", "flow_control": True, "idle_heartbeat": 10**9,
                "sourcing": True, "metadata": {"_nats.src.stream": "AGG"}}
    direct = {**sourcing, "durable_name": "JS_SRC_old", "name": "JS_SRC_old", "sourcing": False, "direct": True}
    live = live_from()
    live.streams["EVENTS"].consumers.update({"JS_SRC_7qkpMN0w": sourcing, "JS_SRC_old": direct})
    live.streams["AUDIT"].consumers.update({"JS_SRC_7qkpMN0w": sourcing})
    plan = make_plan(topology(), live, prune=True)
    assert plan.operations == [] and plan.findings == []
    without_audit = topology(BASE.split("  AUDIT:")[0])
    plan = make_plan(without_audit, live, prune=True)
    assert actions(plan) == [("delete", "stream AUDIT")]


def test_unowned_live_resources_are_unmanaged_and_never_touched():
    live = live_from(owner=None)
    plan = make_plan(topology("version: 1\nowner: medisync\nstreams: {}\n"), live, prune=True)
    assert plan.operations == []
    assert {(f.severity, f.reason) for f in plan.findings} == {("note", "unmanaged")}


def test_same_name_without_owner_needs_adopt():
    live = live_from(owner=None)
    plan = make_plan(topology(), live)
    assert plan.operations == []
    assert {f.reason for f in plan.errors} == {"needs_adopt"}
    plan = make_plan(topology(), live, adopt=True)
    assert actions(plan) == [("update", "stream AUDIT"), ("update", "stream EVENTS"), ("update", "consumer EVENTS/etl")]
    assert all(op.adopt and [c.path for c in op.changes] == ["metadata"] for op in plan.operations)


def test_other_owner_is_a_conflict():
    plan = make_plan(topology(), live_from(owner="billing"), prune=True, adopt=True)
    assert plan.operations == []
    assert [f.reason for f in plan.errors] == ["conflict", "conflict"]
    assert "owned by 'billing', not 'medisync'" in plan.errors[0].message


def test_field_unknown_to_an_older_server_is_refused_before_sending():
    text = BASE.replace("max_age: 7d", "max_age: 7d\n    allow_msg_counter: true")
    plan = make_plan(topology(text), LiveState("2.11.4", {}))
    messages = [f.message for f in plan.errors]
    assert "allow_msg_counter needs nats-server 2.12 or newer; the server is 2.11.4" in messages


@pytest.mark.parametrize("text", [BASE, BASE.replace("max_age: 7d", "max_age: 30s")])
def test_plans_are_deterministic(text):
    first = make_plan(topology(text), live_from())
    second = make_plan(topology(text), live_from())
    assert first == second


def test_origins_are_created_before_and_deleted_after_their_mirrors():
    text = """
version: 1
owner: medisync
streams:
  A_BACKUP:
    mirror: {name: Z_ORIGIN}
  B_AGG:
    sources: [{name: Z_ORIGIN}, {name: A_BACKUP}]
  Z_ORIGIN:
    subjects: [medisync.>]
"""
    plan = make_plan(topology(text), LiveState(VERSION, {}))
    assert actions(plan) == [("create", "stream Z_ORIGIN"), ("create", "stream A_BACKUP"), ("create", "stream B_AGG")]
    live = LiveState(VERSION, {op.ref.name: LiveStream(op.config, {}) for op in plan.operations})
    plan = make_plan(topology("version: 1\nowner: medisync\nstreams: {}\n"), live, prune=True)
    assert actions(plan) == [("delete", "stream B_AGG"), ("delete", "stream A_BACKUP"), ("delete", "stream Z_ORIGIN")]


def test_an_existing_stream_managed_elsewhere_must_exist():
    text = "version: 1\nowner: medisync\nexisting_streams: [ORDERS]\nstreams:\n  COPY: {sources: [{name: ORDERS}]}\n"
    plan = make_plan(topology(text), LiveState(VERSION, {}))
    assert [(f.reason, f.message) for f in plan.errors] == [
        ("missing_origin", "stream ORDERS is listed under existing_streams, but the server has no stream of that name")
    ]
    live = LiveState(VERSION, {"ORDERS": LiveStream(rules.complete_stream({"name": "ORDERS"}), {})})
    plan = make_plan(topology(text), live)
    assert plan.errors == [] and actions(plan) == [("create", "stream COPY")]


def test_taking_subjects_of_an_unmanaged_live_stream_is_a_plan_error():
    squatter = rules.complete_stream({"name": "SQUATTER", "subjects": ["medisync.tally.sync.*"]})
    live = LiveState(VERSION, {"SQUATTER": LiveStream(squatter, {})})
    plan = make_plan(topology(), live)
    assert [(f.reason, str(f.ref)) for f in plan.errors] == [("overlap", "stream EVENTS")]
    assert "overlaps 'medisync.tally.sync.*' of live stream SQUATTER" in plan.errors[0].message


def test_every_blocker_of_one_resource_is_reported_at_once():
    text = BASE.replace("deny_delete: true", "deny_delete: false\n    storage: memory")
    plan = make_plan(topology(text), live_from())
    assert sorted(f.reason for f in plan.errors) == ["impossible", "protected"]


# -- what the server would refuse, judged with live state (refusals.py) -------------------------


def refused(plan):
    return [f.message for f in plan.findings if f.severity == "error" and f.reason == "refused"]


def test_a_mirror_of_a_live_stream_with_larger_messages_is_refused():
    text = "version: 1\nowner: medisync\nexisting_streams: [ORDERS]\nstreams:\n  COPY: {mirror: {name: ORDERS}, max_msg_size: 1KiB}\n"
    orders = rules.complete_stream({"name": "ORDERS", "subjects": ["orders.>"], "max_msg_size": 4096})
    plan = make_plan(topology(text), LiveState(VERSION, {"ORDERS": LiveStream(orders, {})}))
    assert refused(plan) == ["stream COPY: max_msg_size: a mirror's max_msg_size must be at least its origin's, or it could "
                             "not hold every message; the server refuses it (err_code 10030)"]
    orders["max_msg_size"] = 1024
    assert refused(make_plan(topology(text), LiveState(VERSION, {"ORDERS": LiveStream(orders, {})}))) == []


def test_a_refusal_applies_to_the_connected_line_only():
    text = "version: 1\nowner: medisync\nstreams:\n  S:\n    subjects: [s.>]\n    consumers:\n      c: {priority_groups: [g]}\n"
    assert refused(make_plan(topology(text), LiveState("2.15.1", {}))) == [
        "consumer S/c: priority_groups: priority_groups need a priority_policy (overflow, pinned_client or prioritized); "
        "the server refuses it (err_code 10196)"]
    assert refused(make_plan(topology(text), LiveState("2.11.11", {}))) == []  # 2.11 accepts groups without a policy


def test_a_workqueue_consumer_sharing_messages_with_an_unmanaged_one_is_refused():
    text = BASE.replace("    max_age: 7d\n", "    max_age: 7d\n    retention: workqueue\n")
    live = live_from(text)
    events = live.streams["EVENTS"]
    events.consumers["theirs"] = rules.complete_consumer(
        {"durable_name": "theirs", "ack_policy": "explicit", "filter_subject": "medisync.etl.x"}, events.config)
    del events.consumers["etl"]
    assert refused(make_plan(topology(text), live)) == [
        "consumer EVENTS/etl: on a workqueue stream each message goes to one consumer: filter 'medisync.etl.>' overlaps "
        "consumer theirs's 'medisync.etl.x'; the server refuses it (err_code 10100)"]


def test_lowering_consumer_limits_below_a_live_consumer_is_refused():
    text = BASE.replace("    max_age: 7d\n", "    max_age: 7d\n    consumer_limits: {max_ack_pending: 100}\n")
    plan = make_plan(topology(text), live_from())
    assert refused(plan) == [
        "stream EVENTS: consumer_limits.max_ack_pending: the live consumers etl have a larger max_ack_pending; the server "
        "refuses to lower the limit below them (err_code 10069): lower their max_ack_pending first, apply, then the limit"]
    first = BASE.replace("filter_subject: medisync.etl.>", "filter_subject: medisync.etl.>\n        max_ack_pending: 100")
    assert refused(make_plan(topology(text.replace("filter_subject: medisync.etl.>", "filter_subject: medisync.etl.>\n        max_ack_pending: 100")), live_from(first))) == []
