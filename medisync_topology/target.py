"""The target's facts: whether the planned streams fit the servers and the account they go to.

What nats-server refuses not for a config itself but for where it would live: replicas on a server
that is not clustered (10074), more replicas than the cluster has JetStream servers or placement no
server offers (10005), and the account's JetStream limits from $JS.API.INFO (max streams, max
consumers per stream, reserved memory and file storage, per replica tier). Pure: the facts are read
by client.py, the planned operations come from plan.py; where a fact is unknown, a note says what
could not be checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .buckets import LOCK_STREAM, capturing_streams
from .errors import (
    MAX_ACK_PENDING_EXCEEDED, MAX_BYTES_REQUIRED, MAX_STREAM_BYTES_EXCEEDED, MAXIMUM_CONSUMERS, MAXIMUM_STREAMS,
    MEMORY_RESOURCES_EXCEEDED, NO_LIMITS, NO_SUITABLE_PEERS, REPLICAS_NOT_SUPPORTED, STORAGE_RESOURCES_EXCEEDED,
)
from .ops import (
    CreateResource, DeleteResource, Finding, Operation, Reason, Ref, ReplaceResource, Severity, UpdateResource,
    prior_config,
    resulting_config,
)
from .fields import Version, at_least
from .units import plural

FLAT_TIER = ""  # the account's limits apply to all replica counts alike
# Since when a cluster counts, against flat limits, a new stream's max_bytes times its replicas (accountReservation),
# and the other streams' times their own replicas (before 2.12: times the new stream's).
FLAT_OWN_REPLICAS = (2, 14, 0)
FLAT_OTHERS_REPLICAS = (2, 12, 0)


@dataclass(frozen=True)
class TargetFacts:
    """What the server says about the place streams go (client.read_target_facts reads it).

    ``clustered`` is None when unknown. ``servers`` lists the JetStream servers as
    {"name", "cluster", "tags"}, None when the server would not say; ``servers_unknown`` then says why.
    ``account`` is the $JS.API.INFO reply.
    """

    clustered: bool | None
    cluster: str | None = None  # the connected server's cluster: where a stream without placement.cluster goes
    servers: tuple[dict, ...] | None = None
    servers_unknown: str | None = None
    account: dict = field(default_factory=dict)


def tier_of(replicas: int | None) -> str:
    """The server's tier name for a replica count (tierName in jetstream.go)."""
    return f"R{max(replicas or 1, 1)}"


def _limited(value) -> bool:
    return isinstance(value, int) and value > 0


class _Account:
    """The account's limits and usage per tier, as $JS.API.INFO reports them."""

    def __init__(self, info: dict):
        self.tiers = info.get("tiers") or {}
        self.flat = None if self.tiers else info  # tiered accounts report per tier

    def tier(self, config: dict) -> str:
        return FLAT_TIER if self.flat is not None else tier_of(config.get("num_replicas"))

    def usage(self, tier: str) -> dict | None:
        return self.flat if tier == FLAT_TIER else self.tiers.get(tier)

    def limits(self, tier: str) -> dict | None:
        usage = self.usage(tier)
        return None if usage is None else usage.get("limits") or {}

    def pool(self, config: dict) -> tuple[str, str]:
        """(tier, "memory" | "storage"): the account storage a stream's max_bytes is reserved from."""
        return self.tier(config), "memory" if config.get("storage") == "memory" else "storage"


