"""`topology export --merge FILE`: live values written back into an existing topology file, to accept drift
in a reviewable diff.

For each resource the file declares, every field in which the server differs from what the file asks gets
the live value, as export writes it (human units; a value the file wrote differently but equal is kept as
written); a field whose live value is the server's default loses its key. Resources carrying the file's owner
that it does not declare are appended, as export writes them. Everything else keeps its bytes: ruamel.yaml's
round trip keeps comments, key order, quoting and flow or block style, and a file nothing is written into is
left as it is. The merged file is loaded again and compared with the server: what still differs (a value that
`defaults:` sets, say) is written explicitly, and what cannot be written is named in a warning.
"""

from __future__ import annotations

import io
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.tokens import CommentToken

from . import buckets, fields, migrate, rules
from .errors import TopologyError
from .export import bucket_entry, consumer_entry, human_units, stream_entry
from .live import LiveState
from .loader import Document, InvalidTopology
from .model import Topology, to_api_value, with_owner
from .ops import Ref
from .plan import field_changes, owner_of
from .units import plural
from .validate import load_topology

_resolver = yaml.resolver.Resolver()  # how the topology loader reads a plain scalar (YAML 1.1)


@dataclass
class Merged:
    """The merged text, what was written into it (one line each) and what a person should know."""

    text: str
    written: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return plural(len(self.written), "change")


def merge_file(path: str, read_live: Callable[[], LiveState]) -> Merged:
    """``path`` with the live values of what it declares, and the owner's resources it does not declare.
    The file is read and checked first: a missing or invalid file is its error, whatever the server."""
    topology = load_topology(path)  # a clear error, located, for a file that is not a valid topology
    text = Path(path).read_text(encoding="utf-8")
    document = _Document(text)
    live = read_live()
    merged = Merged(text)
    _Merge(topology, live, document, merged).run()
    if merged.written:
        merged.text = document.dump()
        _write_what_still_differs(path, topology, live, document, merged)
    return merged


def _write_what_still_differs(path: str, topology: Topology, live: LiveState, document: _Document, merged: Merged) -> None:
    """Load the merged text as plan would; a field still differing (one `defaults:` sets) is written explicitly,
    and one that still differs then (a bucket's stream field no setting holds) is named in a warning."""
    differing = _Merge(_loaded(merged.text, path), live, document, merged).differing()
    writable = [(ref, entry, key, value, kind) for ref, entry, key, value, kind in differing if kind in ("stream", "consumer")]
    for ref, entry, key, value, kind in writable:
        document.set(entry, key, _explicit(key, value), _order(kind))
    if writable:
        merged.text = document.dump()
        differing = _Merge(_loaded(merged.text, path), live, document, merged).differing()
    for ref, _, key, value, _ in differing:
        merged.warnings.append(f"{ref}: {key} could not be written back; the server has {value!r}")


def _loaded(text: str, path: str) -> Topology:
    """The merged text as the topology loader reads it; an error, naming ``path``, when it would not be valid
    (live resources the file's policy refuses, say)."""
    with tempfile.TemporaryDirectory() as folder:
        trial = Path(folder) / Path(path).name
        trial.write_text(text, encoding="utf-8")
        try:
            return load_topology(str(trial))
        except InvalidTopology as exc:
            lines = "\n".join(str(replace(p, file=path)) for p in exc.problems)
            raise TopologyError(f"{path} would not be valid with the live values merged in, so nothing was "
                                f"written ({plural(len(exc.problems), 'problem')}, at the lines of the merged file):"
                                f"\n{lines}") from None


def _explicit(key: str, value: Any) -> Any:
    """A value written even where it is the server's default (which export leaves out)."""
    if value is None:  # absent: the server omits its zero value
        return _ZEROS.get(key, "")
    return human_units(value, key)


def _zero(entry: fields.Field) -> Any:
    """What the server means by omitting the field: the registry's zero where it names one (persist_mode
    "default", priority_policy "none"), else Go's zero value of the field's type."""
    if entry.zero is not None:
        return entry.zero
    schema = entry.schema or {}
    if entry.unit:
        return 0
    return {"boolean": False, "integer": 0, "array": [], "object": {}}.get(schema.get("type"), "")


