"""Plan data types: what a plan is made of, shared by plan (which builds them),
render (which shows them) and apply (which carries them out).

Values inside configs and field changes are the JetStream API's own JSON
(durations in nanoseconds, sizes in bytes); render turns them into human units.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Union

from .buckets import PREFIXES


class Action(StrEnum):
    """The closed set of things a plan does to a resource (terraform's, without no-op)."""

    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"


class Severity(StrEnum):
    """An error blocks apply; a note is information."""

    ERROR = "error"
    NOTE = "note"


class Reason(StrEnum):
    """Why a finding was made: a stable machine word (the README's JSON format lists them)."""

    UNMANAGED = "unmanaged"  # a live resource without owner metadata, left alone
    CONFLICT = "conflict"  # owned by another owner
    IMPOSSIBLE = "impossible"  # a change the server refuses and no replacement can make (a one-way flag)
    PROTECTED = "protected"  # protect: true, but the change would replace it
    NEEDS_ADOPT = "needs_adopt"  # declared, exists unowned: --adopt takes it over
    NEEDS_PRUNE = "needs_prune"  # ours, no longer declared: --prune deletes it
    UNSUPPORTED = "unsupported"  # the server is too old for a field or value, or refuses it on create
    RESERVED = "reserved"  # the name of the tool's own apply-lock bucket
    MISSING_ORIGIN = "missing_origin"  # an existing_streams entry the server does not have
    OVERLAP = "overlap"  # subjects of a live stream the topology does not manage
    REFUSED = "refused"  # a config the server refuses (refusals.py), judged with live state and its line
    TARGET = "target"  # the servers or the account would refuse it (target.py)
    UNCHECKED = "unchecked"  # a note: a fact about the target the server did not tell
    INTERRUPTED = "interrupted"  # a migration's temporary stream holds messages of a stream no longer declared


@dataclass(frozen=True, order=True)
class Ref:
    """Names one JetStream resource. For a consumer, ``stream`` is the stream it belongs to."""

    kind: str
    name: str
    stream: str = ""

    def __str__(self) -> str:
        if self.kind == "consumer":
            return f"consumer {self.stream}/{self.name}"
        return f"{self.kind} {self.name}"

    @property
    def stream_name(self) -> str:
        """The JetStream stream behind this resource (a bucket's is KV_<name> or OBJ_<name>)."""
        return self.stream or PREFIXES.get(self.kind, "") + self.name


@dataclass(frozen=True)
class FieldChange:
    """One field that differs. ``path`` is dotted (``placement.tags``); None means absent. ``drift``: the live
    value changed outside the topology since the tool applied the file's value (drift.py)."""

    path: str
    old: Any
    new: Any
    forces_replacement: bool = False
    drift: bool = False


@dataclass(frozen=True)
class DataAtRisk:
    """What an operation destroys of a stream: its messages and bytes, and for a delete or replace the
    consumers that go with it. ``estimate`` names the figures that are estimated ("messages", "bytes"): an
    update's loss is computed from counts and sizes, not from the messages themselves."""

    messages: int
    bytes: int
    consumers: int = 0
    estimate: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConsumerAtRisk:
    """What deleting or replacing a consumer loses: the messages pending for it, those delivered and awaiting
    ack, and its position (the last stream sequence delivered, and below which all is acknowledged)."""

    pending: int
    ack_pending: int
    delivered_stream_seq: int
    ack_floor_stream_seq: int


Risk = Union[DataAtRisk, ConsumerAtRisk]


@dataclass(frozen=True)
class Migration:
    """How a replaced stream keeps its messages: copied out through a temporary stream and back
    (migrate.py plans it, migrator.py carries it out). Figures are the live stream's when planned."""

    temp: str  # the temporary stream (a rename's: the old stream, deleted at the end)
    messages: int
    bytes: int
    first_seq: int
    last_seq: int
    consumers: dict = field(default_factory=dict)  # the new stream's consumers: durable name -> config
    kept: tuple[str, ...] = ()  # consumers that resume where they stand
    resume: str | None = None  # the step an interrupted migration stopped before; None for a new one
    renamed: dict = field(default_factory=dict)  # kept consumer -> the live one whose position it takes, when another
    dropped: tuple[str, ...] = ()  # a rename's: the old stream's consumers that go with it (the new one lacks them)


@dataclass(frozen=True)
class CreateResource:
    """``config`` is the complete config sent; ``settings`` what the topology sets beyond the server's own
    defaults (a bucket's in its bucket settings), for a person to read."""

    ref: Ref
    config: dict
    settings: dict = field(default_factory=dict)
    # A consumer that starts where this live one stands, or a stream that takes this live one's messages and
    # consumers (``migration`` says how); the live one is deleted at the end.
    renamed_from: str | None = None
    migration: Migration | None = None
    action: ClassVar[Action] = Action.CREATE


@dataclass(frozen=True)
class UpdateResource:
    """An in-place update; ``adopt`` marks taking over an unowned live resource."""

    ref: Ref
    before: dict
    after: dict
    changes: tuple[FieldChange, ...]
    adopt: bool = False
    data_at_risk: DataAtRisk | None = None  # messages the new limits destroy at once
    action: ClassVar[Action] = Action.UPDATE


@dataclass(frozen=True)
class ReplaceResource:
    """Delete then create, because a field the server will not update changed."""

    ref: Ref
    before: dict
    after: dict
    changes: tuple[FieldChange, ...]
    data_at_risk: Risk | None = None
    migration: Migration | None = None  # the messages are migrated instead of destroyed
    action: ClassVar[Action] = Action.REPLACE

    @property
    def forced_by(self) -> list[str]:
        return [c.path for c in self.changes if c.forces_replacement]


@dataclass(frozen=True)
class DeleteResource:
    ref: Ref
    before: dict
    data_at_risk: Risk | None = None
    action: ClassVar[Action] = Action.DELETE


Operation = Union[CreateResource, UpdateResource, ReplaceResource, DeleteResource]


def resulting_config(op: Operation) -> dict | None:
    """The config the resource has once the operation is done; None after a delete."""
    match op:
        case CreateResource():
            return op.config
        case UpdateResource() | ReplaceResource():
            return op.after
    return None


def prior_config(op: Operation) -> dict | None:
    """The config the resource had before the operation; None for a create."""
    return None if isinstance(op, CreateResource) else op.before


def changes_of(op: Operation) -> tuple[FieldChange, ...]:
    """The field changes of an update or a replace; none for a create or a delete."""
    return op.changes if isinstance(op, (UpdateResource, ReplaceResource)) else ()


def data_at_risk(op: Operation) -> Risk | None:
    """What an update, replace or delete destroys (None for a create, or when nothing is known to be lost)."""
    return None if isinstance(op, CreateResource) else op.data_at_risk


@dataclass(frozen=True)
class Finding:
    """Something the plan reports that is not an operation.

    severity "error" blocks apply (e.g. a one-way flag turned back, a conflict with another owner);
    "note" is information (e.g. an unmanaged live resource that is left alone).
    ``reason`` is one of Reason; ValueError for any other word.
    """

    ref: Ref
    severity: Severity
    reason: Reason
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", Severity(self.severity))
        object.__setattr__(self, "reason", Reason(self.reason))


@dataclass
class Plan:
    """Operations in execution order plus findings, and what the plan was made from."""

    operations: list[Operation] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    owner: str = ""
    sources: list[str] = field(default_factory=list)
    environment: str | None = None
    server: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)  # prune, adopt, allow_replace: as given when planning
    targets: list[str] = field(default_factory=list)  # --target KIND/NAME: a partial plan of these (targets.py)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]

    @property
    def has_changes(self) -> bool:
        return bool(self.operations)

    def counts(self) -> dict[Action, int]:
        counts = dict.fromkeys(Action, 0)
        for op in self.operations:
            counts[op.action] += 1
        return counts


