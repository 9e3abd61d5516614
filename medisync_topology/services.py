"""`services:` in topology.yaml: who publishes and consumes what, checked against the topology.

Errors are what cannot work (a consumer or bucket that does not exist, a write into a mirror);
notes are what is legitimate but probably unintended (a subject no stream keeps, a consumer no
service works). The same facts serve permissions, explain and graph.
"""

from __future__ import annotations

from . import buckets, subjects
from .loader import Document, Problem
from .model import StreamSpec, Topology

ACCESS_SECTIONS = {"key_value": "key_value", "object_store": "object_stores"}  # bucket kind -> service field


def variable_name(service: str) -> str:
    """The service's nats.conf permissions variable: ALERT_WORKER for alert-worker."""
    return service.upper().replace("-", "_")


def capturing(topology: Topology, subject: str) -> list[tuple[StreamSpec, bool]]:
    """Every stream (buckets' too) whose subjects overlap the valid ``subject``, by name, each with
    True when it captures all of it (the subject is inside one of its subjects)."""
    found = []
    for stream in sorted([*topology.streams.values(), *topology.buckets.values()], key=lambda s: s.name):
        own = [s for s in stream.config.get("subjects") or [] if s and not subjects.subject_problem(s)]
        if any(subjects.subjects_overlap(subject, s) for s in own):
            found.append((stream, any(subjects.subject_is_subset(subject, s) for s in own)))
    return found


def bucket(topology: Topology, kind: str, name: str) -> StreamSpec | None:
    return topology.buckets.get(buckets.PREFIXES[kind] + name)


def consumers_of(topology: Topology, stream: str, consumer: str) -> list[str]:
    """The services that work consumer ``stream/consumer``, by name."""
    return sorted(name for name, service in topology.services.items() if (stream, consumer) in service.consume)


def service_problems(topology: Topology, doc: Document) -> tuple[list[Problem], list[Problem]]:
    """(errors, notes) about the services section."""
    problems: list[Problem] = []
    notes: list[Problem] = []
    variables: dict[str, str] = {}
    for name, service in topology.services.items():
        here = ("services", name)
        other = variables.setdefault(variable_name(name), name)
        if other != name:
            problems.append(doc.problem(here, f"service {name} and service {other} would both be {variable_name(name)} in nats.conf; rename one"))
        for i, (stream, consumer) in enumerate(service.consume):
            if stream not in topology.streams:
                problems.append(doc.problem(here + ("consume", i), f"stream {stream} is not in the topology"))
            elif consumer not in topology.streams[stream].consumers:
                known = ", ".join(topology.streams[stream].consumers) or "none"
                problems.append(doc.problem(here + ("consume", i), f"stream {stream} has no consumer {consumer} (its consumers: {known})"))
        for kind, field in ACCESS_SECTIONS.items():
            what = "KV bucket" if kind == "key_value" else "object store"
            for name_, access in getattr(service, field).items():
                spec = bucket(topology, kind, name_)
                if spec is None:
                    problems.append(doc.problem(here + (field, name_), f"{what} {name_} is not in the topology"))
                elif access == "read-write" and spec.config.get("mirror"):
                    problems.append(doc.problem(here + (field, name_), _mirror_write(what, name_, spec)))
        for i, subject in enumerate(service.publish):
            path = here + ("publish", i)
            if message := subjects.subject_problem(subject):
                problems.append(doc.problem(path, message))
                continue
            found = capturing(topology, subject)
            mirrors = [s for s in topology.buckets.values() if s.config.get("mirror")
                       and any(subjects.subjects_overlap(subject, b) for b in buckets.bucket_subjects(s.kind, s.bucket))]
            for spec in mirrors:
                problems.append(doc.problem(path, _mirror_write("KV bucket" if spec.kind == "key_value" else "object store", spec.bucket, spec)))
            if not found and not mirrors:
                notes.append(doc.problem(path, f"no stream captures '{subject}': what {name} publishes there is not kept (core NATS only)"))
            elif found and not any(full for _, full in found):
                names = ", ".join(s.name for s, _ in found)
                notes.append(doc.problem(path, f"'{subject}' is only partly captured (by {names}): the rest is not kept"))
    if topology.services:
        for sname, stream in topology.streams.items():
            for cname in stream.consumers:
                if not consumers_of(topology, sname, cname):
                    notes.append(doc.problem(("streams", sname, "consumers", cname), f"no service consumes {sname}/{cname}"))
    return problems, notes


def _mirror_write(what: str, name: str, spec: StreamSpec) -> str:
    origin = spec.config["mirror"].get("name", "")
    return f"{what} {name} is a mirror (of {origin}): it takes only what its origin has, nobody writes into it"


def published_subjects(topology: Topology) -> list[tuple[tuple, str]]:
    """(path, subject) of every valid subject a service publishes, for the policy's subject pattern;
    NATS's own subjects ($KV.<bucket>.<key>, $O.…) follow NATS's conventions, not MediSync's."""
    return [(("services", name, "publish", i), subject) for name, service in topology.services.items()
            for i, subject in enumerate(service.publish) if not subjects.subject_problem(subject) and not subject.startswith("$")]
