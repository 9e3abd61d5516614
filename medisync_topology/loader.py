"""Read topology YAML into plain data, remembering where every value came from.

PyYAML's own loaders keep the last of two duplicate keys and forget line numbers, so we
compose the node tree and build the data ourselves.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable, Container
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from .errors import TopologyError

KeyPath = tuple  # a path into the document: ("streams", "EVENTS", "max_age")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a topology file, printed as FILE:LINE:COL: path: message."""

    file: str
    line: int
    col: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class InvalidTopology(TopologyError):
    """Every problem found in a topology, not only the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class Document:
    """A loaded YAML file: its data and the (line, column) of every key and value, 1-based.

    The positions are worked out when first asked for (``locate`` re-reads the file with marks): a valid
    file is located only if a note is to be printed, and the common case pays nothing for them."""

    def __init__(self, file: str, data: Any, positions: dict[KeyPath, tuple[int, int]] | None = None,
                 locate: Callable[[], dict[KeyPath, tuple[int, int]]] | None = None):
        self.file, self.data = file, data
        self._positions, self._locate = positions, locate

    @property
    def positions(self) -> dict[KeyPath, tuple[int, int]]:
        if self._positions is None:
            self._positions = dict(self._locate()) if self._locate else {}
        return self._positions

    def position(self, path: KeyPath) -> tuple[int, int]:
        """The position of ``path``, or of its nearest ancestor that is in the file."""
        path = tuple(path)
        positions = self.positions
        while path not in positions and path:
            path = path[:-1]
        return positions.get(path, (0, 0))

    def problem(self, path: KeyPath, message: str) -> Problem:
        line, col = self.position(path)
        return Problem(self.file, line, col, dotted(path), message)


def any_scalar(data: Any, test: Callable[[Any], bool], skip: Container[str] = ()) -> bool:
    """Whether ``test`` holds for any value in ``data`` that is neither a mapping nor a list; the values under the
    keys in ``skip`` are passed over. One pass that builds no paths: a check over the whole file whose answer is
    almost always no walks it so first, and again with paths only to say where."""
    pending = [data]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending += [item for key, item in value.items() if key not in skip]
        elif isinstance(value, list):
            pending += value
        elif test(value):
            return True
    return False


def dotted(path: KeyPath) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path).replace(".[", "[")


# Limits on what one file may make the loader do, checked before the work: a topology comes from a pull
# request, and a small file must not cost minutes or gigabytes. Each is far above any real topology (the
# 1,000-stream bench file is 290 KB, 37,000 nodes, 6 levels deep); each refusal names its limit.
MAX_FILE_BYTES = 4 * 1024 * 1024
# Every key, value and list item, an alias counted as all it expands to each time it is used: a
# "billion laughs" file of 2.8 KB otherwise expands to 10^6 nodes (seconds, 500 MB) or 10^9 (MemoryError).
MAX_NODES = 250_000
# Python recurses once per level (PyYAML's composer and our builder): 500 levels were a RecursionError.
MAX_DEPTH = 64


def load_document(path: str | Path) -> Document:
    """Read one YAML file; raises InvalidTopology with the file, line and column of a syntax error."""
    name = str(path)
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)  # never more: -f /dev/zero must not fill the memory
    except FileNotFoundError:
        raise TopologyError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise TopologyError(f"{name}: is a directory, not a topology file") from None
    except OSError as exc:
        raise TopologyError(f"{name}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise InvalidTopology([Problem(name, 0, 0, "", f"the file is larger than the limit of {_mib(MAX_FILE_BYTES)} for a topology file")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start].decode("utf-8")
        line, col = _line_col(before, len(before))
        raise InvalidTopology([Problem(name, line, col, "", f"not a text file (not UTF-8 at byte {exc.start})")]) from None
    return parse_document(text, name)


def _mib(size: int) -> str:
    return f"{size // (1024 * 1024)} MiB"


def _line_col(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of the character at ``index`` of ``text``."""
    return text.count("\n", 0, index) + 1, index - (text.rfind("\n", 0, index) + 1) + 1


