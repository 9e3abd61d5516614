"""Compare the desired topology with live JetStream and decide what to do.

Key-set arithmetic, as alembic's autogenerate does it: desired minus live is create, live minus
desired is delete (only with prune, only what we own), the sorted overlap is compared field by
field on complete, normalised configs. Pure: no I/O, so every rule here is tested without a server.
"""

from __future__ import annotations

import dataclasses

from deepdiff import DeepDiff

from . import buckets, rules, subjects
from .client import LiveState, LiveStream
from .lock import LOCK_STREAM
from .model import ConsumerSpec, StreamSpec, Topology
from .ops import (
    CreateResource,
    DataAtRisk,
    DeleteResource,
    FieldChange,
    Finding,
    Plan,
    Ref,
    ReplaceResource,
    UpdateResource,
    resulting_config,
)

OWNER_KEY = "medisync-topology.owner"


def owner_of(config: dict) -> str | None:
    return (config.get("metadata") or {}).get(OWNER_KEY)


def with_owner(config: dict, owner: str) -> dict:
    return {**config, "metadata": {**(config.get("metadata") or {}), OWNER_KEY: owner}}


def comparable(config: dict) -> dict:
    return {k: sorted(v) if k in rules.UNORDERED_FIELDS and isinstance(v, list) else v for k, v in config.items()}


def field_changes(before: dict, after: dict) -> tuple[FieldChange, ...]:
    """The top-level fields that differ, old and new value each, sorted by name."""
    before_form, after_form = comparable(before), comparable(after)
    if before_form == after_form:  # the common case, and DeepDiff's cost dominated plans of many streams
        return ()
    diff = DeepDiff(before_form, after_form, ignore_numeric_type_changes=True)
    keys = sorted(str(k) for k in diff.affected_root_keys)
    return tuple(FieldChange(k, before.get(k), after.get(k)) for k in keys)


