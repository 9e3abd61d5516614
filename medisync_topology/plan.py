"""Compare the desired topology with live JetStream and decide what to do.

Key-set arithmetic, as alembic's autogenerate does it: desired minus live is create, live minus
desired is delete (only with prune, only what we own), the sorted overlap is compared field by
field on complete, normalised configs. Pure: no I/O, so every rule here is tested without a server.
"""

from __future__ import annotations

import dataclasses
import enum

from . import buckets, rules, subjects, target
from .errors import SUBJECTS_OVERLAP
from .live import LiveState, LiveStream
from .model import ConsumerSpec, StreamSpec, Topology
from .ops import (
    CreateResource,
    DataAtRisk,
    DeleteResource,
    FieldChange,
    Finding,
    Plan,
    Reason,
    Ref,
    ReplaceResource,
    Severity,
    UpdateResource,
    prior_config,
    resulting_config,
)

OWNER_KEY = "medisync-topology.owner"


def owner_of(config: dict) -> str | None:
    return (config.get("metadata") or {}).get(OWNER_KEY)


def with_owner(config: dict, owner: str) -> dict:
    return {**config, "metadata": {**(config.get("metadata") or {}), OWNER_KEY: owner}}


class Ownership(enum.Enum):
    """What a plan may do with a live resource, by who owns it and whether the topology declares it."""

    MANAGE = "manage"  # ours (or being adopted) and declared: compare it
    NEEDS_ADOPT = "needs_adopt"  # declared, live without an owner: only --adopt takes it over
    CONFLICT = "conflict"  # declared, but another owner's
    UNMANAGED = "unmanaged"  # not declared, without an owner: left alone
    DELETE = "delete"  # not declared, ours, with --prune
    NEEDS_PRUNE = "needs_prune"  # not declared, ours: --prune would delete it
    FOREIGN = "foreign"  # not declared, another owner's: another topology's business, not mentioned


def ownership(live_owner: str | None, owner: str, *, declared: bool, prune: bool, adopt: bool) -> Ownership:
    """The one decision for streams, consumers and buckets alike."""
    if declared:
        if live_owner is None:
            return Ownership.MANAGE if adopt else Ownership.NEEDS_ADOPT
        return Ownership.MANAGE if live_owner == owner else Ownership.CONFLICT
    if live_owner is None:
        return Ownership.UNMANAGED
    if live_owner != owner:
        return Ownership.FOREIGN
    return Ownership.DELETE if prune else Ownership.NEEDS_PRUNE


def field_changes(before: dict, after: dict) -> tuple[FieldChange, ...]:
    """The top-level fields that differ, old and new value each, sorted by name."""
    before_form, after_form = rules.comparable(before), rules.comparable(after)
    if before_form == after_form:  # the common case, and DeepDiff's cost dominated plans of many streams
        return ()
    from deepdiff import DeepDiff  # imported only when something differs: a tenth of a second for every plan

    diff = DeepDiff(before_form, after_form, ignore_numeric_type_changes=True)
    keys = sorted(str(k) for k in diff.affected_root_keys)
    return tuple(FieldChange(k, before.get(k), after.get(k)) for k in keys)


def origins(config: dict) -> set[str]:
    """The streams in this account that a stream mirrors or sources from."""
    entries = [config.get("mirror")] + list(config.get("sources") or [])
    return {e["name"] for e in entries if e and e.get("name") and not e.get("external")}


def _origins_first(ops: list) -> list:
    """Stable order in which every stream comes after the streams it mirrors or sources from."""
    by_name = {op.ref.stream_name: op for op in ops}
    ordered: list = []
    visited: set[str] = set()  # by name: comparing operations (whole configs) per step made this quadratic

    def visit(op) -> None:
        if op.ref.stream_name in visited:
            return
        visited.add(op.ref.stream_name)
        config = resulting_config(op) or prior_config(op)
        for origin in sorted(origins(config)):
            if origin in by_name:
                visit(by_name[origin])
        ordered.append(op)

    for op in ops:
        visit(op)
    return ordered


def make_plan(topology: Topology, live: LiveState, *, prune: bool = False, adopt: bool = False) -> Plan:
    """The ordered operations that make live JetStream match the topology, and what stands in the way."""
    planner = _Planner(topology, live, prune=prune, adopt=adopt)
    planner.run()
    return planner.plan


