"""schema/topology.schema.json, generated: the field registry (fields.py) plus the file's own sections.

Regenerate after changing fields.py (tests/test_schema.py fails while the committed file differs):

    python -m medisync_topology.schema > schema/topology.schema.json
"""

from __future__ import annotations

import json

from . import fields
from .fields import Field, ObjectType, ref

# -- the file's own sections -------------------------------------------------------------------
# Top-level keys of topology.yaml, in order. A new section goes here (its value types in DEFINITIONS);
# ENVIRONMENT_SECTIONS says which an environment overlay may override.

TOP_LEVEL: dict[str, dict] = {
    "version": {"const": 1, "description": "File format version; always 1."},
    "owner": ref("owner"),
    "defaults": ref("defaults"),
    "streams": {
        "description": "Streams: name -> settings.",
        "type": ["object", "null"],
        "propertyNames": ref("name"),
        "additionalProperties": ref("stream"),
    },
    "key_value": {
        "description": "KV buckets: bucket name -> settings.",
        "type": ["object", "null"],
        "propertyNames": ref("bucket"),
        "additionalProperties": ref("key_value"),
    },
    "object_stores": {
        "description": "Object stores: bucket name -> settings.",
        "type": ["object", "null"],
        "propertyNames": ref("bucket"),
        "additionalProperties": ref("object_store"),
    },
    "audit": ref("audit"),
    "existing_streams": {
        "description": "Streams on this account that the topology does not manage but mirrors or sources from (e.g. "
        "another team's). A source or mirror must name a stream declared here, one listed here, or give `external`. "
        "Plan checks that each one exists.",
        "type": "array",
        "items": ref("name"),
        "uniqueItems": True,
    },
    "policy": ref("policy"),
    "services": {
        "description": "MediSync's services: service name -> what it publishes and consumes. `topology permissions` "
        "derives each one's least-privilege NATS permissions from it.",
        "type": ["object", "null"],
        "propertyNames": ref("service_name"),
        "additionalProperties": ref("service"),
    },
    "environments": {
        "description": "Per-environment overrides: environment name -> sections merged over the base.",
        "type": "object",
        "propertyNames": {"pattern": "^[A-Za-z0-9_-]+$"},
        "additionalProperties": ref("environment"),
    },
}
REQUIRED = ("version", "owner")
# An environment overlay: these sections as at the top level, and its own narrower ones.
ENVIRONMENT_SECTIONS = ("owner", "defaults", "streams", "key_value", "object_stores", "audit")
ENVIRONMENT_ONLY: dict[str, dict] = {
    "policy": {
        "type": "object",
        "additionalProperties": False,
        "description": "An environment may tighten policy.streams (e.g. min_replicas: 3 in production), nothing else.",
        "properties": {"streams": ref("policy_streams")},
    },
}

# What each resource is, for its definition's description.
RESOURCE_DESCRIPTIONS = {
    "stream": "A stream; the map key is its name. Fields are the JetStream API's (no `name`: the key is the name).",
    "consumer": "A durable consumer; the map key is its durable name. Fields are the JetStream API's; `name`, "
    "`durable_name` (the key), `direct` and `sourcing` (server-internal) are not offered.",
    "key_value": "A KV bucket (stream KV_<bucket>), with the settings `nats kv add` offers (nats.go KeyValueConfig).",
    "object_store": "An object store bucket (stream OBJ_<bucket>), with the settings `nats object add` offers "
    "(nats.go ObjectStoreConfig).",
}
DEFAULTS_DESCRIPTIONS = {
    "stream": "Fields merged under every stream. Per-stream fields (subjects, mirror, sources, subject_transform, "
    "republish, consumers, protect) are not offered.",
    "consumer": "Fields merged under every consumer. Per-consumer fields (filters, deliver_subject, protect) are not "
    "offered.",
}