# -- the JSON form ------------------------------------------------------
# One pair of functions, so `plan --format json` and a saved plan file share one form and a
# saved plan reads back into exactly the operations that were shown.


def ref_to_dict(ref: Ref) -> dict:
    return {"kind": ref.kind, "name": ref.name, "stream": ref.stream or None}


def ref_from_dict(data: dict) -> Ref:
    return Ref(data["kind"], data["name"], data.get("stream") or "")


def operation_to_dict(op: Operation) -> dict:
    """An operation as JSON data in API units; ``operation_from_dict`` reads it back."""
    changes, risk = changes_of(op), data_at_risk(op)
    document = {
        **ref_to_dict(op.ref),
        "action": op.action,
        "before": prior_config(op),
        "after": resulting_config(op),
        "changes": [
            {"path": c.path, "old": c.old, "new": c.new, "forces_replacement": c.forces_replacement, "drift": c.drift}
            for c in changes
        ],
        "forces_replacement": [c.path for c in changes if c.forces_replacement],
        "data_at_risk": None if risk is None else dataclasses.asdict(risk),
        "adopt": isinstance(op, UpdateResource) and op.adopt,
        "migration": migration_to_dict(getattr(op, "migration", None)),
    }
    if isinstance(op, CreateResource):
        document["settings"] = op.settings
        document["renamed_from"] = op.renamed_from
    return document


def migration_to_dict(migration: Migration | None) -> dict | None:
    if migration is None:
        return None
    return {**dataclasses.asdict(migration), "kept": list(migration.kept), "dropped": list(migration.dropped)}


def operation_from_dict(data: dict) -> Operation:
    """The inverse of ``operation_to_dict``; KeyError or ValueError when the data is not one."""
    ref = ref_from_dict(data)
    changes = tuple(FieldChange(c["path"], c["old"], c["new"], bool(c["forces_replacement"]), bool(c.get("drift")))
                    for c in data["changes"])
    risk = _risk_from_dict(data.get("data_at_risk"))
    match Action(data["action"]):  # ValueError for an unknown action
        case Action.CREATE:
            return CreateResource(ref, data["after"], data["settings"], data.get("renamed_from"),
                                  _migration_from_dict(data.get("migration")))
        case Action.UPDATE:
            return UpdateResource(ref, data["before"], data["after"], changes, bool(data["adopt"]), risk)
        case Action.REPLACE:
            return ReplaceResource(ref, data["before"], data["after"], changes, risk,
                                   _migration_from_dict(data.get("migration")))
        case Action.DELETE:
            return DeleteResource(ref, data["before"], risk)


def _migration_from_dict(data: dict | None) -> Migration | None:
    return Migration(**{**data, "kept": tuple(data["kept"]), "dropped": tuple(data.get("dropped") or ())}) if data else None


def _risk_from_dict(data: dict | None) -> Risk | None:
    if data is None:
        return None
    if "pending" in data:
        return ConsumerAtRisk(**data)
    return DataAtRisk(data["messages"], data["bytes"], data["consumers"], tuple(data["estimate"]))


def finding_to_dict(finding: Finding) -> dict:
    return {**ref_to_dict(finding.ref), "severity": finding.severity, "reason": finding.reason, "message": finding.message}


def finding_from_dict(data: dict) -> Finding:
    return Finding(ref_from_dict(data), data["severity"], data["reason"], data["message"])
