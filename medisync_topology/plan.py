"""Compare the desired topology with live JetStream and decide what to do.

Key-set arithmetic, as alembic's autogenerate does it: desired minus live is create, live minus
desired is delete (only with prune, only what we own), the sorted overlap is compared field by
field on complete, normalised configs. Pure: no I/O, so every rule here is tested without a server.
"""

from __future__ import annotations

import dataclasses
import enum

from . import buckets, drift, migrate, refusals, rules, subjects, target
from .errors import STREAM_UPDATE_FAILED, SUBJECTS_OVERLAP
from .fields import OWNER_KEY
from .live import LiveState, LiveStream
from .loader import dotted
from .model import ConsumerSpec, StreamSpec, Topology, with_owner
from .ops import (
    ConsumerAtRisk,
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



def owner_of(config: dict) -> str | None:
    return (config.get("metadata") or {}).get(OWNER_KEY)


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
    if before == after:  # the common case, settled without sorting any list
        return ()
    # Key by key, with the same == that settled the whole: DeepDiff, which did this before, built a diff
    # tree per resource only to name its top-level keys (3 s of a 1,000-stream update's 7 s).
    before_form, after_form = rules.comparable(before), rules.comparable(after)
    # A field one side has and the other not differs, even when its value is None.
    keys = sorted(k for k in before_form.keys() | after_form.keys()
                  if before_form.get(k, rules.ABSENT) != after_form.get(k, rules.ABSENT))
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


def overlaps_left_alone(ops: list, left_alone: dict[str, LiveStream]) -> list[tuple[Ref, str]]:
    """A stream we create or change may not take subjects of a live stream we leave alone: the server
    refuses it (SUBJECTS_OVERLAP) halfway through an apply; a plan says so before anything is done."""
    others = subjects.SubjectIndex()
    for name, stream in left_alone.items():
        for subject in stream.config.get("subjects") or []:
            others.add(subject, (name, subject))
    found = []
    for op in ops:
        if op.ref.kind == "consumer":
            continue
        for subject in resulting_config(op).get("subjects") or []:
            for other, other_subject in others.overlapping(subject):
                found.append((op.ref, f"{op.ref}: subject '{subject}' overlaps '{other_subject}' of live stream {other}, which "
                              f"this topology does not manage; the server would refuse it (err_code {SUBJECTS_OVERLAP})"))
    return found


# Why an operation of a saved plan is not one `plan` could make, by the ownership decision it met instead.
_NOT_OURS = {
    Ownership.CONFLICT: "it is owned by {live!r}, not {owner!r}",
    Ownership.FOREIGN: "it is owned by {live!r}, not {owner!r}",
    Ownership.NEEDS_ADOPT: "it is not managed by this tool, and the plan was made without --adopt",
    Ownership.UNMANAGED: "it is not managed by this tool (no owner metadata)",
    Ownership.NEEDS_PRUNE: "the plan was made without --prune",
}


def saved_plan_refusals(plan: Plan, live: LiveState, *, prune: bool, adopt: bool, protected: set[str]) -> list[str]:
    """Each operation of a saved plan that `plan` could not have made against this live state, with why;
    empty when there is none. A plan file is input from a stranger (a CI artefact, edited and its checksum
    recomputed): only the live state, read now, and the rules here decide what it may do."""
    # A replaced stream loses its consumers: the plan creates them anew.
    replaced = {op.ref.stream_name for op in plan.operations if isinstance(op, ReplaceResource) and op.ref.kind != "consumer"}
    streams = {name: LiveStream(s.config, s.state) if name in replaced else s for name, s in live.streams.items()}
    touched = {op.ref.stream_name for op in plan.operations if op.ref.kind != "consumer"} | renamed_away(plan.operations)
    refusals = [f"{op.action} {op.ref}: {why}" for op in plan.operations
                if (why := _refusal(op, plan.owner, streams, live.version, prune, adopt, protected))]
    left_alone = {name: s for name, s in buckets.without_lock(streams).items() if name not in touched}
    changed = [op for op in plan.operations if not isinstance(op, DeleteResource)]
    return refusals + [message for _, message in overlaps_left_alone(changed, left_alone)]


def _refusal(op, owner: str, streams: dict[str, LiveStream], version, prune: bool, adopt: bool, protected: set[str]) -> str | None:
    ref = op.ref
    # A name is part of the API subject the request goes to: `A.B` or `*` must not reach another resource.
    names = [(ref.stream_name, "stream name")] + ([(ref.name, "consumer name")] if ref.kind == "consumer" else [])
    if getattr(op, "renamed_from", None):
        names.append((op.renamed_from, "consumer name" if ref.kind == "consumer" else "stream name"))
    for name, what in names:
        if problem := subjects.name_problem(name, what):
            return problem
    if ref.stream_name == buckets.LOCK_STREAM:
        return "it is the bucket of the tool's apply lock"
    stream = streams.get(ref.stream_name)
    if ref.kind == "consumer" and stream is not None:
        # A plan changes consumers only in streams it manages (or deletes, which are ours).
        parent = ownership(owner_of(stream.config), owner, declared=True, prune=prune, adopt=adopt)
        if parent is not Ownership.MANAGE:
            return f"its stream {ref.stream} is not the plan's: " + _NOT_OURS[parent].format(live=owner_of(stream.config), owner=owner)
    if stream is None:
        current = None
    else:
        current = stream.consumers.get(ref.name) if ref.kind == "consumer" else stream.config
    after = resulting_config(op)
    if after is not None and owner_of(after) != owner:
        return f"it would set the owner metadata to {owner_of(after)!r}, but the plan is {owner!r}'s"
    if isinstance(op, CreateResource) and op.migration is not None:
        return _rename_refusal(op, owner, streams, current, prune, adopt)
    if isinstance(op, CreateResource):
        return "it already exists" if current is not None else None
    if current is None:
        return "it does not exist"
    deleting = isinstance(op, DeleteResource)
    decision = ownership(owner_of(current), owner, declared=not deleting, prune=prune, adopt=adopt)
    if decision is not (Ownership.DELETE if deleting else Ownership.MANAGE):
        return _NOT_OURS[decision].format(live=owner_of(current), owner=owner)
    if isinstance(op, (ReplaceResource, DeleteResource)) and str(ref) in protected:
        return "it is protect: true"
    if deleting:
        return None
    kind = "consumer" if ref.kind == "consumer" else "stream"
    forcing, impossible = rules.blocked_changes(kind, rules.strip_live(current, kind), after, version)
    if impossible:
        return impossible[0]
    if isinstance(op, UpdateResource) and forcing:
        return f"changing {', '.join(forcing)} needs a replacement, not an update in place"
    return None


def _declarable_consumers(stream: LiveStream) -> dict:
    """A live stream's consumers a topology could declare (name -> config): durables, not ephemerals or the
    server's own for a mirror or source (rules.declarable_consumer)."""
    return {n: c for n, c in stream.consumers.items() if rules.declarable_consumer(c)}


def renamed_away(ops: list) -> set[str]:
    """The live streams a plan's renames take over and then delete (renamed_from on a stream)."""
    return {op.renamed_from for op in ops if isinstance(op, CreateResource) and op.migration is not None}


def _rename_refusal(op: CreateResource, owner: str, streams: dict[str, LiveStream], current: dict | None,
                    prune: bool, adopt: bool) -> str | None:
    """A saved rename holds while the server is where the plan found it: NEW absent (or marked as being renamed
    into from OLD, for one that resumes), OLD present (unless only the last step is left) and the plan's."""
    old = streams.get(op.renamed_from)
    if current is not None and migrate.renaming(current) != op.renamed_from:
        return "it already exists"
    if current is None and op.migration.resume:
        return "the interrupted rename it resumes is gone"
    if old is None:
        return None if op.migration.resume == "finish" else f"{op.renamed_from}, which it is renamed from, does not exist"
    decision = ownership(owner_of(old.config), owner, declared=True, prune=prune, adopt=adopt)
    if decision is not Ownership.MANAGE:
        return f"{op.renamed_from}, which it is renamed from: " + _NOT_OURS[decision].format(
            live=owner_of(old.config), owner=owner)
    return None


def make_plan(topology: Topology, live: LiveState, *, prune: bool = False, adopt: bool = False,
              migrate: bool = False) -> Plan:
    """The ordered operations that make live JetStream match the topology, and what stands in the way.

    ``migrate``: every replaced stream keeps its messages (as if each said ``replace: migrate``).
    """
    planner = _Planner(topology, live, prune=prune, adopt=adopt, migrate=migrate)
    planner.run()
    return planner.plan


def _consumer_at_risk(stream: LiveStream, name: str) -> ConsumerAtRisk | None:
    """What a consumer loses when it is deleted or replaced, from its live progress (None when not read)."""
    state = stream.consumer_states.get(name)
    if state is None:
        return None
    return ConsumerAtRisk(
        state.get("num_pending", 0), state.get("num_ack_pending", 0),
        (state.get("delivered") or {}).get("stream_seq", 0), (state.get("ack_floor") or {}).get("stream_seq", 0),
    )


class _Planner:
    def __init__(self, topology: Topology, live: LiveState, *, prune: bool, adopt: bool, migrate: bool):
        self.topology, self.live, self.prune, self.adopt, self.migrate = topology, live, prune, adopt, migrate
        self.version = live.version
        self.plan = Plan(
            owner=topology.owner,
            sources=list(topology.sources),
            environment=topology.environment,
            server={"version": live.server_version},
        )
        self.origin_configs = {name: s.config for name, s in topology.streams.items()}  # mirror_direct follows these
        self.completes_as_newest = rules.completes_as_newest(self.version)
        # Execution phases: deletes free subjects and names before anything is changed or created.
        self.phases: dict[str, list] = {p: [] for p in ("consumer_delete", "stream_delete", "stream", "consumer")}

    def run(self) -> None:
        desired = {**self.topology.streams, **self.topology.buckets}
        # The apply lock's bucket belongs to the tool: never drift, never unmanaged, never pruned.
        live = buckets.without_lock(self.live.streams)
        # A temporary stream of a migration is neither unmanaged nor prunable: it holds messages in transit.
        temps = {name: stream for name, stream in live.items() if migrate.migrating(stream.config)}
        live = {name: stream for name, stream in live.items() if name not in temps}
        for temp in temps.values():
            self._resume_migration(desired, live, temp)
        if buckets.LOCK_STREAM in desired:
            ref = desired.pop(buckets.LOCK_STREAM).ref
            self._error(ref, Reason.RESERVED, f"{ref} is the bucket of the tool's apply lock; give yours another name")
        for name in self.topology.existing_streams:
            if name not in live:
                self._error(Ref("stream", name), Reason.MISSING_ORIGIN,
                            f"stream {name} is listed under existing_streams, but the server has no stream of that name")
        resumed = {migrate.migrating(t.config) for t in temps.values()}
        self.renamed = self._stream_renames(desired, live)
        for name in sorted((desired.keys() | live.keys()) - resumed - self.renamed):
            if name not in live:
                self._create_stream(desired[name])
            elif name not in desired:
                self._live_only_stream(live[name])
            else:
                self._compare_stream(desired[name], live[name])
        self._check_live_overlaps(desired, live)
        self._check_refusals(live)
        self.phases["stream_delete"] = _origins_first(self.phases["stream_delete"])[::-1]
        self.phases["stream"] = _origins_first(self.phases["stream"])
        for phase in self.phases.values():
            self.plan.operations += phase
        self.plan.findings += target.target_findings(self.plan.operations, self.live.streams, self.live.target,
                                                     self.version)

    def _check_live_overlaps(self, desired: dict, live: dict) -> None:
        deleted = {op.ref.stream_name for op in self.phases["stream_delete"]}
        left_alone = {name: stream for name, stream in live.items()
                      if name not in desired and name not in deleted and name not in self.renamed}
        for ref, message in overlaps_left_alone(self.phases["stream"], left_alone):
            self._error(ref, Reason.OVERLAP, message)

    def _check_refusals(self, live: dict) -> None:
        """What the server would refuse of the requests this plan makes (refusals.py), judged with
        what validate cannot know: the connected server's line, origins the file does not declare,
        and live consumers the topology leaves alone. Each request meets the streams as they are
        after their own change (origins are changed first)."""
        if not self.phases["stream"] and not self.phases["consumer"]:
            return  # no request to judge: not a live config to strip (a third of a plan of no changes)
        streams = {name: rules.strip_live(stream.config, "stream") for name, stream in live.items()}
        for op in self.phases["stream"]:
            streams[op.ref.stream_name] = resulting_config(op)
        for op in self.phases["stream"]:
            for found in refusals.refusals_of("stream", resulting_config(op), streams, self.version):
                self._refused(op.ref, found.path, found.message)
            if isinstance(op, UpdateResource):
                self._check_consumer_limits(op, live)
        for op in self.phases["consumer"]:
            for found in refusals.refusals_of("consumer", resulting_config(op), streams[op.ref.stream], self.version):
                self._refused(op.ref, found.path, found.message)
        self._check_consumer_sets(live, streams)

    def _check_consumer_sets(self, live: dict, streams: dict) -> None:
        """Consumers a stream keeps (ones the topology does not manage, or does not delete) count towards
        its max_consumers (10026), and on a workqueue stream take messages that a new or changed consumer
        would share (10099 / 10100)."""
        renewed = {op.ref.stream_name for op in self.phases["stream"] if not isinstance(op, UpdateResource)}
        gone = {(op.ref.stream, op.ref.name) for op in self.phases["consumer_delete"]}
        requested: dict[str, list] = {}
        for op in self.phases["consumer"]:
            requested.setdefault(op.ref.stream, []).append(op)
        for name, ops in sorted(requested.items()):
            changed = {op.ref.name for op in ops}
            kept = [] if name in renewed or name not in live else [
                (cname, config) for cname, config in sorted(live[name].consumers.items())
                if rules.declarable_consumer(config) and cname not in changed and (name, cname) not in gone]
            wanted = [(op.ref.name, resulting_config(op)) for op in ops]
            created = [op.ref.name for op in ops if not isinstance(op, UpdateResource)]
            existing = len(kept) + len(ops) - len(created)
            conflicts = refusals.workqueue_conflicts(streams[name], kept + wanted)
            for cname, message in conflicts + refusals.too_many_consumers(streams[name], existing, created):
                if cname in changed:
                    self._refused(Ref("consumer", cname, name), (), message)

    def _check_consumer_limits(self, op: UpdateResource, live: dict) -> None:
        """stream.go updateWithAdvisory: a stream update that sets consumer_limits lower than what a live
        consumer has is refused, even when that consumer is updated right after. Before 2.14 that
        includes the unlisted consumer a live mirror or source reads through (no max_ack_pending limit)."""
        name = op.ref.stream_name
        old, new = (op.before.get("consumer_limits") or {}), (op.after.get("consumer_limits") or {})
        readers = [] if self.version is None or self.version >= (2, 14, 0) else sorted(
            other for other, stream in live.items() if name in origins(stream.config))
        for key in ("max_ack_pending", "inactive_threshold"):
            limit = new.get(key) or 0
            if limit <= 0 or limit == old.get(key):
                continue
            over = sorted(c for c, config in live[name].consumers.items() if (config.get(key) or 0) > limit)
            if readers and key == "max_ack_pending":
                self._refused(
                    op.ref, ("consumer_limits", key),
                    f"stream {', '.join(readers)} reads from it through a consumer that servers before 2.14 give a "
                    f"larger {key}; the server refuses the limit (err_code {STREAM_UPDATE_FAILED})",
                )
            if over:
                self._refused(
                    op.ref, ("consumer_limits", key),
                    f"the live consumers {', '.join(over)} have a larger {key}; the server refuses to lower the "
                    f"limit below them (err_code {STREAM_UPDATE_FAILED}): lower their {key} first, apply, then the limit",
                )

    # -- streams ---------------------------------------------------------

    def _declared(self, spec: StreamSpec | ConsumerSpec) -> dict:
        """The file's config of a stream or consumer with the topology's owner in its metadata, before completion."""
        return with_owner(spec.config, self.topology.owner)

    def _desired_stream(self, spec: StreamSpec) -> dict:
        return rules.complete_stream(self._declared(spec), self.version, self.origin_configs)

    def _supported(self, ref: Ref, kind: str, config: dict, creating: bool = False) -> bool:
        messages = rules.unsupported_fields(kind, config, self.version) if self.version else []
        if messages and ref.kind in buckets.SETTINGS:
            settings = buckets.bucket_settings(ref.kind, config)
            messages = rules.unsupported_settings(ref.kind, settings, self.version) or messages
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
            # From the file's config, not its completion: the same smallest config (a property test), found with a
            # completion per field the file sets instead of per field the completion adds.
            settings = rules.without_identity(rules.minimal_stream(self._declared(spec), self.version, self.origin_configs))
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
                self.phases["consumer_delete"].append(DeleteResource(
                    Ref("consumer", cname, name), rules.strip_live(consumer, "consumer"), _consumer_at_risk(stream, cname)
                ))
        self.phases["stream_delete"].append(
            DeleteResource(ref, rules.strip_live(stream.config, "stream"), self._data_at_risk(stream))
        )

    def _compare_stream(self, spec: StreamSpec, stream: LiveStream) -> None:
        ref = spec.ref
        if self._ownership(ref, stream.config, declared=True) is not Ownership.MANAGE:
            return
        adopting = owner_of(stream.config) is None
        after = self._desired_stream(spec)
        if not self._supported(ref, "stream", after):
            return
        before = rules.strip_live(stream.config, "stream", after)
        migration = None
        if spec.replace == "migrate" or self.migrate:
            live_consumers = _declarable_consumers(stream)
            migration = lambda op: self._migration(op, spec, stream.state, live_consumers)  # noqa: E731
        replaced = self._compare(ref, "stream", before, after, spec.protect, adopting, lambda: self._data_at_risk(stream),
                                 "stream", migration, stream.config)
        if replaced and migration:
            return
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

    def _compare(self, ref, kind, before, after, protect, adopting, at_risk, phase, migration=None,
                 live_config=None) -> bool:
        """Plan an update or a replace of one resource; True when it is replaced.

        ``at_risk()``: what a replacement loses; ``migration`` turns a replacement into one that keeps the data
        (None when it cannot); ``live_config``: the live config, whose record of what the tool last applied
        (drift.py) tells drift from what the file asks. Both are read only when something changes: most
        resources of most plans do not.
        """
        changes = field_changes(before, after)
        if not changes:
            return False
        changes = drift.marked(changes, None if adopting or live_config is None else drift.applied(live_config))
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
            op = ReplaceResource(ref, before, after, changes, at_risk())
            op = migration(op) if migration else op
            if op is not None:
                self.phases[phase].append(op)
            return True
        self.phases[phase].append(UpdateResource(ref, before, after, changes, adopt=adopting))
        return False

    # -- migrations ------------------------------------------------------

    def _migration(self, op: ReplaceResource, spec: StreamSpec, state: dict, live_consumers: dict,
                   resume: str | None = None) -> ReplaceResource | None:
        """The replacement as a migration (no data at risk); None, with the errors, when it cannot be migrated."""
        consumers = self._desired_consumers(spec, op.after)
        if resume is None:
            problems = migrate.refusals(op.before, op.after, self.version, migrate.kept_consumers(live_consumers, consumers),
                                        self._readers(op.ref.stream_name), state)
            for message in problems:
                self._error(op.ref, Reason.IMPOSSIBLE, f"stream {op.ref.stream_name} cannot be migrated: {message}")
            if problems:
                return None
        plan = migrate.plan_migration(op.before, op.after, state or {}, live_consumers, consumers, resume)
        return dataclasses.replace(op, data_at_risk=None, migration=plan)

    def _readers(self, name: str) -> list[str]:
        """The live streams that mirror or source ``name``, beside a migration's or rename's own copy."""
        return sorted(other for other, stream in self.live.streams.items()
                      if name in origins(stream.config) and not migrate.in_transit(stream.config))

    def _desired_consumers(self, spec: StreamSpec, stream_config: dict) -> dict:
        """The stream's consumers as a migration creates them (name -> complete config); errors for those refused."""
        consumers = {}
        for consumer in spec.consumers.values():
            config = self._desired_consumer(consumer, stream_config)
            if self._supported(Ref("consumer", consumer.name, spec.name), "consumer", config, creating=True):
                consumers[consumer.name] = config
        return consumers

    # -- stream renames --------------------------------------------------

    def _stream_renames(self, desired: dict, live: dict) -> set[str]:
        """Streams ``renamed_from`` another: the server has no rename, so NEW is created and takes OLD's
        messages and consumers by the migration route (migrate.py), then OLD is deleted. Plans each rename
        to do or to finish, or the errors that stop it; returns the names kept out of the ordinary
        comparison (NEW and OLD). A rename done already (NEW exists, unmarked) is compared as any stream."""
        handled = set()
        for name, spec in sorted(desired.items()):
            old, new = spec.renamed_from, live.get(name)
            if not old or (new is not None and migrate.renaming(new.config) is None):
                if old and new is not None and old in live:
                    self._error(spec.ref, Reason.IMPOSSIBLE,
                                f"{spec.ref} cannot be renamed from {old}: both exist; remove renamed_from (and "
                                f"delete {old} with --prune) or delete {name} first")
                    handled.add(old)
                continue
            handled |= {name, old}
            self._rename_stream(spec, old, live.get(old), new)
        # A stream still marked as being renamed into, which the topology no longer renames: left as it is.
        for name, stream in sorted(live.items()):
            old = migrate.renaming(stream.config)
            if old and name not in handled:
                ref = Ref("stream", name)
                self._error(ref, Reason.INTERRUPTED,
                            f"{ref}: an interrupted rename from {old} is not finished; declare {name} with "
                            f"renamed_from: {old} to finish it")
                handled |= {name, old}
        return handled

    def _rename_stream(self, spec: StreamSpec, old: str, old_live: LiveStream | None,
                       new_live: LiveStream | None) -> None:
        ref = spec.ref
        step = migrate.rename_step(old_live and old_live.config, new_live and new_live.config)
        problems = []  # validate refuses an OLD the topology declares
        if old_live is None and step in ("copy", "swap in"):
            problems.append(f"the server has no stream {old}" if new_live is None else
                            f"{old} was deleted before {spec.name} had all its messages")
        elif old_live is not None and self._ownership(Ref("stream", old), old_live.config, declared=True) \
                is not Ownership.MANAGE:
            return
        after = self._desired_stream(spec)
        if not self._supported(ref, "stream", after, creating=True):
            return
        consumers = self._desired_consumers(spec, after)
        # OLD's consumers hold the positions until OLD is deleted, which is the rename's last step but one.
        live_consumers = _declarable_consumers(old_live) if old_live else {}
        renamed = {n: c.renamed_from for n, c in spec.consumers.items() if c.renamed_from}
        before = rules.strip_live(old_live.config, "stream") if old_live else {}
        kept = migrate.kept_consumers(live_consumers, consumers, renamed)
        dropped = tuple(sorted(set(live_consumers) - set(kept.values())))
        if new_live is None:
            problems += migrate.refusals(before, after, self.version, kept, self._readers(old), old_live and old_live.state)
        if dropped and not self.prune:
            problems.append(f"deleting {old} deletes its consumers {', '.join(dropped)}, which {spec.name} does not "
                            "declare: declare them there to keep them, or plan with --prune to let them go")
        for problem in problems:
            self._error(ref, Reason.IMPOSSIBLE, f"{ref} cannot be renamed from {old}: {problem}")
        if problems:
            return
        state = (old_live or new_live).state
        migration = dataclasses.replace(
            migrate.plan_migration(before, after, state or {}, live_consumers, consumers,
                                   None if new_live is None else step, temp=old, renamed=renamed), dropped=dropped)
        settings = rules.without_identity(rules.minimal_stream(after, self.version, self.origin_configs))
        self.phases["stream"].append(CreateResource(ref, after, settings, renamed_from=old, migration=migration))

    def _resume_migration(self, desired: dict, live: dict, temp: LiveStream) -> None:
        """A migration a previous apply did not finish: finished towards what the topology says now."""
        name = migrate.migrating(temp.config)
        spec = desired.get(name)
        kind, bucket = buckets.bucket_of(name) or ("stream", name)
        ref = spec.ref if spec else Ref(kind, bucket)
        if spec is None:
            self._error(ref, Reason.INTERRUPTED,
                        f"{ref}: an interrupted migration left its messages in {temp.config['name']}; put {ref} back "
                        "in the topology to finish it")
            return
        original = live.get(name)
        before = rules.strip_live(original.config, "stream") if original else {}
        after = self._desired_stream(spec)
        step = migrate.next_step(original and original.config, temp.config)
        # The old consumers' positions are on the old stream, or recorded in TEMP once it was deleted.
        consumers = dict(original.consumers) if original and step in ("copy", "swap in", "delete") else {}
        consumers.update({n: {} for n in migrate.positions(temp.config)})
        op = ReplaceResource(ref, before, after, field_changes(before, after) if original else ())
        self.phases["stream"].append(self._migration(op, spec, temp.state, consumers, resume=step))

    @staticmethod
    def _data_at_risk(stream: LiveStream) -> DataAtRisk:
        state = stream.state or {}
        return DataAtRisk(state.get("messages", 0), state.get("bytes", 0), len(stream.consumers))

    # -- consumers -------------------------------------------------------

    def _desired_consumer(self, spec: ConsumerSpec, stream_config: dict) -> dict:
        if spec.complete is not None and self.completes_as_newest:
            return dict(spec.complete)  # validate's: the same, for a line that completes as the newest
        return rules.complete_consumer(self._declared(spec), stream_config, self.version)

    def _create_consumer(self, spec: ConsumerSpec, stream_config: dict, renamed_from: str | None = None) -> None:
        ref = Ref("consumer", spec.name, spec.stream)
        config = self._desired_consumer(spec, stream_config)
        if self._supported(ref, "consumer", config, creating=True):
            settings = rules.without_identity(rules.minimal_consumer(self._declared(spec), stream_config, self.version))
            self.phases["consumer"].append(CreateResource(ref, config, settings, renamed_from))

    def _renames(self, spec: StreamSpec, live: dict) -> dict[str, str]:
        """New consumer name -> the live one it takes over (renamed_from), when that can be done; errors say why not."""
        renames = {}
        for name, consumer in sorted(spec.consumers.items()):
            old = consumer.renamed_from
            if not old or name in live or old not in live:  # done already, or nothing to take over
                continue
            ref = Ref("consumer", name, spec.name)
            problems = migrate.rename_refusals(old, consumer.config, self.version)
            if old in spec.consumers:
                problems.append(f"{old} is still declared; a renamed consumer replaces it")
            elif self._ownership(Ref("consumer", old, spec.name), live[old], declared=True) is not Ownership.MANAGE:
                continue
            for problem in problems:
                self._error(ref, Reason.IMPOSSIBLE, f"{ref} cannot take over the position of {old}: {problem}")
            if not problems:
                renames[name] = old
        return renames

    def _compare_consumers(self, spec: StreamSpec, stream: LiveStream, stream_config: dict) -> None:
        live = _declarable_consumers(stream)
        renames = self._renames(spec, live)
        for name in sorted(spec.consumers.keys() | live.keys()):
            ref = Ref("consumer", name, spec.name)
            if name in renames.values():  # deleted once its new name has taken over its position
                continue
            if name not in live:
                self._create_consumer(spec.consumers[name], stream_config, renames.get(name))
                continue
            if name not in spec.consumers:
                if self._ownership(ref, live[name], declared=False) is Ownership.DELETE:
                    self.phases["consumer_delete"].append(
                        DeleteResource(ref, rules.strip_live(live[name], "consumer"), _consumer_at_risk(stream, name))
                    )
                continue
            if self._ownership(ref, live[name], declared=True) is not Ownership.MANAGE:
                continue
            desired = spec.consumers[name]
            after = self._desired_consumer(desired, stream_config)
            if not self._supported(ref, "consumer", after):
                continue
            before = rules.strip_live(live[name], "consumer", after)
            adopting = owner_of(live[name]) is None
            self._compare(ref, "consumer", before, after, desired.protect, adopting,
                          lambda: _consumer_at_risk(stream, name), "consumer", live_config=live[name])

    # -- findings --------------------------------------------------------

    def _error(self, ref: Ref, reason: Reason, message: str) -> None:
        self.plan.findings.append(Finding(ref, Severity.ERROR, reason, message))

    def _refused(self, ref: Ref, path: tuple, message: str) -> None:
        where = f"{dotted(path)}: " if path else ""
        self._error(ref, Reason.REFUSED, f"{ref}: {where}{message}")

    def _note(self, ref: Ref, reason: Reason, message: str) -> None:
        self.plan.findings.append(Finding(ref, Severity.NOTE, reason, message))