# Value types of the file's own sections.
DEFINITIONS: dict[str, dict] = {
    "defaults": {
        "description": "Settings merged under every stream and every consumer; a resource's own fields win.",
        "type": ["object", "null"],
        "additionalProperties": False,
        "properties": {"stream": ref("stream_defaults"), "consumer": ref("consumer_defaults")},
    },
    "audit": {
        "description": "Where apply publishes an audit event after changing anything.",
        "type": "object",
        "additionalProperties": False,
        "required": ["subject"],
        "properties": {
            "subject": {
                **ref("literal_subject"), "description": "Subject the audit event is published on (no wildcards).",
            },
        },
    },
    "owner": {
        "description": f"Who owns the resources: apply writes it into each one's metadata ({fields.OWNER_KEY}), "
        "and plan leaves resources of other owners alone.",
        "type": "string",
        "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
    },
    "policy": {
        "type": "object",
        "additionalProperties": False,
        "description": "Conventions every stream, consumer and service must follow; validate reports each breach "
        "naming the rule.",
        "properties": {
            "subjects": {
                "type": "string",
                "description": "Subject pattern, e.g. medisync.{domain}.{entity}.{action}: literal tokens and "
                "{placeholders}, one token each. Stream subjects, consumer filters and published subjects must fit it; "
                "* or > may stand where placeholders stand.",
            },
            "values": {
                "type": "object",
                "description": "Allowed tokens per placeholder, e.g. {domain: [etl, document]}.",
                "additionalProperties": {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1},
                    "minItems": 1,
                    "uniqueItems": True,
                },
            },
            "names": {
                "type": "object",
                "additionalProperties": False,
                "description": "Regular expressions stream and consumer names must match (anchor them with ^ and $).",
                "properties": {
                    "stream": {
                        "type": "string",
                        "description": "Regular expression every stream name must match, e.g. ^[A-Z][A-Z0-9_]*$.",
                    },
                    "consumer": {
                        "type": "string",
                        "description": "Regular expression every consumer name must match, e.g. ^[a-z][a-z0-9-]*$.",
                    },
                },
            },
            "streams": ref("policy_streams"),
        },
    },
    "policy_streams": {
        "type": "object",
        "additionalProperties": False,
        "description": "What every stream under streams: must have, checked after defaults and the environment; an "
        "environment may tighten it.",
        "properties": {
            "require": {
                "type": "array",
                "items": {"type": "string"},
                "uniqueItems": True,
                "description": "Stream fields that must be set (on the stream or in defaults.stream), e.g. [max_age].",
            },
            "storage": ref("storage"),
            "min_replicas": {
                "type": "integer",
                "minimum": 1,
                "maximum": 5,
                "description": "Fewest num_replicas a stream may have.",
            },
        },
    },
    "service_name": {
        "type": "string",
        "pattern": "^[A-Za-z][A-Za-z0-9_-]*$",
        "description": "a letter, then letters, digits, '_' or '-' (it names the service's NATS user, its permissions "
        "variable and its inbox)",
    },
    "service": {
        "type": ["object", "null"],
        "additionalProperties": False,
        "description": "One service: what it publishes, which durable consumers it works, which buckets it reads or "
        "writes.",
        "properties": {
            "description": ref("description"),
            "publish": {
                "type": "array",
                "items": ref("subject"),
                "uniqueItems": True,
                "description": "Subjects it publishes (wildcards allowed).",
            },
            "consume": {
                "type": "array",
                "uniqueItems": True,
                "description": "Durable consumers it works, as STREAM/consumer.",
                "items": {
                    "type": "string",
                    "pattern": "^[^/\\s]+/[^/\\s]+$",
                    "description": "STREAM/consumer, e.g. ALERTS/alert-delivery",
                },
            },
            "key_value": {
                "type": "object",
                "description": "KV buckets it uses: bucket -> read | read-write.",
                "propertyNames": ref("bucket"),
                "additionalProperties": {"type": "string", "enum": ["read", "read-write"]},
            },
            "object_stores": {
                "type": "object",
                "description": "Object stores it uses: bucket -> read | read-write.",
                "propertyNames": ref("bucket"),
                "additionalProperties": {"type": "string", "enum": ["read", "read-write"]},
            },
        },
    },
}


# -- generating --------------------------------------------------------------------------------


def _property(entry: Field) -> dict:
    """A field's schema: its value's, its description, and its default where editors offer one (an enum's)."""
    node = dict(entry.schema)
    if entry.description:
        node["description"] = entry.description
    default = entry.default if entry.default is not None else entry.zero
    if "enum" in node and isinstance(default, str):
        node["default"] = default
    return node


def _object(description: str, entries: dict[str, Field], extra: dict, *, nullable: bool) -> dict:
    node: dict = {"description": description, "type": ["object", "null"] if nullable else "object"}
    node["additionalProperties"] = False
    node["properties"] = {name: _property(entry) for name, entry in entries.items() if entry.offered} | extra
    return node


def _type(definition: dict | ObjectType) -> dict:
    if not isinstance(definition, ObjectType):
        return definition
    node = _object(definition.description, definition.fields, {}, nullable=False)
    if definition.required:
        node["required"] = list(definition.required)
    return node


def _defaults(kind: str) -> dict:
    """A defaults section: every field but the per-resource ones, each pointing at the resource's own definition."""
    offered = [name for name, entry in fields.RESOURCES[kind].items() if entry.offered and not entry.per_resource]
    return {
        "description": DEFAULTS_DESCRIPTIONS[kind],
        "type": ["object", "null"],
        "additionalProperties": False,
        "properties": {name: ref(f"{kind}/properties/{name}") for name in offered},
    }


def build_schema() -> dict:
    """The JSON Schema of topology.yaml."""
    resources = {
        kind: _object(RESOURCE_DESCRIPTIONS[kind], fields.RESOURCES[kind], fields.TOOL_KEYS[kind],
                      nullable=kind in ("stream", "consumer"))
        for kind in fields.RESOURCES
    }
    environment = {
        "description": "Overrides for one environment, merged over the base file: the same sections, without "
        "version.",
        "type": "object",
        "additionalProperties": False,
        "properties": {name: TOP_LEVEL[name] for name in ENVIRONMENT_SECTIONS} | ENVIRONMENT_ONLY,
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:medisync-topology:topology.schema.json",
        "title": "medisync-topology file (topology.yaml), version 1",
        "description": "JetStream streams, durable consumers, KV buckets and object stores as code. Field names are "
        "the JetStream API's JSON names (nats-server 2.15); durations and sizes may also be written with units (30s, "
        "512MiB).",
        "type": "object",
        "additionalProperties": False,
        "required": list(REQUIRED),
        "properties": TOP_LEVEL,
        "$defs": {
            **{name: _type(definition) for name, definition in fields.TYPES.items()},
            "protect": fields.PROTECT,
            "replace": fields.REPLACE,
            **resources,
            "stream_defaults": _defaults("stream"),
            "consumer_defaults": _defaults("consumer"),
            **DEFINITIONS,
            "environment": environment,
        },
    }


def schema_text() -> str:
    """The schema file's content: indented, non-ASCII kept (µs), with a trailing newline."""
    return json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(schema_text(), end="")
