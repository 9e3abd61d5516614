"""`topology graph`: the topology as a picture, offline: publishers -> streams (with their subjects),
mirrors and sources between streams, streams -> consumers -> the services consuming them, and KV buckets
and object stores with their readers and writers.

One plain graph (nodes and edges) and two renderers: Mermaid (GitHub renders it in markdown) and DOT
(Graphviz).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from .model import Topology
from .services import ACCESS_SECTIONS, capturing, consumers_of
from .subjects import subject_problem

SHAPES = {"service": "service", "stream": "stream", "consumer": "consumer", "key_value": "bucket",
          "object_store": "bucket", "subject": "subject"}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str = ""
    dashed: bool = False
    both: bool = False  # read-write: the arrow points both ways


@dataclass
class Graph:
    nodes: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # id -> (kind, label lines)
    edges: list[Edge] = field(default_factory=list)

    def node(self, kind: str, name: str, *lines: str) -> str:
        key = f"{kind}:{name}"
        self.nodes.setdefault(key, (kind, [name, *lines]))
        return key


def topology_graph(topology: Topology) -> Graph:
    graph = Graph()
    for name, service in topology.services.items():
        graph.node("service", name)
    for name, stream in topology.streams.items():
        graph.node("stream", name, *(stream.config.get("subjects") or []))
    for name, service in topology.services.items():
        targets: dict[str, list[str]] = {}
        for subject in service.publish:
            found = capturing(topology, subject) if not subject_problem(subject) else []
            if not found:
                targets.setdefault(graph.node("subject", subject, "(core NATS, not kept)"), []).append("")
            for stream, _ in found:
                if stream.kind == "stream":
                    targets.setdefault(f"stream:{stream.name}", []).append(subject)
        graph.edges += [Edge(f"service:{name}", target, ", ".join(s for s in labels if s)) for target, labels in targets.items()]
    for name, stream in topology.streams.items():
        for kind, entries in (("mirror", [stream.config.get("mirror")]), ("source", stream.config.get("sources") or [])):
            for entry in entries:
                if entry and entry.get("name"):
                    origin = graph.node("stream", entry["name"], *(["(external)"] if entry.get("external") else []))
                    graph.edges.append(Edge(origin, f"stream:{name}", kind, dashed=True))
        for cname in stream.consumers:
            consumer = graph.node("consumer", f"{name}/{cname}")
            graph.edges.append(Edge(f"stream:{name}", consumer))
            graph.edges += [Edge(consumer, f"service:{service}") for service in consumers_of(topology, name, cname)]
    for spec in topology.buckets.values():
        what = "KV" if spec.kind == "key_value" else "object store"
        node = graph.node(spec.kind, spec.bucket, what)
        for name, service in topology.services.items():
            access = getattr(service, ACCESS_SECTIONS[spec.kind]).get(spec.bucket)
            if access == "read-write":
                graph.edges.append(Edge(f"service:{name}", node, "read-write", both=True))
            elif access == "read":
                graph.edges.append(Edge(node, f"service:{name}", "read"))
    return graph


_MERMAID_SHAPES = {"service": ("([", "])"), "stream": ("[(", ")]"), "consumer": ("{{", "}}"), "bucket": ("[/", "/]"),
                   "subject": (">", "]")}


def render_mermaid(graph: Graph) -> str:
    ids = _short_ids(graph)
    lines = ["flowchart LR"]
    for key, (kind, label) in graph.nodes.items():
        opening, closing = _MERMAID_SHAPES[SHAPES[kind]]
        text = "<br/>".join(_mermaid_text(line) for line in label)
        lines.append(f'  {ids[key]}{opening}"{text}"{closing}')
    for edge in graph.edges:
        arrow = ("<-.->" if edge.both else "-.->") if edge.dashed else ("<-->" if edge.both else "-->")
        label = f'|"{_mermaid_text(edge.label)}"|' if edge.label else ""
        lines.append(f"  {ids[edge.source]} {arrow}{label} {ids[edge.target]}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    # A quote would end a quoted label and '<' could open an HTML tag: Mermaid's entity codes stand in.
    return text.replace('"', "#quot;").replace("<", "#lt;")


def _short_ids(graph: Graph) -> dict[str, str]:
    """Mermaid ids are letters, digits and '_': a readable one per node, numbered where two would clash."""
    ids: dict[str, str] = {}
    taken: set[str] = set()
    for key in graph.nodes:
        base = re.sub(r"[^A-Za-z0-9_]", "_", key.replace(":", "_", 1))
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            candidate = f"{base}_{n}"
        taken.add(candidate)
        ids[key] = candidate
    return ids


_DOT_SHAPES = {"service": 'shape=box, style=rounded', "stream": "shape=cylinder", "consumer": "shape=hexagon",
               "bucket": "shape=folder", "subject": "shape=plaintext"}


def render_dot(graph: Graph) -> str:
    lines = ["digraph topology {", "  rankdir=LR;", '  node [fontname="Helvetica"];', '  edge [fontname="Helvetica"];']
    for key, (kind, label) in graph.nodes.items():
        lines.append(f"  {json.dumps(key)} [label={json.dumps(chr(10).join(label))}, {_DOT_SHAPES[SHAPES[kind]]}];")
    for edge in graph.edges:
        attributes = ([f"label={json.dumps(edge.label)}"] if edge.label else []) + (["style=dashed"] if edge.dashed else [])
        attributes += ["dir=both"] if edge.both else []
        lines.append(f"  {json.dumps(edge.source)} -> {json.dumps(edge.target)}" + (f" [{', '.join(attributes)}]" if attributes else "") + ";")
    return "\n".join(lines + ["}"]) + "\n"
