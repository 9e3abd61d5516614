"""schema/topology.schema.json: valid draft 2020-12, complete against the server's configs, strict."""

import copy
import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from medisync_topology import fields, rules
from medisync_topology.cli import main
from medisync_topology.schema import schema_text
from medisync_topology.loader import parse_document

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "schema" / "topology.schema.json").read_text())
DEFS = SCHEMA["$defs"]

# JSON names of the fields nats-server accepts, read from nats-server 2.15.0-dev
# (main at 1787eee, the 2.15 line): server/stream.go StreamConfig, StreamSource, StreamConsumerSource,
# ExternalStream, SubjectTransformConfig, RePublish, StreamConsumerLimits; server/consumer.go
# ConsumerConfig; server/jetstream_cluster.go Placement.
SERVER_STREAM_CONFIG = {
    "name", "description", "subjects", "retention", "max_consumers", "max_msgs", "max_bytes", "max_age",
    "max_msgs_per_subject", "max_msg_size", "discard", "storage", "num_replicas", "no_ack", "duplicate_window",
    "placement", "mirror", "sources", "compression", "first_seq", "subject_transform", "republish",
    "allow_direct", "mirror_direct", "discard_new_per_subject", "sealed", "deny_delete", "deny_purge",
    "allow_rollup_hdrs", "consumer_limits", "allow_msg_ttl", "subject_delete_marker_ttl", "allow_msg_counter",
    "allow_atomic", "allow_msg_schedules", "persist_mode", "allow_batched", "metadata",
}
SERVER_CONSUMER_CONFIG = {
    "durable_name", "name", "description", "deliver_policy", "opt_start_seq", "opt_start_time", "ack_policy",
    "ack_wait", "max_deliver", "backoff", "filter_subject", "filter_subjects", "replay_policy", "rate_limit_bps",
    "sample_freq", "max_waiting", "max_ack_pending", "flow_control", "headers_only", "max_batch", "max_expires",
    "max_bytes", "deliver_subject", "deliver_group", "idle_heartbeat", "inactive_threshold", "num_replicas",
    "mem_storage", "direct", "sourcing", "metadata", "pause_until", "priority_groups", "priority_policy",
    "priority_timeout",
}
SERVER_SUBSTRUCTS = {
    "source": {"name", "opt_start_seq", "opt_start_time", "filter_subject", "subject_transforms", "external", "consumer"},
    "source_consumer": {"name", "deliver_subject"},
    "external": {"api", "deliver"},
    "subject_transform": {"src", "dest"},
    "republish": {"src", "dest", "headers_only"},
    "consumer_limits": {"inactive_threshold", "max_ack_pending"},
    "placement": {"cluster", "tags", "preferred"},
}
# Left out on purpose (each $def's description says why):
STREAM_EXCLUDED = {"name"}  # the map key is the stream name
CONSUMER_EXCLUDED = {
    "name", "durable_name",  # the map key is the durable name
    "direct",  # the server refuses it on durables: only its own ephemeral mirror/source consumers use it
    "sourcing",  # set by the server on the consumers it creates for sourcing (2.14+)
}
PLACEMENT_EXCLUDED = {"preferred"}  # checkStreamCfg refuses it: "preferred server not permitted in placement"
TOOL_KEYS = {"stream": {"consumers", "protect", "replace", "renamed_from"}, "consumer": {"protect", "renamed_from"}, "key_value": {"protect", "replace"},
             "object_store": {"protect", "replace"}}

# nats.go jetstream/kv.go KeyValueConfig and jetstream/object.go ObjectStoreConfig, minus `bucket` (the map
# key); the object store's TTL (JSON tag max_age in nats.go) is `ttl` like the KV one and the nats CLI.
KV_SETTINGS = {
    "description", "max_value_size", "history", "ttl", "max_bytes", "storage", "num_replicas", "placement",
    "republish", "mirror", "sources", "compression", "limit_marker_ttl", "metadata",
}
OBJECT_STORE_SETTINGS = {"description", "ttl", "max_bytes", "storage", "num_replicas", "placement", "compression", "metadata"}