def parse_document(text: str, name: str = "<string>") -> Document:
    """The document in ``text``; raises InvalidTopology with every problem, each located."""
    data = _plain_data(text)
    if data is not _UNUSUAL:
        return Document(name, data, locate=cache(lambda: _located(text, name).positions))
    return _located(text, name)


def _located(text: str, name: str) -> Document:
    """The document with every key's and value's position, built from libyaml's node tree, which has
    the marks; every problem the file has is found here, located."""
    doc = Document(name, None, {})
    try:
        node = _compose(text, name)
    except yaml.reader.ReaderError as exc:  # located by PyYAML only as a character offset
        line, col = _line_col(text, exc.position)
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        message = f"character U+{code:04X} is not allowed in YAML (no control characters other than tab, newline, carriage return)"
        raise InvalidTopology([Problem(name, line, col, "", message)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        message = exc.problem or str(exc)
        if "\t" in text and "tab" in message.lower() or "found character '\\t'" in message:
            message += " (YAML does not allow tabs for indentation; use spaces)"
        raise InvalidTopology([Problem(name, line, col, "", f"YAML syntax error: {message}")]) from None
    except yaml.YAMLError as exc:
        raise InvalidTopology([Problem(name, 0, 0, "", f"YAML error: {exc}")]) from None
    if node is None:
        raise InvalidTopology([Problem(name, 1, 1, "", "the file is empty: expected a mapping with version, owner and streams")])
    problems: list[Problem] = []
    doc.data = _build(node, (), doc, problems)
    if problems:
        raise InvalidTopology(problems)
    return doc


_constructor = yaml.constructor.SafeConstructor()


def _compose(text: str, name: str) -> yaml.Node | None:
    """libyaml's parser when PyYAML has it (six times faster on large files); the pure-Python one
    words syntax errors best, so a file libyaml rejects is parsed again with it for the message.
    The parser's events are checked against the limits first: composing is where the cost is."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            _check_limits(yaml.parse(text, Loader=fast), name)
            return yaml.compose(text, Loader=fast)
        except yaml.YAMLError:
            pass
    _check_limits(yaml.parse(text, Loader=yaml.SafeLoader), name)
    return yaml.compose(text, Loader=yaml.SafeLoader)


def _check_limits(events, name: str) -> None:
    """Refuse a document beyond MAX_NODES or MAX_DEPTH, counting each alias as the node it repeats.

    One pass over the parser's events, no recursion: an anchored node's size and height are known
    when it ends, so each later alias adds them without expanding anything.
    """
    nodes = 0
    expanded: dict[str, tuple[int, int]] = {}  # anchor -> (nodes, levels) of its node
    open_: list[list] = []  # per open collection: [anchor, nodes before it, deepest level reached]
    for event in events:
        if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, before, deepest = open_.pop()
            if anchor is not None:
                expanded[anchor] = (nodes - before, deepest - len(open_))
            if open_:
                open_[-1][2] = max(open_[-1][2], deepest)
            continue
        if not isinstance(event, yaml.NodeEvent):
            continue
        # An alias to a collection still open refers to itself: the builder reports that, located.
        size, levels = expanded.get(event.anchor, (1, 0)) if isinstance(event, yaml.AliasEvent) else (1, 0)
        nodes += size
        depth = len(open_) + levels
        if isinstance(event, yaml.CollectionStartEvent):
            open_.append([event.anchor, nodes - 1, len(open_) + 1])
            depth = len(open_)
        elif isinstance(event, yaml.ScalarEvent) and event.anchor is not None:
            expanded[event.anchor] = (1, 0)
        if open_:
            open_[-1][2] = max(open_[-1][2], depth)
        mark = event.start_mark
        if nodes > MAX_NODES:
            raise InvalidTopology([Problem(name, mark.line + 1, mark.column + 1, "",
                f"the document expands to more than the limit of {MAX_NODES:,} YAML nodes (an alias counts as all it repeats)")])
        if depth > MAX_DEPTH:
            raise InvalidTopology([Problem(name, mark.line + 1, mark.column + 1, "",
                f"nested deeper than the limit of {MAX_DEPTH} levels (an alias counts as all it repeats)")])


# The tags a topology's data can carry; PyYAML's SafeConstructor raises on any other (a custom `!tag`,
# `!!python/object:...`), and `!!set`, `!!omap` or `!!binary` would build data no JetStream field takes.
_CORE = "tag:yaml.org,2002:"
# Scalars kept as the text written: timestamps (opt_start_time, pause_until) stay the RFC 3339 strings the
# JetStream API takes; YAML 1.1's `=` (value), `<<` (merge) and `*`, `!`, `&` (yaml, which only a ${VAR}
# can bring) have no constructor in SafeConstructor, which raised, and no meaning in YAML 1.2.
_AS_WRITTEN = {_CORE + t for t in ("timestamp", "value", "merge", "yaml")}
_STR = _CORE + "str"
_TAGS = {
    yaml.ScalarNode: {_CORE + t for t in ("null", "bool", "int", "float", "str")} | _AS_WRITTEN,
    yaml.SequenceNode: {_CORE + "seq"},
    yaml.MappingNode: {_CORE + "map"},
}


_resolver = yaml.resolver.Resolver()
_UNUSUAL = object()  # what _plain_data answers for a document it leaves to the located builder
_NO_KEY = object()  # an open mapping's next event is a key


def _plain_data(text: str) -> Any:
    """The data of a plain document, built in one pass over libyaml's events, without a node tree or
    any positions: the common case, a valid file, costs a third of what locating it does.

    _UNUSUAL for anything else (a syntax error, a tag beyond the core ones, a duplicate or merge key, a
    key that is not a scalar or has an anchor, an alias to an open or unknown anchor, several documents
    or none, a limit reached): the located builder then does the work and words every problem, so what
    is reported, and where, does not depend on this path. Limits are counted as _check_limits counts
    them, before an alias is expanded."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is None:
        return _UNUSUAL
    events = fast(text)
    try:
        return _plain_events(events.get_event)
    except yaml.YAMLError:
        return _UNUSUAL
    finally:
        events.dispose()


def _plain_events(next_event: Callable[[], yaml.Event]) -> Any:
    resolve, tags = _resolver.resolve, _TAGS[yaml.ScalarNode]
    if type(next_event()) is not yaml.StreamStartEvent or type(next_event()) is not yaml.DocumentStartEvent:
        return _UNUSUAL
    anchors: dict[str, tuple | None] = {}  # anchor -> (value, nodes, levels) once its node has ended, None while open
    open_: list[list] = []  # per open collection: [container, key or _NO_KEY, anchor, nodes before it, deepest level]
    nodes = 0
    while True:
        event = next_event()
        kind = type(event)
        top = open_[-1] if open_ else None
        wants_key = top is not None and top[1] is _NO_KEY and type(top[0]) is dict
        if kind is yaml.ScalarEvent:
            nodes += 1
            if wants_key:
                key = sys.intern(event.value)  # one string for each field name, not one per resource
                if event.anchor is not None or key == "<<" or key in top[0]:
                    return _UNUSUAL
                top[1] = key
                continue
            tag = event.tag
            if tag is None or tag == "!":
                tag = resolve(yaml.ScalarNode, event.value, event.implicit)
            if tag == _STR or tag in _AS_WRITTEN:
                value = event.value
            elif tag in tags:
                try:
                    value = scalar_value(yaml.ScalarNode(tag, event.value))
                except ValueError:
                    return _UNUSUAL
            else:
                return _UNUSUAL
            if event.anchor is not None:
                if event.anchor in anchors:
                    return _UNUSUAL  # libyaml's composer refuses a second anchor of the same name
                anchors[event.anchor] = (value, 1, 0)
        elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            nodes += 1
            mapping = kind is yaml.MappingStartEvent
            if wants_key or event.tag not in (None, "!", _CORE + ("map" if mapping else "seq")) or event.anchor in anchors:
                return _UNUSUAL
            if event.anchor is not None:
                anchors[event.anchor] = None
            open_.append([{} if mapping else [], _NO_KEY, event.anchor, nodes - 1, len(open_) + 1])
            if len(open_) > MAX_DEPTH or nodes > MAX_NODES:
                return _UNUSUAL
            continue
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            value, _, anchor, before, deepest = open_.pop()
            if anchor is not None:
                anchors[anchor] = (value, nodes - before, deepest - len(open_))
            if open_:
                open_[-1][4] = max(open_[-1][4], deepest)
        elif kind is yaml.AliasEvent:
            expanded = anchors.get(event.anchor)
            if wants_key or expanded is None:
                return _UNUSUAL
            value, size, levels = expanded
            nodes += size
            if top is not None:
                top[4] = max(top[4], len(open_) + levels)
            if len(open_) + levels > MAX_DEPTH:
                return _UNUSUAL
            value = copy.deepcopy(value) if size > 1 else value  # each use is a value of its own, as written out
        else:
            return _UNUSUAL
        if nodes > MAX_NODES:
            return _UNUSUAL
        if not open_:
            end, stream_end = next_event(), next_event()
            return value if type(end) is yaml.DocumentEndEvent and type(stream_end) is yaml.StreamEndEvent else _UNUSUAL
        top = open_[-1]
        if type(top[0]) is dict:
            top[0][top[1]] = value
            top[1] = _NO_KEY
        else:
            top[0].append(value)


def _build(
    node: yaml.Node, path: KeyPath, doc: Document, problems: list[Problem], open_nodes: frozenset = frozenset()
) -> Any:
    """The data of ``node``; open_nodes are the ids of the collections it lies within, so an alias
    to one of them (`a: &x [*x]`, which PyYAML composes into a node containing itself) is found."""
    if id(node) in open_nodes:
        # Located at the key or list holding the alias: the node's own mark is its anchor's.
        problems.append(doc.problem(path, "an alias refers to itself (an anchor used inside its own value)"))
        return None
    here = (node.start_mark.line + 1, node.start_mark.column + 1)
    doc.positions.setdefault(path, here)
    if node.tag not in _TAGS[type(node)]:
        tag = node.tag.replace(_CORE, "!!", 1) if node.tag.startswith(_CORE) else node.tag
        problems.append(Problem(doc.file, *here, dotted(path), f"unsupported YAML tag '{tag}'"))
        return None
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
        open_nodes = open_nodes | {id(node)}
    if isinstance(node, yaml.MappingNode):
        result: dict = {}
        seen: dict = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append(doc.problem(path, "mapping keys must be plain strings"))
                continue
            # The key's own text: a stream named `yes` or `1` stays a string, as written.
            key = key_node.value
            if key == "<<":
                problems.append(doc.problem(path, "YAML merge keys (<<) are not supported; use `defaults:`"))
                continue
            key_path = path + (key,)
            here = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in seen:
                first = seen[key]
                problems.append(
                    Problem(doc.file, *here, dotted(key_path), f"duplicate key (first defined on line {first[0]})")
                )
                continue
            seen[key] = here
            doc.positions[key_path] = here
            result[key] = _build(value_node, key_path, doc, problems, open_nodes)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), doc, problems, open_nodes) for i, item in enumerate(node.value)]
    try:
        return scalar_value(node)
    except ValueError as exc:
        problems.append(Problem(doc.file, *here, dotted(path), str(exc)))
        return None


def scalar_value(node: yaml.ScalarNode) -> Any:
    """The Python value of a YAML scalar, as the safe loader types it (compose types ${VAR} results so too).

    ValueError, with a message for a person, when the text does not fit the tag: `!!int abc`, `!!bool 1`,
    an integer of more digits than Python converts (4,300).
    """
    if node.tag in _AS_WRITTEN:
        return node.value
    try:  # the tag's constructor itself: construct_object would keep every node in its cache
        return _constructor.yaml_constructors[node.tag](_constructor, node)
    except (ValueError, KeyError):  # KeyError: `!!bool 1` is looked up in SafeConstructor's table of booleans
        text = node.value if len(node.value) <= 40 else node.value[:37] + "..."
        raise ValueError(f"{text!r} is not a valid {node.tag.replace(_CORE, '!!', 1)}") from None
