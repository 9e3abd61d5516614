"""Plan data types: what a plan is made of, shared by plan (which builds them),
render (which shows them) and apply (which carries them out).

Values inside configs and field changes are the JetStream API's own JSON
(durations in nanoseconds, sizes in bytes); render turns them into human units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from .buckets import PREFIXES

KINDS = ("stream", "consumer", "key_value", "object_store")


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