def _origins_first(ops: list) -> list:
    """Stable order in which every stream comes after the streams it mirrors or sources from."""
    by_name = {op.ref.stream_name: op for op in ops}
    ordered: list = []
    visited: set[str] = set()  # by name: comparing operations (whole configs) per step made this quadratic

    def visit(op) -> None:
        if op.ref.stream_name in visited:
            return
        visited.add(op.ref.stream_name)
        config = resulting_config(op) or op.before
        for origin in sorted(rules.origins(config)):
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
        self.version = rules.parse_version(live.server_version) if live.server_version else None
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
        live = {name: stream for name, stream in self.live.streams.items() if name != LOCK_STREAM}
        if LOCK_STREAM in desired:
            ref = desired.pop(LOCK_STREAM).ref
            self._error(ref, "reserved", f"{ref} is the bucket of the tool's apply lock; give yours another name")
        for name in self.topology.existing_streams:
            if name not in live:
                self._error(Ref("stream", name), "missing_origin",
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

    def _check_live_overlaps(self, desired: dict, live: dict) -> None:
        """A stream we create or change may not take subjects of a live stream we leave alone: the server
        refuses it (err 10065) halfway through an apply; the plan says so before anything is done."""
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
                        op.ref, "overlap",
                        f"{op.ref}: subject '{subject}' overlaps '{other_subject}' of live stream {other}, which this "
                        "topology does not manage; the server would refuse it (err_code 10065)",
                    )

    # -- streams ---------------------------------------------------------

    def _desired_stream(self, spec: StreamSpec) -> dict:
        return rules.complete_stream(with_owner(spec.config, self.topology.owner), self.version, self.origin_configs)

    def _supported(self, ref: Ref, kind: str, config: dict, creating: bool = False) -> bool:
        messages = rules.unsupported_fields(kind, config, self.version) if self.version else []
        if creating:
            messages += rules.create_refusals(kind, config)
        for message in messages:
            self._error(ref, "unsupported", message)
        return not messages

    def _create_stream(self, spec: StreamSpec) -> None:
        ref = spec.ref
        config = self._desired_stream(spec)
        if not self._supported(ref, "stream", config, creating=True):
            return
        self.phases["stream"].append(CreateResource(ref, config))
        for consumer in spec.consumers.values():
            self._create_consumer(consumer, config)

    def _live_only_stream(self, stream: LiveStream) -> None:
        name = stream.config["name"]
        kind, bucket = buckets.bucket_of(name) or ("stream", name)
        ref = Ref(kind, bucket)
        owner = owner_of(stream.config)
        if owner is None:
            self._note(ref, "unmanaged", f"{ref} is not managed by this tool (no owner metadata); left alone")
        elif owner == self.topology.owner:
            if self.prune:
                for cname, consumer in sorted(stream.consumers.items()):
                    if rules.declarable_consumer(consumer) and owner_of(consumer) == self.topology.owner:
                        self.phases["consumer_delete"].append(
                            DeleteResource(Ref("consumer", cname, name), rules.strip_live(consumer, "consumer"))
                        )
                self.phases["stream_delete"].append(
                    DeleteResource(ref, rules.strip_live(stream.config, "stream"), self._data_at_risk(stream))
                )
            else:
                self._note(ref, "needs_prune", f"{ref} is owned by {owner} but not in the topology; --prune deletes it")
        # Streams of other owners belong to another topology: not ours to mention.

    def _compare_stream(self, spec: StreamSpec, stream: LiveStream) -> None:
        ref = spec.ref
        if not self._may_manage(ref, stream.config):
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

    def _may_manage(self, ref: Ref, live_config: dict) -> bool:
        owner = owner_of(live_config)
        if owner not in (None, self.topology.owner):
            self._error(ref, "conflict", f"{ref} is owned by {owner!r}, not {self.topology.owner!r}; it is left alone")
            return False
        if owner is None and not self.adopt:
            self._error(
                ref, "needs_adopt", f"{ref} already exists and is not managed by this tool; --adopt takes it over"
            )
            return False
        return True

    def _compare(self, ref, kind, before, after, protect, adopting, at_risk, phase) -> bool:
        """Plan an update or a replace of one resource; True when it is replaced."""
        changes = field_changes(before, after)
        if not changes:
            return False
        forcing, impossible = rules.blocked_changes(kind, before, after, self.version)
        for message in impossible:
            self._error(ref, "impossible", message)
        if forcing and protect:  # reported beside any impossible change: the person fixes both at once
            self._error(
                ref, "protected",
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
            self.phases["consumer"].append(CreateResource(ref, config))

    def _compare_consumers(self, spec: StreamSpec, stream: LiveStream, stream_config: dict) -> None:
        live = {n: c for n, c in stream.consumers.items() if rules.declarable_consumer(c)}
        for name in sorted(spec.consumers.keys() | live.keys()):
            ref = Ref("consumer", name, spec.name)
            if name not in live:
                self._create_consumer(spec.consumers[name], stream_config)
                continue
            if name not in spec.consumers:
                owner = owner_of(live[name])
                if owner is None:
                    self._note(ref, "unmanaged", f"{ref} is not managed by this tool (no owner metadata); left alone")
                elif owner == self.topology.owner and self.prune:
                    self.phases["consumer_delete"].append(DeleteResource(ref, rules.strip_live(live[name], "consumer")))
                elif owner == self.topology.owner:
                    self._note(ref, "needs_prune", f"{ref} is owned by {owner} but not in the topology; --prune deletes it")
                continue
            if not self._may_manage(ref, live[name]):
                continue
            desired = spec.consumers[name]
            after = self._desired_consumer(desired, stream_config)
            if not self._supported(ref, "consumer", after):
                continue
            before = rules.strip_live(live[name], "consumer")
            adopting = owner_of(live[name]) is None
            self._compare(ref, "consumer", before, after, desired.protect, adopting, None, "consumer")

    # -- findings --------------------------------------------------------

    def _error(self, ref: Ref, reason: str, message: str) -> None:
        self.plan.findings.append(Finding(ref, "error", reason, message))

    def _note(self, ref: Ref, reason: str, message: str) -> None:
        self.plan.findings.append(Finding(ref, "note", reason, message))
