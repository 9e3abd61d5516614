"""Drift: what changed on the server since the tool last applied a resource, told apart from what the file asks.

apply writes into each resource's metadata (``APPLIED_KEY``) a digest of every field of the config it sent,
field by field: one digest of the whole config would say only *whether* something drifted. With them a plan
knows, for each field it changes, whether the live value is still the one applied and whether the file's is:

- live differs from what was applied, the file's value is what was applied: drift (changed outside the
  topology; applying sets it back);
- otherwise the file asks for the change (also when both changed the same field: the file wins, as it will).

A resource applied by an older version of the tool (no record), or adopted, has no drift. The record is
about 25 characters a field (600 bytes for a typical stream, 1.1 KiB with all 45 fields), far below the
128 KiB the server allows a resource's metadata (JSMaxMetadataLen, keys and values summed;
server/jetstream_api.go). It is dropped when a live config is read (rules.strip_live), as the server's own
``_nats.*`` keys are, so it never shows up as a change itself. Pure: no I/O.

The record is only as new as the last apply: values accepted into the file without an apply (export --merge,
then "No changes.") stay recorded as they were applied, so a later hand change of such a field is shown as
the file's change, not as drift, until the next apply that touches the resource.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from functools import lru_cache
from typing import Any

from .fields import APPLIED_KEY, UNORDERED_FIELDS
from .ops import FieldChange

# 32 bits a field: two values of one field colliding by chance is one in four billion, and a collision only
# misses a drift (the change is still shown, as one the file asks for).
DIGEST_CHARS = 8
# json.dumps with these options, made once: json.dumps makes a new encoder for every call that is not plain, which
# was half of what recording a consumer cost (5,000 of them in an apply from empty). The text, and so every digest
# already on a server, is the same.
_canonical_json = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_compact_json = json.JSONEncoder(separators=(",", ":")).encode


def _canonical(value: Any) -> Any:
    """The value as == compares it in a plan: 3.0 is 3 (the plan ignores numeric types), key order is nothing."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def digest(key: str, value: Any) -> str | None:
    """The digest of one top-level field's value; None for an absent field. Lists whose order means nothing to
    the server (fields.UNORDERED_FIELDS) are sorted first, as the plan compares them."""
    if value is None:
        return None
    if isinstance(value, (str, int, float)):  # bool is an int: typed=True keeps True and 1 apart
        return _scalar_digest(key, value)
    return _digest(key, value)


@lru_cache(maxsize=4096, typed=True)
def _scalar_digest(key: str, value: str | int | float) -> str:
    # Most fields hold one of a few values across thousands of resources (storage file, ack_policy explicit):
    # an apply of 1,000 streams x 5 consumers hashed 25,000 field values, most of them the same.
    return _digest(key, value)


def _digest(key: str, value: Any) -> str:
    if key in UNORDERED_FIELDS and isinstance(value, list):
        value = sorted(value)
    return hashlib.sha256(f"{key}={_canonical_json(_canonical(value))}".encode()).hexdigest()[:DIGEST_CHARS]


def record(config: dict) -> str:
    """What apply writes under APPLIED_KEY: the digest of each field of ``config``, as compact JSON."""
    metadata = {k: v for k, v in (config.get("metadata") or {}).items() if k != APPLIED_KEY}
    config = {**config, "metadata": metadata or None}  # as a live config reads (rules.strip_live)
    digests = {key: digest(key, value) for key, value in sorted(config.items()) if value is not None}
    return _compact_json(digests)


def recorded(config: dict) -> dict:
    """``config`` as apply sends it: with the record of itself in its metadata."""
    return {**config, "metadata": {**(config.get("metadata") or {}), APPLIED_KEY: record(config)}}


def applied(live_config: dict) -> dict[str, str] | None:
    """The record in a live config's metadata (as the server reports it); None when there is none or it is not
    one (written by an older version of the tool, or by hand)."""
    text = (live_config.get("metadata") or {}).get(APPLIED_KEY)
    try:
        found = json.loads(text) if text else None
    except ValueError:
        return None
    if not isinstance(found, dict) or not all(isinstance(v, str) for v in found.values()):
        return None
    return found


def marked(changes: tuple[FieldChange, ...], record_: dict[str, str] | None) -> tuple[FieldChange, ...]:
    """The changes, each marked ``drift`` when the live value (``old``) is not what was last applied and the
    file's (``new``) is: changed outside the topology. Unmarked without a record."""
    if record_ is None:
        return changes
    return tuple(
        dataclasses.replace(c, drift=digest(c.path, c.old) != record_.get(c.path) == digest(c.path, c.new))
        for c in changes
    )
