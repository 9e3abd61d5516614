"""Write a topology from a live server: the way in for JetStream that was set up by hand or by apps.

Each resource is written minimally (rules.minimal_*: only values the server would not fill in by
itself) and in human units, so the file reads like one a person wrote, and `plan --adopt` right
after only takes ownership. Pure except export_from_server, which reads the server once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

import yaml

from . import buckets, fields, migrate, rules
from .client import JetStreamClient
from .connectoptions import ConnectOptions
from .errors import TopologyError
from .live import LiveState, LiveStream
from .plan import OWNER_KEY, field_changes, origins, owner_of
from .units import by_field, format_duration, format_size, plural
from .validate import schema_file

MODELINE = "# yaml-language-server: $schema="
SCHEMA_IN_CHECKOUT = Path("schema") / "topology.schema.json"
# The owner when no exported resource has one yet (they are all adopted by the first apply).
DEFAULT_OWNER = "medisync"


@dataclass
class Export:
    """The topology as YAML-ready data (human units, stable order), and what a person should know."""

    document: dict
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        streams = self.document.get("streams") or {}
        counts = [
            (len(streams), "stream"),
            (sum(len(s.get("consumers") or {}) for s in streams.values()), "consumer"),
            (len(self.document.get("key_value") or {}), "key_value bucket"),
            (len(self.document.get("object_stores") or {}), "object store"),
        ]
        return ", ".join(plural(n, noun) for n, noun in counts)


async def export_from_server(connect: ConnectOptions, patterns=(), owner: str | None = None) -> Export:
    """Read the server once (paged LISTs) and export it; arguments as export_topology's."""
    return export_topology(await read_live(connect), patterns, owner)


async def read_live(connect: ConnectOptions) -> LiveState:
    """Everything the server has, read once (paged LISTs)."""
    async with JetStreamClient(connect) as client:
        return await client.read_live()


def export_topology(live: LiveState, patterns=(), owner: str | None = None) -> Export:
    """The topology that describes ``live``: streams matching ``patterns`` (fnmatch, stream or
    bucket name; all when empty) and the streams they mirror or source from.

    ``owner``: None takes the one owner the exported resources carry; resources of different
    owners are an error (one file has one owner), none at all gives DEFAULT_OWNER.
    """
    version = live.version
    # The apply lock's bucket is the tool's own, not part of anyone's topology.
    configs = {name: rules.strip_live(s.config, "stream") for name, s in buckets.without_lock(live.streams).items()}
    warnings: list[str] = []
    names = _selected(sorted(configs), patterns, configs, warnings)
    for name in [n for n in names if migrate.in_transit(live.streams[n].config)]:  # a migration's or rename's, under way
        warnings.append(f"stream {name} holds messages of a migration or rename under way (apply finishes it); "
                        "not exported")
        names.remove(name)
    owners: dict[str, list[str]] = {}
    document: dict = {"version": 1, "owner": None, "streams": {}, "key_value": {}, "object_stores": {}}
    for name in names:
        stream = live.streams[name]
        _note_owner(owners, f"stream {name}", stream.config)
        bucket = bucket_entry(name, configs, version, warnings)
        if bucket:
            kind, bucket_name, settings = bucket
            document[buckets.SECTIONS[kind]][bucket_name] = settings
            if any(rules.declarable_consumer(c) for c in stream.consumers.values()):
                warnings.append(
                    f"{kind} {bucket_name}: the durable consumers of its stream {name} are not exported "
                    "(a topology's buckets have no consumers)"
                )
            continue
        document["streams"][name] = _stream_entry(name, stream, configs, version, owners)
    document["owner"] = owner or _common_owner(owners)
    return Export({k: v for k, v in document.items() if v != {}}, warnings)


def _stream_entry(name: str, stream: LiveStream, configs: dict[str, dict], version, owners: dict[str, list[str]]) -> dict:
    entry = stream_entry(name, configs, version)
    complete = rules.complete_stream(configs[name], version, configs)
    consumers = {}
    for cname, config in sorted(stream.consumers.items()):
        if not rules.declarable_consumer(config):
            continue
        _note_owner(owners, f"consumer {name}/{cname}", config)
        consumers[cname] = consumer_entry(config, complete, version)
    if consumers:
        entry["consumers"] = consumers
    return entry


def stream_entry(name: str, configs: dict[str, dict], version) -> dict:
    """A stream's fields as the file writes them (without its consumers): minimal, human units, the server's order.
    ``configs``: every live stream's comparable config, by name (a mirror's defaults follow its origin)."""
    minimal = rules.minimal_stream(_unowned(configs[name]), version, configs)
    return _in_order(human_units(rules.without_identity(minimal)), fields.STREAM)  # the map key is the name


def consumer_entry(config: dict, stream_config: dict, version) -> dict:
    """A live consumer as the file writes it; ``stream_config`` is its stream's complete config."""
    minimal = rules.minimal_consumer(_unowned(rules.strip_live(config, "consumer")), stream_config, version)
    return _in_order(human_units(rules.without_identity(minimal)), fields.CONSUMER)


def to_yaml(document: dict, schema: str) -> str:
    """The document as topology.yaml text, led by the schema modeline editors read (``schema``: where it points)."""
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
    return f"{MODELINE}{schema}\n{body}"


