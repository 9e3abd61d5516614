"""Plan data types: what a plan is made of, shared by plan (which builds them),
render (which shows them) and apply (which carries them out).

Values inside configs and field changes are the JetStream API's own JSON
(durations in nanoseconds, sizes in bytes); render turns them into human units.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Union

from .buckets import PREFIXES


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
    """One field that differs. ``path`` is dotted (``placement.tags``); None means absent."""

    path: str
    old: Any
    new: Any
    forces_replacement: bool = False


@dataclass(frozen=True)
class DataAtRisk:
    """What deleting or replacing a stream destroys."""

    messages: int
    bytes: int
    consumers: int = 0


@dataclass(frozen=True)
class Migration:
    """How a replaced stream keeps its messages: copied out through a temporary stream and back
    (migrate.py plans it, migrator.py carries it out). Figures are the live stream's when planned."""

    temp: str  # the temporary stream
    messages: int
    bytes: int
    first_seq: int
    last_seq: int
    consumers: dict = field(default_factory=dict)  # the new stream's consumers: durable name -> config
    kept: tuple[str, ...] = ()  # consumers that resume where they stand
    resume: str | None = None  # the step an interrupted migration stopped before; None for a new one


@dataclass(frozen=True)
class CreateResource:
    ref: Ref
    config: dict
    action = "create"


@dataclass(frozen=True)
class UpdateResource:
    """An in-place update; ``adopt`` marks taking over an unowned live resource."""

    ref: Ref
    before: dict
    after: dict
    changes: tuple[FieldChange, ...]
    adopt: bool = False
    action = "update"


@dataclass(frozen=True)
class ReplaceResource:
    """Delete then create, because a field the server will not update changed."""

    ref: Ref
    before: dict
    after: dict
    changes: tuple[FieldChange, ...]
    data_at_risk: DataAtRisk | None = None
    migration: Migration | None = None  # the messages are migrated instead of destroyed
    action = "replace"

    @property
    def forced_by(self) -> list[str]:
        return [c.path for c in self.changes if c.forces_replacement]


@dataclass(frozen=True)
class DeleteResource:
    ref: Ref
    before: dict
    data_at_risk: DataAtRisk | None = None
    action = "delete"


Operation = Union[CreateResource, UpdateResource, ReplaceResource, DeleteResource]


def resulting_config(op: Operation) -> dict | None:
    """The config the resource has once the operation is done; None after a delete."""
    return op.config if isinstance(op, CreateResource) else getattr(op, "after", None)

ACTIONS = ("create", "update", "replace", "delete")


@dataclass(frozen=True)
class Finding:
    """Something the plan reports that is not an operation.

    severity "error" blocks apply (e.g. a one-way flag turned back, a conflict with another owner);
    "note" is information (e.g. an unmanaged live resource that is left alone).
    ``reason`` is a stable machine word: unmanaged, conflict, impossible, protected,
    needs_adopt, needs_prune, unsupported.
    """

    ref: Ref
    severity: str
    reason: str
    message: str


@dataclass
class Plan:
    """Operations in execution order plus findings, and what the plan was made from."""

    operations: list[Operation] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    owner: str = ""
    sources: list[str] = field(default_factory=list)
    environment: str | None = None
    server: dict = field(default_factory=dict)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def has_changes(self) -> bool:
        return bool(self.operations)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(ACTIONS, 0)
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
    changes = getattr(op, "changes", ())
    risk = getattr(op, "data_at_risk", None)
    return {
        **ref_to_dict(op.ref),
        "action": op.action,
        "before": getattr(op, "before", None),
        "after": resulting_config(op),
        "changes": [
            {"path": c.path, "old": c.old, "new": c.new, "forces_replacement": c.forces_replacement} for c in changes
        ],
        "forces_replacement": [c.path for c in changes if c.forces_replacement],
        "data_at_risk": (
            None if risk is None else {"messages": risk.messages, "bytes": risk.bytes, "consumers": risk.consumers}
        ),
        "adopt": isinstance(op, UpdateResource) and op.adopt,
        "migration": migration_to_dict(getattr(op, "migration", None)),
    }


def migration_to_dict(migration: Migration | None) -> dict | None:
    if migration is None:
        return None
    return {**dataclasses.asdict(migration), "kept": list(migration.kept)}


def operation_from_dict(data: dict) -> Operation:
    """The inverse of ``operation_to_dict``; KeyError or ValueError when the data is not one."""
    ref = ref_from_dict(data)
    changes = tuple(FieldChange(c["path"], c["old"], c["new"], bool(c["forces_replacement"])) for c in data["changes"])
    risk = DataAtRisk(**data["data_at_risk"]) if data.get("data_at_risk") is not None else None
    action = data["action"]
    if action == "create":
        return CreateResource(ref, data["after"])
    if action == "update":
        return UpdateResource(ref, data["before"], data["after"], changes, adopt=bool(data["adopt"]))
    if action == "replace":
        migration = data.get("migration")
        migration = Migration(**{**migration, "kept": tuple(migration["kept"])}) if migration else None
        return ReplaceResource(ref, data["before"], data["after"], changes, risk, migration)
    if action == "delete":
        return DeleteResource(ref, data["before"], risk)
    raise ValueError(f"unknown action {action!r}")


def finding_to_dict(finding: Finding) -> dict:
    return {**ref_to_dict(finding.ref), "severity": finding.severity, "reason": finding.reason, "message": finding.message}


def finding_from_dict(data: dict) -> Finding:
    return Finding(ref_from_dict(data), data["severity"], data["reason"], data["message"])