# The value each field takes when the server omits it, by name (a name means one thing wherever it appears).
_ZEROS = {name: _zero(entry) for name, entry in fields.every_field()}


class _Merge:
    """One pass over the file's resources against the live state."""

    def __init__(self, topology: Topology, live: LiveState, document: _Document, merged: Merged):
        self.topology, self.live, self.document, self.merged = topology, live, document, merged
        self.version = live.version
        self.streams = buckets.without_lock(live.streams)  # the apply lock's bucket is the tool's, never merged
        self.configs = {name: rules.strip_live(s.config, "stream") for name, s in self.streams.items()}
        self.origin_configs = {name: s.config for name, s in topology.streams.items()}

    def run(self) -> None:
        for ref, path, desired, live, exported, kind in self._pairs(warn=True):
            changes = field_changes(live, desired)
            if changes and exported is None:
                self.merged.warnings.append(f"{ref}: its stream has values {kind} settings cannot express; left as it is")
                continue
            entry = self.document.entry(path) if changes else None
            names = buckets.SETTING_NAMES.get(kind, {})
            for key in sorted({names.get(c.path, c.path) for c in changes}):
                if key in exported:
                    self.document.set(entry, key, exported[key], _order(kind))
                    self.merged.written.append(f"{ref}: {key}")
                elif key in entry:
                    self.document.delete(entry, key)
                    self.merged.written.append(f"{ref}: {key} (the server's default)")
                elif kind in ("stream", "consumer"):  # set by defaults: written explicitly once the file is loaded again
                    self.merged.written.append(f"{ref}: {key}")
        self._append_undeclared()

    def differing(self) -> list[tuple]:
        """(ref, entry, field, live value, kind) of each field the merged file still asks to change."""
        return [(ref, self.document.entry(path), c.path, c.old, kind)
                for ref, path, desired, live, _, kind in self._pairs(warn=False) for c in field_changes(live, desired)]

    def _pairs(self, *, warn: bool):
        """(ref, entry path, desired config, live config, export's entry, kind) of each declared resource with a
        live counterpart that is not another owner's (that one is left, with a warning); export's entry is None
        for a bucket its settings cannot express."""
        owner = self.topology.owner
        for name, spec in sorted({**self.topology.streams, **self.topology.buckets}.items()):
            stream = self.streams.get(name)
            if stream is None:
                self._absent(spec.ref, warn)
                continue
            if not self._ours(spec.ref, stream.config, warn):
                continue
            section = "streams" if spec.kind == "stream" else buckets.SECTIONS[spec.kind]
            path = (section, spec.bucket or name)
            if spec.kind == "stream":
                exported = stream_entry(name, self.configs, self.version)
            else:
                found = bucket_entry(name, self.configs, self.version, [])
                exported = found[2] if found else None
            desired = rules.complete_stream(with_owner(spec.config, owner), self.version, self.origin_configs)
            yield spec.ref, path, desired, self.configs[name], exported, spec.kind
            complete = rules.complete_stream(self.configs[name], self.version, self.configs)
            for cname, consumer in sorted(spec.consumers.items()):
                live_consumer, ref = stream.consumers.get(cname), Ref("consumer", cname, name)
                if live_consumer is None:
                    self._absent(ref, warn)
                if live_consumer is None or not self._ours(ref, live_consumer, warn):
                    continue
                desired = rules.complete_consumer(with_owner(consumer.config, owner), complete, self.version)
                yield (ref, path + ("consumers", cname), desired, rules.strip_live(live_consumer, "consumer"),
                       consumer_entry(live_consumer, complete, self.version), "consumer")

    def _absent(self, ref: Ref, warn: bool) -> None:
        if warn:
            self.merged.warnings.append(f"{ref} is not on the server; left in the file as it is (plan creates it)")

    def _ours(self, ref: Ref, live_config: dict, warn: bool) -> bool:
        other = owner_of(live_config)
        if other is not None and other != self.topology.owner:
            if warn:
                self.merged.warnings.append(f"{ref} is owned by {other!r}, not {self.topology.owner!r}; left as it is")
            return False
        return True

    def _append_undeclared(self) -> None:
        """The owner's live resources the file does not declare, as export writes them."""
        owner = self.topology.owner
        declared = {**self.topology.streams, **self.topology.buckets}
        for name, stream in sorted(self.streams.items()):
            if owner_of(stream.config) != owner or (name in declared and declared[name].kind != "stream"):
                continue
            if migrate.in_transit(stream.config):  # messages on their way (a migration, a rename): apply moves them on
                continue
            complete = rules.complete_stream(self.configs[name], self.version, self.configs)
            known = declared[name].consumers if name in declared else {}
            consumers = {c: consumer_entry(config, complete, self.version) for c, config in sorted(stream.consumers.items())
                         if c not in known and rules.declarable_consumer(config) and owner_of(config) == owner}
            if name in declared:
                for cname, value in consumers.items():
                    self.document.set(self.document.entry(("streams", name, "consumers")), cname, value)
                    self.merged.written.append(f"{Ref('consumer', cname, name)}: appended")
                continue
            found = bucket_entry(name, self.configs, self.version, self.merged.warnings)
            if found:
                kind, key, value = found
            else:
                kind, key, value = "stream", name, stream_entry(name, self.configs, self.version)
                value.update({"consumers": consumers} if consumers else {})
            self.document.set(self.document.entry(("streams" if kind == "stream" else buckets.SECTIONS[kind],)), key, value)
            self.merged.written.append(f"{Ref(kind, key)}: appended")


