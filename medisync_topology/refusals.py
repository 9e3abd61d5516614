"""Every config the server refuses to create or update, in one place: part of the JetStream rules.

Each check was read in nats-server's own code, lines 2.10 to 2.15: server/stream.go checkStreamCfg
and configUpdateCheck, server/consumer.go setConsumerConfigDefaults, checkConsumerCfg and the
workqueue checks of addConsumerWithAssignment. A check looks at the *complete* config (the one
rules.complete_stream / complete_consumer make, which is what apply sends), as the server checks
the config after filling in its defaults. Each names the field a person changes, the server's
reason in plain words, the err_code the server answers and the server lines that refuse it;
tests/test_rules_server.py proves every one on every installed line.

``validate`` reports those the file alone decides (no ``version``: the newest line); ``plan``
reports them for the connected server's line, and the ones that depend on live state (an origin
stream the file does not declare, consumers the topology does not manage). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterable, Mapping

from . import errors, subjects

Version = tuple[int, int, int]
FieldPath = tuple  # a key path inside one stream or consumer config, e.g. ("sources", 1, "filter_subject")

MS = 10**6
SECOND = 10**9


@dataclass(frozen=True)
class Refusal:
    """One config the server refuses. ``find(config, context)`` gives the paths at fault.

    ``context``: for a stream, the configs of other streams by name (its origins); for a
    consumer, its stream's complete config. ``since`` / ``until``: the first server line that
    refuses it, and the first that no longer does (None: still refused). ``needs``: a field of the
    config that ``find`` finds nothing without (absent or zero), so that most refusals of most configs
    are passed over without a call: 6,000 resources meet 60 refusals each in every plan.
    """

    kind: str
    name: str
    err_code: int
    reason: str
    find: Callable[[dict, Any], Iterable[FieldPath]]
    since: Version = (2, 10, 0)
    until: Version | None = None
    needs: str | None = None

    def applies_to(self, version: Version | None) -> bool:
        if version is None:
            return self.until is None
        return tuple(version) >= self.since and (self.until is None or tuple(version) < self.until)

    def message(self) -> str:
        return f"{self.reason}; the server refuses it (err_code {self.err_code})"


@dataclass(frozen=True)
class Found:
    """A refusal found in one config, at ``path`` inside it."""

    refusal: Refusal
    path: FieldPath

    @property
    def message(self) -> str:
        return self.refusal.message()


def _num(config: Mapping, key: str) -> int:
    """A whole-number field, 0 when absent or not a number (the schema reports those)."""
    value = config.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _when(condition: bool, *path) -> list[FieldPath]:
    return [tuple(path)] if condition else []


# -- streams ----------------------------------------------------------------------------------


def _entries(cfg: dict) -> list[tuple[FieldPath, dict]]:
    """(path, entry) of the mirror and every source."""
    found = [(("mirror",), cfg["mirror"])] if isinstance(cfg.get("mirror"), dict) else []
    return found + [(("sources", i), s) for i, s in enumerate(cfg.get("sources") or []) if isinstance(s, dict)]


def _transform_sources(entry: dict) -> list[str]:
    return [t.get("src") or ">" for t in entry.get("subject_transforms") or [] if isinstance(t, dict)]


def _source_identity(entry: dict) -> tuple:
    # StreamSource.composeIName: name, external API, consumer name, filter or transforms.
    transforms = entry.get("subject_transforms") or []
    if transforms:
        wanted = tuple((t.get("src") or ">", t.get("dest") or ">") for t in transforms)
    else:
        wanted = ((entry.get("filter_subject") or ">", ">"),)
    return (entry.get("name"), (entry.get("external") or {}).get("api"), (entry.get("consumer") or {}).get("name"), wanted)


def _duplicate_sources(cfg: dict, _) -> list[FieldPath]:
    seen, found = set(), []
    for i, entry in enumerate(cfg.get("sources") or []):
        if isinstance(entry, dict):
            identity = _source_identity(entry)
            if identity in seen:
                found.append(("sources", i))
            seen.add(identity)
    return found


def _overlapping_transforms(cfg: dict, kind: str) -> list[FieldPath]:
    found = []
    for path, entry in _entries(cfg):
        if path[0] != kind:
            continue
        sources = [s for s in _transform_sources(entry) if not subjects.subject_problem(s)]
        for i, a in enumerate(sources):
            # A mirror's transforms may not collide at all; a source's not be subsets of each other.
            clash = subjects.subjects_overlap if kind == "mirror" else (
                lambda x, y: subjects.subject_is_subset(x, y) or subjects.subject_is_subset(y, x))
            if any(clash(a, b) for b in sources[:i]):
                found.append(path + ("subject_transforms", i))
    return found


def _filter_and_transforms(cfg: dict, kind: str) -> list[FieldPath]:
    return [path + ("filter_subject",) for path, entry in _entries(cfg)
            if path[0] == kind and entry.get("filter_subject") and entry.get("subject_transforms")]


def _smaller_than_origin(cfg: dict, streams: Mapping[str, dict] | None, kind: str) -> list[FieldPath]:
    # The server compares only with an origin it can see (same account, not external), both limited.
    mine = _num(cfg, "max_msg_size")
    found = []
    for path, entry in _entries(cfg):
        origin = (streams or {}).get(entry.get("name")) if not entry.get("external") else None
        if path[0] == kind and origin is not None:
            theirs = _num(origin, "max_msg_size")
            if mine > 0 and theirs > 0 and mine < theirs:
                found.append(("max_msg_size",))
    return found


def _republish_cycle(cfg: dict, _) -> list[FieldPath]:
    dest = (cfg.get("republish") or {}).get("dest")
    if not dest or subjects.subject_problem(dest):
        return []
    own = [s for s in cfg.get("subjects") or [] if s and not subjects.subject_problem(s)]
    return _when(any(subjects.subjects_overlap(dest, s) for s in own), "republish", "dest")


def _bad_transforms(cfg: dict, kind: str) -> list[FieldPath]:
    """Paths of the transforms of ``kind`` ("subject_transform", "republish", "mirror", "sources") that
    the server cannot make."""
    if kind in ("subject_transform", "republish"):
        transform = cfg.get(kind) if isinstance(cfg.get(kind), dict) else {}
        return _when(bool(transform) and bool(subjects.transform_problem(transform.get("src") or "", transform.get("dest") or "")),
                     kind, "dest")
    found = []
    for path, entry in _entries(cfg):
        if path[0] == kind:
            for i, t in enumerate(entry.get("subject_transforms") or []):
                if isinstance(t, dict) and subjects.transform_problem(t.get("src") or "", t.get("dest") or ""):
                    found.append(path + ("subject_transforms", i, "dest"))
    return found


def _transform_refusal(name: str, err_code: int, what: str, kind: str, **lines) -> Refusal:
    return Refusal("stream", name, err_code,
                   f"{what} cannot map src to dest: a '>' in one needs a '>' in the other, dest has no '*', and "
                   "{{wildcard(n)}} names one of src's '*'", lambda c, _: _bad_transforms(c, kind), needs=kind, **lines)


def _mirror_with(field: str) -> Callable[[dict, Any], list[FieldPath]]:
    return lambda cfg, _: _when(bool(cfg.get("mirror")) and bool(cfg.get(field)), field)


STREAM_REFUSALS: tuple[Refusal, ...] = (
    Refusal("stream", "max_age_too_short", 10052, "max_age must be 0 (no limit) or at least 100ms",
            lambda c, _: _when(0 < _num(c, "max_age") < 100 * MS, "max_age"), needs="max_age"),
    Refusal("stream", "duplicate_window_too_short", 10052, "duplicate_window must be at least 100ms",
            lambda c, _: _when(0 < _num(c, "duplicate_window") < 100 * MS, "duplicate_window")),
    Refusal("stream", "duplicate_window_over_max_age", 10052, "duplicate_window may not be longer than max_age",
            lambda c, _: _when(_num(c, "max_age") > 0 and _num(c, "duplicate_window") > _num(c, "max_age"), "duplicate_window"),
            needs="max_age"),
    Refusal("stream", "rollups_with_deny_purge", 10052,
            "roll-ups (allow_rollup_hdrs, also implied by subject_delete_marker_ttl and allow_msg_schedules) purge "
            "messages, so they cannot go with deny_purge",
            lambda c, _: _when(bool(c.get("deny_purge") and c.get("allow_rollup_hdrs")), "deny_purge"), needs="deny_purge"),
    Refusal("stream", "counter_with_discard_new", 10052, "a counter stream (allow_msg_counter) cannot use discard: new",
            lambda c, _: _when(bool(c.get("allow_msg_counter")) and c.get("discard") == "new", "discard"),
            since=(2, 12, 0), needs="allow_msg_counter"),
    Refusal("stream", "counter_with_msg_ttl", 10052,
            "a counter stream (allow_msg_counter) cannot use message TTLs (allow_msg_ttl, subject_delete_marker_ttl)",
            lambda c, _: _when(bool(c.get("allow_msg_counter") and c.get("allow_msg_ttl")), "allow_msg_counter"),
            since=(2, 12, 0), needs="allow_msg_counter"),
    Refusal("stream", "counter_with_schedules", 10052, "a counter stream (allow_msg_counter) cannot schedule messages",
            lambda c, _: _when(bool(c.get("allow_msg_counter") and c.get("allow_msg_schedules")), "allow_msg_schedules"),
            since=(2, 14, 0), needs="allow_msg_counter"),
    Refusal("stream", "counter_needs_limits", 10052, "a counter stream (allow_msg_counter) needs retention: limits",
            lambda c, _: _when(bool(c.get("allow_msg_counter")) and c.get("retention", "limits") != "limits", "retention"),
            since=(2, 12, 0), needs="allow_msg_counter"),
    Refusal("stream", "discard_new_per_subject_needs_discard_new", 10052, "discard_new_per_subject needs discard: new",
            lambda c, _: _when(bool(c.get("discard_new_per_subject")) and c.get("discard") != "new", "discard_new_per_subject"),
            needs="discard_new_per_subject"),
    Refusal("stream", "discard_new_per_subject_needs_limit", 10052, "discard_new_per_subject needs max_msgs_per_subject",
            lambda c, _: _when(bool(c.get("discard_new_per_subject")) and _num(c, "max_msgs_per_subject") <= 0,
                               "discard_new_per_subject"), needs="discard_new_per_subject"),
    Refusal("stream", "delete_marker_ttl_too_short", 10052, "subject_delete_marker_ttl must be at least 1s",
            lambda c, _: _when(0 < _num(c, "subject_delete_marker_ttl") < SECOND, "subject_delete_marker_ttl"),
            since=(2, 11, 0), needs="subject_delete_marker_ttl"),
    Refusal("stream", "schedules_with_discard_new", 10052, "a stream that schedules messages cannot use discard: new",
            lambda c, _: _when(bool(c.get("allow_msg_schedules")) and c.get("discard") == "new", "discard"),
            since=(2, 14, 0), needs="allow_msg_schedules"),
    Refusal("stream", "async_needs_file", 10052, "persist_mode: async works only with storage: file",
            lambda c, _: _when(c.get("persist_mode") == "async" and c.get("storage") == "memory", "persist_mode"),
            since=(2, 12, 0), needs="persist_mode"),
    Refusal("stream", "async_not_replicated", 10052, "persist_mode: async does not work on replicated streams",
            lambda c, _: _when(c.get("persist_mode") == "async" and _num(c, "num_replicas") > 1, "persist_mode"),
            since=(2, 12, 0), needs="persist_mode"),
    Refusal("stream", "async_not_atomic", 10052, "persist_mode: async does not work with atomic batch publishing (allow_atomic)",
            lambda c, _: _when(c.get("persist_mode") == "async" and bool(c.get("allow_atomic")), "persist_mode"),
            since=(2, 12, 0), needs="persist_mode"),
    Refusal("stream", "all_subjects_single_replica", 10052, "a stream capturing '>' must have a single replica",
            lambda c, _: _when(">" in (c.get("subjects") or []) and _num(c, "num_replicas") > 1, "num_replicas"),
            needs="subjects"),
    Refusal("stream", "mirror_first_seq", 10143, "a mirror cannot set first_seq: it takes its origin's sequences",
            _mirror_with("first_seq"), needs="mirror"),
    Refusal("stream", "mirror_counter", 10173, "a mirror cannot be a counter stream (allow_msg_counter)",
            _mirror_with("allow_msg_counter"), needs="mirror", since=(2, 12, 0)),
    Refusal("stream", "mirror_atomic", 10198, "a mirror cannot accept atomic batch publishes (allow_atomic)",
            _mirror_with("allow_atomic"), needs="mirror", since=(2, 12, 0)),
    Refusal("stream", "mirror_batched", 10209, "a mirror cannot accept batch publishes (allow_batched)",
            _mirror_with("allow_batched"), needs="mirror", since=(2, 14, 0)),
    Refusal("stream", "mirror_schedules", 10186, "a mirror cannot schedule messages (allow_msg_schedules)",
            _mirror_with("allow_msg_schedules"), needs="mirror", since=(2, 12, 0)),
    Refusal("stream", "mirror_delete_markers", 10052,
            "a mirror cannot write subject delete markers (they would take sequence numbers its origin does not have)",
            _mirror_with("subject_delete_marker_ttl"), needs="mirror", since=(2, 11, 0)),
    Refusal("stream", "sources_with_schedules", 10187, "a stream with sources cannot schedule messages (allow_msg_schedules)",
            lambda c, _: _when(bool(c.get("sources") and c.get("allow_msg_schedules")), "allow_msg_schedules"),
            since=(2, 12, 0), needs="allow_msg_schedules"),
    Refusal("stream", "mirror_filter_and_transforms", 10150,
            "a mirror takes filter_subject or subject_transforms, not both (put the filter into a transform's src)",
            lambda c, _: _filter_and_transforms(c, "mirror"), needs="mirror"),
    Refusal("stream", "source_filter_and_transforms", 10144,
            "a source takes filter_subject or subject_transforms, not both (put the filter into a transform's src)",
            lambda c, _: _filter_and_transforms(c, "sources"), needs="sources"),
    Refusal("stream", "mirror_transforms_overlap", 10152, "a mirror's subject_transforms may not overlap each other",
            lambda c, _: _overlapping_transforms(c, "mirror"), needs="mirror"),
    Refusal("stream", "source_transforms_overlap", 10147, "a source's subject_transforms may not overlap each other",
            lambda c, _: _overlapping_transforms(c, "sources"), needs="sources"),
    Refusal("stream", "duplicate_source", 10140, "the same source (stream, filter and transforms) is listed twice",
            _duplicate_sources, needs="sources"),
    Refusal("stream", "republish_cycle", 10052, "republish.dest overlaps the stream's own subjects: republished messages would be stored again",
            _republish_cycle, needs="republish"),
    _transform_refusal("republish_transform", 10052, "republish", "republish"),
    _transform_refusal("subject_transform_invalid", 10156, "subject_transform", "subject_transform", since=(2, 11, 0)),
    # 2.10 checks transforms only when it makes the stream: a create error.
    _transform_refusal("subject_transform_invalid_create", 10049, "subject_transform", "subject_transform", until=(2, 11, 0)),
    _transform_refusal("mirror_transform_invalid", 10154, "a mirror's subject_transforms", "mirror", since=(2, 11, 0)),
    _transform_refusal("mirror_transform_invalid_create", 10049, "a mirror's subject_transforms", "mirror", until=(2, 11, 0)),
    _transform_refusal("source_transform_invalid", 10146, "a source's subject_transforms", "sources", since=(2, 11, 0)),
    _transform_refusal("source_transform_invalid_create", 10049, "a source's subject_transforms", "sources", until=(2, 11, 0)),
    Refusal("stream", "mirror_max_msg_size", 10030,
            "a mirror's max_msg_size must be at least its origin's, or it could not hold every message",
            lambda c, streams: _smaller_than_origin(c, streams, "mirror"), needs="mirror"),
    Refusal("stream", "source_max_msg_size", 10046,
            "max_msg_size must be at least that of each stream it sources from, or it could not hold every message",
            lambda c, streams: _smaller_than_origin(c, streams, "sources"), needs="sources"),
)


# -- consumers --------------------------------------------------------------------------------


def _push(c: dict) -> bool:
    return bool(c.get("deliver_subject"))


def _filters(c: dict) -> list[str]:
    if c.get("filter_subject"):
        return [c["filter_subject"]]
    return [f for f in c.get("filter_subjects") or [] if isinstance(f, str)]


def _deliver_policy(c: dict, _) -> list[FieldPath]:
    """The start position must fit the deliver policy (checkConsumerCfg, err 10094)."""
    policy = c.get("deliver_policy", "all")
    seq, time = _num(c, "opt_start_seq") > 0, bool(c.get("opt_start_time"))
    if policy == "by_start_sequence":
        return _when(not seq, "deliver_policy") + _when(time, "opt_start_time")
    if policy == "by_start_time":
        return _when(not time, "deliver_policy") + _when(seq, "opt_start_seq")
    found = _when(seq, "opt_start_seq") + _when(time, "opt_start_time")
    return found + _when(policy == "last_per_subject" and not _filters(c), "deliver_policy")


def _overlapping_filters(c: dict, _) -> list[FieldPath]:
    found = []
    filters = [f for f in c.get("filter_subjects") or [] if isinstance(f, str) and not subjects.subject_problem(f)]
    for i, a in enumerate(filters):
        if any(subjects.subject_is_subset(a, b) or subjects.subject_is_subset(b, a) for b in filters[:i]):
            found.append(("filter_subjects", i))
    return found


def _delivers_into_stream(c: dict, stream: dict) -> list[FieldPath]:
    target = c.get("deliver_subject")
    if not target or subjects.subject_problem(target):
        return []
    own = [s for s in stream.get("subjects") or [] if s and not subjects.subject_problem(s)]
    return _when(any(subjects.subject_is_subset(target, s) for s in own), "deliver_subject")


def _limit(stream: dict, key: str) -> int:
    return _num(stream.get("consumer_limits") or {}, key)


CONSUMER_REFUSALS: tuple[Refusal, ...] = (
    Refusal("consumer", "deliver_policy_start", 10094,
            "the deliver policy and the start position disagree: by_start_sequence needs opt_start_seq, by_start_time "
            "needs opt_start_time, other policies take neither, and last_per_subject needs a filter subject",
            _deliver_policy),
    Refusal("consumer", "replicas_over_stream", 10126, "a consumer cannot have more replicas than its stream",
            lambda c, s: _when(_num(c, "num_replicas") > max(_num(s, "num_replicas"), 1), "num_replicas"),
            needs="num_replicas"),
    Refusal("consumer", "replicas_match_stream", 10134,
            "a consumer of an interest or workqueue stream must have its stream's num_replicas (or leave it unset)",
            lambda c, s: _when(s.get("retention") in ("interest", "workqueue") and _num(c, "num_replicas") > 0
                               and _num(c, "num_replicas") != max(_num(s, "num_replicas"), 1), "num_replicas"),
            needs="num_replicas"),
    Refusal("consumer", "backoff_over_max_deliver", 10116,
            "backoff has more steps than max_deliver: a message is never delivered more than max_deliver times",
            lambda c, _: _when(bool(c.get("backoff")) and _num(c, "max_deliver") not in (0, -1)
                               and len(c["backoff"]) > _num(c, "max_deliver"), "backoff"), needs="backoff"),
    Refusal("consumer", "push_max_waiting", 10080, "a push consumer cannot set max_waiting",
            lambda c, _: _when(_push(c) and _num(c, "max_waiting") != 0, "max_waiting"), needs="deliver_subject"),
    Refusal("consumer", "push_ack_none_max_ack_pending", 10082,
            "a push consumer with ack_policy none cannot have max_ack_pending (nor a stream consumer_limits.max_ack_pending)",
            lambda c, _: _when(_push(c) and c.get("ack_policy") == "none" and _num(c, "max_ack_pending") > 0, "max_ack_pending"),
            needs="deliver_subject"),
    Refusal("consumer", "push_small_heartbeat", 10083, "idle_heartbeat must be at least 100ms",
            lambda c, _: _when(_push(c) and 0 < _num(c, "idle_heartbeat") < 100 * MS, "idle_heartbeat"),
            needs="deliver_subject"),
    Refusal("consumer", "deliver_cycle", 10081,
            "deliver_subject is one of the stream's own subjects: delivered messages would be stored again",
            _delivers_into_stream, needs="deliver_subject"),
    Refusal("consumer", "pull_rate_limit", 10086, "a pull consumer cannot have rate_limit_bps",
            lambda c, _: _when(not _push(c) and _num(c, "rate_limit_bps") > 0, "rate_limit_bps"), needs="rate_limit_bps"),
    Refusal("consumer", "pull_heartbeat", 10088, "idle_heartbeat needs a push consumer (deliver_subject)",
            lambda c, _: _when(not _push(c) and _num(c, "idle_heartbeat") > 0 and c.get("ack_policy") != "flow_control",
                               "idle_heartbeat"), needs="idle_heartbeat"),
    Refusal("consumer", "pull_flow_control", 10089, "flow_control needs a push consumer (deliver_subject)",
            lambda c, _: _when(not _push(c) and bool(c.get("flow_control")) and c.get("ack_policy") != "flow_control",
                               "flow_control"), needs="flow_control"),
    Refusal("consumer", "pull_max_expires_too_short", 10115, "max_expires must be at least 1ms",
            lambda c, _: _when(not _push(c) and 0 < _num(c, "max_expires") < MS, "max_expires"), needs="max_expires"),
    Refusal("consumer", "flow_control_needs_heartbeat", 10108, "flow_control needs idle_heartbeat",
            lambda c, _: _when(bool(c.get("flow_control")) and _num(c, "idle_heartbeat") == 0, "flow_control"),
            needs="flow_control"),
    Refusal("consumer", "max_ack_pending_over_limit", 10121, "max_ack_pending exceeds the stream's consumer_limits.max_ack_pending",
            lambda c, s: _when(_limit(s, "max_ack_pending") > 0 and _num(c, "max_ack_pending") > _limit(s, "max_ack_pending"),
                               "max_ack_pending"), needs="max_ack_pending"),
    Refusal("consumer", "inactive_threshold_over_limit", 10153,
            "inactive_threshold exceeds the stream's consumer_limits.inactive_threshold",
            lambda c, s: _when(_limit(s, "inactive_threshold") > 0
                               and _num(c, "inactive_threshold") > _limit(s, "inactive_threshold"), "inactive_threshold"),
            needs="inactive_threshold"),
    Refusal("consumer", "filter_subject_and_filter_subjects", 10136, "set filter_subject or filter_subjects, not both",
            lambda c, _: _when(bool(c.get("filter_subject") and c.get("filter_subjects")), "filter_subjects"),
            needs="filter_subjects"),
    Refusal("consumer", "filters_overlap", 10138, "filter_subjects may not overlap each other", _overlapping_filters,
            needs="filter_subjects"),
    Refusal("consumer", "push_priority", 10178, "priority groups need a pull consumer (no deliver_subject)",
            lambda c, _: _when(_push(c) and c.get("priority_policy", "none") != "none", "priority_policy"),
            since=(2, 11, 0), needs="deliver_subject"),
    Refusal("consumer", "priority_policy_without_groups", 10159, "priority_policy needs priority_groups",
            lambda c, _: _when(not _push(c) and c.get("priority_policy", "none") != "none" and not c.get("priority_groups"),
                               "priority_policy"), since=(2, 11, 0), needs="priority_policy"),
    Refusal("consumer", "priority_groups_without_policy", 10196,
            "priority_groups need a priority_policy (overflow, pinned_client or prioritized)",
            lambda c, _: _when(c.get("priority_policy", "none") == "none" and bool(c.get("priority_groups")), "priority_groups"),
            since=(2, 12, 0), needs="priority_groups"),
    Refusal("consumer", "priority_timeout_without_policy", 10197, "priority_timeout needs a priority_policy",
            lambda c, _: _when(c.get("priority_policy", "none") == "none" and _num(c, "priority_timeout") > 0, "priority_timeout"),
            since=(2, 12, 0), needs="priority_timeout"),
    Refusal("consumer", "ack_flow_control_push", 10218, "ack_policy flow_control needs a push consumer (deliver_subject)",
            lambda c, _: _when(c.get("ack_policy") == "flow_control" and not _push(c), "ack_policy"), since=(2, 14, 0)),
    Refusal("consumer", "ack_flow_control_max_ack_pending", 10220, "ack_policy flow_control needs max_ack_pending",
            lambda c, _: _when(c.get("ack_policy") == "flow_control" and _push(c) and _num(c, "max_ack_pending") <= 0,
                               "max_ack_pending"), since=(2, 14, 0), needs="deliver_subject"),
    Refusal("consumer", "ack_flow_control_ack_wait", 10221, "ack_policy flow_control takes no ack_wait and no backoff",
            lambda c, _: _when(c.get("ack_policy") == "flow_control" and _push(c)
                               and bool(_num(c, "ack_wait") or c.get("backoff")), "ack_wait"),
            since=(2, 14, 0), needs="deliver_subject"),
    Refusal("consumer", "ack_flow_control_max_deliver", 10222, "ack_policy flow_control takes no max_deliver",
            lambda c, _: _when(c.get("ack_policy") == "flow_control" and _push(c) and _num(c, "max_deliver") > 0,
                               "max_deliver"), since=(2, 14, 0), needs="deliver_subject"),
    # addConsumerWithAssignment: a message leaves a workqueue when its one consumer acks it.
    Refusal("consumer", "workqueue_pull_needs_ack", 10084, "consumers of a workqueue stream need ack_policy: explicit",
            lambda c, s: _when(s.get("retention") == "workqueue" and not _push(c) and c.get("ack_policy") == "none",
                               "ack_policy")),
    Refusal("consumer", "workqueue_explicit_ack", 10098, "consumers of a workqueue stream need ack_policy: explicit",
            lambda c, s: _when(s.get("retention") == "workqueue" and c.get("ack_policy") not in ("explicit", "flow_control")
                               and (_push(c) or c.get("ack_policy") != "none"), "ack_policy")),
    Refusal("consumer", "workqueue_deliver_all", 10101,
            "consumers of a workqueue stream must deliver all messages (deliver_policy: all)",
            lambda c, s: _when(s.get("retention") == "workqueue" and c.get("deliver_policy", "all") != "all", "deliver_policy")),
)

REFUSALS: dict[str, tuple[Refusal, ...]] = {"stream": STREAM_REFUSALS, "consumer": CONSUMER_REFUSALS}

# Between the consumers of one workqueue stream (err 10099 / 10100): each message goes to one consumer.
WORKQUEUE_UNFILTERED = 10099
WORKQUEUE_NOT_UNIQUE = 10100


def refusals_of(kind: str, config: dict, context: Any = None, version: Version | None = None) -> list[Found]:
    """The refusals the server line ``version`` (None: the newest) gives this complete config.

    ``context``: a stream's: other streams' configs by name (origins it can see); a consumer's:
    its stream's complete config."""
    found = []
    context = context if context is not None else {}
    for needs, refusal in _applying(kind, None if version is None else tuple(version)):
        if needs is not None and not config.get(needs):
            continue
        paths = refusal.find(config, context)
        if paths:
            found += [Found(refusal, path) for path in paths]
    return found


