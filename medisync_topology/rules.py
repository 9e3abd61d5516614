"""The JetStream rules, in one place: defaults, what an update may change, one-way flags, versions.

Everything here was read in nats-server's own source (server/stream.go checkStreamCfg and
configUpdateCheck, server/consumer.go setConsumerConfigDefaults, checkConsumerCfg and
checkNewConsumerConfig, server/jetstream_api.go, server/jetstream_versioning.go) and the
version of each field from the tags in which its JSON name first appears; the rules that
matter most are proven against a real server by tests/test_rules_server.py.

Values are the API's own JSON: durations in nanoseconds, sizes in bytes, enums as strings.
A version is a tuple (major, minor, patch); ``None`` means "the newest server".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from .errors import TopologyError

Version = tuple[int, int, int]

SECOND = 10**9
MINUTE = 60 * SECOND
# -1 is "no limit" to the server in its limit fields (max_msgs, max_bytes, max_msg_size, ...).
UNLIMITED = -1
# StreamDefaultDuplicatesWindow (stream.go): a stream's duplicate window unless max_age is shorter.
DEFAULT_DUPLICATE_WINDOW = 2 * MINUTE

DURATION_FIELDS: frozenset[str] = frozenset(
    {
        # streams
        "max_age", "duplicate_window", "subject_delete_marker_ttl",
        # consumers, and a stream's consumer_limits.inactive_threshold
        "ack_wait", "backoff", "idle_heartbeat", "inactive_threshold", "max_expires", "priority_timeout",
        # key-value buckets (nats kv add --ttl, --marker-ttl)
        "ttl", "limit_marker_ttl",
    }
)
SIZE_FIELDS: frozenset[str] = frozenset(
    {
        # streams: max_bytes, max_msg_size; pull consumers: max_bytes (max request bytes)
        "max_bytes", "max_msg_size",
        # key-value buckets
        "max_value_size",
    }
)
# Values that mean "no limit", by field name, for showing them to a person as `unlimited`: -1 in the
# server's limit fields, and 0 where the server reads zero as no limit (it reports max_msgs: 0 as -1,
# keeps max_age: 0 as "forever", and a pull request's max_batch/max_expires/max_bytes 0 as unbounded).
# max_waiting, max_ack_pending 0 and duplicate_window 0 are not here: there the server fills in a default.
UNLIMITED_VALUES: dict[str, frozenset[int]] = {
    **dict.fromkeys(("max_msgs", "max_bytes", "max_msg_size", "max_consumers", "max_msgs_per_subject",
                     "max_value_size", "max_deliver"), frozenset({UNLIMITED, 0})),
    **dict.fromkeys(("max_age", "ttl", "max_batch", "max_expires"), frozenset({0})),
    "max_ack_pending": frozenset({UNLIMITED}),
}
# Timestamps (RFC 3339); compared as instants, written in UTC as Go writes them.
TIMESTAMP_FIELDS: frozenset[str] = frozenset({"opt_start_time", "pause_until"})
# Lists whose order means nothing to the server.
UNORDERED_FIELDS: frozenset[str] = frozenset({"subjects", "filter_subjects"})


def parse_version(text: str) -> Version:
    """``"2.15.1"``, ``"v2.11.4-RC1"``, ``"2.15.0-dev"`` -> (2, 15, 1) ..."""
    match = re.match(r"^\s*v?(\d+)\.(\d+)(?:\.(\d+))?", str(text))
    if not match:
        raise TopologyError(f"cannot read the server version {text!r}; expected something like 2.11.4")
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def format_version(version: Version) -> str:
    """(2, 12, 0) -> "2.12"; (2, 6, 2) -> "2.6.2"."""
    major, minor, patch = version
    return f"{major}.{minor}" if patch == 0 else f"{major}.{minor}.{patch}"


def _at_least(version: Version | None, wanted: Version) -> bool:
    return version is None or tuple(version) >= wanted


@dataclass(frozen=True)
class FieldRule:
    """What the server does with one top-level config field.

    ``default``: what the server reports when the field is omitted; None: it omits the field
    (``omitempty`` in the server's struct, so a zero value is omitted too). Defaults that depend
    on other fields (duplicate_window, ack_wait, max_ack_pending ...) are worked out in
    complete_stream / complete_consumer; their ``default`` here is the plain case.
    ``mutable``: an update may change it in place; False -> a change forces replacement.
    ``mutable_since``: before this version an update refused any change.
    ``refuses(old, new, version)``: value-dependent refusal of an otherwise mutable field.
    ``one_way``: may be turned on, never off (the server refuses it; not even replacement is offered).
    ``since``: the first server version whose config knows the field.
    ``via``: "update" (the update request), "pause" (only the consumer PAUSE API changes it),
    "update_after_create" (the create request refuses it; set it with an update afterwards).
    ``reason``: plain words for a person, used in messages.
    """

    default: Any = None
    mutable: bool = True
    one_way: bool = False
    since: Version = (2, 2, 0)
    mutable_since: Version | None = None
    refuses: Callable[[Any, Any, Version | None], bool] | None = None
    via: str = "update"
    reason: str = ""

    def forces_replacement(self, old: Any, new: Any, version: Version | None) -> bool:
        if not self.mutable:
            return True
        if self.mutable_since and not _at_least(version, self.mutable_since):
            return True
        return bool(self.refuses and self.refuses(old, new, version))

    def turned_back(self, old: Any, new: Any) -> bool:
        return self.one_way and bool(old) and not bool(new)


def _to_or_from_workqueue(old: Any, new: Any, version: Version | None) -> bool:
    # stream.go configUpdateCheck: limits <-> interest is fine, to/from workqueue is refused.
    return old != new and "workqueue" in (old, new)


def _mirror_change_refused(old: Any, new: Any, version: Version | None) -> bool:
    # configUpdateCheck refuses adding or changing a mirror; removing it ("promoting" the mirror
    # to a normal stream) is allowed since 2.12.0 (commit "Allow promoting mirrors").
    return not (new is None and _at_least(version, (2, 12, 0)))


def _deliver_subject_refused(old: Any, new: Any, version: Version | None) -> bool:
    # checkNewConsumerConfig: "can not update pull consumer to push based" and back; a push
    # consumer may move to another deliver subject.
    return bool(old) != bool(new)


STREAM_RULES: dict[str, FieldRule] = {
    "name": FieldRule(mutable=False, reason="the name is the stream's identity"),
    "description": FieldRule(since=(2, 3, 3)),
    # Computed: [name] when there is no mirror and no sources.
    "subjects": FieldRule(),
    "retention": FieldRule(
        default="limits", refuses=_to_or_from_workqueue,
        reason="the server cannot change retention to or from workqueue in place",
    ),
    "max_consumers": FieldRule(
        default=UNLIMITED, mutable_since=(2, 12, 5),
        reason="servers before 2.12.5 refuse to change max_consumers in place",
    ),
    "max_msgs": FieldRule(default=UNLIMITED),
    "max_bytes": FieldRule(default=UNLIMITED),
    "max_age": FieldRule(default=0),
    "max_msgs_per_subject": FieldRule(default=UNLIMITED, since=(2, 3, 0)),
    "max_msg_size": FieldRule(default=UNLIMITED),
    "discard": FieldRule(default="old"),
    "storage": FieldRule(default="file", mutable=False, reason="the server cannot change the storage type in place"),
    "num_replicas": FieldRule(default=1),
    "no_ack": FieldRule(),
    # Computed: 2m, or max_age when shorter; omitted on mirrors (and on sourcing streams since 2.14).
    "duplicate_window": FieldRule(),
    # A change is a move to other servers in a cluster (one at a time, not with a replica change).
    "placement": FieldRule(),
    "mirror": FieldRule(refuses=_mirror_change_refused, reason="the server cannot add or change a mirror in place"),
    "sources": FieldRule(),
    "compression": FieldRule(default="none", since=(2, 10, 0)),
    # Accepted by an update but only used when the stream is created.
    "first_seq": FieldRule(since=(2, 10, 0)),
    "subject_transform": FieldRule(since=(2, 10, 0)),
    "republish": FieldRule(since=(2, 8, 3)),
    "allow_direct": FieldRule(default=False, since=(2, 9, 0)),
    # Computed: a mirror follows its origin's allow_direct.
    "mirror_direct": FieldRule(default=False, since=(2, 9, 0)),
    "discard_new_per_subject": FieldRule(since=(2, 9, 1)),
    "sealed": FieldRule(
        default=False, one_way=True, since=(2, 6, 2), via="update_after_create",
        reason="a sealed stream cannot be unsealed: the server refuses it",
    ),
    "deny_delete": FieldRule(
        default=False, one_way=True, since=(2, 6, 2),
        reason="deny_delete cannot be turned off once set: the server refuses it (it protects the stream's data)",
    ),
    "deny_purge": FieldRule(
        default=False, one_way=True, since=(2, 6, 2),
        reason="deny_purge cannot be turned off once set: the server refuses it (it protects the stream's data)",
    ),
    "allow_rollup_hdrs": FieldRule(default=False, since=(2, 6, 2)),
    "consumer_limits": FieldRule(default={}, since=(2, 10, 0)),
    "allow_msg_ttl": FieldRule(
        default=False, one_way=True, since=(2, 11, 0),
        reason="allow_msg_ttl cannot be turned off once set: the server refuses it (stored messages may carry TTLs)",
    ),
    "subject_delete_marker_ttl": FieldRule(since=(2, 11, 0)),
    "allow_msg_counter": FieldRule(
        mutable=False, since=(2, 12, 0),
        reason="the server cannot turn counters on or off in place",
    ),
    "allow_atomic": FieldRule(since=(2, 12, 0)),
    "allow_msg_schedules": FieldRule(
        one_way=True, since=(2, 12, 0),
        reason="allow_msg_schedules cannot be turned off once set: the server refuses it (scheduled messages may be stored)",
    ),
    "persist_mode": FieldRule(mutable=False, since=(2, 12, 0), reason="the server cannot change persist_mode in place"),
    "allow_batched": FieldRule(since=(2, 14, 0)),
    "metadata": FieldRule(since=(2, 10, 0)),
}

CONSUMER_RULES: dict[str, FieldRule] = {
    "durable_name": FieldRule(mutable=False, reason="the durable name is the consumer's identity"),
    "name": FieldRule(mutable=False, since=(2, 9, 0), reason="the name is the consumer's identity"),
    "description": FieldRule(since=(2, 3, 3)),
    "deliver_policy": FieldRule(default="all", mutable=False, reason="deliver policy can not be updated"),
    "opt_start_seq": FieldRule(mutable=False, reason="start sequence can not be updated"),
    "opt_start_time": FieldRule(mutable=False, reason="start time can not be updated"),
    # The server's own default is "none" (AckPolicy's zero value); clients usually send "explicit".
    "ack_policy": FieldRule(default="none", mutable=False, reason="ack policy can not be updated"),
    # Computed: 30s for explicit/all, backoff[0] when backoff is set.
    "ack_wait": FieldRule(),
    "max_deliver": FieldRule(default=-1),
    "backoff": FieldRule(since=(2, 7, 1)),
    "filter_subject": FieldRule(),
    "filter_subjects": FieldRule(since=(2, 10, 0)),
    "replay_policy": FieldRule(default="instant", mutable=False, reason="replay policy can not be updated"),
    "rate_limit_bps": FieldRule(),
    "sample_freq": FieldRule(),
    # Computed: 512 for pull consumers.
    "max_waiting": FieldRule(mutable=False, reason="max waiting can not be updated"),
    # Computed: the stream's consumer_limits.max_ack_pending, else 1000 unless ack_policy none.
    "max_ack_pending": FieldRule(),
    "flow_control": FieldRule(mutable=False, reason="flow control can not be updated"),
    "headers_only": FieldRule(since=(2, 6, 2)),
    "max_batch": FieldRule(since=(2, 7, 0)),
    "max_expires": FieldRule(since=(2, 7, 0)),
    "max_bytes": FieldRule(since=(2, 8, 3)),
    "deliver_subject": FieldRule(
        refuses=_deliver_subject_refused, reason="the server cannot turn a pull consumer into a push one or back",
    ),
    "deliver_group": FieldRule(since=(2, 4, 0)),
    "idle_heartbeat": FieldRule(mutable=False, reason="heart beats can not be updated"),
    # Computed: the stream's consumer_limits.inactive_threshold.
    "inactive_threshold": FieldRule(since=(2, 7, 0)),
    "num_replicas": FieldRule(default=0, since=(2, 8, 3)),
    # Refused by servers since 2.14.5; older ones accept the update but keep the old storage.
    "mem_storage": FieldRule(mutable=False, since=(2, 8, 3), reason="storage type can not be updated"),
    "direct": FieldRule(mutable=False, reason="direct can not be updated"),
    "sourcing": FieldRule(mutable=False, since=(2, 14, 0), reason="sourcing can not be updated"),
    "metadata": FieldRule(since=(2, 10, 0)),
    # The create/update request keeps the current value (jsConsumerCreateRequest); only
    # $JS.API.CONSUMER.PAUSE.<stream>.<consumer> changes it.
    "pause_until": FieldRule(since=(2, 11, 0), via="pause"),
    "priority_groups": FieldRule(since=(2, 11, 0)),
    "priority_policy": FieldRule(since=(2, 11, 0)),
    # Computed: 2m for pinned_client.
    "priority_timeout": FieldRule(since=(2, 11, 0)),
}

RULES: dict[str, dict[str, FieldRule]] = {"stream": STREAM_RULES, "consumer": CONSUMER_RULES}

# Enum values younger than their field: (kind, field, value) -> first version that accepts it.
VALUE_SINCE: dict[tuple[str, str, str], Version] = {
    ("consumer", "priority_policy", "overflow"): (2, 11, 0),
    ("consumer", "priority_policy", "pinned_client"): (2, 11, 0),
    ("consumer", "priority_policy", "prioritized"): (2, 12, 0),
    ("consumer", "ack_policy", "flow_control"): (2, 14, 0),
}
# Keys inside a stream's mirror / sources entries, younger than the entry itself.
SOURCE_KEY_SINCE: dict[str, Version] = {"subject_transforms": (2, 10, 0), "consumer": (2, 14, 0)}

# Server-managed metadata keys (_nats.req.level, _nats.ver, _nats.level: jetstream_versioning.go).
SERVER_METADATA_PREFIX = "_nats."


# -- completing a desired config -------------------------------------------------------------


def complete_stream(
    config: dict, version: Version | None = None, streams: Mapping[str, dict] | None = None
) -> dict:
    """The full config the server would report for this desired stream config.

    Defaults filled in and the server's side effects applied (checkStreamCfg, and the sealed
    adjustments of configUpdateCheck), so that comparing with the live config shows no
    perpetual difference. The result is also what to send: it satisfies pedantic mode, which
    refuses a request whose values the server would otherwise have adjusted.
    ``streams``: the other streams' configs by name; a mirror takes mirror_direct from its
    origin's allow_direct (pedantic mode refuses a mismatch).
    """
    # No deep copy: _known_to makes a new dict, nested values are only replaced, never changed in place,
    # and _drop_omitted builds every dict and list of the result anew.
    cfg = _known_to(config, STREAM_RULES, version)
    _fill_defaults(cfg, STREAM_RULES, version)
    for key in ("max_msgs", "max_bytes", "max_msg_size", "max_consumers", "max_msgs_per_subject"):
        if key in cfg and cfg[key] == 0:  # 0 means "unlimited" to the server, reported as -1
            cfg[key] = UNLIMITED
    if cfg.get("num_replicas") == 0:
        cfg["num_replicas"] = 1
    mirror, sources = cfg.get("mirror"), cfg.get("sources")
    if not cfg.get("subjects") and not mirror and not sources:
        cfg["subjects"] = [cfg["name"]]
    # duplicate_window: 2m, or max_age when shorter; none for a mirror, nor (since 2.14) for a
    # stream with sources.
    wants_window = not mirror and not (sources and _at_least(version, (2, 14, 0)))
    if not cfg.get("duplicate_window") and wants_window:
        cfg["duplicate_window"] = duplicate_window_for(cfg.get("max_age") or 0)
    if (cfg.get("subject_delete_marker_ttl") or 0) > 0:
        # Delete markers are messages with a TTL that roll up their subject.
        cfg["allow_msg_ttl"] = True
        cfg["allow_rollup_hdrs"], cfg["deny_purge"] = True, False
    if cfg.get("allow_msg_schedules"):
        cfg["allow_rollup_hdrs"], cfg["deny_purge"] = True, False
    if cfg.get("sealed"):
        cfg.update(max_age=0, discard="new", deny_delete=True, deny_purge=True, allow_rollup_hdrs=False)
    _complete_republish(cfg)
    if mirror and streams and mirror.get("name") in streams and not mirror.get("external"):
        cfg["mirror_direct"] = bool(streams[mirror["name"]].get("allow_direct"))
    return _drop_omitted(cfg, STREAM_RULES)


def duplicate_window_for(max_age: int) -> int:
    """The duplicate window the server gives a stream that sets none: the default, or max_age when
    shorter (checkStreamCfg; a window longer than max_age is refused)."""
    return max_age if 0 < max_age < DEFAULT_DUPLICATE_WINDOW else DEFAULT_DUPLICATE_WINDOW


def _complete_republish(cfg: dict) -> None:
    republish = cfg.get("republish")
    if not republish:
        return
    republish = cfg["republish"] = dict(republish)  # the caller's config stays as it was
    if not republish.get("src"):
        republish["src"] = ">"  # empty source means all subjects
    transform = cfg.get("subject_transform") or {}
    subjects = cfg.get("subjects") or []
    if (
        republish["src"] == ">" and republish.get("dest") == ">" and transform
        and len(subjects) == 1 and transform.get("src") == subjects[0]
    ):
        # Implicit republish of the transformed subject (checkStreamCfg).
        republish["src"] = republish["dest"] = transform.get("dest")


def complete_consumer(config: dict, stream_config: dict, version: Version | None = None) -> dict:
    """The full config the server would report for this desired consumer config.

    setConsumerConfigDefaults: max_deliver -1, 512 waiting pulls, ack_wait 30s (explicit/all) or
    backoff[0], max_ack_pending from the stream's consumer_limits or 1000 unless ack none,
    inactive_threshold from the stream's consumer_limits, priority_timeout 2m when pinned, and
    the flow-control ack policy's flow_control + 1s heartbeat. ``stream_config``: the stream's
    complete config.
    """
    cfg = _known_to(config, CONSUMER_RULES, version)  # a new dict, as in complete_stream
    _fill_defaults(cfg, CONSUMER_RULES, version)
    limits = stream_config.get("consumer_limits") or {}
    if cfg.get("durable_name") and not cfg.get("name") and _at_least(version, (2, 9, 0)):
        cfg["name"] = cfg["durable_name"]  # a durable's name is its durable name
    if cfg.get("max_deliver") == 0:
        cfg["max_deliver"] = -1
    pull = not cfg.get("deliver_subject")
    if pull and not cfg.get("max_waiting"):
        cfg["max_waiting"] = 512
    ack_policy = cfg.get("ack_policy")
    if not cfg.get("ack_wait") and ack_policy in ("explicit", "all"):
        cfg["ack_wait"] = 30 * SECOND
    if cfg.get("backoff"):
        cfg["ack_wait"] = cfg["backoff"][0]
    if not cfg.get("max_ack_pending"):
        cfg["max_ack_pending"] = limits.get("max_ack_pending") or (1000 if ack_policy != "none" else 0)
    if not cfg.get("inactive_threshold") and limits.get("inactive_threshold"):
        cfg["inactive_threshold"] = limits["inactive_threshold"]
    if cfg.get("priority_policy") == "pinned_client" and not cfg.get("priority_timeout"):
        cfg["priority_timeout"] = 2 * MINUTE
    if ack_policy == "flow_control":
        cfg["flow_control"], cfg["idle_heartbeat"] = True, SECOND
    return _drop_omitted(cfg, CONSUMER_RULES)


def _known_to(cfg: dict, rules: dict[str, FieldRule], version: Version | None) -> dict:
    """Drop default-valued fields the server does not know: strict servers refuse unknown fields.

    A field set to something else stays, for unsupported_fields to report."""
    return {
        k: v for k, v in cfg.items()
        if k not in rules or _at_least(version, rules[k].since) or not _is_default(rules[k], k, v)
    }


def _fill_defaults(cfg: dict, rules: dict[str, FieldRule], version: Version | None) -> None:
    for key, rule in rules.items():
        if rule.default is not None and key not in cfg and _at_least(version, rule.since):
            cfg[key] = rule.default  # shared until _drop_omitted copies every dict and list


def _is_default(rule: FieldRule, key: str, value: Any) -> bool:
    return _is_zero(key, value) or (rule.default is not None and value == rule.default)


def _is_zero(key: str, value: Any) -> bool:
    """The zero value of a field, which the server omits where its struct says ``omitempty``."""
    # "none"/"default" are the zero values of priority_policy and persist_mode; "none" is a
    # real value of ack_policy and compression, which have defaults and are always reported.
    return value is None or value is False or value == 0 or value in ("", [], {}) or (
        key in ("priority_policy", "persist_mode") and value in ("none", "default")
    )


def _drop_omitted(cfg: dict, rules: dict[str, FieldRule]) -> dict:
    """Remove what the server omits (omitempty zero values), at any depth, and normalise times."""
    out = {}
    for key, value in cfg.items():
        if isinstance(value, (dict, list)) or key in TIMESTAMP_FIELDS:  # the rest are kept as they are
            value = _normalise(key, value)
        rule = rules.get(key)
        if rule is not None and rule.default is None and _is_zero(key, value):
            continue
        out[key] = value
    return out


# Inner keys the server always reports even when empty (no omitempty in its structs).
_ALWAYS_REPORTED = {
    "subject_transform": ("src", "dest"),
    "external": ("api", "deliver"),
    "subject_transforms": ("src", "dest"),
}


def _normalise(key: str, value: Any) -> Any:
    if key in TIMESTAMP_FIELDS and value is not None:
        return _utc_timestamp(value)
    if isinstance(value, dict):
        if key == "metadata":
            return dict(value)
        inner = {k: _normalise(k, v) for k, v in value.items()}
        kept = _ALWAYS_REPORTED.get(key, ())
        inner = {k: v for k, v in inner.items() if k in kept or not _is_zero(k, v)}
        for k in kept:
            inner.setdefault(k, "")
        return inner
    if isinstance(value, list):
        return [_normalise(key, v) if isinstance(v, dict) else v for v in value]
    return value


_TIMESTAMP = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})$")


def _utc_timestamp(value: Any) -> str:
    """An RFC 3339 time as Go's encoding/json writes it after .UTC(): nanoseconds, zeros trimmed, Z."""
    if isinstance(value, datetime):
        value = value.isoformat()
    match = _TIMESTAMP.match(str(value))
    if not match:
        raise TopologyError(f"{value!r} is not an RFC 3339 time such as 2026-01-31T12:00:00Z")
    date, clock, fraction, zone = match.groups()
    zone = "+00:00" if zone in ("Z", "z") else zone
    moment = datetime.fromisoformat(f"{date}T{clock}{zone}").astimezone(timezone.utc)
    fraction = (fraction or "").ljust(9, "0").rstrip("0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


# -- reading a live config -------------------------------------------------------------------


def strip_live(config: dict, kind: str) -> dict:
    """A config as the server reports it -> the comparable form.

    Drops what the server manages (``created``, ``_nats.*`` metadata, the retired
    ``template_owner``), an empty metadata map, and zero values the server omits; keeps
    everything a person controls. Times are normalised to UTC.
    """
    cfg = {k: v for k, v in config.items() if k not in ("created", "template_owner")}
    metadata = {k: v for k, v in (cfg.get("metadata") or {}).items() if not k.startswith(SERVER_METADATA_PREFIX)}
    cfg["metadata"] = metadata
    return _drop_omitted(cfg, _rules(kind))


def declarable_consumer(config: dict) -> bool:
    """Whether a topology can declare this live consumer: a durable that a person or an app made.

    Ephemerals are a running client's state. The server makes its own consumers on the origin of
    a mirror or a source (JS_SRC_..., `sourcing: true`, or `direct: true` on servers before
    sourcing consumers), fields a topology cannot hold, and removes them with the sourcing stream.
    """
    return bool(config.get("durable_name")) and not (config.get("sourcing") or config.get("direct"))


def _rules(kind: str) -> dict[str, FieldRule]:
    if kind not in RULES:
        raise TopologyError(f"no JetStream rules for {kind!r}; expected one of {', '.join(RULES)}")
    return RULES[kind]


# -- what an update may do -------------------------------------------------------------------


def _comparable_value(key: str, value: Any) -> Any:
    return sorted(value) if key in UNORDERED_FIELDS and isinstance(value, list) else value


def comparable(config: dict) -> dict:
    """The config with lists whose order means nothing to the server sorted, so == compares what matters."""
    return {k: _comparable_value(k, v) for k, v in config.items()}


def _same(key: str, old: Any, new: Any) -> bool:
    return _comparable_value(key, old) == _comparable_value(key, new)


def without_identity(config: dict) -> dict:
    """A config without the resource's name (a stream's name, a consumer's name and durable name)."""
    return {k: v for k, v in config.items() if k not in ("name", "durable_name")}


def blocked_changes(kind: str, before: dict, after: dict, version: Version | None) -> tuple[list[str], list[str]]:
    """(fields forcing replacement, impossible changes explained) between two complete configs.

    Replacement: the server refuses to update the field in place, but deleting and creating the
    resource again gets there. Impossible: a one-way flag turned back; the server refuses it and
    this tool will not destroy the data protected by it.
    """
    rules = _rules(kind)
    forcing, impossible = [], []
    noun = "stream" if kind == "stream" else "consumer"
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        rule = rules.get(key)
        if rule is None or _same(key, old, new):
            continue
        if rule.turned_back(old, new):
            impossible.append(
                f"{rule.reason}; delete and recreate the {noun} by hand if you really mean it"
            )
        elif rule.forces_replacement(old, new, version):
            forcing.append(key)
    return forcing, impossible


def unsupported_fields(kind: str, config: dict, version: Version) -> list[str]:
    """Messages for fields (or values) with non-default values that this server does not know yet.

    Each must stop the plan: since 2.14 a strict server refuses unknown fields, but older ones
    drop them without a word (jetstream_api.go unmarshalRequest), which would leave a perpetual diff.
    """
    rules = _rules(kind)
    running = ".".join(map(str, version))
    messages = []

    def needs(what: str, since: Version) -> None:
        messages.append(f"{what} needs nats-server {format_version(since)} or newer; the server is {running}")

    for key in config.keys() & _version_sensitive(kind, tuple(version)):
        rule, value = rules[key], config[key]
        if not _at_least(version, rule.since):
            if not _is_default(rule, key, value):
                needs(key, rule.since)
            continue
        since = VALUE_SINCE.get((kind, key, value)) if isinstance(value, str) else None
        if since and not _at_least(version, since):
            needs(f"{key} {value!r}", since)
    if kind == "stream":
        entries = [("mirror", config.get("mirror"))] + [("sources", s) for s in config.get("sources") or []]
        for where, entry in entries:
            for inner, since in SOURCE_KEY_SINCE.items():
                if entry and entry.get(inner) and not _at_least(version, since):
                    needs(f"{where}.{inner}", since)
    return sorted(set(messages))


@lru_cache(maxsize=None)
def _version_sensitive(kind: str, version: Version) -> frozenset[str]:
    """The fields this server does not know, and those with values it may not know: all unsupported_fields
    has to look at (a plan asks for every resource, so once per server version)."""
    rules = _rules(kind)
    unknown = {key for key, rule in rules.items() if not _at_least(version, rule.since)}
    return frozenset(unknown | {key for k, key, _ in VALUE_SINCE if k == kind and key in rules})


def set_via(kind: str, config: dict, via: str) -> dict:
    """The fields of ``config`` with a non-default value that only ``via`` sets ("pause", "update_after_create")."""
    rules = _rules(kind)
    return {
        k: v for k, v in config.items()
        if k in rules and rules[k].via == via and not _is_default(rules[k], k, v)
    }


def fields_via(kind: str, via: str) -> frozenset[str]:
    """The fields that only ``via`` sets ("pause", "update_after_create")."""
    return frozenset(k for k, rule in _rules(kind).items() if rule.via == via)


def create_refusals(kind: str, config: dict) -> list[str]:
    """What the create request refuses although the same config is valid on an existing resource."""
    if kind != "stream":
        return []
    problems = []
    if config.get("mirror_direct") and not config.get("mirror"):
        problems.append("mirror_direct needs a mirror")
    return problems


# -- the smallest config that completes to a given one ---------------------------------------


def minimal_stream(config: dict, version: Version | None = None, streams: Mapping[str, dict] | None = None) -> dict:
    """The smallest stream config whose completion equals this one's: only what a person chose.

    complete_stream is the oracle, so a default that depends on other fields (duplicate_window
    from max_age, subjects from the name, what sealed implies) is dropped exactly when the
    server would fill it in by itself. ``name`` is always kept. Arguments as complete_stream's.
    """
    return _minimal(config, lambda c: complete_stream(c, version, streams), keep=("name",))


def minimal_consumer(config: dict, stream_config: dict, version: Version | None = None) -> dict:
    """The smallest consumer config whose completion equals this one's (ack_wait from backoff,
    max_waiting only for pulls, limits from the stream...). ``durable_name`` is always kept."""
    return _minimal(config, lambda c: complete_consumer(c, stream_config, version), keep=("durable_name",))


def _minimal(config: dict, complete: Callable[[dict], dict], keep: tuple[str, ...]) -> dict:
    target = comparable(complete(config))
    minimal = {k: v for k, v in config.items() if v is not None}
    # One field at a time, in name order so the result is deterministic: a field goes when the
    # completion without it is still the target.
    for key in sorted(minimal):
        if key in keep:
            continue
        trial = {k: v for k, v in minimal.items() if k != key}
        if comparable(complete(trial)) == target:
            minimal = trial
    return minimal