# Every field at once, so schema-valid but not a working topology (push and pull settings mix, a mirror
# with every source option): `topology validate` rightly refuses it on semantic grounds.
FULL_EXAMPLE = """\
version: 1
owner: medisync
defaults:
  stream:
    description: default description
    retention: limits
    max_consumers: -1
    max_msgs: 1000000
    max_bytes: 10GB
    max_age: 7d
    max_msgs_per_subject: -1
    max_msg_size: 1MiB
    discard: old
    storage: file
    num_replicas: 1
    no_ack: false
    duplicate_window: 2m
    placement: {cluster: east, tags: [ssd]}
    compression: s2
    first_seq: 1
    allow_direct: true
    mirror_direct: false
    discard_new_per_subject: false
    sealed: false
    deny_delete: false
    deny_purge: false
    allow_rollup_hdrs: true
    consumer_limits: {inactive_threshold: 1h, max_ack_pending: 5000}
    allow_msg_ttl: true
    subject_delete_marker_ttl: 15m
    allow_msg_counter: false
    allow_atomic: false
    allow_msg_schedules: false
    persist_mode: default
    allow_batched: false
    metadata: {team: platform}
  consumer:
    description: default consumer
    deliver_policy: all
    opt_start_seq: 0
    opt_start_time: 2026-01-02T03:04:05Z
    ack_policy: explicit
    ack_wait: 30s
    max_deliver: 5
    backoff: [1s, 2s]
    replay_policy: instant
    rate_limit_bps: 0
    sample_freq: "100%"
    max_waiting: 512
    max_ack_pending: 1000
    flow_control: false
    headers_only: false
    max_batch: 100
    max_expires: 30s
    max_bytes: 1MiB
    deliver_group: workers
    idle_heartbeat: 5s
    inactive_threshold: 0
    num_replicas: 0
    mem_storage: false
    metadata: {team: platform}
    pause_until: 2026-01-02T03:04:05.5+01:00
    priority_groups: [jobs]
    priority_policy: pinned_client
    priority_timeout: 2m
streams:
  EVENTS:
    description: events
    subjects: [medisync.etl.>, medisync.document.>]
    retention: interest
    max_consumers: 10
    max_msgs: -1
    max_bytes: 1073741824
    max_age: 168h
    max_msgs_per_subject: 100
    max_msg_size: -1
    discard: new
    storage: memory
    num_replicas: 3
    no_ack: false
    duplicate_window: 120000000000
    placement: {tags: [az1]}
    compression: none
    first_seq: 10
    subject_transform: {src: medisync.etl.>, dest: medisync.etl.>}
    republish: {src: medisync.etl.>, dest: copy.etl.>, headers_only: true}
    allow_direct: true
    mirror_direct: false
    discard_new_per_subject: true
    sealed: false
    deny_delete: true
    deny_purge: true
    allow_rollup_hdrs: false
    consumer_limits: {inactive_threshold: 30m}
    allow_msg_ttl: true
    subject_delete_marker_ttl: 1s
    allow_msg_counter: false
    allow_atomic: true
    allow_msg_schedules: true
    persist_mode: async
    allow_batched: true
    metadata: {purpose: etl}
    protect: true
    replace: migrate
    consumers:
      etl-notifier:
        description: notifier
        deliver_policy: by_start_sequence
        opt_start_seq: 42
        ack_policy: all
        ack_wait: 1m30s
        max_deliver: -1
        backoff: [1s, 2s, 4s, 8000000000]
        filter_subject: medisync.etl.*.completed
        replay_policy: original
        max_waiting: 10
        max_ack_pending: -1
        headers_only: true
        max_batch: 10
        max_expires: 1.5s
        max_bytes: 0
        inactive_threshold: 24h
        num_replicas: 3
        mem_storage: true
        metadata: {owner-team: etl}
        pause_until: 2026-06-01T00:00:00Z
        priority_groups: [a, b/c]
        priority_policy: prioritized
        priority_timeout: 0
        protect: false
        renamed_from: etl-old
      pusher:
        deliver_policy: last_per_subject
        filter_subjects: [medisync.etl.a, medisync.document.>]
        ack_policy: flow_control
        rate_limit_bps: 1000000
        sample_freq: "50"
        flow_control: true
        deliver_subject: deliver.pusher
        deliver_group: pushers
        idle_heartbeat: 1s
      at-time:
        deliver_policy: by_start_time
        opt_start_time: 2026-01-02T03:04:05.123456789Z
      defaults-only:
  MIRROR:
    mirror:
      name: EVENTS
      opt_start_seq: 5
      opt_start_time: 2026-01-02T03:04:05Z
      filter_subject: medisync.etl.>
      subject_transforms: [{src: medisync.document.>, dest: doc.>}]
      external: {api: $JS.hub.API, deliver: deliver.hub}
      consumer: {name: mirror-feed, deliver_subject: feed.mirror}
  SOURCED:
    sources:
      - name: EVENTS
        filter_subject: medisync.etl.>
      - {name: OTHER, external: {api: $JS.other.API}}
  EMPTY:
    renamed_from: EMPTY_OLD
key_value:
  config:
    description: settings
    max_value_size: 64KiB
    history: 64
    ttl: 1h
    max_bytes: 1GiB
    storage: file
    num_replicas: 3
    placement: {cluster: east}
    republish: {dest: config.changes.>}
    mirror: {name: config-hub}
    sources: [{name: config-a}]
    compression: true
    limit_marker_ttl: 10s
    metadata: {team: platform}
    protect: true
    replace: migrate
object_stores:
  documents:
    description: scanned documents
    ttl: 30d
    max_bytes: 50GiB
    storage: file
    num_replicas: 1
    placement: {cluster: east, tags: [hdd]}
    compression: true
    metadata: {team: documents}
    protect: false
    replace: migrate
audit:
  subject: medisync.audit.topology.applied
existing_streams: [ORDERS]
policy:
  subjects: "medisync.{domain}.{entity}.{action}"
  values: {domain: [etl, document]}
  names: {stream: "^[A-Z]+$", consumer: "^[a-z-]+$"}
  streams: {require: [max_age], storage: file, min_replicas: 1}
services:
  etl-service:
    description: syncs hospital systems
    publish: [medisync.etl.*.completed]
    consume: [EVENTS/etl-notifier]
    key_value: {config: read}
    object_stores: {documents: read-write}
environments:
  prod:
    owner: medisync-prod
    policy: {streams: {min_replicas: 3}}
    defaults:
      stream: {num_replicas: 3}
      consumer: {max_deliver: 10}
    streams:
      EVENTS: {num_replicas: 3, consumers: {etl-notifier: {max_ack_pending: 500}}}
    key_value:
      config: {num_replicas: 3}
    object_stores:
      documents: {max_bytes: 100GiB}
    audit: {subject: medisync.audit.prod.applied}
"""