@lru_cache(maxsize=None)
def _applying(kind: str, version: Version | None) -> tuple[tuple[str | None, Refusal], ...]:
    """(needs, refusal) of the refusals of ``kind`` that the server line ``version`` gives (once per line:
    validate and plan ask per resource)."""
    return tuple((refusal.needs, refusal) for refusal in REFUSALS[kind] if refusal.applies_to(version))


def workqueue_conflicts(stream: dict, consumers: Iterable[tuple[str, dict]]) -> list[tuple[str, str]]:
    """(consumer, message) for each consumer of a workqueue stream whose messages a consumer before
    it already takes, in the order given (the order they would be created)."""
    if stream.get("retention") != "workqueue":
        return []
    seen: list[tuple[str, str]] = []
    found = []
    for name, config in consumers:
        filters = [f for f in _filters(config) if not subjects.subject_problem(f)]
        if not filters and seen:
            found.append((name, f"on a workqueue stream each message goes to one consumer: consumer {name} has no filter "
                                f"beside consumer {seen[0][0]}; the server refuses it (err_code {errors.WORKQUEUE_UNFILTERED})"))
        for subject in filters:
            for other_name, other in seen:
                if subjects.subjects_overlap(subject, other):
                    found.append((name, f"on a workqueue stream each message goes to one consumer: filter '{subject}' "
                                        f"overlaps consumer {other_name}'s '{other}'; the server refuses it "
                                        f"(err_code {errors.WORKQUEUE_NOT_UNIQUE})"))
        seen += [(name, s) for s in filters or [">"]]
    return found


def too_many_consumers(stream: dict, existing: int, creating: Iterable[str]) -> list[tuple[str, str]]:
    """(consumer, message) for each consumer created beyond the stream's max_consumers, with ``existing``
    consumers on it already (addConsumerWithAssignment counts them at each create; an update is not counted)."""
    limit = _num(stream, "max_consumers")
    found = []
    for name in creating:
        if 0 < limit <= existing:
            found.append((name, f"stream {stream.get('name')} allows max_consumers {limit} and would have {existing} "
                                f"already; the server refuses it (err_code {errors.MAXIMUM_CONSUMERS})"))
        existing += 1
    return found
