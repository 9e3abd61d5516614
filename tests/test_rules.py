"""Pure tests of the JetStream rules table: completion, live stripping, update blocks, versions.

What the server really reports and refuses is proven in test_rules_server.py; these pin the
table's logic so a refactor cannot change it silently.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_promise import CONSUMER_VALUES, STREAM_VALUES, fill, some_of
from test_refusals import _in_api_units, complete_configs, declared_configs

from medisync_topology import fields, rules
from medisync_topology.errors import TopologyError

S, M = rules.SECOND, rules.MINUTE


def stream(**fields):
    return rules.complete_stream({"name": "S", **fields})


def consumer(stream_config=None, **fields):
    return rules.complete_consumer({"durable_name": "C", "name": "C", **fields}, stream_config or stream())


# -- versions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, version",
    [("2.15.1", (2, 15, 1)), ("v2.11.4-RC1", (2, 11, 4)), ("2.15.0-dev", (2, 15, 0)), ("v2.10", (2, 10, 0))],
)
def test_parse_version(text, version):
    assert rules.parse_version(text) == version


def test_parse_version_refuses_nonsense():
    with pytest.raises(TopologyError, match="cannot read the server version"):
        rules.parse_version("latest")


# -- unit field names -------------------------------------------------------------------------


def test_duration_and_size_fields_cover_streams_consumers_and_buckets():
    for name in ("max_age", "duplicate_window", "ack_wait", "backoff", "idle_heartbeat", "inactive_threshold",
                 "max_expires", "priority_timeout", "subject_delete_marker_ttl", "ttl", "limit_marker_ttl"):
        assert fields.UNIT_BY_NAME[name] == "duration"
    for name in ("max_bytes", "max_msg_size", "max_value_size"):
        assert fields.UNIT_BY_NAME[name] == "size"
    # one unit per name, wherever the name appears
    assert {(name, f.unit) for name, f in fields.every_field() if f.unit} == set(fields.UNIT_BY_NAME.items())
    # and one set of values meaning no limit per name
    unlimited = {(name, f.unlimited) for name, f in fields.every_field() if f.unlimited}
    assert unlimited == set(fields.UNLIMITED_VALUES.items())


# -- complete_stream --------------------------------------------------------------------------


def test_minimal_stream_gets_every_default_the_server_reports():
    assert stream() == {
        "name": "S", "subjects": ["S"], "retention": "limits", "max_consumers": -1, "max_msgs": -1,
        "max_bytes": -1, "max_age": 0, "max_msgs_per_subject": -1, "max_msg_size": -1, "discard": "old",
        "storage": "file", "num_replicas": 1, "duplicate_window": 2 * M, "compression": "none",
        "allow_direct": False, "mirror_direct": False, "sealed": False, "deny_delete": False,
        "deny_purge": False, "allow_rollup_hdrs": False, "consumer_limits": {}, "allow_msg_ttl": False,
    }


def test_duplicate_window_follows_a_short_max_age():
    assert stream(max_age=30 * S)["duplicate_window"] == 30 * S
    assert stream(max_age=7 * 86400 * S)["duplicate_window"] == 2 * M
    assert stream(duplicate_window=10 * S)["duplicate_window"] == 10 * S


def test_mirror_has_no_subjects_and_no_duplicate_window():
    cfg = stream(mirror={"name": "ORIGIN"})
    assert "subjects" not in cfg and "duplicate_window" not in cfg
    assert cfg["mirror"] == {"name": "ORIGIN"}


def test_sourcing_stream_has_a_duplicate_window_only_before_2_14():
    sources = [{"name": "A"}]
    assert "duplicate_window" not in rules.complete_stream({"name": "S", "sources": sources})
    assert rules.complete_stream({"name": "S", "sources": sources}, (2, 12, 5))["duplicate_window"] == 2 * M


def test_mirror_direct_follows_the_origin():
    origin = stream(allow_direct=True)
    cfg = rules.complete_stream({"name": "M", "mirror": {"name": "S"}}, streams={"S": origin})
    assert cfg["mirror_direct"] is True
    assert rules.complete_stream({"name": "M", "mirror": {"name": "X"}}, streams={"S": origin})["mirror_direct"] is False


def test_zero_limits_mean_unlimited():
    cfg = stream(max_msgs=0, max_bytes=0, max_msg_size=0, max_consumers=0, max_msgs_per_subject=0, num_replicas=0)
    assert [cfg[k] for k in ("max_msgs", "max_bytes", "max_msg_size", "max_consumers", "max_msgs_per_subject")] == [-1] * 5
    assert cfg["num_replicas"] == 1


def test_subject_delete_markers_turn_on_ttls_and_rollups():
    cfg = stream(subject_delete_marker_ttl=5 * M, deny_purge=True)
    assert cfg["allow_msg_ttl"] is True and cfg["allow_rollup_hdrs"] is True and cfg["deny_purge"] is False


def test_message_schedules_turn_on_rollups():
    cfg = stream(allow_msg_schedules=True)
    assert cfg["allow_rollup_hdrs"] is True and cfg["allow_msg_schedules"] is True


def test_sealed_stream_takes_the_sealed_settings():
    cfg = stream(sealed=True, max_age=M, allow_rollup_hdrs=True)
    assert (cfg["max_age"], cfg["discard"], cfg["deny_delete"], cfg["deny_purge"], cfg["allow_rollup_hdrs"]) == (
        0, "new", True, True, False)


def test_omitempty_zero_values_are_dropped_at_any_depth():
    cfg = stream(
        description="", no_ack=False, allow_msg_counter=False, persist_mode="default", placement={},
        metadata={}, first_seq=0, sources=[{"name": "A", "filter_subject": "", "opt_start_seq": 0}],
        consumer_limits={"max_ack_pending": 0, "inactive_threshold": 0},
    )
    for key in ("description", "no_ack", "allow_msg_counter", "persist_mode", "placement", "metadata", "first_seq"):
        assert key not in cfg
    assert cfg["sources"] == [{"name": "A"}]
    assert cfg["consumer_limits"] == {}


def test_inner_fields_without_omitempty_are_reported_empty():
    cfg = stream(subject_transform={"dest": "x.>"}, sources=[{"name": "A", "external": {"api": "$JS.h.API"}}])
    assert cfg["subject_transform"] == {"src": "", "dest": "x.>"}
    assert cfg["sources"][0]["external"] == {"api": "$JS.h.API", "deliver": ""}


def test_republish_source_defaults_to_everything():
    assert stream(subjects=["a.>"], republish={"dest": "b.>"})["republish"] == {"src": ">", "dest": "b.>"}


def test_fields_unknown_to_an_older_server_are_not_sent_when_default():
    cfg = rules.complete_stream({"name": "S", "allow_msg_counter": False, "allow_batched": False}, (2, 10, 0))
    assert "allow_msg_ttl" not in cfg and "allow_msg_counter" not in cfg and "allow_batched" not in cfg
    assert cfg["compression"] == "none"
    assert "compression" not in rules.complete_stream({"name": "S"}, (2, 9, 0))


def test_fields_unknown_to_an_older_server_stay_when_set_so_they_are_reported():
    cfg = rules.complete_stream({"name": "S", "allow_msg_counter": True}, (2, 11, 11))
    assert cfg["allow_msg_counter"] is True
    assert rules.unsupported_fields("stream", cfg, (2, 11, 11)) == [
        "allow_msg_counter needs nats-server 2.12 or newer; the server is 2.11.11"
    ]


def test_complete_does_not_touch_its_input():
    desired = {"name": "S", "sealed": True, "sources": [{"name": "A", "filter_subject": ""}]}
    rules.complete_stream(desired)
    assert desired == {"name": "S", "sealed": True, "sources": [{"name": "A", "filter_subject": ""}]}


# -- complete_consumer ------------------------------------------------------------------------


def test_minimal_pull_consumer():
    assert consumer() == {
        "durable_name": "C", "name": "C", "deliver_policy": "all", "ack_policy": "none", "max_deliver": -1,
        "replay_policy": "instant", "num_replicas": 0, "max_waiting": 512,
    }


def test_a_durable_is_named_after_its_durable_name():
    assert rules.complete_consumer({"durable_name": "D"}, stream())["name"] == "D"
    assert "name" not in rules.complete_consumer({"durable_name": "D"}, stream(), (2, 8, 4))


def test_explicit_ack_gets_ack_wait_and_max_ack_pending():
    cfg = consumer(ack_policy="explicit")
    assert cfg["ack_wait"] == 30 * S and cfg["max_ack_pending"] == 1000


def test_push_consumer_has_no_waiting_pulls():
    assert "max_waiting" not in consumer(deliver_subject="deliver.here", ack_policy="explicit")


def test_backoff_sets_ack_wait():
    cfg = consumer(ack_policy="explicit", ack_wait=30 * S, backoff=[S, 2 * S, 4 * S])
    assert cfg["ack_wait"] == S


def test_stream_consumer_limits_are_inherited():
    limits = stream(consumer_limits={"max_ack_pending": 50, "inactive_threshold": 10 * M})
    cfg = consumer(limits, ack_policy="explicit")
    assert cfg["max_ack_pending"] == 50 and cfg["inactive_threshold"] == 10 * M
    assert consumer(limits, ack_policy="explicit", max_ack_pending=20)["max_ack_pending"] == 20


def test_pinned_priority_gets_a_timeout():
    cfg = consumer(ack_policy="explicit", priority_policy="pinned_client", priority_groups=["g"])
    assert cfg["priority_timeout"] == 2 * M
    assert "priority_policy" not in consumer(priority_policy="none")


def test_flow_control_ack_policy_sets_flow_control_and_heartbeat():
    cfg = consumer(ack_policy="flow_control", deliver_subject="d", max_ack_pending=10)
    assert cfg["flow_control"] is True and cfg["idle_heartbeat"] == S and "ack_wait" not in cfg


def test_times_are_compared_in_utc():
    cfg = consumer(deliver_policy="by_start_time", opt_start_time="2026-01-01T01:00:00.500+01:00")
    assert cfg["opt_start_time"] == "2026-01-01T00:00:00.5Z"
    with pytest.raises(TopologyError, match="RFC 3339"):
        consumer(pause_until="tomorrow")


# -- strip_live -------------------------------------------------------------------------------


def test_strip_live_drops_server_metadata_and_created():
    live = {**stream(), "created": "2026-01-01T00:00:00Z",
            "metadata": {"_nats.level": "5", "_nats.req.level": "0", "_nats.ver": "2.15.1"}}
    assert rules.strip_live(live, "stream") == stream()
    owned = {**live, "metadata": {"_nats.ver": "2.15.1", "owner": "medisync"}}
    assert rules.strip_live(owned, "stream")["metadata"] == {"owner": "medisync"}


def test_strip_live_keeps_what_a_person_controls():
    live = {**consumer(ack_policy="explicit"), "description": "d", "metadata": {"_nats.ver": "2.15.1"}}
    stripped = rules.strip_live(live, "consumer")
    assert stripped["description"] == "d" and "metadata" not in stripped and stripped["ack_wait"] == 30 * S


@settings(max_examples=300, deadline=None, derandomize=True)
@given(configs=complete_configs(), data=st.data())
def test_strip_live_of_a_config_equal_to_the_expected_one_is_what_stripping_gives(configs, data):
    """strip_live(config, kind, expected) takes a live config equal to ``expected`` as it is: complete_*'s output is
    left as it is by removing omitted zeros again, and any other live config is stripped the whole way."""
    _, _, stream, consumer = configs
    for kind, expected in (("stream", stream), ("consumer", consumer)):
        assert rules._drop_omitted(expected, kind) == expected
        live = {**expected, "created": "2026-01-01T00:00:00.5Z",
                "metadata": {**(expected.get("metadata") or {}), "_nats.ver": "2.15.1", fields.APPLIED_KEY: "{}"}}
        key = data.draw(st.sampled_from(sorted({*expected, *rules.OMITTED_WHEN_ZERO[kind]} - {"metadata"})),
                        label=f"{kind} field")
        values = (["2026-01-01T01:00:00+01:00", "2026-01-01T00:00:00.500Z"] if key in rules.TIMESTAMP_FIELDS
                  else [0, "", [], {}, "x", 7])
        changed = data.draw(st.sampled_from([None, *values, expected.get(key)]), label=f"{kind} value")
        for config in (live, {**live, key: changed}):
            assert rules.strip_live(config, kind, expected) == rules.strip_live(config, kind)
        assert rules.strip_live(live, kind, expected) == rules.strip_live(live, kind) == expected


@settings(max_examples=300, deadline=None, derandomize=True)
@given(data=st.data())
def test_a_line_that_completes_as_the_newest_completes_every_consumer_as_the_newest(data):
    """plan sends validate's completed consumer (ConsumerSpec.complete, made for the newest line) to a server whose
    line rules.completes_as_newest says completes the same: the same fields, values and order."""
    version = data.draw(st.sampled_from([(2, 10, 0), (2, 11, 0), (2, 12, 0), (2, 14, 0), (2, 14, 6), (2, 15, 1)]))
    names = {"p": "b", "s": "B", "c": "c"}
    stream = _in_api_units({"name": "B", "subjects": ["b.>"], **fill(data.draw(some_of(STREAM_VALUES, 8)), **names)})
    consumer = _in_api_units({"durable_name": "c", "metadata": {"owner": "o"},
                              **fill(data.draw(some_of(CONSUMER_VALUES, 8)), **names)})
    newest = rules.complete_consumer(consumer, rules.complete_stream(stream), None)
    on_the_line = rules.complete_consumer(consumer, rules.complete_stream(stream, version), version)
    assert rules.completes_as_newest(version) == (version >= (2, 14, 0))
    if rules.completes_as_newest(version):
        assert list(on_the_line.items()) == list(newest.items())


def test_strip_live_refuses_an_unknown_kind():
    with pytest.raises(TopologyError, match="no JetStream rules"):
        rules.strip_live({}, "table")


# -- blocked_changes --------------------------------------------------------------------------


def blocked(kind, before, after, version=None):
    return rules.blocked_changes(kind, before, after, version)


def test_in_place_stream_changes_are_not_blocked():
    before = stream()
    after = stream(max_age=7 * 86400 * S, subjects=["a", "b"], description="x", allow_direct=True,
                   retention="interest", compression="s2", deny_delete=True)
    assert blocked("stream", before, after) == ([], [])


@pytest.mark.parametrize(
    "change",
    [{"storage": "memory"}, {"retention": "workqueue"}, {"allow_msg_counter": True},
     {"persist_mode": "async"}, {"mirror": {"name": "X"}}],
)
def test_stream_changes_that_force_replacement(change):
    forcing, impossible = blocked("stream", stream(), stream(**change))
    assert forcing == list(change) and impossible == []


def test_retention_from_workqueue_forces_replacement():
    assert blocked("stream", stream(retention="workqueue"), stream(retention="limits"))[0] == ["retention"]


def test_max_consumers_is_updatable_only_since_2_12_5():
    before, after = stream(), stream(max_consumers=10)
    assert blocked("stream", before, after, (2, 12, 4))[0] == ["max_consumers"]
    assert blocked("stream", before, after, (2, 11, 11))[0] == ["max_consumers"]
    assert blocked("stream", before, after, (2, 12, 5))[0] == []


def test_removing_a_mirror_promotes_it_since_2_12():
    mirror = stream(mirror={"name": "O"})
    promoted = stream()
    assert blocked("stream", mirror, promoted, (2, 12, 0))[0] == []
    assert "mirror" in blocked("stream", mirror, promoted, (2, 11, 11))[0]


@pytest.mark.parametrize("flag", ["deny_delete", "deny_purge", "sealed", "allow_msg_ttl", "allow_msg_schedules"])
def test_one_way_flags_cannot_be_turned_back(flag):
    before = {**stream(), flag: True}
    after = {**stream(), flag: False}
    forcing, impossible = blocked("stream", before, after)
    assert forcing == [] and len(impossible) == 1
    assert "recreate the stream by hand" in impossible[0]


def test_one_way_flag_message_says_why():
    _, impossible = blocked("stream", stream(deny_delete=True), stream())
    assert impossible == [
        "deny_delete cannot be turned off once set: the server refuses it (it protects the stream's data); "
        "delete and recreate the stream by hand if you really mean it"
    ]


def test_subject_delete_markers_on_a_deny_purge_stream_are_impossible():
    # The server turns deny_purge off for delete markers, and deny_purge is one-way.
    _, impossible = blocked("stream", stream(deny_purge=True), stream(subject_delete_marker_ttl=M))
    assert len(impossible) == 1 and impossible[0].startswith("deny_purge")


def test_subject_order_is_not_a_change():
    assert blocked("stream", stream(subjects=["a", "b"]), stream(subjects=["b", "a"])) == ([], [])


@pytest.mark.parametrize(
    "change",
    [{"deliver_policy": "new"}, {"ack_policy": "all"}, {"replay_policy": "original"},
     {"max_waiting": 10}, {"mem_storage": True}, {"deliver_policy": "by_start_sequence", "opt_start_seq": 5}],
)
def test_consumer_changes_that_force_replacement(change):
    forcing, _ = blocked("consumer", consumer(ack_policy="explicit"), consumer(**{"ack_policy": "explicit", **change}))
    assert forcing == sorted(change)


def test_pull_to_push_forces_replacement_but_a_new_deliver_subject_does_not():
    pull, push = consumer(ack_policy="explicit"), consumer(ack_policy="explicit", deliver_subject="d1")
    assert "deliver_subject" in blocked("consumer", pull, push)[0]
    assert blocked("consumer", push, consumer(ack_policy="explicit", deliver_subject="d2")) == ([], [])


def test_push_heartbeat_and_flow_control_force_replacement():
    before = consumer(ack_policy="explicit", deliver_subject="d")
    after = consumer(ack_policy="explicit", deliver_subject="d", idle_heartbeat=5 * S, flow_control=True)
    assert blocked("consumer", before, after)[0] == ["flow_control", "idle_heartbeat"]


def test_in_place_consumer_changes_are_not_blocked():
    before = consumer(ack_policy="explicit")
    after = consumer(ack_policy="explicit", ack_wait=M, max_deliver=5, backoff=[S, 2 * S], max_ack_pending=10,
                     filter_subjects=["a", "b"], description="x", inactive_threshold=M, max_batch=5,
                     max_expires=M, max_bytes=1024, headers_only=True, metadata={"k": "v"},
                     priority_policy="overflow", priority_groups=["g"])
    assert blocked("consumer", before, after) == ([], [])


def test_pause_is_not_an_update_and_is_not_blocked():
    assert fields.CONSUMER["pause_until"].via == "pause"
    assert blocked("consumer", consumer(), consumer(pause_until="2030-01-01T00:00:00Z")) == ([], [])


# -- unsupported_fields -----------------------------------------------------------------------


def test_fields_newer_than_the_server_are_reported():
    cfg = stream(allow_msg_counter=True, allow_batched=True)
    assert rules.unsupported_fields("stream", cfg, (2, 11, 4)) == [
        "allow_batched needs nats-server 2.14 or newer; the server is 2.11.4",
        "allow_msg_counter needs nats-server 2.12 or newer; the server is 2.11.4",
    ]
    assert rules.unsupported_fields("stream", cfg, (2, 15, 1)) == []


def test_default_values_of_newer_fields_are_not_reported():
    assert rules.unsupported_fields("stream", stream(), (2, 10, 0)) == []
    assert rules.unsupported_fields("consumer", consumer(ack_policy="explicit"), (2, 9, 0)) == []


def test_newer_enum_values_and_source_keys_are_reported():
    cfg = consumer(ack_policy="explicit", priority_policy="prioritized", priority_groups=["g"])
    assert rules.unsupported_fields("consumer", cfg, (2, 11, 9)) == [
        "priority_policy 'prioritized' needs nats-server 2.12 or newer; the server is 2.11.9"
    ]
    sourced = stream(sources=[{"name": "A", "consumer": {"name": "c", "deliver_subject": "d"}}])
    assert rules.unsupported_fields("stream", sourced, (2, 12, 5)) == [
        "sources.consumer needs nats-server 2.14 or newer; the server is 2.12.5"
    ]


def test_create_refusals():
    assert rules.create_refusals("stream", {"name": "S", "mirror_direct": True}) == ["mirror_direct needs a mirror"]
    assert rules.create_refusals("stream", {"name": "S", "sealed": True}) == []  # apply seals it after creating
    assert rules.create_refusals("stream", stream()) == []


def test_fields_set_only_by_another_request():
    assert rules.set_via("stream", {"name": "S", "sealed": True, "max_age": 1}, "update_after_create") == {"sealed": True}
    assert rules.set_via("stream", {"name": "S", "sealed": False}, "update_after_create") == {}
    assert rules.set_via("consumer", {"pause_until": "2030-01-01T00:00:00Z", "max_deliver": 3}, "pause") == {
        "pause_until": "2030-01-01T00:00:00Z"
    }


def test_every_field_a_topology_takes_has_an_example_for_the_convergence_tests():
    """tests/every_field.py builds the every-field round trips from these examples, so a field without one is
    untested on real servers. The server sets mirror_direct itself, and a stream cannot be created sealed."""
    missing = {kind: sorted(n for n, f in table.items() if f.offered and f.example is None)
               for kind, table in fields.RESOURCES.items()}
    assert missing == {"stream": ["mirror_direct", "sealed"], "consumer": [], "key_value": [], "object_store": []}


def _smallest_by_trying_every_field(config: dict, complete, keep: str) -> dict:
    """What rules._minimal gives, found by completing without each field in turn (the definition it shortens)."""
    target, minimal = rules.comparable(complete(config)), {k: v for k, v in config.items() if v is not None}
    for key in sorted(minimal):
        trial = {k: v for k, v in minimal.items() if k != key}
        if key != keep and rules.comparable(complete(trial)) == target:
            minimal = trial
    return minimal


@settings(max_examples=300, deadline=None, derandomize=True)
@given(configs=declared_configs())
def test_the_smallest_config_of_a_declared_one_is_the_smallest_of_its_completion(configs):
    """plan shows a create's settings as the smallest config of the file's, not of its completion (a completion per
    field the file sets, not per field completion adds): the same config."""
    version, origins, stream, consumer = configs
    complete = rules.complete_stream(stream, version, origins)
    assert rules.minimal_stream(stream, version, origins) == rules.minimal_stream(complete, version, origins)
    assert (rules.minimal_consumer(consumer, complete, version)
            == rules.minimal_consumer(rules.complete_consumer(consumer, complete, version), complete, version))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(configs=complete_configs())
def test_the_smallest_config_is_the_one_trying_every_field_gives(configs):
    """_minimal completes without a field only where completion sets that field itself (_SET_BY_COMPLETION)."""
    version, origins, stream, consumer = configs
    by_stream = lambda c: rules.complete_stream(c, version, origins)  # noqa: E731
    assert rules.minimal_stream(stream, version, origins) == _smallest_by_trying_every_field(stream, by_stream, "name")
    by_consumer = lambda c: rules.complete_consumer(c, stream, version)  # noqa: E731
    assert rules.minimal_consumer(consumer, stream, version) == _smallest_by_trying_every_field(consumer, by_consumer,
                                                                                                "durable_name")
