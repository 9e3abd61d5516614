"""The JetStream rules: the server's defaults and side effects, what an update may change, one-way flags, versions.

Each field's own facts are its entry in fields.py; this module applies them, and holds what
involves several fields at once. Everything here was read in nats-server's own source
(server/stream.go checkStreamCfg and configUpdateCheck, server/consumer.go setConsumerConfigDefaults,
checkConsumerCfg and checkNewConsumerConfig, server/jetstream_api.go, server/jetstream_versioning.go)
and the version of each field from the tags in which its JSON name first appears; the rules that
matter most are proven against a real server by tests/test_rules_server.py.
What the server refuses of a config as a whole (fields that do not go together) is in refusals.py.

Values are the API's own JSON: durations in nanoseconds, sizes in bytes, enums as strings.
A version is a tuple (major, minor, patch); ``None`` means "the newest server".
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Callable, Mapping

from . import fields
from .errors import TopologyError
from .fields import APPLIED_KEY, SECOND, UNIT_BY_NAME, UNLIMITED, UNORDERED_FIELDS, Field, Version, at_least

MINUTE = 60 * SECOND
# StreamDefaultDuplicatesWindow (stream.go): a stream's duplicate window unless max_age is shorter.
DEFAULT_DUPLICATE_WINDOW = 2 * MINUTE


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


# The fields whose rules a config follows, by kind (a bucket's config is its stream's).
RULES: dict[str, dict[str, Field]] = {"stream": fields.STREAM, "consumer": fields.CONSUMER}

# What plans ask of the registry for every resource, worked out once from it: the fields whose zero value the
# server omits (no default), each with its own zero if it has one besides Go's (None: it has not), those in
# timestamps, those where 0 is reported as unlimited (-1).
OMITTED_WHEN_ZERO = {kind: {k: fields.ZERO_VALUES.get(k) for k, f in table.items() if f.default is None}
                     for kind, table in RULES.items()}
TIMESTAMP_FIELDS = frozenset(name for name, unit in UNIT_BY_NAME.items() if unit == "timestamp")
_ZERO_IS_UNLIMITED = tuple(k for k, f in fields.STREAM.items() if f.zero_is_unlimited)

# What .get(key, ABSENT) gives for a field a config does not have: unlike None, equal to no value it could hold.
ABSENT = object()

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
    cfg = _known_to(config, "stream", version)
    _fill_defaults(cfg, "stream", version)
    for key in _ZERO_IS_UNLIMITED:
        if cfg.get(key) == 0:  # reported as -1
            cfg[key] = UNLIMITED
    if cfg.get("num_replicas") == 0:
        cfg["num_replicas"] = 1
    mirror, sources = cfg.get("mirror"), cfg.get("sources")
    if not cfg.get("subjects") and not mirror and not sources:
        cfg["subjects"] = [cfg["name"]]
    # duplicate_window: 2m, or max_age when shorter; none for a mirror, nor (since 2.14) for a
    # stream with sources.
    wants_window = not mirror and not (sources and at_least(version, (2, 14, 0)))
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
    return _drop_omitted(cfg, "stream")


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
    cfg = _known_to(config, "consumer", version)  # a new dict, as in complete_stream
    _fill_defaults(cfg, "consumer", version)
    limits = stream_config.get("consumer_limits") or {}
    if cfg.get("durable_name") and not cfg.get("name") and at_least(version, DURABLE_NAMES_ITSELF):
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
    return _drop_omitted(cfg, "consumer")


DURABLE_NAMES_ITSELF = (2, 9, 0)  # since when a durable's name is its durable_name


def completes_as_newest(version: Version | None) -> bool:
    """Whether complete_consumer gives for the server line ``version`` what it gives for the newest (None): the
    line knows every stream and consumer field (so it has every default too) and names a durable after its
    durable_name. A consumer's config also follows its stream's consumer_limits, which such a line completes
    the same. (A test checks it on generated configs of every line.)"""
    return _completes_as_newest(_hashable(version))


@lru_cache(maxsize=None)
def _completes_as_newest(version: Version | None) -> bool:
    return not _unknown_fields("stream", version) and not _unknown_fields("consumer", version) and at_least(
        version, DURABLE_NAMES_ITSELF)


def _known_to(cfg: dict, kind: str, version: Version | None) -> dict:
    """Drop default-valued fields the server does not know: strict servers refuse unknown fields.

    A field set to something else stays, for unsupported_fields to report."""
    unknown = _unknown_fields(kind, _hashable(version))
    if not unknown:
        return dict(cfg)
    rules = RULES[kind]
    return {k: v for k, v in cfg.items() if k not in unknown or not _is_default(rules[k], k, v)}


def _fill_defaults(cfg: dict, kind: str, version: Version | None) -> None:
    for key, default in _defaults(kind, _hashable(version)):
        if key not in cfg:
            cfg[key] = default  # shared until _drop_omitted copies every dict and list


def _hashable(version: Version | None) -> Version | None:
    return version if version is None or type(version) is tuple else tuple(version)  # a saved plan's is a list


@lru_cache(maxsize=None)
def _unknown_fields(kind: str, version: Version | None) -> frozenset[str]:
    """The fields of ``kind`` that the server line ``version`` does not know (once per line: a plan asks for every resource)."""
    table = RULES[kind] if kind in RULES else fields.TYPES[kind].fields  # "source": a mirror's or source's own
    return frozenset(k for k, rule in table.items() if not at_least(version, rule.since))


@lru_cache(maxsize=None)
def _version_sensitive(kind: str, version: Version | None) -> frozenset[str]:
    """The fields unsupported_fields looks at for the server line ``version``: those it does not know,
    and those with a value it may not know yet."""
    return _unknown_fields(kind, version) | {
        k for k, rule in RULES[kind].items() if any(not at_least(version, since) for since in rule.value_since.values())}


@lru_cache(maxsize=None)
def _defaults(kind: str, version: Version | None) -> tuple[tuple[str, Any], ...]:
    """(field, default) of every field with a default that the server line ``version`` knows."""
    return tuple((k, rule.default) for k, rule in RULES[kind].items() if rule.default is not None and at_least(version, rule.since))


def _is_default(rule: Field, key: str, value: Any) -> bool:
    return _is_zero(key, value) or (rule.default is not None and value == rule.default)


def _is_zero(key: str, value: Any) -> bool:
    """The zero value of a field, which the server omits where its struct says ``omitempty``."""
    # A field's own zero ("none" of priority_policy); "none" is a real value of ack_policy and
    # compression, which have defaults and are always reported.
    # Go's zero values (null, false, 0, "", [], {}) are exactly what is false in plain data.
    return not value or (key in fields.ZERO_VALUES and value == fields.ZERO_VALUES[key])


def _drop_omitted(cfg: dict, kind: str) -> dict:
    """Remove what the server omits (omitempty zero values), at any depth, and normalise times."""
    zeros = OMITTED_WHEN_ZERO[kind]
    out = {}
    for key, value in cfg.items():
        kind_of_value = type(value)
        if kind_of_value is dict or kind_of_value is list or key in TIMESTAMP_FIELDS:  # the rest stay as they are
            value = _normalise(key, value)
        # _is_zero written out: this runs for every field of every resource, twice a plan
        if key in zeros and (not value or value == zeros[key]):
            continue
        out[key] = value
    return out


def _normalise(key: str, value: Any) -> Any:
    if UNIT_BY_NAME.get(key) == "timestamp" and value is not None:
        return _utc_timestamp(value)
    if isinstance(value, dict):
        if key == "metadata":
            return dict(value)
        inner = {k: _normalise(k, v) for k, v in value.items()}
        kept = fields.REPORTED_EMPTY.get(key, ())  # no omitempty in the server's struct
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


def strip_live(config: dict, kind: str, expected: dict | None = None) -> dict:
    """A config as the server reports it -> the comparable form.

    Drops what the server manages (``created``, ``_nats.*`` metadata, the retired
    ``template_owner``), the record of what apply sent (drift.py), an empty metadata map, and zero
    values the server omits; keeps everything a person controls. Times are normalised to UTC.

    ``expected``: the config the plan asks for (complete_stream's or complete_consumer's). A live config
    that already equals it is its own comparable form, as _drop_omitted leaves its own output as it is:
    that is most live configs of most plans, and skips a sixth of a plan of no changes.
    """
    cfg = dict(config)  # a copy, then two pops: cheaper than a comprehension over every field
    cfg.pop("created", None)
    cfg.pop("template_owner", None)
    cfg["metadata"] = {k: v for k, v in (cfg.get("metadata") or {}).items()
                       if not k.startswith(SERVER_METADATA_PREFIX) and k != APPLIED_KEY}
    _rules(kind)  # an unknown kind is refused
    if expected is not None and cfg == expected:
        return cfg
    return _drop_omitted(cfg, kind)


def declarable_consumer(config: dict) -> bool:
    """Whether a topology can declare this live consumer: a durable that a person or an app made.

    Ephemerals are a running client's state. The server makes its own consumers on the origin of
    a mirror or a source (JS_SRC_..., `sourcing: true`, or `direct: true` on servers before
    sourcing consumers), fields a topology cannot hold, and removes them with the sourcing stream.
    """
    return bool(config.get("durable_name")) and not (config.get("sourcing") or config.get("direct"))


def _rules(kind: str) -> dict[str, Field]:
    if kind not in RULES:
        raise TopologyError(f"no JetStream rules for {kind!r}; expected one of {', '.join(RULES)}")
    return RULES[kind]


# -- what an update may do -------------------------------------------------------------------


def _comparable_value(key: str, value: Any) -> Any:
    return sorted(value) if key in UNORDERED_FIELDS and isinstance(value, list) else value


def comparable(config: dict) -> dict:
    """The config with lists whose order means nothing to the server sorted, so == compares what matters; the
    config itself when it has none (most have none: the smallest config of a create compares dozens)."""
    unordered = [k for k in UNORDERED_FIELDS if isinstance(config.get(k), list)]
    if not unordered:
        return config
    return {**config, **{k: sorted(config[k]) for k in unordered}}


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
    line = _hashable(version)
    sensitive = _version_sensitive(kind, line)
    source_fields = _unknown_fields("source", line) if kind == "stream" else frozenset()
    if not sensitive and not source_fields:
        return []  # a line that knows every field and value: most plans, for every resource
    messages = []

    def needs(what: str, since: Version) -> None:
        messages.append(needs_newer(what, since, version))

    for key in config.keys() & sensitive:
        rule, value = rules[key], config[key]
        if not at_least(version, rule.since):
            if not _is_default(rule, key, value):
                needs(key, rule.since)
            continue
        since = rule.value_since.get(value) if isinstance(value, str) else None
        if since and not at_least(version, since):
            needs(f"{key} {value!r}", since)
    if source_fields:
        entries = [("mirror", config.get("mirror"))] + [("sources", s) for s in config.get("sources") or []]
        for where, entry in entries:
            for inner in sorted(source_fields):
                if entry and entry.get(inner):
                    needs(f"{where}.{inner}", fields.TYPES["source"].fields[inner].since)
    return sorted(set(messages))


def unsupported_settings(kind: str, settings: dict, version: Version) -> list[str]:
    """unsupported_fields for a KV bucket's or object store's settings, named as the file names them
    (limit_marker_ttl, not the stream fields it sets)."""
    table = fields.RESOURCES[kind]
    return sorted(needs_newer(key, table[key].since, version) for key in settings
                  if key in table and not at_least(version, table[key].since))


def needs_newer(what: str, since: Version, version: Version) -> str:
    """The plan error for a field (or value) younger than the server: "pause_until needs nats-server 2.11 ..."."""
    return f"{what} needs nats-server {format_version(since)} or newer; the server is {'.'.join(map(str, version))}"


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
    return _minimal(config, lambda c: complete_stream(c, version, streams), "stream", version, keep=("name",))


def minimal_consumer(config: dict, stream_config: dict, version: Version | None = None) -> dict:
    """The smallest consumer config whose completion equals this one's (ack_wait from backoff,
    max_waiting only for pulls, limits from the stream...). ``durable_name`` is always kept."""
    return _minimal(config, lambda c: complete_consumer(c, stream_config, version), "consumer", version,
                    keep=("durable_name",))


# The fields that complete_stream and complete_consumer can give a value other than their registry default (or
# none) when a config leaves them out: each one their code sets from other fields. Leaving out any other field has
# a known result, so _minimal completes a config without a field only for these; tests/test_rules.py checks its
# result against completing without every field.
_SET_BY_COMPLETION = {
    "stream": frozenset({"subjects", "duplicate_window", "allow_msg_ttl", "allow_rollup_hdrs", "deny_purge", "discard",
                         "deny_delete", "mirror_direct"}),
    "consumer": frozenset({"name", "max_waiting", "ack_wait", "max_ack_pending", "inactive_threshold",
                           "priority_timeout", "flow_control", "idle_heartbeat"}),
}


def _minimal(config: dict, complete: Callable[[dict], dict], kind: str, version: Version | None,
             keep: tuple[str, ...]) -> dict:
    target = comparable(complete(config))
    minimal = {k: v for k, v in config.items() if v is not None}
    table, derived = RULES[kind], _SET_BY_COMPLETION[kind]
    # One field at a time, in name order so the result is deterministic: a field goes when the
    # completion without it is still the target. Without a field that completion does not set itself, the
    # completion has the field's default (a line that knows it) or nothing, and is otherwise the same: such a
    # field goes when it holds its default, and stays when it holds something else that the target has.
    for key in sorted(minimal):
        if key in keep:
            continue
        rule, value = table.get(key), minimal[key]
        if rule is not None and key not in derived:
            if rule.default is not None and at_least(version, rule.since) and value == rule.default:
                del minimal[key]
                continue
            if target.get(key, ABSENT) == value and not _is_default(rule, key, value):
                continue
        trial = {k: v for k, v in minimal.items() if k != key}
        if comparable(complete(trial)) == target:
            minimal = trial
    return minimal
