"""Offline validation: the JSON Schema, then the rules a schema cannot express.

Every problem is collected (not just the first) and located in the file.
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Iterable
from dataclasses import replace
from functools import lru_cache
from importlib import resources
from pathlib import Path

from typing import TYPE_CHECKING, Any

import jsonschema_rs

from . import buckets, compose, fields, policy, refusals, rules, services, subjects
from .errors import TopologyError
from .loader import Document, InvalidTopology, Problem, any_scalar
from .model import StreamSpec, Topology, build_topology, with_owner

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

# The push-only and pull-only consumer fields (a consumer is push when it has a deliver_subject).
PUSH_ONLY = fields.scoped("consumer", "push")
PULL_ONLY = fields.scoped("consumer", "pull")
_UNSET = (None, False, 0, [], "")  # a push-only or pull-only field that is not set (once, not per consumer)


def schema_file() -> Path:
    """The JSON Schema's file: the source tree's when run from a checkout, else the copy inside the wheel."""
    in_checkout = Path(__file__).resolve().parent.parent / "schema" / "topology.schema.json"
    if in_checkout.is_file():
        return in_checkout
    return Path(str(resources.files(__package__).joinpath("topology.schema.json")))


@lru_cache(maxsize=1)
def load_schema() -> dict:
    return json.loads(schema_file().read_text())


@lru_cache(maxsize=1)
def _compiled_schema() -> jsonschema_rs.Draft202012Validator:
    return jsonschema_rs.Draft202012Validator(load_schema())


def schema_errors(data) -> list[ValidationError]:
    """Every JSON Schema error in ``data``, as jsonschema words and locates it.

    jsonschema-rs (compiled, ~500x faster at 1,000 streams) answers the common question, "valid?";
    only when it says no, or meets a value JSON has no type for (a YAML date), does jsonschema, imported
    then, find and explain the errors. Where they disagree jsonschema-rs is the stricter (its `$` does not
    match before a final newline), so a document it passes has no jsonschema error either."""
    try:
        if _compiled_schema().is_valid(data):
            return []
    except ValueError:
        pass
    import jsonschema

    return list(jsonschema.Draft202012Validator(load_schema()).iter_errors(data))


def load_topology(paths: str | Path | Iterable[str | Path], env: str | None = None) -> Topology:
    """Load and fully validate a topology (one file, several, or directories of them) with environment
    ``env`` applied; raises InvalidTopology listing every problem."""
    return _checked(compose.environment_document(compose.load_sources(paths), env), env)


def load_every_environment(paths: str | Path | Iterable[str | Path]) -> dict[str | None, Topology]:
    """The base topology (key None) and each declared environment's, all validated, so CI catches a
    broken overlay before anyone deploys it. A problem the base does not have names its environment."""
    base = compose.load_sources(paths)
    topologies: dict[str | None, Topology] = {}
    problems: list[Problem] = []
    base_problems: set[Problem] = set()
    for env in [None, *compose.environment_names(base)]:
        try:
            topologies[env] = _checked(compose.environment_document(base, env), env)
            if env is not None and None in topologies:  # a note the base has too is said once
                topologies[env].notes = [n for n in topologies[env].notes if n not in topologies[None].notes]
        except InvalidTopology as exc:
            if env is None:
                base_problems = set(exc.problems)
                problems += exc.problems
            else:
                problems += [replace(p, message=f"in environment {env}: {p.message}") for p in exc.problems if p not in base_problems]
    if problems:
        raise InvalidTopology(problems)
    return topologies


def _checked(doc: compose.ComposedDocument, env: str | None) -> Topology:
    errors = schema_errors(doc.data)
    problems = sorted({p for error in errors for p in _describe(error, doc)}, key=_location)
    # Semantic rules still run on everything the schema found nothing wrong with, so one run lists
    # every problem (an unknown field beside an overlap); a field the schema refused could only mislead them.
    checkable = _without(doc.data, [path for error in errors for path in _faulty_paths(error, doc)])
    notes: list[Problem] = []
    if checkable is not None:
        topology, more = build_topology(doc if checkable is doc.data else doc.copy(checkable))
        service_errors, notes = services.service_problems(topology, doc)
        problems += more + semantic_problems(topology, doc) + service_errors
    if problems:
        raise InvalidTopology(sorted(set(problems), key=_location))
    topology.sources, topology.environment = list(doc.sources), env
    topology.notes = sorted(set(notes), key=_location)
    return topology


# How deep a schema error's path is cut before the entry it names is set aside: a resource's field
# as a whole (a bad source inside `sources` sets all sources aside, not just its `name`).
_FIELD_DEPTH = {"streams": 3, "key_value": 3, "object_stores": 3, "defaults": 3, "policy": 2, "services": 2}


def _without(data: dict, paths: list[tuple]) -> dict | None:
    """A copy of ``data`` without the fields at ``paths``; None when the document's shape itself is wrong."""
    if not paths:
        return data  # the common case: nothing to set aside, so nothing to copy (build_topology only reads)
    data = copy.deepcopy(data)
    for path in paths:
        depth = 5 if path[:1] == ("streams",) and path[2:3] == ("consumers",) else _FIELD_DEPTH.get(path[:1] and path[0], 1)
        items = _at(data, path[:depth])
        if isinstance(items, list) and path[depth:] and isinstance(items[path[depth]], (str, int, float, bool)):
            items[path[depth]] = None  # one bad subject: blank it, so the others keep their places and checks
            continue
        path = path[:depth]
        if any(isinstance(part, int) for part in path):
            path = path[: next(i for i, part in enumerate(path) if isinstance(part, int))]
        if not path:
            continue  # e.g. a required top-level key is missing: nothing to set aside
        parent = data
        for part in path[:-1]:
            if not isinstance(parent, dict):
                return None
            parent = parent.get(part, {})  # {}: an enclosing entry was already set aside
        if not isinstance(parent, dict):
            return None
        parent.pop(path[-1], None)
    return data