def _order(kind: str) -> list[str]:
    """The keys of a resource's entry in the order the file is written (the server's), tool keys and consumers last."""
    table = fields.RESOURCES["stream" if kind == "stream" else kind]
    return [*table, *fields.TOOL_KEYS.get(kind, ()), "consumers"]


class _Document:
    """The file as ruamel.yaml's round trip holds it, written back in its own indentation."""

    def __init__(self, text: str):
        self.yaml = YAML(typ="rt")
        self.yaml.preserve_quotes = True
        self.yaml.width = 10**6  # never fold a line the file did not fold
        mapping, sequence, offset = _indentation(text)
        self.yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
        try:
            self.data = self.yaml.load(text)
        except YAMLError as exc:  # the topology loader read it; ruamel's YAML 1.2 may still differ
            raise TopologyError(f"cannot merge into the file: {exc}") from None

    def dump(self) -> str:
        out = io.StringIO()
        self.yaml.dump(self.data, out)
        return out.getvalue()

    def entry(self, path: tuple) -> CommentedMap:
        """The mapping at ``path``; one absent or empty (``S:``, ``{}``) is made, in block style."""
        node = self.data
        for key in path:
            value = node.get(key)
            if not isinstance(value, CommentedMap):
                value = CommentedMap()
                self.set(node, key, value)
            if not value:
                value.fa.set_block_style()
            node = value
        return node

    def set(self, mapping: CommentedMap, key: str, value: Any, order: list[str] | None = None) -> None:
        """``mapping[key] = value``: an equal value as the file wrote it kept, a new key in ``order``, comments kept."""
        if key in mapping:
            old = mapping[key]
            mapping[key] = _written_like(key, old, value)
            _give_tail(mapping, key, _take_tail_of_value(old))
            return
        keys = list(mapping)
        position = len(keys)
        if order and key in order:
            later = [i for i, k in enumerate(keys) if k in order and order.index(k) > order.index(key)]
            position = later[0] if later else len(keys)
        tail = _take_tail(mapping, keys[position - 1]) if position else ""
        mapping.insert(position, key, _node(value))
        _give_tail(mapping, key, tail)

    @staticmethod
    def delete(mapping: CommentedMap, key: str) -> None:
        keys = list(mapping)
        tail = _take_tail(mapping, key)
        del mapping[key]
        index = keys.index(key)
        if index:
            _give_tail(mapping, keys[index - 1], tail)


