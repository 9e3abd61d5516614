"""The registry of JetStream config fields: every stream, consumer, KV bucket and object store field, once.

Each entry says everything about one field: the JSON Schema of its value in topology.yaml (its type,
and through it its unit), its description, what the server reports when it is omitted, whether an
update may change it, whether it is one-way, since which server version it exists, how it is set,
whether only push or only pull consumers take it, and its zero value. schema/topology.schema.json is
generated from it (schema.py); rules, model, validate, export, render and apply ask it. The facts
were read in nats-server's source (server/stream.go StreamConfig, checkStreamCfg and configUpdateCheck;
server/consumer.go ConsumerConfig, setConsumerConfigDefaults and checkNewConsumerConfig;
server/jetstream_api.go) and nats.go (jetstream/kv.go KeyValueConfig, jetstream/object.go
ObjectStoreConfig); tests/test_rules_server.py proves them against real servers.

Values are the API's own JSON: durations in nanoseconds, sizes in bytes, enums as strings. A
version is a tuple (major, minor, patch); ``None`` means "the newest server".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

Version = tuple[int, int, int]

SECOND = 10**9

# -1 is "no limit" to the server in its limit fields (max_msgs, max_bytes, max_msg_size, ...).
UNLIMITED = -1

# The metadata keys the tool writes into every resource it applies; the file may set neither.
OWNER_KEY = "medisync-topology.owner"  # who owns it: the topology's owner (plan.py decides by it)
APPLIED_KEY = "medisync-topology.applied"  # what apply sent, field by field (drift.py)

# The units a value can have in topology.yaml, each a shared type of the schema (TYPES).
UNITS = ("duration", "size", "timestamp")


def at_least(version: Version | None, wanted: Version) -> bool:
    return version is None or tuple(version) >= wanted


def ref(type_name: str) -> dict:
    """A value of one of the shared TYPES."""
    return {"$ref": f"#/$defs/{type_name}"}


def array(items: dict, **constraints) -> dict:
    return {"type": "array", "items": items, **constraints}


def enum(*values: str) -> dict:
    return {"type": "string", "enum": list(values)}


DURATION, SIZE, LIMIT, TIMESTAMP = ref("duration"), ref("size"), ref("limit"), ref("timestamp")
BOOLEAN = {"type": "boolean"}
COUNT = {"type": "integer", "minimum": 0}
NO_LIMIT, ZERO_NO_LIMIT = frozenset({UNLIMITED, 0}), frozenset({0})


@dataclass(frozen=True)
class Field:
    """One config field.

    ``schema``: the JSON Schema of its value as topology.yaml writes it (a shared type gives the unit:
    DURATION, SIZE, TIMESTAMP, or a list of them); ``description``: what editors show ("" when the
    shared type's own description says it). ``offered``: False for fields topology.yaml does not take
    (the map key is the name; flags only the server sets). ``per_resource``: not offered under
    ``defaults:`` (subjects, filters, ...). ``scope``: "push" or "pull" when only that kind of
    consumer takes it. ``stream_field``: a bucket setting that is this field of its stream, same value.
    ``example``: a value the server accepts, which the every-field convergence tests set (tests/every_field.py;
    "{stream}" stands for the resource's stream name, "{origin}" for the stream a mirror or sources read);
    ``example_in``: the example resource it goes in when it cannot go with the others ("" the main one);
    ``example_needs``: other fields its example needs beside it.

    The server's behaviour: ``default``: what the server reports when the field is omitted; None: it
    omits the field (``omitempty`` in the server's struct, so a zero value is omitted too). Defaults
    that depend on other fields (duplicate_window, ack_wait, max_ack_pending ...) are worked out in
    rules.complete_stream / complete_consumer; their ``default`` here is the plain case. ``zero``: a
    zero value the server omits besides Go's (false, 0, "", empty), e.g. priority_policy "none".
    ``value_since``: enum values younger than their field, with the first version that accepts each.
    ``zero_is_unlimited``: 0 means "unlimited" to the server, which reports it as -1.
    ``unlimited``: the values that mean no limit, shown to a person as "unlimited": -1 in the server's limit
    fields, and 0 where the server reads zero as no limit (max_age 0 keeps messages forever, a pull request's
    max_batch 0 is unbounded); not where the server fills in a default for 0 (max_waiting, duplicate_window).
    ``unordered``: a list whose order means nothing to the server.
    ``reported_empty``: a key of a structured value the server reports even when empty (no omitempty).
    ``mutable``: an update may change it in place; False -> a change forces replacement.
    ``mutable_since``: before this version an update refused any change.
    ``refuses(old, new, version)``: value-dependent refusal of an otherwise mutable field.
    ``one_way``: may be turned on, never off (the server refuses it; not even replacement is offered).
    ``since``: the first server version whose config knows the field.
    ``via``: "update" (the update request), "pause" (only the consumer PAUSE API changes it),
    "update_after_create" (the create request refuses it; set it with an update afterwards).
    ``reason``: plain words for a person, used in messages.
    """

    schema: dict | None = None
    description: str = ""
    offered: bool = True
    per_resource: bool = False
    scope: str = ""
    stream_field: str = ""
    example: Any = None
    example_in: str = ""
    example_needs: dict = field(default_factory=dict)
    default: Any = None
    value_since: dict[str, Version] = field(default_factory=dict)
    zero: Any = None
    zero_is_unlimited: bool = False
    unlimited: frozenset[int] = frozenset()
    unordered: bool = False
    reported_empty: bool = False
    mutable: bool = True
    mutable_since: Version | None = None
    refuses: Callable[[Any, Any, Version | None], bool] | None = None
    one_way: bool = False
    since: Version = (2, 2, 0)
    via: str = "update"
    reason: str = ""

    @property
    def unit(self) -> str | None:
        """"duration", "size" or "timestamp" when topology.yaml may write the value (or each item) in human units."""
        return unit_of(self.schema or {})

    def forces_replacement(self, old: Any, new: Any, version: Version | None) -> bool:
        if not self.mutable:
            return True
        if self.mutable_since and not at_least(version, self.mutable_since):
            return True
        return bool(self.refuses and self.refuses(old, new, version))

    def turned_back(self, old: Any, new: Any) -> bool:
        return self.one_way and bool(old) and not bool(new)


def unit_of(schema: dict) -> str | None:
    name = schema.get("$ref", "").rsplit("/", 1)[-1]
    if name in UNITS:
        return name
    return unit_of(schema["items"]) if "items" in schema else None


@dataclass(frozen=True)
class ObjectType:
    """A structured value (placement, a source, ...): a shared type of the schema, with fields of its own."""

    description: str
    fields: dict[str, Field]
    required: tuple[str, ...] = ()


# -- value-dependent refusals ----------------------------------------------------------------


def _to_or_from_workqueue(old: Any, new: Any, version: Version | None) -> bool:
    # stream.go configUpdateCheck: limits <-> interest is fine, to/from workqueue is refused.
    return old != new and "workqueue" in (old, new)


def _mirror_change_refused(old: Any, new: Any, version: Version | None) -> bool:
    # configUpdateCheck refuses adding or changing a mirror; removing it ("promoting" the mirror
    # to a normal stream) is allowed since 2.12.0 (commit "Allow promoting mirrors").
    return not (new is None and at_least(version, (2, 12, 0)))


def _deliver_subject_refused(old: Any, new: Any, version: Version | None) -> bool:
    # checkNewConsumerConfig: "can not update pull consumer to push based" and back; a push
    # consumer may move to another deliver subject.
    return bool(old) != bool(new)


# -- shared types: values several fields have --------------------------------------------------

TYPES: dict[str, dict | ObjectType] = {
    "duration": {
        "description": "A duration: integer nanoseconds, or a number with units ns, us (µs), ms, s, m, h, d, "
        "combinable as in 1h30m; e.g. 30s, 5m, 1.5h, 7d. 0 means not set.",
        "type": ["integer", "string"],
        "minimum": 0,
        "pattern": "^(0|([0-9]+(\\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h|d))+)$",
    },
    "size": {
        "description": "A size: integer bytes (-1 = unlimited), or a number with a unit: B, KB, MB, GB, TB, PB (powers "
        "of 1000) or KiB, MiB, GiB, TiB, PiB (powers of 1024); e.g. 512MiB, 10GB, 1.5GiB. Units are case-sensitive.",
        "type": ["integer", "string"],
        "minimum": -1,
        "pattern": "^[0-9]+(\\.[0-9]+)?(B|KB|MB|GB|TB|PB|KiB|MiB|GiB|TiB|PiB)?$",
    },
    "limit": {"description": "A count limit; -1 (or 0) means unlimited.", "type": "integer", "minimum": -1},
    "timestamp": {
        "description": "An RFC 3339 time with a zone, e.g. 2026-01-31T09:00:00Z or 2026-01-31 10:00:00+01:00; sent to "
        "the server in UTC.",
        "type": "string",
        "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?"
        "(Z|z|[+-][0-9]{2}:[0-9]{2})$",
    },
    "subject": {
        "description": "A NATS subject: dot-separated tokens; * matches one token, > the rest (last token only).",
        "type": "string",
        "minLength": 1,
        "pattern": "^\\S+$",
    },
    "literal_subject": {
        "description": "A NATS subject without wildcards (no * or > tokens), as used for publishing.",
        "type": "string",
        "minLength": 1,
        "pattern": "^[^\\s*>]+$",
    },
    "name": {
        "description": "A stream or consumer name: 1 to 255 characters, none of whitespace . * > \\ / (nats-server "
        "isValidAssetName).",
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": "^[^\\s.*>\\\\/]+$",
    },
    "bucket": {
        "description": "A KV or object store bucket name: letters, digits, - and _ (nats.go validBucketRe).",
        "type": "string",
        "pattern": "^[a-zA-Z0-9_-]+$",
    },
    "storage": {
        "type": "string",
        "enum": ["file", "memory"],
        "description": "Where messages are kept: file (default) or memory.",
        "default": "file",
    },
    "num_replicas": {
        "type": "integer",
        "description": "Number of copies in a cluster, 1 to 5 (nats-server refuses more than 5); 0 means the server "
        "default.",
        "minimum": 0,
        "maximum": 5,
    },
    "description": {
        "type": "string",
        "maxLength": 4096,
        "description": "Free text shown by `nats stream info` and friends (at most 4 KiB).",
    },
    "metadata": {
        "description": "Free-form string key/value pairs stored with the resource (nats-server 2.10+). Keys starting "
        f"with `_nats.` belong to the server, `{OWNER_KEY}` is written by apply from `owner`, and "
        f"`{APPLIED_KEY}` records what apply sent.",
        "type": "object",
        "additionalProperties": {"type": "string"},
        "propertyNames": {"not": {"anyOf": [
            {"pattern": "^_nats\\."}, {"const": OWNER_KEY}, {"const": APPLIED_KEY},
        ]}},
    },
    "placement": ObjectType(
        "Where in a cluster the replicas go. (Placement's `preferred` is refused in stream configs by nats-server, "
        "so it is not offered.)",
        {
            "cluster": Field({"type": "string", "minLength": 1}, "Name of the cluster to place the replicas in."),
            "tags": Field(
                array({"type": "string", "minLength": 1}),
                "Server tags every chosen server must carry (e.g. az:us-east-1a).",
            ),
        },
    ),
    "subject_transform": ObjectType(
        "A subject mapping from `src` to `dest` (nats-server 2.10+).",
        {
            "src": Field(
                ref("subject"), "Subjects to transform (wildcards allowed); empty means all.", reported_empty=True
            ),
            "dest": Field(
                {"type": "string"},
                "Destination subject; may use mapping functions such as {{wildcard(1)}}. Empty means unchanged.",
                reported_empty=True,
            ),
        },
    ),
    "republish": ObjectType(
        "Republish each stored message (or only its headers) to another subject.",
        {
            "src": Field(ref("subject"), "Which stored subjects to republish; default > (all)."),
            "dest": Field(
                {"type": "string", "minLength": 1},
                "Subject (or mapping) to republish to; must not overlap the stream's own subjects.",
            ),
            "headers_only": Field(
                BOOLEAN, "Republish only the headers, not the payload (the size goes in Nats-Msg-Size)."
            ),
        },
        required=("dest",),
    ),
    "external": ObjectType(
        "Reach the origin stream in another account or JetStream domain through API and deliver prefixes.",
        {
            "api": Field(
                {"type": "string", "minLength": 1}, "JetStream API prefix of the origin, e.g. $JS.hub.API.",
                reported_empty=True,
            ),
            "deliver": Field(
                {"type": "string"}, "Subject prefix the server delivers the sourced messages on.", reported_empty=True
            ),
        },
        required=("api",),
    ),
    "source_consumer": ObjectType(
        "Use this durable consumer on the origin for sourcing, so work-queue and interest origins can be sourced "
        "reliably (nats-server 2.14+).",
        {
            "name": Field(ref("name"), "Name of the durable consumer to create on the origin stream."),
            "deliver_subject": Field(ref("literal_subject"), "Subject the origin delivers to (no wildcards)."),
        },
        required=("name", "deliver_subject"),
    ),
    "source": ObjectType(
        "A stream to mirror or to source from.",
        {
            "name": Field(ref("name"), "Name of the origin stream."),
            "opt_start_seq": Field(COUNT, "Start at this origin sequence."),
            "opt_start_time": Field(TIMESTAMP, "Start at the first origin message at or after this time."),
            "filter_subject": Field(
                ref("subject"), "Take only messages on these subjects (not together with subject_transforms)."
            ),
            "subject_transforms": Field(
                array(ref("subject_transform")),
                "Filters with transforms; their src subjects may not overlap (nats-server 2.10+).",
                since=(2, 10, 0),
            ),
            "external": Field(ref("external")),
            "consumer": Field(ref("source_consumer"), since=(2, 14, 0)),
        },
        required=("name",),
    ),
    "consumer_limits": ObjectType(
        "Defaults and upper bounds for the stream's consumers (nats-server 2.10+).",
        {
            "inactive_threshold": Field(DURATION, "Default and maximum inactive_threshold of the stream's consumers."),
            "max_ack_pending": Field(COUNT, "Default and maximum max_ack_pending of the stream's consumers; 0 = none."),
        },
    ),
    "priority_groups": {
        "description": "Priority group names a pull consumer serves (nats-server 2.11+): 1 to 16 of A-Z a-z 0-9 / "
        "_ = -.",
        "type": "array",
        "minItems": 1,
        "uniqueItems": True,
        "items": {"type": "string", "pattern": "^[a-zA-Z0-9/_=-]{1,16}$"},
    },
}

# -- the resources' fields, in the server's struct order -------------------------------------

STREAM: dict[str, Field] = {
    "name": Field(offered=False, mutable=False, reason="the name is the stream's identity"),
    "description": Field(ref("description"), since=(2, 3, 3), example="every field"),
    # Computed: [name] when there is no mirror and no sources.
    "subjects": Field(
        array(ref("subject"), uniqueItems=True),
        "Subjects the stream captures. Omit for a mirror; with no subjects, mirror or sources the server uses the "
        "stream name as the subject.",
        per_resource=True,
        unordered=True,
        example=["{stream}.>"],
    ),
    "retention": Field(
        enum("limits", "interest", "workqueue"),
        "What removes messages besides the limits: limits (nothing else), interest (acked by every consumer), "
        "workqueue (acked by one consumer). Cannot change to or from workqueue.",
        default="limits",
        reason="the server cannot change retention to or from workqueue in place",
        refuses=_to_or_from_workqueue,
        example="limits",
    ),
    "max_consumers": Field(
        LIMIT,
        "Maximum number of consumers; -1 = unlimited.",
        default=UNLIMITED,
        mutable_since=(2, 12, 5),
        reason="servers before 2.12.5 refuse to change max_consumers in place",
        zero_is_unlimited=True,
        unlimited=NO_LIMIT,
        example=10,
    ),
    "max_msgs": Field(
        LIMIT,
        "Maximum number of messages kept; -1 = unlimited.",
        default=UNLIMITED,
        zero_is_unlimited=True,
        unlimited=NO_LIMIT,
        example=1000,
    ),
    "max_bytes": Field(
        SIZE,
        "Maximum total size of the stream; -1 = unlimited.",
        default=UNLIMITED,
        zero_is_unlimited=True,
        unlimited=NO_LIMIT,
        example=1 << 30,
    ),
    "max_age": Field(
        DURATION, "Maximum age of a message; 0 = unlimited, else at least 100ms.", default=0,
        unlimited=ZERO_NO_LIMIT,
        example=86400 * SECOND,
    ),
    "max_msgs_per_subject": Field(
        LIMIT,
        "Messages kept per subject; -1 = unlimited.",
        default=UNLIMITED,
        since=(2, 3, 0),
        zero_is_unlimited=True,
        unlimited=NO_LIMIT,
        example=10,
    ),
    "max_msg_size": Field(
        {**SIZE, "maximum": 2147483647},
        "Largest message accepted; -1 = unlimited (a 32-bit value in the server).",
        default=UNLIMITED,
        zero_is_unlimited=True,
        unlimited=NO_LIMIT,
        example=1 << 20,
    ),
    "discard": Field(
        enum("old", "new"),
        "At a limit: old deletes the oldest messages, new refuses new ones.",
        default="old",
        example="old",
    ),
    "storage": Field(
        ref("storage"),
        "Where messages are kept: file (default) or memory. Cannot be changed after creation.",
        default="file",
        mutable=False,
        reason="the server cannot change the storage type in place",
        example="file",
    ),
    "num_replicas": Field(ref("num_replicas"), default=1, example=1),
    "no_ack": Field(BOOLEAN, "Do not acknowledge publishes (needed to capture >).", example=True, example_in="counter"),
    # Computed: 2m, or max_age when shorter; omitted on mirrors (and on sourcing streams since 2.14).
    "duplicate_window": Field(
        DURATION, "Window for de-duplicating by Nats-Msg-Id; default 2m, at most max_age.",
        example=60 * SECOND,
    ),
    # A change is a move to other servers in a cluster (one at a time, not with a replica change).
    "placement": Field(ref("placement"), example={"tags": ["eu"]}),
    "mirror": Field(
        ref("source"),
        "Make this stream a read-only copy of another stream (no subjects, no sources).",
        reason="the server cannot add or change a mirror in place",
        refuses=_mirror_change_refused,
        per_resource=True,
        example={"name": "{origin}", "opt_start_seq": 42}, example_in="mirror",
    ),
    "sources": Field(
        array(ref("source")),
        "Streams whose messages are copied into this one.",
        per_resource=True,
        example=[
            {"name": "{origin}", "opt_start_seq": 5, "filter_subject": "{origin}.in.a"},
            {
                "name": "{origin}_X",
                "subject_transforms": [{"src": "x.>", "dest": "{stream}.x.>"}],
                "external": {"api": "$JS.hub.API"},
            },
        ],
        example_in="sources",
    ),
    "compression": Field(
        enum("none", "s2"),
        "On-disk compression of file storage (nats-server 2.10+).",
        default="none",
        since=(2, 10, 0),
        example="s2",
    ),
    # Accepted by an update but only used when the stream is created.
    "first_seq": Field(
        COUNT,
        "Sequence number of the first message of a new stream (nats-server 2.10+).",
        since=(2, 10, 0),
        example=42,
    ),
    "subject_transform": Field(
        ref("subject_transform"),
        "Transform the subject of incoming messages before storing (nats-server 2.10+).",
        since=(2, 10, 0),
        per_resource=True,
        example={"src": "{stream}.>", "dest": "{stream}.in.>"},
    ),
    "republish": Field(
        ref("republish"), since=(2, 8, 3), per_resource=True,
        example={"src": "{stream}.>", "dest": "{stream}_r.>", "headers_only": True},
    ),
    "allow_direct": Field(
        BOOLEAN,
        "Allow direct get of messages from any replica (what KV uses).",
        default=False,
        since=(2, 9, 0),
        example=True,
    ),
    # Computed: a mirror follows its origin's allow_direct.
    "mirror_direct": Field(
        BOOLEAN,
        "A mirror answers direct gets for its origin. The server sets it from the origin's allow_direct when it can "
        "see the origin.",
        default=False,
        since=(2, 9, 0),
    ),
    "discard_new_per_subject": Field(
        BOOLEAN,
        "With discard new and max_msgs_per_subject: refuse new messages per subject.",
        since=(2, 9, 1),
        example=True, example_in="per_subject", example_needs={"discard": "new", "max_msgs_per_subject": 5},
    ),
    "sealed": Field(
        BOOLEAN,
        "Seal the stream: no more writes, deletes or purges. One-way; a stream cannot be created sealed.",
        default=False,
        one_way=True,
        since=(2, 6, 2),
        via="update_after_create",
        reason="a sealed stream cannot be unsealed: the server refuses it",
    ),
    "deny_delete": Field(
        BOOLEAN,
        "Refuse deleting messages through the API. One-way: cannot be turned off.",
        default=False,
        one_way=True,
        since=(2, 6, 2),
        reason="deny_delete cannot be turned off once set: the server refuses it (it protects the stream's data)",
        example=True,
    ),
    "deny_purge": Field(
        BOOLEAN,
        "Refuse purging the stream through the API. One-way: cannot be turned off.",
        default=False,
        one_way=True,
        since=(2, 6, 2),
        reason="deny_purge cannot be turned off once set: the server refuses it (it protects the stream's data)",
        example=True, example_in="counter",
    ),
    "allow_rollup_hdrs": Field(
        BOOLEAN,
        "Allow the Nats-Rollup header to purge a subject or the stream on publish.",
        default=False,
        since=(2, 6, 2),
        example=True,
    ),
    "consumer_limits": Field(
        ref("consumer_limits"), default={}, since=(2, 10, 0),
        example={"max_ack_pending": 500, "inactive_threshold": 86400 * SECOND},
    ),
    "allow_msg_ttl": Field(
        BOOLEAN,
        "Honour the per-message Nats-TTL header (nats-server 2.11+). One-way: cannot be turned off.",
        default=False,
        one_way=True,
        since=(2, 11, 0),
        reason="allow_msg_ttl cannot be turned off once set: the server refuses it (stored messages may carry TTLs)",
        example=True,
    ),
    "subject_delete_marker_ttl": Field(
        DURATION,
        "Leave a delete marker with this TTL when max_age removes a subject's last message; at least 1s (nats-server "
        "2.11+).",
        since=(2, 11, 0),
        example=60 * SECOND,
    ),
    "allow_msg_counter": Field(
        BOOLEAN,
        "Make the stream a counter (CRDT) stream (nats-server 2.12+). Cannot be changed after creation.",
        mutable=False,
        since=(2, 12, 0),
        reason="the server cannot turn counters on or off in place",
        example=True, example_in="counter",
    ),
    "allow_atomic": Field(
        BOOLEAN, "Allow atomic batch publishing (nats-server 2.12+).", since=(2, 12, 0),
        example=True,
    ),
    "allow_msg_schedules": Field(
        BOOLEAN,
        "Allow scheduled messages via the Nats-Schedule header (nats-server 2.12+). One-way: cannot be turned off.",
        one_way=True,
        since=(2, 12, 0),
        reason="allow_msg_schedules cannot be turned off once set: the server refuses it (scheduled messages may be "
        "stored)",
        example=True,
    ),
    "persist_mode": Field(
        enum("default", "async"),
        "default flushes before acknowledging; async acknowledges before flushing, R1 file streams only (nats-server "
        "2.12+). Cannot be changed after creation.",
        zero="default",
        mutable=False,
        since=(2, 12, 0),
        reason="the server cannot change persist_mode in place",
        example="async", example_in="counter",
    ),
    "allow_batched": Field(BOOLEAN, "Allow fast batch publishing (nats-server 2.14+).", since=(2, 14, 0), example=True),
    "metadata": Field(ref("metadata"), since=(2, 10, 0), example={"team": "platform"}),
}
CONSUMER: dict[str, Field] = {
    "durable_name": Field(offered=False, mutable=False, reason="the durable name is the consumer's identity"),
    "name": Field(offered=False, mutable=False, since=(2, 9, 0), reason="the name is the consumer's identity"),
    "description": Field(ref("description"), since=(2, 3, 3), example="every pull field"),
    "deliver_policy": Field(
        enum("all", "last", "new", "by_start_sequence", "by_start_time", "last_per_subject"),
        "Where delivery starts: all, last, new, by_start_sequence (opt_start_seq), by_start_time (opt_start_time), "
        "last_per_subject (needs a filter).",
        default="all",
        mutable=False,
        reason="deliver policy can not be updated",
        example="by_start_sequence",
    ),
    "opt_start_seq": Field(
        COUNT,
        "First stream sequence to deliver, with deliver_policy by_start_sequence.",
        mutable=False,
        reason="start sequence can not be updated",
        example=3,
    ),
    "opt_start_time": Field(
        TIMESTAMP,
        "First message time to deliver, with deliver_policy by_start_time.",
        mutable=False,
        reason="start time can not be updated",
        example="2026-01-01T01:00:00+01:00", example_in="push", example_needs={"deliver_policy": "by_start_time"},
    ),
    # The server's own default is "none" (AckPolicy's zero value); clients usually send "explicit".
    "ack_policy": Field(
        enum("none", "all", "explicit", "flow_control"),
        "How messages are acknowledged: none, all (acking one acks all before it), explicit (each), flow_control "
        "(push only, from flow-control replies; nats-server 2.14+).",
        default="none",
        value_since={"flow_control": (2, 14, 0)},
        mutable=False,
        reason="ack policy can not be updated",
        example="explicit",
    ),
    # Computed: 30s for explicit/all, backoff[0] when backoff is set.
    "ack_wait": Field(DURATION, "How long to wait for an ack before redelivering; default 30s.", example=SECOND),
    "max_deliver": Field(
        LIMIT, "Deliveries of one message before giving up; -1 = unlimited.", default=UNLIMITED,
        unlimited=NO_LIMIT,
        example=5,
    ),
    "backoff": Field(
        array(DURATION, minItems=1),
        "Redelivery delays, one per attempt (last one repeats); overrides ack_wait; no more steps than max_deliver.",
        since=(2, 7, 1),
        example=[SECOND, 5 * SECOND],
    ),
    "filter_subject": Field(
        ref("subject"),
        "Deliver only messages on this subject (within the stream's subjects).",
        per_resource=True,
        example="{stream}.a", example_in="push",
    ),
    "filter_subjects": Field(
        array(ref("subject"), minItems=1, uniqueItems=True),
        "Deliver only messages on these non-overlapping subjects (not together with filter_subject; nats-server "
        "2.10+).",
        since=(2, 10, 0),
        per_resource=True,
        unordered=True,
        example=["{stream}.a", "{stream}.b"],
    ),
    "replay_policy": Field(
        enum("instant", "original"),
        "Replay stored messages as fast as possible or at their original pace.",
        default="instant",
        mutable=False,
        reason="replay policy can not be updated",
        example="original",
    ),
    "rate_limit_bps": Field(
        COUNT, "Push only: delivery rate limit in bits per second; 0 = none.",
        example=80000, example_in="push",
    ),
    "sample_freq": Field(
        {"type": "string", "pattern": "^[0-9]+%?$"},
        "Percentage of acks to sample as advisories, e.g. \"100%\" (quote it).",
        example="20%",
    ),
    # Computed: 512 for pull consumers.
    "max_waiting": Field(
        COUNT,
        "Pull only: most pull requests waiting at once; default 512.",
        mutable=False,
        reason="max waiting can not be updated",
        scope="pull",
        example=64,
    ),
    # Computed: the stream's consumer_limits.max_ack_pending, else 1000 unless ack_policy none.
    "max_ack_pending": Field(
        LIMIT, "Most messages delivered but not yet acked; -1 = unlimited; default 1000.",
        unlimited=frozenset({UNLIMITED}),
        example=100,
    ),
    "flow_control": Field(
        BOOLEAN,
        "Push only: enable flow control (needs idle_heartbeat).",
        mutable=False,
        reason="flow control can not be updated",
        scope="push",
        example=True, example_in="push",
    ),
    "headers_only": Field(
        BOOLEAN, "Deliver only headers; the payload size goes in Nats-Msg-Size.", since=(2, 6, 2),
        example=True,
    ),
    "max_batch": Field(
        COUNT,
        "Pull only: largest batch one pull request may ask for; 0 = no limit.",
        since=(2, 7, 0),
        scope="pull",
        unlimited=ZERO_NO_LIMIT,
        example=50,
    ),
    "max_expires": Field(
        DURATION,
        "Pull only: longest expiry a pull request may ask for; at least 1ms.",
        since=(2, 7, 0),
        scope="pull",
        unlimited=ZERO_NO_LIMIT,
        example=60 * SECOND,
    ),
    "max_bytes": Field(
        {**SIZE, "minimum": 0},
        "Pull only: most bytes one pull request may ask for; 0 = no limit.",
        since=(2, 8, 3),
        scope="pull",
        unlimited=NO_LIMIT,
        example=1 << 20,
    ),
    "deliver_subject": Field(
        ref("literal_subject"),
        "Makes a push consumer that delivers to this subject; omit for a pull consumer.",
        reason="the server cannot turn a pull consumer into a push one or back",
        refuses=_deliver_subject_refused,
        per_resource=True,
        example="{stream}_deliver", example_in="push", example_needs={"ack_policy": "all"},
    ),
    "deliver_group": Field(
        {"type": "string", "minLength": 1},
        "Push only: queue group that shares the deliveries.",
        since=(2, 4, 0),
        scope="push",
        example="workers", example_in="push",
    ),
    "idle_heartbeat": Field(
        DURATION,
        "Push only: heartbeat interval when idle; at least 100ms.",
        mutable=False,
        reason="heart beats can not be updated",
        scope="push",
        example=5 * SECOND, example_in="push",
    ),
    # Computed: the stream's consumer_limits.inactive_threshold.
    "inactive_threshold": Field(
        DURATION,
        "Delete the consumer after this long without activity; 0 = never for durables.",
        since=(2, 7, 0),
        example=86400 * SECOND,
    ),
    "num_replicas": Field(
        ref("num_replicas"),
        "Replicas of the consumer's state, at most the stream's; 0 = as the stream (must equal it on interest and "
        "workqueue streams).",
        default=0,
        since=(2, 8, 3),
        example=1,
    ),
    # Refused by servers since 2.14.5; older ones accept the update but keep the old storage.
    "mem_storage": Field(
        BOOLEAN,
        "Keep the consumer's state in memory even on a file stream.",
        mutable=False,
        since=(2, 8, 3),
        reason="storage type can not be updated",
        example=True,
    ),
    "direct": Field(offered=False, mutable=False, reason="direct can not be updated"),
    "sourcing": Field(offered=False, mutable=False, since=(2, 14, 0), reason="sourcing can not be updated"),
    "metadata": Field(ref("metadata"), since=(2, 10, 0), example={"team": "platform"}),
    # The create/update request keeps the current value (jsConsumerCreateRequest); only
    # $JS.API.CONSUMER.PAUSE.<stream>.<consumer> changes it.
    "pause_until": Field(
        TIMESTAMP,
        "Create the consumer paused until this time (nats-server 2.11+); the server ignores it on update (pausing an "
        "existing consumer is a separate API call).",
        since=(2, 11, 0),
        via="pause",
        example="2099-01-01T00:00:00.5+02:00",
    ),
    "priority_groups": Field(ref("priority_groups"), since=(2, 11, 0), scope="pull", example=["jobs"]),
    "priority_policy": Field(
        enum("none", "overflow", "pinned_client", "prioritized"),
        "Pull only, with priority_groups (nats-server 2.11+): overflow, pinned_client, or prioritized (2.12+).",
        scope="pull",
        zero="none",
        value_since={"prioritized": (2, 12, 0)},
        since=(2, 11, 0),
        example="pinned_client",
    ),
    # Computed: 2m for pinned_client.
    "priority_timeout": Field(
        DURATION,
        "With pinned_client: how long a pinned client may be silent before another is pinned; default 2m "
        "(nats-server 2.11+).",
        since=(2, 11, 0),
        scope="pull",
        example=30 * SECOND,
    ),
}
# nats.go KeyValueConfig and ObjectStoreConfig, JSON names. nats.go tags the object store TTL "max_age"; the nats
# CLI, nats-py and the KV config all say "ttl", so both kinds use "ttl" here.
KEY_VALUE: dict[str, Field] = {
    "description": Field(ref("description"), example="settings"),
    "history": Field(
        {"type": "integer", "minimum": 1, "maximum": 64},
        "Values kept per key, 1 to 64; default 1.",
        stream_field="max_msgs_per_subject",
        example=5,
    ),
    "ttl": Field(
        DURATION, "Expire values older than this; 0 = never.", stream_field="max_age",
        unlimited=ZERO_NO_LIMIT,
        example=3600 * SECOND,
    ),
    "max_value_size": Field(
        {**SIZE, "maximum": 2147483647},
        "Largest value accepted; -1 = unlimited (a 32-bit value in the server).",
        stream_field="max_msg_size",
        unlimited=NO_LIMIT,
        example=64 * 1024,
    ),
    "max_bytes": Field(SIZE, "Maximum size of the bucket; -1 = unlimited.", unlimited=NO_LIMIT, example=1 << 30),
    "storage": Field(ref("storage"), example="memory"),
    "num_replicas": Field(ref("num_replicas"), example=1),
    "compression": Field(
        BOOLEAN, "Compress the bucket's stream with s2 (nats.go KeyValueConfig takes a boolean).",
        example=True,
    ),
    "placement": Field(ref("placement"), example={"tags": ["eu"]}),
    "republish": Field(ref("republish"), example={"src": ">", "dest": "kv_republished.>"}),
    "mirror": Field(
        ref("source"), "Mirror another bucket (its bucket name; KV_ is added).",
        example={"name": "{origin}"}, example_in="mirror",
    ),
    "sources": Field(
        array(ref("source")),
        "Buckets to source from (bucket names; KV_ is added). With subject_transforms, the name is used as the full "
        "stream name.",
        example=[{"name": "{origin}"}], example_in="sources",
    ),
    "limit_marker_ttl": Field(
        DURATION,
        "Keep a marker this long when a key expires; enables per-key TTLs; at least 1s (nats-server 2.11+).",
        stream_field="subject_delete_marker_ttl", since=(2, 11, 0),
        example=10 * SECOND, example_in="markers",
    ),
    "metadata": Field(ref("metadata"), example={"team": "platform"}),
}
OBJECT_STORE: dict[str, Field] = {
    "description": Field(ref("description"), example="scans"),
    "ttl": Field(
        DURATION, "Expire objects older than this; 0 = never (the stream's max_age).", stream_field="max_age",
        unlimited=ZERO_NO_LIMIT,
        example=30 * 86400 * SECOND,
    ),
    "max_bytes": Field(SIZE, "Maximum size of the store; -1 = unlimited.", unlimited=NO_LIMIT, example=1 << 30),
    "storage": Field(ref("storage"), example="memory"),
    "num_replicas": Field(ref("num_replicas"), example=1),
    "compression": Field(
        BOOLEAN, "Compress the store's stream with s2 (nats.go ObjectStoreConfig takes a boolean).",
        example=True,
    ),
    "placement": Field(ref("placement"), example={"tags": ["eu"]}),
    "metadata": Field(ref("metadata"), example={"team": "platform"}),
}

RESOURCES: dict[str, dict[str, Field]] = {
    "stream": STREAM, "consumer": CONSUMER, "key_value": KEY_VALUE, "object_store": OBJECT_STORE,
}

# Keys of topology.yaml that belong to this tool, not to the JetStream API.
TOOL_KEYS: dict[str, dict[str, dict]] = {
    "stream": {
        "consumers": {
            "type": ["object", "null"],
            "description": "Durable consumers of this stream: durable name -> settings.",
            "propertyNames": ref("name"),
            "additionalProperties": ref("consumer"),
        },
        "protect": ref("protect"),
        "replace": ref("replace"),
        "renamed_from": {
            **ref("name"),
            "description": "Tool-only: the live stream this one replaces: it takes that one's messages and consumers "
            "(at their positions; nats-server 2.14+), then the old one is deleted.",
        },
    },
    "consumer": {
        "protect": ref("protect"),
        "renamed_from": {
            **ref("name"),
            "description": "Tool-only: the live consumer this one replaces: it is created where that one stands (its "
            "acknowledged floor; nats-server 2.14+), then the old one is deleted.",
        },
    },
    "key_value": {"protect": ref("protect"), "replace": ref("replace")},
    "object_store": {"protect": ref("protect"), "replace": ref("replace")},
}
PROTECT = {
    "type": "boolean",
    "description": "Tool-only: never delete or replace this resource; a plan that would is refused.",
}
REPLACE = {
    "enum": ["migrate"],
    "description": "Tool-only: a change that replaces this stream migrates its messages (and its consumers' "
    "positions) into the new one instead of destroying them; `apply --migrate` does so for every replacement.",
}


# -- what the rest of the tool asks, derived from the entries above ---------------------------


def every_field() -> list[tuple[str, Field]]:
    """(name, field) of every resource field and every field of a structured type, at any depth."""
    found = [(name, f) for table in RESOURCES.values() for name, f in table.items()]
    found += [(name, f) for t in TYPES.values() if isinstance(t, ObjectType) for name, f in t.fields.items()]
    return found


# A name means one unit wherever it appears (tests/test_schema.py proves it), so values convert by name.
UNIT_BY_NAME: dict[str, str] = {name: f.unit for name, f in every_field() if f.unit}
UNORDERED_FIELDS = frozenset(name for name, f in every_field() if f.unordered)


def _object_type(schema: dict) -> ObjectType | None:
    """The structured type a field's value (or each of its items) is, if it is one."""
    found = TYPES.get(schema.get("$ref", "").rsplit("/", 1)[-1])
    if isinstance(found, ObjectType):
        return found
    return _object_type(schema["items"]) if "items" in schema else None


def _reported_empty() -> dict[str, tuple[str, ...]]:
    found = {}
    for name, entry in every_field():
        value_type = _object_type(entry.schema or {})
        keys = tuple(k for k, f in value_type.fields.items() if f.reported_empty) if value_type else ()
        if keys:
            found[name] = keys
    return found


# By the name of the field holding them: the keys of a structured value the server always reports.
REPORTED_EMPTY: dict[str, tuple[str, ...]] = _reported_empty()
# Shown by name too: consumer_limits.max_ack_pending -1 is as unlimited as a consumer's.
UNLIMITED_VALUES: dict[str, frozenset[int]] = {name: f.unlimited for name, f in every_field() if f.unlimited}
ZERO_VALUES = {name: f.zero for name, f in every_field() if f.zero is not None}


def scoped(kind: str, scope: str) -> tuple[str, ...]:
    """The fields of ``kind`` that only a "push" or only a "pull" consumer takes."""
    return tuple(name for name, f in RESOURCES[kind].items() if f.scope == scope)


def offered(kind: str) -> tuple[str, ...]:
    """The fields topology.yaml takes for ``kind``, in order."""
    return tuple(name for name, f in RESOURCES[kind].items() if f.offered)