def _at(data, path: tuple):
    for part in path:
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data


def _faulty_paths(error: ValidationError, doc: Document) -> list[tuple]:
    """Where a schema error lies: each unknown key for additionalProperties, else the error's own path."""
    path = _error_path(error, doc)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = error.schema.get("properties", {})
        return [path + (key,) for key in error.instance if key not in allowed]
    return [path]


def _location(problem: Problem) -> tuple:
    return problem.file, problem.line, problem.col, problem.path, problem.message


def _describe(error: ValidationError, doc: Document) -> list[Problem]:
    from jsonschema.exceptions import best_match

    if error.context:  # anyOf / oneOf: the branch that got furthest says what is wrong
        return _describe(best_match(error.context), doc)
    path = _error_path(error, doc)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        problems = []
        for key_path in _faulty_paths(error, doc):
            key = key_path[-1]
            hint = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            message = f"unknown field '{key}'" + (f": did you mean '{hint[0]}'?" if hint else "")
            problems.append(doc.problem(key_path, message))
        return problems
    if error.validator == "required":
        return [doc.problem(path, error.message.replace("is a required property", "is required"))]
    if error.validator in ("pattern", "propertyNames") and error.schema.get("description"):
        # The schema's words for its own patterns, not the regular expression.
        return [doc.problem(path, f"{json.dumps(error.instance)} is not valid: {error.schema['description']}")]
    if error.validator == "type":
        # JSON's words for the value (true, null), as a YAML reader expects, not Python's (True, None).
        wanted = error.validator_value if isinstance(error.validator_value, str) else " or ".join(error.validator_value)
        return [doc.problem(path, f"{json.dumps(error.instance)} is not of type {wanted}")]
    if error.validator == "enum":
        choices = ", ".join(json.dumps(c) for c in error.validator_value)
        return [doc.problem(path, f"{json.dumps(error.instance)} is not one of {choices}")]
    return [doc.problem(path, error.message)]


def _error_path(error: ValidationError, doc: Document) -> tuple:
    from jsonschema.exceptions import best_match

    while error.context:
        error = best_match(error.context)
    path = tuple(error.absolute_path)
    parent = _at(doc.data, path)
    if isinstance(error.instance, str) and isinstance(parent, dict) and error.instance in parent:
        path += (error.instance,)  # propertyNames: the key itself is at fault
    return path