def full_example() -> dict:
    return parse_document(FULL_EXAMPLE, "full.yaml").data


def errors(data: dict) -> list[jsonschema.ValidationError]:
    return list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(data))


def error_paths(data: dict) -> set[tuple]:
    return {tuple(e.absolute_path) for e in errors(data)}


def resolve(ref: str) -> dict:
    assert ref.startswith("#/"), ref
    node = SCHEMA
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_full_example_validates():
    assert [e.message for e in errors(full_example())] == []


def test_shipped_topology_validates():
    data = parse_document((Path(__file__).resolve().parent.parent / "topology.yaml").read_text()).data
    assert [e.message for e in errors(data)] == []


def _visit(node: dict, instance, def_name: str | None, seen: set) -> None:
    """Record (def, property) for every property the instance uses, following $refs like a validator."""
    if "$ref" in node:
        target = node["$ref"]
        parts = target.split("/")
        _visit(resolve(target), instance, parts[2] if len(parts) == 3 else None, seen)
        return
    if isinstance(instance, dict):
        properties = node.get("properties", {})
        for key, value in instance.items():
            if key in properties:
                seen.add((def_name, key))
                _visit(properties[key], value, None, seen)
            elif isinstance(node.get("additionalProperties"), dict):
                _visit(node["additionalProperties"], value, None, seen)
    elif isinstance(instance, list) and "items" in node:
        for item in instance:
            _visit(node["items"], item, None, seen)


def test_full_example_uses_every_property_of_every_definition():
    seen: set = set()
    _visit(SCHEMA, full_example(), "(top level)", seen)
    expected = {("(top level)", key) for key in SCHEMA["properties"]}
    expected |= {(name, key) for name, node in DEFS.items() for key in node.get("properties", {})}
    assert sorted(expected - seen, key=str) == []