def target_findings(operations: list[Operation], live_streams: dict, facts: TargetFacts | None,
                    version: Version | None = None) -> list[Finding]:
    """Errors for planned operations the target would refuse, notes for what it could not check.

    ``live_streams`` maps stream names to client.LiveStream (their consumers are counted); ``version`` is the
    server's (None: the newest).
    """
    if facts is None:
        return []
    findings: list[Finding] = []
    unchecked: list[tuple[Ref, list[str]]] = []
    for op in operations:
        if op.ref.kind == "consumer":
            continue
        needs = _placement_questions(op)
        if not needs:
            continue
        config = resulting_config(op)
        replicas = config.get("num_replicas") or 1
        if facts.clustered is False:
            if replicas > 1:
                findings.append(_error(
                    op.ref, f"num_replicas is {replicas}, but the server is not clustered: it refuses more than "
                    f"one replica (err_code {REPLICAS_NOT_SUPPORTED})",
                ))
        elif facts.servers is None:
            unchecked.append((op.ref, needs))
        else:
            findings += _placement_findings(op.ref, config, facts)
    for ref, needs in unchecked:
        findings.append(Finding(
            ref, Severity.NOTE, Reason.UNCHECKED,
            f"{ref}: {' and '.join(needs)} not checked against the cluster: {facts.servers_unknown}",
        ))
    if facts.account:
        findings += _AccountCheck(_Account(facts.account), live_streams, _lock_to_create(operations, live_streams),
                                  version).run(operations)
    return findings


def _lock_to_create(operations: list[Operation], live_streams: dict) -> bool:
    """Whether apply first creates the apply lock's bucket (lock.py), one more stream for the account: when it
    is not there and no stream (to be) applied takes its subject."""
    if LOCK_STREAM in live_streams:
        return False
    subjects = {name: stream.config.get("subjects") for name, stream in live_streams.items()}
    subjects |= {op.ref.stream_name: (resulting_config(op) or {}).get("subjects") for op in operations
                 if op.ref.kind != "consumer"}
    return not capturing_streams(subjects)


def _placement_questions(op: Operation) -> list[str]:
    """What the cluster must offer for this operation: its replicas and its placement, when they are new."""
    config = resulting_config(op)
    if config is None:
        return []
    before = op.before if isinstance(op, UpdateResource) else None
    needs = []
    replicas = config.get("num_replicas") or 1
    if replicas > 1 and (before is None or (before.get("num_replicas") or 1) < replicas):
        needs.append(f"num_replicas {replicas}")
    placement = config.get("placement") or {}
    if placement and (before is None or before.get("placement") != placement):
        needs.append("placement")
    return needs


def _placement_findings(ref: Ref, config: dict, facts: TargetFacts) -> list[Finding]:
    """selectPeerGroup's verdict in advance: enough JetStream servers in the cluster, with every tag."""
    placement = config.get("placement") or {}
    replicas = config.get("num_replicas") or 1
    cluster = placement.get("cluster") or facts.cluster
    in_cluster = [s for s in facts.servers if s.get("cluster") == cluster]
    if placement.get("cluster") and not in_cluster:
        clusters = sorted({s.get("cluster") or "" for s in facts.servers})
        return [_error(ref, f"placement.cluster is {cluster!r}, but no JetStream server is in that cluster "
                            f"(clusters: {', '.join(clusters)}); the server would refuse it (err_code {NO_SUITABLE_PEERS})")]
    tags = set(placement.get("tags") or [])
    fitting = [s for s in in_cluster if tags <= set(s.get("tags") or [])]
    if len(fitting) >= replicas:
        return []
    where = f"cluster {cluster!r} has {plural(len(in_cluster), 'JetStream server')}"
    if tags:
        names = ", ".join(sorted(s["name"] for s in fitting)) or "none"
        where += f", of which {len(fitting)} with the tags {', '.join(sorted(tags))} ({names})"
    return [_error(ref, f"num_replicas is {replicas}, but {where}; the server would refuse it "
                        f"(no suitable peers for placement, err_code {NO_SUITABLE_PEERS})")]