def semantic_problems(topology: Topology, doc: Document) -> list[Problem]:
    """Rules the schema cannot express, each naming the field at fault."""
    problems: list[Problem] = []
    for name, stream in topology.streams.items():
        here = ("streams", name)
        problems += _name_problems(doc, here, name, "stream")
        problems += _stream_subject_problems(doc, here, stream)
        stream_subjects = [s for s in stream.config.get("subjects") or [] if s is not None]
        for cname, consumer in stream.consumers.items():
            problems += _name_problems(doc, here + ("consumers", cname), cname, "consumer")
            problems += _consumer_problems(doc, here + ("consumers", cname), stream, stream_subjects, consumer.config)
        problems += _origin_problems(doc, here, stream, topology)
        if stream.renamed_from in topology.streams:  # its own name among them (a tuple of all names per stream was quadratic)
            problems.append(doc.problem(here + ("renamed_from",), f"stream {stream.renamed_from} is declared too: the "
                                        "rename deletes it, so its declaration goes"))
    problems += _refusal_problems(doc, topology)
    problems += _overlap_problems(doc, topology)
    problems += policy.policy_problems(topology, doc, services.published_subjects(topology))
    if any_scalar(doc.data, _out_of_range, fields.UNIT_BY_NAME):
        problems += _range_problems(doc, doc.data, ())
    for i, name in enumerate(topology.existing_streams):
        if name in topology.streams:
            problems.append(doc.problem(("existing_streams", i), f"stream {name} is declared under streams too: it is either managed here or elsewhere"))
    return problems


INT64 = range(-(2**63), 2**63)


def _out_of_range(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value not in INT64


def _range_problems(doc, value, path: tuple) -> list[Problem]:
    """Whole numbers the server cannot hold (its fields are 64-bit; err 10025 at apply otherwise)."""
    if isinstance(value, dict):
        # Durations and sizes have their own range check, with their units (model.to_api_value).
        return [p for key, item in value.items() if key not in fields.UNIT_BY_NAME
                for p in _range_problems(doc, item, path + (key,))]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _range_problems(doc, item, path + (i,))]
    if _out_of_range(value):
        return [doc.problem(path, f"{value} is too large: the server's limit is {INT64.stop - 1}")]
    return []


def _name_problems(doc, path, name, what):
    message = subjects.name_problem(name, what)
    return [doc.problem(path, message)] if message else []


def _stream_subject_problems(doc, here, stream: StreamSpec):
    problems = []
    subject_list = stream.config.get("subjects") or []
    for i, subject in enumerate(subject_list):
        if subject is None:
            continue  # the schema refused it already
        message = subjects.subject_problem(subject)
        if message:
            problems.append(doc.problem(here + ("subjects", i), message))
            continue
        for other in subject_list[:i]:
            if other is not None and not subjects.subject_problem(other) and subjects.subjects_overlap(subject, other):
                problems.append(
                    doc.problem(here + ("subjects", i), f"subject '{subject}' overlaps '{other}' in the same stream")
                )
    if ">" in subject_list and not stream.config.get("no_ack"):
        problems.append(
            doc.problem(
                here + ("subjects",),
                "a stream capturing '>' would also capture its own acks and the JetStream API; set no_ack: true",
            )
        )
    return problems


def _filters(config: dict) -> list[str]:
    if config.get("filter_subject"):
        return [config["filter_subject"]]
    return list(config.get("filter_subjects") or [])  # None where the schema refused one


def _consumer_problems(doc, here, stream: StreamSpec, stream_subjects: list[str], config: dict):
    problems = []
    field = "filter_subject" if config.get("filter_subject") else "filter_subjects"
    for i, subject in enumerate(_filters(config)):
        if subject is None:
            continue
        path = here + ((field,) if field == "filter_subject" else (field, i))
        message = subjects.subject_problem(subject)
        if message:
            problems.append(doc.problem(path, message))
        elif stream_subjects and not any(subjects.subject_is_subset(subject, s) for s in stream_subjects):
            problems.append(
                doc.problem(path, f"filter '{subject}' matches none of stream {stream.name}'s subjects: {', '.join(stream_subjects)}")
            )
    push = bool(config.get("deliver_subject"))
    for field_name in PULL_ONLY if push else PUSH_ONLY:
        if config.get(field_name) not in _UNSET:
            kind = "push consumers (with deliver_subject)" if not push else "pull consumers (without deliver_subject)"
            hint = "" if push else "; add deliver_subject to make it a push consumer"
            problems.append(doc.problem(here + (field_name,), f"{field_name} applies only to {kind}{hint}"))
    return problems