def test_stream_fields_are_the_servers_minus_the_map_key():
    api_fields = set(DEFS["stream"]["properties"]) - TOOL_KEYS["stream"]
    assert api_fields == SERVER_STREAM_CONFIG - STREAM_EXCLUDED


def test_consumer_fields_are_the_servers_minus_name_and_internal_flags():
    api_fields = set(DEFS["consumer"]["properties"]) - TOOL_KEYS["consumer"]
    assert api_fields == SERVER_CONSUMER_CONFIG - CONSUMER_EXCLUDED


def test_fields_are_the_rules_tables_minus_the_exclusions():
    assert set(DEFS["stream"]["properties"]) - TOOL_KEYS["stream"] == set(fields.STREAM) - STREAM_EXCLUDED
    assert set(DEFS["consumer"]["properties"]) - TOOL_KEYS["consumer"] == set(fields.CONSUMER) - CONSUMER_EXCLUDED
    assert {n for n, node in DEFS["consumer"]["properties"].items() if node.get("$ref") == "#/$defs/timestamp"} == (
        {n for n, unit in fields.UNIT_BY_NAME.items() if unit == "timestamp"}
    )


@pytest.mark.parametrize("kind", ["stream", "consumer"])
def test_descriptions_name_the_server_version_of_newer_fields(kind):
    """Fields newer than 2.10 say from which nats-server version, as the rules table has it."""
    wrong = {}
    for field, rule in rules.RULES[kind].items():
        if field in DEFS[kind]["properties"] and rule.since and rule.since >= (2, 11, 0):
            text = f"nats-server {rule.since[0]}.{rule.since[1]}+"
            node = DEFS[kind]["properties"][field]
            while "$ref" in node and "description" not in node:
                node = resolve(node["$ref"])
            if text not in node["description"]:
                wrong[field] = text
    assert wrong == {}


@pytest.mark.parametrize("name", sorted(SERVER_SUBSTRUCTS))
def test_nested_objects_have_the_servers_fields(name):
    excluded = PLACEMENT_EXCLUDED if name == "placement" else set()
    assert set(DEFS[name]["properties"]) == SERVER_SUBSTRUCTS[name] - excluded


def test_bucket_settings_are_the_nats_go_configs():
    assert set(DEFS["key_value"]["properties"]) == KV_SETTINGS | TOOL_KEYS["key_value"]
    assert set(DEFS["object_store"]["properties"]) == OBJECT_STORE_SETTINGS | TOOL_KEYS["object_store"]


def test_defaults_offer_every_field_but_the_per_resource_ones():
    per_stream = {"subjects", "mirror", "sources", "subject_transform", "republish"}
    per_consumer = {"filter_subject", "filter_subjects", "deliver_subject"}
    stream_defaults = set(DEFS["stream_defaults"]["properties"])
    consumer_defaults = set(DEFS["consumer_defaults"]["properties"])
    assert stream_defaults == set(DEFS["stream"]["properties"]) - per_stream - TOOL_KEYS["stream"]
    assert consumer_defaults == set(DEFS["consumer"]["properties"]) - per_consumer - TOOL_KEYS["consumer"]
    # defaults point at the resource's own definitions, so the two can never disagree
    for kind in ("stream", "consumer"):
        for key, node in DEFS[f"{kind}_defaults"]["properties"].items():
            assert node == {"$ref": f"#/$defs/{kind}/properties/{key}"}


def _unit_of(node: dict) -> str | None:
    """'duration' / 'size' when a property holds that unit (directly or in a list), else None."""
    if "$ref" in node:
        name = node["$ref"].split("/")[-1]
        if name in ("duration", "size"):
            return name
        return _unit_of(resolve(node["$ref"])) if "/properties/" in node["$ref"] else None
    return _unit_of(node["items"]) if "items" in node else None


def test_units_follow_the_field_name_at_every_depth():
    """A name means the same unit everywhere, and the schema's units are the rules table's."""
    units_by_name: dict[str, set] = {}

    def collect(node):
        if isinstance(node, dict):
            for key, prop in node.get("properties", {}).items():
                units_by_name.setdefault(key, set()).add(_unit_of(prop))
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(SCHEMA)
    mixed = {name: units for name, units in units_by_name.items() if len(units) > 1}
    assert mixed == {}
    # model.to_api_value converts by field name at any depth, using the rules table's lists
    assert {n for n, u in units_by_name.items() if u == {"duration"}} == {
        n for n, unit in fields.UNIT_BY_NAME.items() if unit == "duration"
    }
    assert {n for n, u in units_by_name.items() if u == {"size"}} == {
        n for n, unit in fields.UNIT_BY_NAME.items() if unit == "size"
    }


