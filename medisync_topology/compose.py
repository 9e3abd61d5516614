"""One topology from several files, one environment's overlay and ${VAR} references.

The result is a single document in which every path still knows the file, line and column it came
from, so a problem found after composition points at the line a person has to change. An overlay
entry left empty (YAML null where the base has a mapping) changes nothing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from . import policy
from .errors import TopologyError
from .loader import Document, InvalidTopology, KeyPath, Problem, any_scalar, dotted, load_document, scalar_value

# Top-level sections that files share by name; each entry may be declared in one file only.
# Any other top-level key (version, owner, defaults, audit) is set in one file, or the same in each.
SECTIONS = {"streams": "stream", "key_value": "key-value bucket", "object_stores": "object store", "environments": "environment",
            "services": "service"}

# $${ is a literal ${; ${NAME} and ${NAME:-default}; a ${ matching neither is malformed (group 1 is None).
REFERENCE = re.compile(r"\$\$\{|\$\{(?:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\})?")

_resolver = yaml.resolver.Resolver()


class ComposedDocument(Document):
    """A Document built from several files: each path also remembers its file."""

    def __init__(self, file: str, data: Any, positions: dict[KeyPath, tuple[int, int]] | None = None,
                 files: dict[KeyPath, str] | None = None, sources: list[str] | None = None,
                 locate: Callable[[], dict[KeyPath, tuple[int, int]]] | None = None):
        super().__init__(file, data, positions, locate)
        self._files = files  # None until asked for: then every path is in `file`
        self.sources = sources if sources is not None else [file]

    @property
    def files(self) -> dict[KeyPath, str]:
        if self._files is None:
            self._files = dict.fromkeys(self.positions, self.file)
        return self._files

    @classmethod
    def of(cls, doc: Document) -> ComposedDocument:
        return cls(doc.file, doc.data, _copied(doc._positions), None, [doc.file], doc._locate)

    def copy(self, data: Any) -> ComposedDocument:
        """This document with other data; positions not yet worked out are not worked out for the copy either."""
        return ComposedDocument(self.file, data, _copied(self._positions), _copied(self._files), list(self.sources), self._locate)

    def locate(self, path: KeyPath) -> tuple[str, int, int]:
        """(file, line, column) of ``path``, or of its nearest ancestor that is in a file."""
        line, col = self.position(path)
        path = tuple(path)
        while path not in self.files and path:  # files has the same keys as positions
            path = path[:-1]
        return self.files.get(path, self.file), line, col

    def where(self, path: KeyPath) -> str:
        return "{}:{}:{}".format(*self.locate(path))

    def problem(self, path: KeyPath, message: str) -> Problem:
        return Problem(*self.locate(path), dotted(path), message)

    def graft(self, to_path: KeyPath, source: ComposedDocument, from_path: KeyPath) -> None:
        """The positions of ``source``'s subtree at from_path now describe this document's subtree at to_path."""
        for table in (self.positions, self.files):
            for path in [p for p in table if p[: len(to_path)] == to_path]:
                del table[path]
        moved = [(to_path + p[len(from_path):], p) for p in source.positions if p[: len(from_path)] == from_path]
        for path, old in moved:
            self.positions[path] = source.positions[old]
            self.files[path] = source.files[old]


def _copied(table: dict | None) -> dict | None:
    return None if table is None else dict(table)


def load_sources(paths: str | Path | Iterable[str | Path]) -> ComposedDocument:
    """Read every file (a directory means its *.yaml and *.yml, sorted by name) and merge them strictly."""
    names = [name for p in ([paths] if isinstance(paths, (str, Path)) else paths) for name in _expand(p)]
    if not names:
        raise TopologyError("no topology file given")
    docs: list[ComposedDocument] = []
    problems: list[Problem] = []
    for name in names:
        try:
            doc = load_document(name)
        except InvalidTopology as exc:
            problems += exc.problems
            continue
        if not isinstance(doc.data, dict):
            kind = type(doc.data).__name__ if doc.data is not None else "nothing"
            problems.append(doc.problem((), f"expected a mapping with version, owner and streams at the top level, found {kind}"))
            continue
        docs.append(ComposedDocument.of(doc))
    if problems:
        raise InvalidTopology(problems)
    composed = docs[0]
    for doc in docs[1:]:
        problems += _merge_file(composed, doc)
    if problems:
        raise InvalidTopology(problems)
    return composed


def _expand(path: str | Path) -> list[str]:
    if not Path(path).is_dir():
        return [str(path)]
    found = sorted(p for p in Path(path).iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if not found:
        raise TopologyError(f"{path}: no *.yaml or *.yml files in this directory")
    return [str(p) for p in found]


def _merge_file(composed: ComposedDocument, doc: ComposedDocument) -> list[Problem]:
    problems = []
    for key, value in doc.data.items():
        here = (key,)
        mine = composed.data.get(key)
        if key not in composed.data:
            composed.data[key] = value
            composed.graft(here, doc, here)
        elif key in SECTIONS and isinstance(mine, dict) and isinstance(value, dict):
            what = SECTIONS[key]
            for name, entry in value.items():
                there = (key, name)
                if name in mine:
                    problems.append(
                        doc.problem(there, f"{what} {name} is also declared in {composed.where(there)}; declare each {what} in one file only")
                    )
                    continue
                mine[name] = entry
                composed.graft(there, doc, there)
        elif mine != value:
            problems.append(
                doc.problem(here, f"also set in {composed.where(here)} to a different value; set {key} in one file only, or the same in each")
            )
    composed.sources.append(doc.file)
    return problems


def environment_names(doc: Document) -> list[str]:
    envs = doc.data.get("environments")
    return list(envs) if isinstance(envs, dict) else []


def environment_document(base: ComposedDocument, env: str | None) -> ComposedDocument:
    """What gets validated and planned: the base without `environments`, env's overlay deep-merged over it
    (mappings key by key; lists and scalars replace; a null over a mapping, an entry left empty,
    changes nothing), then ${VAR} references substituted."""
    problems = _environments_problems(base)
    if problems:
        raise InvalidTopology(problems)
    known = environment_names(base)
    if env and env not in known:
        listed = f"known environments: {', '.join(known)}" if known else "the topology declares no environments"
        raise TopologyError(f"unknown environment '{env}' ({listed})")
    doc = base.copy({k: v for k, v in base.data.items() if k != "environments"})
    if env:
        overlay = base.data["environments"][env]
        problems += _loosened_policy(base, doc.data, overlay or {}, ("environments", env))
        doc.data = _overlay(doc, doc.data, overlay, (), ("environments", env))
    if any_scalar(doc.data, _has_reference):
        doc.data = _substitute(doc, doc.data, (), problems)
    if problems:
        raise InvalidTopology(problems)
    return doc


def _environments_problems(doc: Document) -> list[Problem]:
    envs = doc.data.get("environments")
    if envs is None:
        return []
    if not isinstance(envs, dict):
        return [doc.problem(("environments",), "expected a mapping of environment name -> overlay (streams, defaults, ...)")]
    problems = []
    for name, overlay in envs.items():
        here = ("environments", name)
        if overlay is not None and not isinstance(overlay, dict):
            problems.append(doc.problem(here, "an environment is a mapping merged over the top level (streams, defaults, ...)"))
        elif overlay and "environments" in overlay:
            problems.append(doc.problem(here + ("environments",), "an environment cannot declare environments"))
    return problems


def _loosened_policy(doc: Document, data: dict, overlay: dict, here: KeyPath) -> list[Problem]:
    """An environment may tighten policy.streams; the conventions (subjects, values, names) hold everywhere."""
    section = overlay.get("policy")
    problems = [doc.problem(here + ("policy", key), f"an environment may only tighten policy.streams; policy.{key} holds for every environment")
                for key in (section if isinstance(section, dict) else {}) if key != "streams"]
    here += ("policy", "streams")
    return problems + [doc.problem(here + path, f"an environment may only tighten policy.streams: this {why}")
                       for path, why in policy.loosened(_policy_streams(data), _policy_streams(overlay))]


def _policy_streams(data: Any) -> dict:
    """policy.streams, or {} when absent or of a shape the schema reports."""
    section = data.get("policy") if isinstance(data, dict) else None
    streams = section.get("streams") if isinstance(section, dict) else None
    return streams if isinstance(streams, dict) else {}


def _overlay(doc: ComposedDocument, base: Any, over: Any, path: KeyPath, over_path: KeyPath) -> Any:
    if isinstance(base, dict) and over is None:
        # `EVENTS:` with everything under it commented out is YAML null: an empty overlay, not a
        # request to blank the stream (which would move its subjects to [EVENTS] and prune its consumers).
        return base
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        for key, value in over.items():
            merged[key] = _overlay(doc, base.get(key), value, path + (key,), over_path + (key,))
        return merged
    doc.graft(path, doc, over_path)
    return over


def _has_reference(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def _substitute(doc: ComposedDocument, value: Any, path: KeyPath, problems: list[Problem]) -> Any:
    """${VAR} in every string value (not in keys), each unset one a problem at its line."""
    if isinstance(value, dict):
        return {k: _substitute(doc, v, path + (k,), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(doc, v, path + (i,), problems) for i, v in enumerate(value)]
    if not _has_reference(value):
        return value
    substituted = False

    def replace(match: re.Match) -> str:
        nonlocal substituted
        if match.group(0) == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        if name is None:
            problems.append(doc.problem(path, "write ${NAME} or ${NAME:-default} for an environment variable, or $${ for a literal ${"))
            return match.group(0)
        text = os.environ.get(name)
        if default is not None and not text:  # like the shell: :- also covers a variable set to ""
            text = default
        if text is None:
            problems.append(doc.problem(path, f"environment variable {name} is not set (give a default with ${{{name}:-value}})"))
            return match.group(0)
        substituted = True
        return text

    result = REFERENCE.sub(replace, value)
    if not substituted:
        return result
    # The result is typed as if written there unquoted: `num_replicas: ${REPLICAS:-1}` gives the int 1.
    try:
        return scalar_value(yaml.ScalarNode(_resolver.resolve(yaml.ScalarNode, result, (True, False)), result))
    except ValueError as exc:  # an integer of 5,000 digits
        problems.append(doc.problem(path, str(exc)))
        return result
