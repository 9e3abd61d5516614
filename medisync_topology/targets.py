"""Partial plans, `--target KIND/NAME` as terraform's -target: only the named resources and what they need.

Pure: it narrows a plan made of the whole topology. What a target needs comes along: a consumer's stream,
a mirror's or source's origin, and the consumers a replaced or deleted stream takes with it.
"""

from __future__ import annotations

from dataclasses import replace
from fnmatch import fnmatchcase

from . import buckets
from .errors import TopologyError
from .model import Topology
from .ops import Action, Plan, Ref, resulting_config
from .plan import origins

KINDS = ("stream", "consumer", "key_value", "object_store")
FORMS = "stream/NAME, consumer/STREAM/NAME, key_value/NAME or object_store/NAME (shell wildcards allowed)"


def parse_target(spec: str) -> tuple[str, str, str]:
    """(kind, name pattern, stream pattern) of one --target; TopologyError when it is not one."""
    kind, _, rest = spec.partition("/")
    parts = rest.split("/")
    if kind not in KINDS or not all(parts) or len(parts) != (2 if kind == "consumer" else 1):
        raise TopologyError(f"--target {spec}: give {FORMS}")
    return (kind, parts[1], parts[0]) if kind == "consumer" else (kind, parts[0], "")


def _matches(target: tuple[str, str, str], ref: Ref) -> bool:
    kind, name, stream = target
    return ref.kind == kind and fnmatchcase(ref.name, name) and fnmatchcase(ref.stream, stream or "")


def _stream_ref(stream_name: str) -> Ref:
    kind, name = buckets.bucket_of(stream_name) or ("stream", stream_name)
    return Ref(kind, name)


def targeted(plan: Plan, topology: Topology, specs: list[str]) -> Plan:
    """The part of ``plan`` the targets name, with what they need; the plan itself without targets.

    A target that names nothing in the topology or the plan (live resources show there) is an error.
    """
    if not specs:
        return plan
    targets = [(spec, parse_target(spec)) for spec in specs]
    known = {spec.ref for spec in {**topology.streams, **topology.buckets}.values()}
    known |= {Ref("consumer", c.name, c.stream) for s in topology.streams.values() for c in s.consumers.values()}
    known |= {op.ref for op in plan.operations} | {f.ref for f in plan.findings}
    for spec, target in targets:
        if not any(_matches(target, ref) for ref in known):
            raise TopologyError(f"--target {spec} names nothing in the topology or on the server")
    chosen = {ref for ref in known if any(_matches(target, ref) for _, target in targets)}
    configs = {op.ref: resulting_config(op) for op in plan.operations}
    configs.update({spec.ref: spec.config for spec in {**topology.streams, **topology.buckets}.values()
                    if spec.ref not in configs})
    emptied = {op.ref.stream_name for op in plan.operations
               if op.ref.kind != "consumer" and op.action in (Action.REPLACE, Action.DELETE)}
    pending = list(chosen)
    while pending:  # what each chosen resource needs, and what that needs in turn
        ref = pending.pop()
        needs = {_stream_ref(ref.stream)} if ref.kind == "consumer" else {
            _stream_ref(origin) for origin in origins(configs.get(ref) or {})}
        if ref.kind != "consumer" and ref.stream_name in emptied:
            needs |= {op.ref for op in plan.operations if op.ref.kind == "consumer" and op.ref.stream == ref.stream_name}
        pending += [need for need in needs - chosen]
        chosen |= needs
    return replace(
        plan,
        operations=[op for op in plan.operations if op.ref in chosen],
        findings=[f for f in plan.findings if f.ref in chosen],
        targets=list(specs),
    )