def _indentation(text: str) -> tuple[int, int, int]:
    """(mapping, sequence, offset) indentation as ruamel.yaml takes them, read from the file's first nested
    mapping key and its first block sequence item (2, 4, 2 when it has none)."""
    found = {}
    lines = [re.sub(r"\s+#.*$", "", line) for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    for before, line in zip(lines, lines[1:]):
        depth = (len(line) - len(line.lstrip())) - (len(before) - len(before.lstrip()))
        item = line.lstrip().startswith("- ")
        if before.endswith(":") and (depth > 0 or item and depth == 0):
            found.setdefault("offset" if item else "mapping", depth)
    offset = found.get("offset", 2)
    return found.get("mapping", 2), offset + 2, offset


# -- values -----------------------------------------------------------------


def _api(key: str, value: Any) -> Any:
    return to_api_value(key, _plain(value), (), Document("<merge>", None), [])


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _written_like(key: str, old: Any, new: Any) -> Any:
    """``new``, keeping what the file wrote wherever it means the same (``60s`` for 1m), and its style."""
    if _api(key, old) == _api(key, new):
        return old
    if isinstance(old, dict) and isinstance(new, dict):
        merged = CommentedMap()
        for k, v in new.items():
            merged[k] = _written_like(k, old[k], v) if k in old else _node(v)
        _copy_style(old, merged)
        return merged
    if isinstance(old, list) and isinstance(new, list):
        items = [_written_like(key, old[i], v) if i < len(old) else _node(v) for i, v in enumerate(new)]
        merged = CommentedSeq(items)
        _copy_style(old, merged)
        return merged
    return _node(new)


def _copy_style(old: Any, new: Any) -> None:
    if isinstance(old, (CommentedMap, CommentedSeq)):
        if old.fa.flow_style():
            new.fa.set_flow_style()
        else:
            new.fa.set_block_style()


def _node(value: Any) -> Any:
    """A new value in ruamel's terms, styled as export writes: block mappings (``{}`` when empty), lists of
    plain values on one line, strings quoted where the topology loader would read them as something else."""
    if isinstance(value, (CommentedMap, CommentedSeq)):
        return value
    if isinstance(value, dict):
        node = CommentedMap((k, _node(v)) for k, v in value.items())
        if not value:
            node.fa.set_flow_style()
        return node
    if isinstance(value, list):
        node = CommentedSeq(_node(v) for v in value)
        if all(not isinstance(v, (dict, list)) for v in value):
            node.fa.set_flow_style()
        return node
    if isinstance(value, str) and _resolver.resolve(yaml.ScalarNode, value, (True, False)) != "tag:yaml.org,2002:str":
        return DoubleQuotedScalarString(value)
    return value


# -- comments ---------------------------------------------------------------
# ruamel.yaml keeps the comment lines (and blank lines) that follow an item with the deepest last item before
# them. When an item is inserted, deleted or replaced, those lines move with the place they stand in, so they
# stay above the key they were written above.


def _holder(container: Any, key: Any) -> tuple[Any, Any]:
    """The (container, key) whose comment slot holds the lines after ``container[key]``."""
    value = container[key]
    if isinstance(value, (CommentedMap, CommentedSeq)) and len(value) and not value.fa.flow_style():
        return _holder(value, list(value)[-1] if isinstance(value, CommentedMap) else len(value) - 1)
    return container, key


def _slot(container: Any) -> int:
    return 2 if isinstance(container, CommentedMap) else 0


def _take_tail(container: Any, key: Any) -> str:
    """Remove and return the lines after the item's own line (its end-of-line comment stays)."""
    holder, item = _holder(container, key)
    return _take(holder, item)


def _take_tail_of_value(value: Any) -> str:
    if isinstance(value, (CommentedMap, CommentedSeq)) and len(value) and not value.fa.flow_style():
        return _take_tail(value, list(value)[-1] if isinstance(value, CommentedMap) else len(value) - 1)
    return ""


def _take(holder: Any, item: Any) -> str:
    slots = holder.ca.items.get(item)
    token = slots[_slot(holder)] if slots and len(slots) > _slot(holder) else None
    if token is None or "\n" not in token.value:
        return ""
    line, tail = token.value.split("\n", 1)
    if line.strip():
        token.value = line + "\n"
    else:
        slots[_slot(holder)] = None
    return tail


def _give_tail(container: Any, key: Any, tail: str) -> None:
    if not tail:
        return
    holder, item = _holder(container, key)
    slots = holder.ca.items.setdefault(item, [None, None, None, None] if isinstance(holder, CommentedMap) else [None, None])
    slot = _slot(holder)
    if slots[slot] is None:
        slots[slot] = CommentToken("\n" + tail, CommentMark(0), None)
    else:
        slots[slot].value = slots[slot].value.rstrip("\n") + "\n" + tail
