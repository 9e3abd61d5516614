"""MediSync's conventions as rules: `policy:` in topology.yaml, checked offline by validate.

A subject pattern such as ``medisync.{domain}.{entity}.{action}`` has literal tokens and placeholders;
a placeholder stands for exactly one token, which ``values`` may restrict. A stream subject or consumer
filter may put ``*`` (one placeholder) or ``>`` (every placeholder left, none of the literals) where
placeholders stand, so ``medisync.etl.>`` fits and ``medisync.>.x`` is not a subject at all.
Every message names the rule it breaks (``policy.values.domain``), so the fix is obvious.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from . import fields
from .loader import Document, Problem
from .model import Topology
from .subjects import subject_problem

_PLACEHOLDER = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")


def pattern_tokens(pattern: str) -> list[tuple[bool, str]]:
    """(is_placeholder, literal or placeholder name) for each token of a valid pattern."""
    tokens = []
    for token in pattern.split("."):
        match = _PLACEHOLDER.match(token)
        tokens.append((True, match.group(1)) if match else (False, token))
    return tokens


def pattern_problem(pattern: str) -> str | None:
    """Why a policy.subjects pattern cannot be used, or None."""
    for token in pattern.split("."):
        if _PLACEHOLDER.match(token):
            continue
        if not token or token in ("*", ">") or "{" in token or "}" in token or any(c.isspace() for c in token):
            return (f"pattern {pattern!r} has the token {token!r}: each token is a literal (no wildcards, no spaces) "
                    "or one {placeholder}, separated by single dots")
    names = [name for is_placeholder, name in pattern_tokens(pattern) if is_placeholder]
    if len(names) != len(set(names)):
        return f"pattern {pattern!r} names a placeholder twice"
    return None


def subject_misfit(subject: str, pattern: str, values: dict[str, list[str]]) -> str | None:
    """Why a valid subject does not fit the pattern (naming the rule), or None when it fits."""
    tokens, expected = subject.split("."), pattern_tokens(pattern)
    broken = f"subject '{subject}' breaks policy.subjects '{pattern}'"
    for i, token in enumerate(tokens):
        if i >= len(expected):
            return f"{broken}: it has {len(tokens)} tokens, the pattern {len(expected)}"
        is_placeholder, name = expected[i]
        if token == ">":
            literal = next((n for p, n in expected[i:] if not p), None)
            if literal is not None:
                return f"{broken}: '>' stands where the pattern has the literal '{literal}'"
            return None
        if not is_placeholder:
            if token != name:
                return f"{broken}: token {i + 1} is '{token}' where the pattern has '{name}'"
        elif token != "*" and name in values and token not in values[name]:
            return (f"subject '{subject}' breaks policy.values.{name}: '{token}' is not one of "
                    f"{', '.join(values[name])}")
    if len(tokens) < len(expected):
        return f"{broken}: it has {len(tokens)} tokens, the pattern {len(expected)}"
    return None


def policy_problems(topology: Topology, doc: Document, published: Iterable[tuple[tuple, str]] = ()) -> list[Problem]:
    """Every breach of ``topology.policy``: stream subjects and consumer filters (and the subjects in
    ``published``, (path, subject) pairs) against the subject pattern, names against their regular
    expressions, streams against policy.streams."""
    policy = topology.policy or {}
    problems: list[Problem] = []
    pattern = policy.get("subjects")
    if pattern is not None and (message := pattern_problem(pattern)):
        problems.append(doc.problem(("policy", "subjects"), message))
        pattern = None
    values = policy.get("values") or {}
    if pattern is not None:
        placeholders = {name for is_placeholder, name in pattern_tokens(pattern) if is_placeholder}
        for name in values:
            if name not in placeholders:
                problems.append(doc.problem(("policy", "values", name), f"'{name}' is not a placeholder of policy.subjects '{pattern}'"))
    elif values and "subjects" not in policy:
        problems.append(doc.problem(("policy", "values"), "values restrict the placeholders of policy.subjects, which is not set"))
    names = {}
    for what, regex in (policy.get("names") or {}).items():
        try:
            names[what] = re.compile(regex)
        except re.error as exc:
            problems.append(doc.problem(("policy", "names", what), f"{regex!r} is not a regular expression: {exc}"))
    for i, field in enumerate((policy.get("streams") or {}).get("require") or []):
        if field not in fields.STREAM or field == "name":
            problems.append(doc.problem(("policy", "streams", "require", i), f"'{field}' is not a stream field"))
    if pattern is not None:
        for path, subject in [*_checked_subjects(topology), *published]:
            if (message := subject_misfit(subject, pattern, values)) is not None:
                problems.append(doc.problem(path, message))
    for name, stream in topology.streams.items():
        here = ("streams", name)
        if "stream" in names and not names["stream"].search(name):
            problems.append(doc.problem(here, f"stream name '{name}' breaks policy.names.stream: it does not match '{names['stream'].pattern}'"))
        for cname in stream.consumers:
            if "consumer" in names and not names["consumer"].search(cname):
                problems.append(doc.problem(here + ("consumers", cname),
                                            f"consumer name '{cname}' breaks policy.names.consumer: it does not match '{names['consumer'].pattern}'"))
        problems += _stream_policy_problems(doc, here, stream.config, policy.get("streams") or {})
    return problems


def _checked_subjects(topology: Topology) -> list[tuple[tuple, str]]:
    """(path, subject) of every valid stream subject and consumer filter."""
    found = []
    for name, stream in topology.streams.items():
        for i, subject in enumerate(stream.config.get("subjects") or []):
            found.append((("streams", name, "subjects", i), subject))
        for cname, consumer in stream.consumers.items():
            here = ("streams", name, "consumers", cname)
            if consumer.config.get("filter_subject"):
                found.append((here + ("filter_subject",), consumer.config["filter_subject"]))
            for i, subject in enumerate(consumer.config.get("filter_subjects") or []):
                found.append((here + ("filter_subjects", i), subject))
    # Invalid subjects have their own problem already; a misfit would only repeat it.
    return [(path, s) for path, s in found if isinstance(s, str) and subject_problem(s) is None]


def _stream_policy_problems(doc: Document, here: tuple, config: dict, wanted: dict) -> list[Problem]:
    problems = []
    for field in wanted.get("require") or []:
        if field in fields.STREAM and field not in config:
            problems.append(doc.problem(here, f"breaks policy.streams.require: {field} is not set (on the stream or in defaults.stream)"))
    storage = config.get("storage", fields.STREAM["storage"].default)
    if wanted.get("storage") and storage != wanted["storage"]:
        problems.append(doc.problem(here + ("storage",), f"breaks policy.streams.storage: storage is {storage}, the policy requires {wanted['storage']}"))
    replicas = config.get("num_replicas", fields.STREAM["num_replicas"].default)
    if isinstance(replicas, int) and replicas < wanted.get("min_replicas", 0):
        problems.append(doc.problem(here + ("num_replicas",),
                                    f"breaks policy.streams.min_replicas: num_replicas is {replicas}, the policy requires at least {wanted['min_replicas']}"))
    return problems


def loosened(base: dict, overlay: dict) -> list[tuple[tuple, str]]:
    """How an environment's policy.streams would loosen the base's: (path under policy.streams, why).

    An environment may only tighten: a production cluster wants more replicas, never fewer checks.
    """
    found = []
    base_require, over_require = base.get("require"), overlay.get("require")
    if isinstance(base_require, list) and isinstance(over_require, list):
        dropped = [f for f in base_require if f not in over_require]
        if dropped:
            found.append((("require",), f"drops {', '.join(map(str, dropped))} from the base policy's require"))
    if isinstance(base.get("storage"), str) and isinstance(overlay.get("storage"), str) and overlay["storage"] != base["storage"]:
        found.append((("storage",), f"changes the base policy's storage {base['storage']} to {overlay['storage']}"))
    low, high = base.get("min_replicas"), overlay.get("min_replicas")
    if isinstance(low, int) and isinstance(high, int) and high < low:
        found.append((("min_replicas",), f"lowers the base policy's min_replicas {low} to {high}"))
    return found