def schema_reference(directory: Path) -> str:
    """Where the modeline of a topology file written in ``directory`` finds the schema, so that it works there:
    the schema of the checkout the file is in (a relative path), else the schema this tool carries (a file URI;
    `topology schema > topology.schema.json` gives one to keep beside the file instead)."""
    directory = Path(directory).resolve()
    for folder in (directory, *directory.parents):
        if (folder / SCHEMA_IN_CHECKOUT).is_file():
            return Path(os.path.relpath(folder / SCHEMA_IN_CHECKOUT, directory)).as_posix()
    return schema_file().resolve().as_uri()


# -- choosing what to export ------------------------------------------------


def _selected(names: list[str], patterns, configs: dict[str, dict], warnings: list[str]) -> list[str]:
    if not patterns:
        return names
    chosen = set()
    for pattern in patterns:
        matched = {n for n in names if fnmatchcase(n, pattern) or fnmatchcase(_bucket_name(n), pattern)}
        if not matched:
            raise TopologyError(f"--stream {pattern}: no stream or bucket on the server matches it")
        chosen |= matched
    # A mirror or a sourcing stream needs its origins in the same topology (validate says so).
    todo = sorted(chosen)
    while todo:
        name = todo.pop()
        for origin in sorted(origins(configs[name])):
            if origin in configs and origin not in chosen:
                warnings.append(f"stream {origin} is exported too: stream {name} mirrors or sources from it")
                chosen.add(origin)
                todo.append(origin)
    return sorted(chosen)


def _bucket_name(stream_name: str) -> str:
    bucket = buckets.bucket_of(stream_name)
    return bucket[1] if bucket else stream_name


# -- buckets ----------------------------------------------------------------


def bucket_entry(name: str, configs: dict[str, dict], version, warnings: list[str]) -> tuple | None:
    """(kind, bucket, settings) for a KV / object store stream that its settings rebuild exactly.

    A bucket made by a client that builds it differently from nats.go (nats-py turns on
    allow_msg_ttl for every KV bucket, a one-way flag, and direct get only when asked) cannot be
    written as bucket settings without a plan that changes or refuses it: that stream is
    exported as a plain stream instead, with a warning naming the fields.
    """
    found = buckets.bucket_of(name)
    if not found:
        return None
    kind, bucket = found
    live = _unowned(configs[name])
    settings = buckets.bucket_settings(kind, live)
    built = rules.complete_stream(buckets.bucket_stream_config(kind, bucket, settings), version, configs)
    actual = rules.complete_stream(live, version, configs)
    differing = field_changes(actual, built)
    if differing:
        shown = ", ".join(f"{c.path}: {_yaml_value(human_units(c.old, c.path))}" for c in differing)
        warnings.append(
            f"{kind} {bucket}: its stream {name} has {shown}, which {kind} settings cannot express "
            f"(made by another client than nats.go?); exported as stream {name} under streams:"
        )
        return None
    return kind, bucket, _in_order(human_units(settings), fields.RESOURCES[kind])


# -- owners -----------------------------------------------------------------


def _unowned(config: dict) -> dict:
    """Without our owner key: the owner is the file's `owner:`, written back by apply."""
    metadata = {k: v for k, v in (config.get("metadata") or {}).items() if k != OWNER_KEY}
    return {**{k: v for k, v in config.items() if k != "metadata"}, **({"metadata": metadata} if metadata else {})}


def _note_owner(owners: dict[str, list[str]], what: str, config: dict) -> None:
    owner = owner_of(config)
    if owner is not None:
        owners.setdefault(owner, []).append(what)


def _common_owner(owners: dict[str, list[str]]) -> str:
    if len(owners) > 1:
        found = "; ".join(f"{o!r} owns {', '.join(what)}" for o, what in sorted(owners.items()))
        raise TopologyError(
            f"the resources have different owners ({found}); pass --owner, or --stream to export one owner's resources"
        )
    return next(iter(owners), DEFAULT_OWNER)


# -- shaping the document ---------------------------------------------------


def _in_order(config: dict, order) -> dict:
    """Fields in the registry's (the server's struct) order, unknown ones after, by name."""
    known = [k for k in order if k in config]
    return {k: config[k] for k in known + sorted(set(config) - set(known))}


def human_units(value, key: str = ""):
    """API units -> human ones by field name at any depth (7d, 1GiB), as model.to_api_value reads them back."""
    return by_field(value, key, _human_value)


def _human_value(name: str, value, path: tuple):
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return value
    unit = fields.UNIT_BY_NAME.get(name)
    if unit == "duration":
        return format_duration(value)
    if unit == "size":
        text = format_size(value)
        return value if text.isdigit() else text  # 1500, not '1500'
    return value


def _yaml_value(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()


class _Dumper(yaml.SafeDumper):
    """Block mappings, lists of plain values on one line ([a.>, b.>]), sequences indented under their key."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def _represent_list(dumper: yaml.SafeDumper, items: list):
    flat = all(not isinstance(i, (dict, list)) for i in items)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", items, flow_style=flat)


def _represent_dict(dumper: yaml.SafeDumper, mapping: dict):
    # An empty mapping reads best as {} (a stream with only defaults: `S: {}`).
    return dumper.represent_mapping("tag:yaml.org,2002:map", mapping.items(), flow_style=not mapping)


_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(dict, _represent_dict)