class _Planner:
    def __init__(self, topology: Topology, live: LiveState, *, prune: bool, adopt: bool):
        self.topology, self.live, self.prune, self.adopt = topology, live, prune, adopt
        self.version = live.version
        self.plan = Plan(
            owner=topology.owner,
            sources=list(topology.sources),
            environment=topology.environment,
            server={"version": live.server_version},
        )
        self.origin_configs = {name: s.config for name, s in topology.streams.items()}  # mirror_direct follows these
        # Execution phases: deletes free subjects and names before anything is changed or created.
        self.phases: dict[str, list] = {p: [] for p in ("consumer_delete", "stream_delete", "stream", "consumer")}

    def run(self) -> None:
        desired = {**self.topology.streams, **self.topology.buckets}
        # The apply lock's bucket belongs to the tool: never drift, never unmanaged, never pruned.
        live = buckets.without_lock(self.live.streams)
        if buckets.LOCK_STREAM in desired:
            ref = desired.pop(buckets.LOCK_STREAM).ref
            self._error(ref, Reason.RESERVED, f"{ref} is the bucket of the tool's apply lock; give yours another name")
        for name in self.topology.existing_streams:
            if name not in live:
                self._error(Ref("stream", name), Reason.MISSING_ORIGIN,
                            f"stream {name} is listed under existing_streams, but the server has no stream of that name")
        for name in sorted(desired.keys() | live.keys()):
            if name not in live:
                self._create_stream(desired[name])
            elif name not in desired:
                self._live_only_stream(live[name])
            else:
                self._compare_stream(desired[name], live[name])
        self._check_live_overlaps(desired, live)
        self.phases["stream_delete"] = _origins_first(self.phases["stream_delete"])[::-1]
        self.phases["stream"] = _origins_first(self.phases["stream"])
        for phase in self.phases.values():
            self.plan.operations += phase
        self.plan.findings += target.target_findings(self.plan.operations, self.live.streams, self.live.target)

    def _check_live_overlaps(self, desired: dict, live: dict) -> None:
        """A stream we create or change may not take subjects of a live stream we leave alone: the server
        refuses it (SUBJECTS_OVERLAP) halfway through an apply; the plan says so before anything is done."""
        deleted = {op.ref.stream_name for op in self.phases["stream_delete"]}
        others = subjects.SubjectIndex()
        for name, stream in live.items():
            if name not in desired and name not in deleted:
                for subject in stream.config.get("subjects") or []:
                    others.add(subject, (name, subject))
        for op in self.phases["stream"]:
            for subject in resulting_config(op).get("subjects") or []:
                for other, other_subject in others.overlapping(subject):
                    self._error(
                        op.ref, Reason.OVERLAP,
                        f"{op.ref}: subject '{subject}' overlaps '{other_subject}' of live stream {other}, which this "
                        f"topology does not manage; the server would refuse it (err_code {SUBJECTS_OVERLAP})",
                    )

    # -- streams ---------------------------------------------------------

    def _desired_stream(self, spec: StreamSpec) -> dict:
        return rules.complete_stream(with_owner(spec.config, self.topology.owner), self.version, self.origin_configs)

    def _supported(self, ref: Ref, kind: str, config: dict, creating: bool = False) -> bool:
        messages = rules.unsupported_fields(kind, config, self.version) if self.version else []
        if creating:
            messages += rules.create_refusals(kind, config)
        for message in messages:
            self._error(ref, Reason.UNSUPPORTED, message)
        return not messages

    def _create_stream(self, spec: StreamSpec) -> None:
        ref = spec.ref
        config = self._desired_stream(spec)
        if not self._supported(ref, "stream", config, creating=True):
            return
        if spec.kind in buckets.SETTINGS:
            settings = buckets.bucket_settings(spec.kind, config)
        else:  # the name is in the operation's header, not among the settings
            settings = rules.without_identity(rules.minimal_stream(config, self.version, self.origin_configs))
        self.phases["stream"].append(CreateResource(ref, config, settings))
        for consumer in spec.consumers.values():
            self._create_consumer(consumer, config)

    def _live_only_stream(self, stream: LiveStream) -> None:
        name = stream.config["name"]
        kind, bucket = buckets.bucket_of(name) or ("stream", name)
        ref = Ref(kind, bucket)
        if self._ownership(ref, stream.config, declared=False) is not Ownership.DELETE:
            return
        for cname, consumer in sorted(stream.consumers.items()):
            # Deleting the stream deletes all its consumers; ours are shown as deleted first.
            deleted = ownership(owner_of(consumer), self.topology.owner, declared=False, prune=True, adopt=False)
            if rules.declarable_consumer(consumer) and deleted is Ownership.DELETE:
                self.phases["consumer_delete"].append(
                    DeleteResource(Ref("consumer", cname, name), rules.strip_live(consumer, "consumer"))
                )
        self.phases["stream_delete"].append(
            DeleteResource(ref, rules.strip_live(stream.config, "stream"), self._data_at_risk(stream))
        )

    def _compare_stream(self, spec: StreamSpec, stream: LiveStream) -> None:
        ref = spec.ref
        if self._ownership(ref, stream.config, declared=True) is not Ownership.MANAGE:
            return
        adopting = owner_of(stream.config) is None
        before = rules.strip_live(stream.config, "stream")
        after = self._desired_stream(spec)
        if not self._supported(ref, "stream", after):
            return
        replaced = self._compare(ref, "stream", before, after, spec.protect, adopting, self._data_at_risk(stream), "stream")
        if replaced:
            for consumer in spec.consumers.values():
                self._create_consumer(consumer, after)
            return
        self._compare_consumers(spec, stream, after)

    def _ownership(self, ref: Ref, live_config: dict, *, declared: bool) -> Ownership:
        """Who owns the live resource decides what the plan may do; a finding says so where it matters."""
        live_owner = owner_of(live_config)
        decision = ownership(live_owner, self.topology.owner, declared=declared, prune=self.prune, adopt=self.adopt)
        match decision:
            case Ownership.UNMANAGED:
                self._note(ref, Reason.UNMANAGED, f"{ref} is not managed by this tool (no owner metadata); left alone")
            case Ownership.NEEDS_PRUNE:
                self._note(
                    ref, Reason.NEEDS_PRUNE, f"{ref} is owned by {live_owner} but not in the topology; --prune deletes it"
                )
            case Ownership.CONFLICT:
                self._error(
                    ref, Reason.CONFLICT, f"{ref} is owned by {live_owner!r}, not {self.topology.owner!r}; it is left alone"
                )
            case Ownership.NEEDS_ADOPT:
                self._error(
                    ref, Reason.NEEDS_ADOPT,
                    f"{ref} already exists and is not managed by this tool; --adopt takes it over",
                )
        return decision

    def _compare(self, ref, kind, before, after, protect, adopting, at_risk, phase) -> bool:
        """Plan an update or a replace of one resource; True when it is replaced."""
        changes = field_changes(before, after)
        if not changes:
            return False
        forcing, impossible = rules.blocked_changes(kind, before, after, self.version)
        for message in impossible:
            self._error(ref, Reason.IMPOSSIBLE, message)
        if forcing and protect:  # reported beside any impossible change: the person fixes both at once
            self._error(
                ref, Reason.PROTECTED,
                f"{ref} is protect: true, but changing {', '.join(forcing)} would replace it; "
                "revert the change or remove protect",
            )
        if impossible or (forcing and protect):
            return False
        if forcing:
            changes = tuple(dataclasses.replace(c, forces_replacement=c.path in forcing) for c in changes)
            self.phases[phase].append(ReplaceResource(ref, before, after, changes, at_risk))
            return True
        self.phases[phase].append(UpdateResource(ref, before, after, changes, adopt=adopting))
        return False

    @staticmethod
    def _data_at_risk(stream: LiveStream) -> DataAtRisk:
        state = stream.state or {}
        return DataAtRisk(state.get("messages", 0), state.get("bytes", 0), len(stream.consumers))

    # -- consumers -------------------------------------------------------

    def _desired_consumer(self, spec: ConsumerSpec, stream_config: dict) -> dict:
        return rules.complete_consumer(with_owner(spec.config, self.topology.owner), stream_config, self.version)

    def _create_consumer(self, spec: ConsumerSpec, stream_config: dict) -> None:
        ref = Ref("consumer", spec.name, spec.stream)
        config = self._desired_consumer(spec, stream_config)
        if self._supported(ref, "consumer", config, creating=True):
            settings = rules.without_identity(rules.minimal_consumer(config, stream_config, self.version))
            self.phases["consumer"].append(CreateResource(ref, config, settings))

    def _compare_consumers(self, spec: StreamSpec, stream: LiveStream, stream_config: dict) -> None:
        live = {n: c for n, c in stream.consumers.items() if rules.declarable_consumer(c)}
        for name in sorted(spec.consumers.keys() | live.keys()):
            ref = Ref("consumer", name, spec.name)
            if name not in live:
                self._create_consumer(spec.consumers[name], stream_config)
                continue
            if name not in spec.consumers:
                if self._ownership(ref, live[name], declared=False) is Ownership.DELETE:
                    self.phases["consumer_delete"].append(DeleteResource(ref, rules.strip_live(live[name], "consumer")))
                continue
            if self._ownership(ref, live[name], declared=True) is not Ownership.MANAGE:
                continue
            desired = spec.consumers[name]
            after = self._desired_consumer(desired, stream_config)
            if not self._supported(ref, "consumer", after):
                continue
            before = rules.strip_live(live[name], "consumer")
            adopting = owner_of(live[name]) is None
            self._compare(ref, "consumer", before, after, desired.protect, adopting, None, "consumer")

    # -- findings --------------------------------------------------------

    def _error(self, ref: Ref, reason: Reason, message: str) -> None:
        self.plan.findings.append(Finding(ref, Severity.ERROR, reason, message))

    def _note(self, ref: Ref, reason: Reason, message: str) -> None:
        self.plan.findings.append(Finding(ref, Severity.NOTE, reason, message))