def test_every_property_has_a_description():
    missing = []

    def check(node, where):
        if isinstance(node, dict):
            for key, prop in node.get("properties", {}).items():
                while "$ref" in prop and "description" not in prop:
                    prop = resolve(prop["$ref"])
                if not prop.get("description"):
                    missing.append(f"{where}.{key}")
            for key, value in node.items():
                check(value, f"{where}.{key}")

    check(SCHEMA, "")
    assert missing == []


def mutate(path: tuple, value) -> dict:
    """The full example with one value set (or added) at path."""
    data = copy.deepcopy(full_example())
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


UNKNOWN_KEY_PLACES = [
    (),
    ("defaults",),
    ("defaults", "stream"),
    ("defaults", "consumer"),
    ("streams", "EVENTS"),
    ("streams", "EVENTS", "placement"),
    ("streams", "EVENTS", "republish"),
    ("streams", "EVENTS", "subject_transform"),
    ("streams", "EVENTS", "consumer_limits"),
    ("streams", "EVENTS", "consumers", "etl-notifier"),
    ("streams", "MIRROR", "mirror"),
    ("streams", "MIRROR", "mirror", "external"),
    ("streams", "MIRROR", "mirror", "consumer"),
    ("streams", "SOURCED", "sources", 0),
    ("key_value", "config"),
    ("object_stores", "documents"),
    ("audit",),
    ("environments", "prod"),
]


@pytest.mark.parametrize("where", UNKNOWN_KEY_PLACES, ids=lambda p: ".".join(map(str, p)) or "top")
def test_unknown_key_is_an_error_at_every_level(where):
    data = mutate(where + ("max_agee",), "1d")
    found = [e for e in errors(data) if e.validator == "additionalProperties"]
    assert [tuple(e.absolute_path) for e in found] == [where]
    assert "max_agee" in found[0].message