class _AccountCheck:
    """The account's JetStream limits over the plan, in execution order (deletes free room first)."""

    def __init__(self, account: _Account, live_streams: dict, lock_to_create: bool, version: Version | None):
        self.account, self.version = account, version
        self.findings: list[Finding] = []
        self.streams: dict[str, int] = {}  # per tier
        for tier in ([FLAT_TIER] if account.flat is not None else account.tiers):
            self.streams[tier] = account.usage(tier).get("streams", 0)
        # The max_bytes (and replicas) of every stream, per pool: from the configs, as the server counts them
        # (INFO's reserved_storage adds max_bytes once whatever the replicas).
        self.sizes: dict[tuple[str, str], dict[str, tuple[int, int]]] = {}
        for name, stream in live_streams.items():
            self._size(name, stream.config)
        self.consumers = {name: len(stream.consumers) for name, stream in live_streams.items()}
        self.stream_tiers = {name: account.tier(stream.config) for name, stream in live_streams.items()}
        self.lock_tier = account.tier({"num_replicas": 1}) if lock_to_create else None
        if self.lock_tier is not None:
            self.streams[self.lock_tier] = self.streams.get(self.lock_tier, 0) + 1

    def run(self, operations: list[Operation]) -> list[Finding]:
        for op in operations:
            if op.ref.kind == "consumer":
                self._consumer(op)
            else:
                self._stream(op)
        return self.findings

    def _stream(self, op: Operation) -> None:
        before = prior_config(op)
        after = resulting_config(op)
        name = op.ref.stream_name
        if before is not None:
            self._size(name, None)
        if isinstance(op, (DeleteResource, ReplaceResource)):
            self.streams[self.account.tier(before)] = self.streams.get(self.account.tier(before), 0) - 1
            self.consumers[name] = 0
        if after is None:
            return
        limits = self.account.limits(self.account.tier(after))
        if limits is None:
            tiers = ", ".join(sorted(self.account.tiers)) or "none"
            self._error(op.ref, f"the account has no JetStream limits for {tier_of(after.get('num_replicas'))} "
                                f"(its tiers: {tiers}); the server would refuse it (err_code {NO_LIMITS})")
            return
        tier = self.stream_tiers[name] = self.account.tier(after)
        if isinstance(op, (CreateResource, ReplaceResource)):
            self.streams[tier] = self.streams.get(tier, 0) + 1
            self.consumers[name] = 0
            if _limited(limits.get("max_streams")) and self.streams[tier] > limits["max_streams"]:
                lock = f", with the bucket {LOCK_STREAM} apply makes for its lock" if tier == self.lock_tier else ""
                self._error(op.ref, f"the account allows {limits['max_streams']} streams{self._in(tier)} and would "
                                    f"then have {self.streams[tier]}{lock} (max_streams); the server would refuse it "
                                    f"(err_code {MAXIMUM_STREAMS})")
        self._stream_limits(op.ref, after, limits, tier, isinstance(op, (CreateResource, ReplaceResource)))
        self._size(name, after)

    def _stream_limits(self, ref: Ref, config: dict, limits: dict, tier: str, created: bool) -> None:
        """checkStreamCfg's and checkLimits' account limits (stream.go, jetstream.go)."""
        max_bytes = config.get("max_bytes") or 0
        memory = config.get("storage") == "memory"
        if limits.get("max_bytes_required") and max_bytes <= 0:
            self._error(ref, "the account requires every stream to set max_bytes; the server would refuse it "
                             f"(err_code {MAX_BYTES_REQUIRED})")
        per_stream = limits.get("memory_max_stream_bytes" if memory else "storage_max_stream_bytes")
        if _limited(per_stream) and max_bytes > per_stream:
            self._error(ref, f"max_bytes {max_bytes} is more than the account allows one {'memory' if memory else 'file'} "
                             f"stream ({per_stream}); the server would refuse it (err_code {MAX_STREAM_BYTES_EXCEEDED})")
        max_consumers = limits.get("max_consumers")
        if _limited(max_consumers) and (config.get("max_consumers") or 0) > max_consumers:
            self._error(ref, f"max_consumers {config['max_consumers']} is more than the account allows per stream "
                             f"({max_consumers}); the server would refuse it (err_code {MAXIMUM_CONSUMERS})")
        limit = limits.get("max_memory" if memory else "max_storage")
        code, words = (MEMORY_RESOURCES_EXCEEDED, "memory") if memory else (STORAGE_RESOURCES_EXCEEDED, "file storage")
        if not isinstance(limit, int) or limit < 0 or (max_bytes <= 0 and not created):
            return  # an update without max_bytes reserves nothing more
        # checkBytesLimits counts a new stream without max_bytes as one byte.
        others, own = self._reserved(self.account.pool(config), ref.stream_name, max(max_bytes, 1),
                                     config.get("num_replicas") or 1)
        if others + own <= limit:
            return
        if max_bytes > 0:
            self._error(ref, f"max_bytes reserves {words} the account does not have: it would reserve "
                             f"{others + own} bytes of {limit}{self._in(tier)}; the server would refuse it (err_code {code})")
        else:
            self._error(ref, f"the account has no {words} left{self._in(tier)} for a stream without max_bytes: "
                             f"{others} of its {limit} bytes are reserved; the server would refuse it (err_code {code})")

    def _reserved(self, pool: tuple[str, str], name: str, max_bytes: int, replicas: int) -> tuple[int, int]:
        """(the other streams', this one's) bytes of the pool as the server counts them. A tier's limits already
        count replicas. Flat limits in a cluster, by line (checkBytesLimits, tieredStreamAndReservationCount):
        since 2.14 each stream's max_bytes times its replicas; 2.12 the others' times theirs and this one's once;
        before, the others' times this one's replicas and this one's once."""
        others = [size for other, size in self.sizes.get(pool, {}).items() if other != name]
        if pool[0] != FLAT_TIER:
            return sum(b for b, _ in others), max_bytes
        if at_least(self.version, FLAT_OWN_REPLICAS):
            return sum(b * r for b, r in others), max_bytes * replicas
        if at_least(self.version, FLAT_OTHERS_REPLICAS):
            return sum(b * r for b, r in others), max_bytes
        return sum(b for b, _ in others) * replicas, max_bytes

    def _size(self, name: str, config: dict | None) -> None:
        """Record a stream's max_bytes in its pool (None: it is gone, or about to change)."""
        for sizes in self.sizes.values():
            sizes.pop(name, None)
        if config is not None and (config.get("max_bytes") or 0) > 0:
            sizes = self.sizes.setdefault(self.account.pool(config), {})
            sizes[name] = (config["max_bytes"], max(config.get("num_replicas") or 1, 1))

    def _consumer(self, op: Operation) -> None:
        stream = op.ref.stream
        if isinstance(op, DeleteResource):
            self.consumers[stream] = self.consumers.get(stream, 0) - 1
            return
        created = isinstance(op, CreateResource)
        if created:
            self.consumers[stream] = self.consumers.get(stream, 0) + 1
        # The stream's tier: a consumer's replicas follow its stream's unless set.
        limits = self.account.limits(self.stream_tiers.get(stream, FLAT_TIER)) or {}
        max_consumers = limits.get("max_consumers")
        if created and _limited(max_consumers) and self.consumers[stream] > max_consumers:
            self._error(op.ref, f"the account allows {max_consumers} consumers per stream and stream {stream} would "
                                f"then have {self.consumers[stream]} (max_consumers); the server would refuse it "
                                f"(err_code {MAXIMUM_CONSUMERS})")
        max_ack_pending = limits.get("max_ack_pending")
        wanted = (resulting_config(op) or {}).get("max_ack_pending") or 0
        if _limited(max_ack_pending) and wanted > max_ack_pending:
            self._error(op.ref, f"max_ack_pending {wanted} is more than the account allows ({max_ack_pending}); "
                                f"the server would refuse it (err_code {MAX_ACK_PENDING_EXCEEDED})")

    def _in(self, tier: str) -> str:
        return f" in tier {tier}" if tier else ""

    def _error(self, ref: Ref, message: str) -> None:
        self.findings.append(_error(ref, message))


def _error(ref: Ref, message: str) -> Finding:
    return Finding(ref, Severity.ERROR, Reason.TARGET, message)
