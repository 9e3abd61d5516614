"""`topology explain SUBJECT`: where a subject goes, offline, from the topology alone.

Which stream captures it (for a wildcard, every stream it overlaps), which streams copy it (mirrors and
sources of those), which consumers' filters receive it, which services may publish it and which consume
it. For a KV bucket's or object store's subject, its writers publish and its readers receive.
"""

from __future__ import annotations

import json

from . import subjects
from .errors import TopologyError
from .model import StreamSpec, Topology
from .services import ACCESS_SECTIONS, capturing, consumers_of


def explain(topology: Topology, subject: str) -> dict:
    """{subject, stream, streams, copies, consumers, publishers, subscribers}; stream is the one stream
    capturing all of the subject, or None; streams every stream it overlaps."""
    if message := subjects.subject_problem(subject):
        raise TopologyError(message)
    found = capturing(topology, subject)
    whole = [s.name for s, full in found if full]
    copies = _copies(topology, [s for s, _ in found], subject)
    consumers = [f"{stream.name}/{name}" for stream in [*(s for s, _ in found), *copies]
                 for name, consumer in stream.consumers.items() if _receives(consumer.config, subject)]
    publishers = [name for name, service in topology.services.items()
                  if any(subjects.subjects_overlap(subject, s) for s in service.publish)]
    subscribers = sorted({service for entry in consumers for service in consumers_of(topology, *entry.split("/", 1))})
    for stream, _ in found:
        if stream.kind in ACCESS_SECTIONS:
            users = {name: getattr(service, ACCESS_SECTIONS[stream.kind]).get(stream.bucket) for name, service in topology.services.items()}
            publishers += [name for name, access in users.items() if access == "read-write"]
            subscribers += [name for name, access in users.items() if access]
    return {
        "subject": subject,
        "stream": whole[0] if whole else None,  # streams never overlap, so at most one captures all
        "streams": [s.name for s, _ in found],
        "copies": [s.name for s in copies],
        "consumers": consumers,
        "publishers": sorted(set(publishers)),
        "subscribers": sorted(set(subscribers)),
    }


def _receives(config: dict, subject: str) -> bool:
    filters = [config["filter_subject"]] if config.get("filter_subject") else config.get("filter_subjects") or [">"]
    return any(subjects.subjects_overlap(subject, f) for f in filters)


def _copies(topology: Topology, origins: list[StreamSpec], subject: str) -> list[StreamSpec]:
    """Streams that mirror or source (directly or through each other) what the origins capture of subject.

    A filtered mirror or source copies only its filter; subject transforms are not followed."""
    reached = {s.name for s in origins}
    copies: list[StreamSpec] = []
    changed = True
    while changed:
        changed = False
        for stream in topology.streams.values():
            if stream.name in reached:
                continue
            entries = [stream.config.get("mirror")] + list(stream.config.get("sources") or [])
            for entry in entries:
                if entry and entry.get("name") in reached and not entry.get("external") and _passes(entry, subject):
                    reached.add(stream.name)
                    copies.append(stream)
                    changed = True
                    break
    return copies


def _passes(entry: dict, subject: str) -> bool:
    filters = [entry["filter_subject"]] if entry.get("filter_subject") else [
        t.get("src") for t in entry.get("subject_transforms") or [] if t.get("src")]
    return not filters or any(subjects.subjects_overlap(subject, f) for f in filters)


def render_explain(answer: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(answer, indent=2, sort_keys=True) + "\n"
    if answer["stream"]:
        stream = answer["stream"]
    elif answer["streams"]:
        stream = f"none captures all of it; it overlaps {', '.join(answer['streams'])}"
    else:
        stream = "none: core NATS only, nothing keeps it"
    rows = [("stream", stream), ("copied to", ", ".join(answer["copies"])), ("consumers", ", ".join(answer["consumers"]) or "none"),
            ("publishers", ", ".join(answer["publishers"]) or "none"), ("subscribers", ", ".join(answer["subscribers"]) or "none")]
    return answer["subject"] + "\n" + "".join(f"  {key + ':':<13}{value}\n" for key, value in rows if value)