@pytest.mark.parametrize(
    "path, value",
    [
        # wrong enum values
        (("streams", "EVENTS", "retention"), "queue"),
        (("streams", "EVENTS", "discard"), "oldest"),
        (("streams", "EVENTS", "storage"), "disk"),
        (("streams", "EVENTS", "compression"), "gzip"),
        (("streams", "EVENTS", "persist_mode"), "sync"),
        (("streams", "EVENTS", "consumers", "etl-notifier", "ack_policy"), "explict"),
        (("streams", "EVENTS", "consumers", "etl-notifier", "deliver_policy"), "undefined"),
        (("streams", "EVENTS", "consumers", "etl-notifier", "replay_policy"), "fast"),
        (("streams", "EVENTS", "consumers", "etl-notifier", "priority_policy"), "pinned"),
        # wrong types
        (("streams", "EVENTS", "subjects"), "medisync.etl.>"),
        (("streams", "EVENTS", "max_msgs"), "many"),
        (("streams", "EVENTS", "deny_delete"), "yes"),
        (("streams", "EVENTS", "protect"), 1),
        (("streams", "EVENTS", "consumers", "etl-notifier", "sample_freq"), 100),
        (("key_value", "config", "compression"), "s2"),
        (("streams", "EVENTS", "metadata"), {"count": 3}),
        # bad durations and sizes
        (("streams", "EVENTS", "max_age"), "5 minutes"),
        (("streams", "EVENTS", "max_age"), "7D"),
        (("streams", "EVENTS", "max_age"), -1),
        (("streams", "EVENTS", "consumers", "etl-notifier", "backoff"), ["1s", "soon"]),
        (("streams", "EVENTS", "max_bytes"), "1gib"),
        (("streams", "EVENTS", "max_bytes"), -2),
        (("streams", "EVENTS", "max_msg_size"), 2**31),
        (("streams", "EVENTS", "consumers", "etl-notifier", "max_bytes"), -1),
        # bounds the server enforces
        (("streams", "EVENTS", "num_replicas"), 6),
        (("streams", "EVENTS", "consumers", "etl-notifier", "num_replicas"), 6),
        (("key_value", "config", "num_replicas"), 6),
        (("key_value", "config", "history"), 65),
        (("streams", "EVENTS", "max_msgs"), -2),
        (("streams", "EVENTS", "consumers", "etl-notifier", "priority_groups"), ["this-name-is-too-long"]),
        # values the API would refuse
        (("streams", "EVENTS", "consumers", "etl-notifier", "opt_start_time"), "2026-01-02 03:04:05"),  # no zone
        (("streams", "EVENTS", "consumers", "etl-notifier", "pause_until"), "2026-01-02T03:04:05.1234567890Z"),
        (("streams", "EVENTS", "consumers", "pusher", "deliver_subject"), "deliver.*"),
        (("streams", "EVENTS", "placement", "preferred"), "server-1"),
        (("streams", "EVENTS", "metadata", "_nats.req.level"), "0"),
        (("streams", "EVENTS", "metadata", "medisync-topology.owner"), "someone-else"),
        (("audit", "subject"), "medisync.audit.>"),
        (("version",), 2),
        (("owner",), "has spaces"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_typical_mistakes_fail_at_the_field(path, value):
    data = mutate(path, value)
    paths = error_paths(data)
    assert paths, f"{path}={value!r} was accepted"
    # reported at the field (or, for a bad map key, at the map holding it)
    assert all(p[: len(path) - 1] == path[:-1] for p in paths), paths


@pytest.mark.parametrize(
    "section, key",
    [("streams", "EVENTS.V2"), ("streams", "A B"), ("key_value", "my.bucket"), ("object_stores", "docs/v1")],
)
def test_bad_names_fail(section, key):
    data = mutate((section, key), {})
    assert (section,) in error_paths(data)


def test_consumer_names_are_checked():
    data = mutate(("streams", "EVENTS", "consumers", "bad.name"), {})
    assert ("streams", "EVENTS", "consumers") in error_paths(data)


@pytest.mark.parametrize(
    "section, key",
    [("defaults", "stream"), ("defaults", "consumer")],
)
def test_defaults_refuse_per_resource_fields(section, key):
    field = "subjects" if key == "stream" else "filter_subject"
    data = mutate((section, key, field), "medisync.>")
    assert [tuple(e.absolute_path) for e in errors(data)] == [(section, key)]


def test_version_and_owner_are_required():
    data = full_example()
    del data["version"], data["owner"]
    assert sorted(e.message for e in errors(data)) == ["'owner' is a required property", "'version' is a required property"]


def test_minimal_file_validates():
    assert errors({"version": 1, "owner": "medisync"}) == []


@pytest.mark.parametrize(
    "path, value",
    [
        (("streams", "EVENTS", "max_age"), 0),
        (("streams", "EVENTS", "max_age"), "0"),
        (("streams", "EVENTS", "max_age"), "1h30m"),
        (("streams", "EVENTS", "max_age"), "250\u00b5s"),
        (("streams", "EVENTS", "max_bytes"), -1),
        (("streams", "EVENTS", "max_bytes"), "1.5GiB"),
        (("streams", "EVENTS", "max_bytes"), "1024"),
        (("streams", "EVENTS", "consumers"), None),
        (("key_value",), None),
        (("streams", "EVENTS", "consumers", "at-time", "opt_start_time"), "2026-01-02 03:04:05+01:00"),
        (("streams", "EVENTS", "consumers", "at-time", "opt_start_time"), "2026-01-02t03:04:05.000000001z"),
    ],
)
def test_accepted_spellings(path, value):
    assert errors(mutate(path, value)) == []


def test_the_committed_schema_is_the_generated_one():
    """schema/topology.schema.json is generated from fields.py (the README says how)."""
    committed = (Path(__file__).resolve().parent.parent / "schema" / "topology.schema.json").read_text()
    assert committed == schema_text(), "regenerate: python -m medisync_topology.schema > schema/topology.schema.json"


def test_topology_schema_prints_the_schema_with_its_stable_id():
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    shipped = Path(__file__).resolve().parent.parent / "schema" / "topology.schema.json"
    assert result.stdout == shipped.read_text()
    schema = json.loads(result.stdout)
    assert schema["$id"] == "urn:medisync-topology:topology.schema.json"
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