def _origin_problems(doc, here, stream: StreamSpec, topology: Topology):
    """Mirrors and sources: shapes the server refuses, and origins that cannot be found."""
    config, problems = stream.config, []
    if config.get("mirror"):
        for field_name in ("subjects", "sources"):
            if config.get(field_name):
                problems.append(doc.problem(here + (field_name,), f"a mirror stream has no {field_name} of its own: it takes exactly what its origin has"))
    entries = [(("mirror",), config.get("mirror"))] + [(("sources", i), s) for i, s in enumerate(config.get("sources") or [])]
    for path, entry in entries:
        if not entry or entry.get("external"):
            continue
        if entry.get("name") == stream.name:
            problems.append(doc.problem(here + path + ("name",), "a stream cannot mirror or source from itself"))
            continue
        if entry.get("name") in topology.streams or entry.get("name") in topology.existing_streams:
            continue
        problems.append(
            doc.problem(
                here + path + ("name",),
                f"stream {entry.get('name')} is not in the topology; declare it, list it under existing_streams "
                "(a stream on this account managed elsewhere), or give `external` (api prefix, and deliver prefix) "
                "for a stream in another account or domain",
            )
        )
    return problems


def _refusal_problems(doc, topology: Topology) -> list[Problem]:
    """What the server refuses, decided by the file alone (refusals.py), for the newest server line."""
    problems: list[Problem] = []
    completed: dict[str, dict] = {}
    for name, stream in topology.streams.items():
        try:
            completed[name] = rules.complete_stream(stream.config)
        except (TypeError, TopologyError):
            continue  # a value that did not parse is reported already
    for name, stream in topology.streams.items():
        if name not in completed:
            continue
        here, config = ("streams", name), completed[name]
        problems += [doc.problem(here + f.path, f.message) for f in refusals.refusals_of("stream", config, completed)]
        consumers = []
        for cname, consumer in stream.consumers.items():
            try:
                cconfig = consumer.complete = rules.complete_consumer(with_owner(consumer.config, topology.owner), config)
            except (TypeError, TopologyError):
                continue
            consumers.append((cname, cconfig))
            problems += [doc.problem(here + ("consumers", cname) + f.path, f.message)
                         for f in refusals.refusals_of("consumer", cconfig, config)]
        problems += [doc.problem(here + ("consumers", cname), message)
                     for cname, message in refusals.workqueue_conflicts(config, consumers)
                     + refusals.too_many_consumers(config, 0, [n for n, _ in consumers])]
    return problems


def _overlap_problems(doc, topology: Topology):
    """Two streams may not capture the same subject: the server refuses the second (err 10065).

    KV buckets and object stores take part with their backing subjects ($KV.<bucket>.>, $O.<bucket>.>).
    """
    problems = []
    claimed = subjects.SubjectIndex()  # (owner, subject) of every subject seen so far
    owners = [(("streams", name), stream) for name, stream in topology.streams.items()]
    owners += [((buckets.SECTIONS[spec.kind], spec.bucket), spec) for spec in topology.buckets.values()]
    for here, stream in owners:
        for i, subject in enumerate(stream.config.get("subjects") or []):
            if subject is None or subjects.subject_problem(subject):
                continue
            for other, other_subject in claimed.overlapping(subject):
                if other != str(stream.ref):
                    path = here + ("subjects", i) if here[0] == "streams" else here
                    problems.append(
                        doc.problem(
                            path,
                            f"subject '{subject}' overlaps '{other_subject}' of {other}: a subject may belong to one stream only",
                        )
                    )
            claimed.add(subject, (str(stream.ref), subject))
    return problems
