"""The desired topology as typed data: YAML (human units, defaults section) -> API JSON configs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import buckets, fields, units
from .loader import Document, Problem
from .ops import Ref

# Keys that belong to this tool, not to the JetStream API.
STREAM_TOOL_KEYS = tuple(fields.TOOL_KEYS["stream"])
BUCKET_TOOL_KEYS = tuple(fields.TOOL_KEYS["key_value"])  # an object store's are the same
CONSUMER_TOOL_KEYS = tuple(fields.TOOL_KEYS["consumer"])


@dataclass
class ConsumerSpec:
    stream: str
    name: str
    config: dict
    protect: bool = False
    renamed_from: str | None = None  # the live consumer whose position this one takes over
    # The config complete_consumer gives for the newest server line, with the owner: validate judges its refusals
    # on it and plan sends it to a line that completes as the newest does (rules.completes_as_newest).
    complete: dict | None = None


def with_owner(config: dict, owner: str) -> dict:
    """The config with the topology's owner in its metadata, as it is sent."""
    return {**config, "metadata": {**(config.get("metadata") or {}), fields.OWNER_KEY: owner}}


@dataclass
class StreamSpec:
    """A stream, or the stream behind a KV bucket or object store (kind, and the bucket's name)."""

    name: str
    config: dict
    consumers: dict[str, ConsumerSpec] = field(default_factory=dict)
    protect: bool = False
    replace: str | None = None  # "migrate": a replacement keeps the messages (migrate.py)
    renamed_from: str | None = None  # the live stream whose messages and consumers this one takes over
    kind: str = "stream"
    bucket: str = ""

    @property
    def ref(self) -> Ref:
        return Ref(self.kind, self.bucket or self.name)


@dataclass
class ServiceSpec:
    """A service: the subjects it publishes, the durable consumers it works, the buckets it uses."""

    name: str
    publish: list[str] = field(default_factory=list)
    consume: list[tuple[str, str]] = field(default_factory=list)  # (stream, consumer)
    key_value: dict[str, str] = field(default_factory=dict)  # bucket -> "read" | "read-write"
    object_stores: dict[str, str] = field(default_factory=dict)


@dataclass
class Topology:
    owner: str
    streams: dict[str, StreamSpec]
    buckets: dict[str, StreamSpec] = field(default_factory=dict)  # KV and object stores, by stream name
    audit: dict | None = None
    existing_streams: list[str] = field(default_factory=list)  # sourced or mirrored, managed elsewhere
    policy: dict = field(default_factory=dict)  # MediSync's conventions (policy.py checks them)
    services: dict[str, ServiceSpec] = field(default_factory=dict)
    notes: list[Problem] = field(default_factory=list)  # what validate points out without refusing
    sources: list[str] = field(default_factory=list)
    environment: str | None = None

    def consumer_count(self) -> int:
        return sum(len(s.consumers) for s in self.streams.values())


def build_topology(doc: Document) -> tuple[Topology, list[Problem]]:
    """Turn schema-valid data into API configs; unit errors come back as problems."""
    data = doc.data
    problems: list[Problem] = []
    defaults = data.get("defaults") or {}
    stream_defaults = defaults.get("stream") or {}
    consumer_defaults = defaults.get("consumer") or {}
    streams: dict[str, StreamSpec] = {}
    for name, raw in (data.get("streams") or {}).items():
        raw = raw or {}
        here = ("streams", name)
        config = _api_config(raw, STREAM_TOOL_KEYS, stream_defaults, here, ("defaults", "stream"), doc, problems)
        config["name"] = name
        stream = StreamSpec(name, config, protect=bool(raw.get("protect", False)), replace=raw.get("replace"),
                            renamed_from=raw.get("renamed_from"))
        for cname, craw in (raw.get("consumers") or {}).items():
            craw = craw or {}
            chere = here + ("consumers", cname)
            cconfig = _api_config(craw, CONSUMER_TOOL_KEYS, consumer_defaults, chere, ("defaults", "consumer"), doc, problems)
            cconfig["durable_name"] = cname
            cconfig["name"] = cname
            stream.consumers[cname] = ConsumerSpec(name, cname, cconfig, bool(craw.get("protect", False)),
                                                   craw.get("renamed_from"))
        streams[name] = stream
    bucket_streams: dict[str, StreamSpec] = {}
    for kind, section in buckets.SECTIONS.items():
        for bucket, raw in (data.get(section) or {}).items():
            here = (section, bucket)
            raw = raw or {}
            settings = {k: to_api_value(k, v, here + (k,), doc, problems) for k, v in raw.items()
                        if k not in BUCKET_TOOL_KEYS}
            config = buckets.bucket_stream_config(kind, bucket, settings)
            bucket_streams[config["name"]] = StreamSpec(
                config["name"], config, protect=bool(raw.get("protect", False)), replace=raw.get("replace"),
                kind=kind, bucket=bucket,
            )
    topology = Topology(
        owner=data.get("owner", ""),
        streams=streams,
        buckets=bucket_streams,
        audit=data.get("audit"),
        existing_streams=list(data.get("existing_streams") or []),
        policy=data.get("policy") or {},
        services={name: _service(name, raw or {}) for name, raw in (data.get("services") or {}).items()},
        sources=[doc.file],
    )
    return topology, problems


def _service(name: str, raw: dict) -> ServiceSpec:
    consume = [tuple(entry.split("/", 1)) for entry in raw.get("consume") or []]
    return ServiceSpec(name, list(raw.get("publish") or []), consume, dict(raw.get("key_value") or {}),
                       dict(raw.get("object_stores") or {}))


def _api_config(raw, tool_keys, defaults, here, defaults_here, doc, problems) -> dict:
    """Defaults merged under the resource's own fields, human units turned into API units."""
    config: dict = {}
    for source, where in ((defaults, defaults_here), (raw, here)):
        for key, value in source.items():
            if key in tool_keys:
                continue
            if type(value) is dict or type(value) is list or fields.UNIT_BY_NAME.get(key) in PARSERS:
                value = to_api_value(key, value, where + (key,), doc, problems)
            config[key] = value  # else a plain value in no unit: as written (most of a file's values)
    return config


def to_api_value(key: str, value: Any, path: tuple, doc: Document, problems: list[Problem]) -> Any:
    """Durations -> nanoseconds and sizes -> bytes, by field name, at any depth (units.by_field)."""

    def parse(name: str, item: Any, where: tuple) -> Any:
        unit = fields.UNIT_BY_NAME.get(name)
        if unit not in PARSERS:  # no unit, or a timestamp (rules normalises it)
            return item
        try:
            return PARSERS[unit](item)
        except ValueError as exc:
            problems.append(doc.problem(where, str(exc)))
            return item

    return units.by_field(value, key, parse, path)


PARSERS = {"duration": units.parse_duration, "size": units.parse_size}
