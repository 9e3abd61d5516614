"""Saved plans: `topology plan --out FILE`, then `topology apply FILE` applies exactly that plan.

As terraform does it, a saved plan carries what it was made from, and apply refuses it when the
world has moved on: the file records the server and account it was read from and the live config
of every stream and consumer it read, and apply compares them with what the server says now,
naming each change. A checksum over the content refuses a file edited after it was written.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import __version__, buckets, rules
from .client import JetStreamClient
from .connectoptions import DEFAULT_API_PREFIX
from .errors import TopologyError
from .identity import now_rfc3339
from .live import LiveState
from .model import Topology
from .ops import (
    Action, Plan, Ref, finding_from_dict, finding_to_dict, operation_from_dict, operation_to_dict, resulting_config,
)
from .plan import field_changes, origins, owner_of, renamed_away
from .subjects import subjects_overlap

FORMAT = "medisync-topology plan"
FORMAT_VERSION = 1
USER_INFO = "$SYS.REQ.USER.INFO"
# The secret a plan job and its apply job share: plans are signed with it, and only signed ones applied.
KEY_VARIABLE = "TOPOLOGY_PLAN_KEY"
# Far above any real plan: one creating 1,000 streams with 5 consumers each is 5 MiB.
MAX_PLAN_BYTES = 64 * 2**20  # answered by the server for any user: its user and account


class PlanFileError(TopologyError):
    """A plan file that cannot be applied here: unreadable, edited, another format, another server, stale."""


@dataclass
class SavedPlan:
    """A plan and everything apply needs to check it still holds."""

    plan: Plan
    options: dict  # prune, allow_replace, adopt: as the plan was made
    topology_hash: str
    target: dict  # what the server said it is: read_target()
    live: dict[str, dict]  # str(Ref) -> stripped live config, every resource the plan read
    audit_subject: str | None = None
    git_commit: str | None = None
    tool_version: str = __version__
    created: str = field(default_factory=now_rfc3339)
    protected: list[str] = field(default_factory=list)  # str(Ref) of each resource the topology marks protect: true


# -- what a plan is made from -------------------------------------------


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _canonical(data) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def topology_hash(topology: Topology) -> str:
    """One hash over the topology file(s) (each name and content, in order) and the environment."""
    files = [{"file": name, "sha256": hashlib.sha256(Path(name).read_bytes()).hexdigest()} for name in topology.sources]
    return _sha256(_canonical({"files": files, "environment": topology.environment}))


async def read_target(client: JetStreamClient) -> dict:
    """Which JetStream this connection reaches, as the server reports it; never a credential."""
    info = client.connection.server_info
    js_info = await client.request("INFO")
    try:
        reply = await client.connection.request(USER_INFO, b"", timeout=client.options.timeout)
        account = (json.loads(reply.data or b"{}").get("data") or {}).get("account")
    except (TopologyError, ValueError):  # no system account, or the user may not ask: the account stays unknown
        account = None
    return {
        "server_name": info.get("server_name"),
        "cluster": info.get("cluster"),
        "domain": js_info.get("domain") or None,
        "account": account,
        "api_prefix": client.options.api_prefix,
        "server_version": client.server_version,
        "url": client.options.display_server(),
    }


def live_snapshot(live: LiveState) -> dict[str, dict]:
    """The comparable config of every stream and durable consumer, by resource name.

    Message counts are left out (they change all the time and no operation depends on them), as are
    consumers the plan ignores (rules.declarable_consumer) and the tool's own lock bucket.
    """
    snapshot = {}
    for name, stream in buckets.without_lock(live.streams).items():
        snapshot[_stream_key(name)] = rules.strip_live(stream.config, "stream")
        for cname, consumer in stream.consumers.items():
            if rules.declarable_consumer(consumer):
                snapshot[str(Ref("consumer", cname, name))] = rules.strip_live(consumer, "consumer")
    return dict(sorted(snapshot.items()))


def _stream_key(stream_name: str) -> str:
    """A stream's name in the snapshot: a bucket's backing stream goes by its bucket (``key_value cache``)."""
    kind, name = buckets.bucket_of(stream_name) or ("stream", stream_name)
    return str(Ref(kind, name))


def snapshot_hash(snapshot: dict[str, dict]) -> str:
    return _sha256(_canonical(snapshot))


# -- the file -----------------------------------------------------------


def plan_document(saved: SavedPlan, key: bytes | None = None) -> dict:
    plan = saved.plan
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tool_version": saved.tool_version,
        "created": saved.created,
        "topology": {
            "sources": list(plan.sources),
            "environment": plan.environment,
            "hash": saved.topology_hash,
            "git_commit": saved.git_commit,
            "audit_subject": saved.audit_subject,
            "protected": saved.protected,
        },
        "target": saved.target,
        "options": saved.options,
        "plan": {
            "owner": plan.owner,
            "server": plan.server,
            "operations": [operation_to_dict(op) for op in plan.operations],
            "findings": [finding_to_dict(f) for f in plan.findings],
        },
        "live": {"hash": snapshot_hash(saved.live), "resources": saved.live},
    }
    if key is not None:
        document["signature"] = _signature(key, document)
    return {**document, "checksum": _sha256(_canonical(document))}


def plan_key() -> bytes | None:
    """The key plans are signed with and checked against (TOPOLOGY_PLAN_KEY), None when it is not set.

    Set but empty is refused: a pipeline whose secret did not arrive must not fall back to unsigned plans.
    """
    key = os.environ.get(KEY_VARIABLE)
    if key is None:
        return None
    if not key:
        raise PlanFileError(f"{KEY_VARIABLE} is set but empty: give the key plans are signed with, or unset it")
    return key.encode()


def _signature(key: bytes, document: dict) -> str:
    """HMAC-SHA256 over the canonical content: everything but the checksum and the signature itself."""
    content = {k: v for k, v in document.items() if k not in ("checksum", "signature")}
    return "hmac-sha256:" + hmac.new(key, _canonical(content), hashlib.sha256).hexdigest()


def _check_signature(path, document: dict, key: bytes | None) -> None:
    if key is None:  # without a key, as before signing existed: a signature is not checked
        return
    if "signature" not in document:
        raise PlanFileError(
            f"{path} is not signed, but {KEY_VARIABLE} is set: only plans signed with that key are applied; "
            f"make the plan with {KEY_VARIABLE} set"
        )
    if not hmac.compare_digest(str(document["signature"]), _signature(key, document)):
        raise PlanFileError(
            f"{path} is not signed with the key in {KEY_VARIABLE} (its signature does not match): it was made with "
            "another key or changed after it was signed; make a new plan"
        )


def save_plan(path: str | Path, saved: SavedPlan, key: bytes | None = None) -> None:
    """Write the plan as indented JSON (reviewable, diffable), checksum included; signed when given a key."""
    text = json.dumps(plan_document(saved, key), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    try:
        Path(path).write_text(text)
    except OSError as exc:
        raise PlanFileError(f"cannot write the plan to {path}: {exc.strerror or exc}") from None


def load_plan(path: str | Path, key: bytes | None = None) -> SavedPlan:
    """Read a plan file back, its signature checked when given the key; PlanFileError says why one cannot be used."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_PLAN_BYTES + 1)  # never more: `apply /dev/zero` must not fill the memory
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanFileError(f"cannot read plan file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if len(data) > MAX_PLAN_BYTES:
        raise PlanFileError(f"{path} is larger than the limit of {MAX_PLAN_BYTES // 2**20} MiB for a plan file")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: a file of 100,000 nested brackets
        raise PlanFileError(f"{path} is not a plan file: it is not valid JSON (truncated or corrupt?)") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise PlanFileError(f"{path} is not a plan file made by `topology plan --out`")
    version = document.get("format_version")
    if version != FORMAT_VERSION:
        raise PlanFileError(
            f"{path} is plan file format {version}, but this topology ({__version__}) reads format {FORMAT_VERSION}: "
            "make the plan again with this version"
        )
    content = {k: v for k, v in document.items() if k != "checksum"}
    if document.get("checksum") != _sha256(_canonical(content)):
        raise PlanFileError(
            f"{path} was changed after it was written (its checksum does not match): "
            "a saved plan is applied exactly as it was made and reviewed; make a new plan"
        )
    _check_signature(path, document, key)
    try:
        return _saved_plan(document)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PlanFileError(f"{path} is damaged: {type(exc).__name__} {exc}") from None


def _saved_plan(document: dict) -> SavedPlan:
    topology, body = document["topology"], document["plan"]
    plan = Plan(
        operations=[operation_from_dict(op) for op in body["operations"]],
        findings=[finding_from_dict(f) for f in body["findings"]],
        owner=body["owner"],
        sources=list(topology["sources"]),
        environment=topology["environment"],
        server=dict(body["server"]),
        options=dict(document["options"]),
        targets=list(document["options"].get("targets") or []),
    )
    return SavedPlan(
        plan=plan,
        options=dict(document["options"]),
        topology_hash=topology["hash"],
        target=dict(document["target"]),
        live=dict(document["live"]["resources"]),
        audit_subject=topology.get("audit_subject"),
        protected=list(topology.get("protected") or []),
        git_commit=topology.get("git_commit"),
        tool_version=document["tool_version"],
        created=document["created"],
    )


# -- does it still hold? ------------------------------------------------


def _describe_target(target: dict) -> str:
    where = f"cluster {target['cluster']!r}" if target.get("cluster") else f"server {target.get('server_name')!r}"
    if target.get("domain"):
        where += f", JetStream domain {target['domain']!r}"
    if target.get("account"):
        where += f", account {target['account']!r}"
    if target.get("api_prefix") and target["api_prefix"] != DEFAULT_API_PREFIX:
        where += f", API prefix {target['api_prefix']}"
    return f"{where} at {target.get('url')}"


def check_target(saved: SavedPlan, now: dict, path: str) -> None:
    """Refuse a plan made against another server, cluster, domain or account.

    A cluster is one target whichever node we reach; a server outside a cluster is known by its
    name (the server's random id when server_name is not set, so such a server is new after a restart).
    """
    was = saved.target
    keys = ["cluster", "domain", "api_prefix"] + ([] if was.get("cluster") else ["server_name"])
    if was.get("account") and now.get("account"):  # unknown when the user may not ask $SYS.REQ.USER.INFO
        keys.append("account")
    if any((was.get(key) or None) != (now.get(key) or None) for key in keys):
        raise PlanFileError(
            f"{path} was made against {_describe_target(was)}, but this connection reaches {_describe_target(now)}: "
            "a saved plan applies only where it was made; make a new plan against this server"
        )


def stale_changes(saved: SavedPlan, now: dict[str, dict], server_version: str) -> list[str]:
    """What changed in live JetStream since the plan was made that the plan depends on (``depends_on``), one
    line per resource; empty when nothing did. Another team's stream elsewhere in the account is not listed."""
    changes = []
    if saved.target.get("server_version") != server_version:
        changes.append(f"the server's version changed from {saved.target.get('server_version')} to {server_version}")
    was = saved.live
    relevant = depends_on(saved)
    for name in sorted(was.keys() | now.keys()):
        before, after = was.get(name), now.get(name)
        if before == after or not relevant(name, before, after):
            continue
        if after is None:
            changes.append(f"{name} was deleted since the plan was made")
        elif before is None:
            changes.append(f"{name} appeared since the plan was made")
        else:
            fields = [c.path for c in field_changes(before, after)]
            if fields:
                changes.append(f"{name} changed since the plan was made: {', '.join(fields)}")
    return changes


def depends_on(saved: SavedPlan) -> Callable[[str, dict | None, dict | None], bool]:
    """Whether the plan depends on a live resource (by snapshot name, its config then and now; None: absent).

    It does on what it creates, changes or deletes; the consumers of the streams it replaces or deletes
    (they go with them); the streams its operations need (a consumer's stream, a mirror's or source's
    origin); any stream whose subjects overlap those of a stream it creates or changes (the server keeps a
    subject in one stream); and, made with --prune, every resource of its owner (a new plan would prune or
    keep them differently). Anything else may change without making the plan stale.
    """
    plan = saved.plan
    touched = {str(op.ref) for op in plan.operations}
    streams = [op for op in plan.operations if op.ref.kind != "consumer"]
    emptied = {op.ref.stream_name for op in streams if op.action in (Action.REPLACE, Action.DELETE)}
    emptied |= renamed_away(plan.operations)  # a renamed stream's consumers move to its new name
    touched |= {_stream_key(name) for name in renamed_away(plan.operations)}
    needed = {_stream_key(op.ref.stream) for op in plan.operations if op.ref.kind == "consumer"}
    needed |= {_stream_key(origin) for op in streams for origin in origins(resulting_config(op) or {})}
    claimed = [subject for op in streams for subject in (resulting_config(op) or {}).get("subjects") or []]
    prune = bool(saved.options.get("prune"))

    def relevant(name: str, before: dict | None, after: dict | None) -> bool:
        if name in touched or name in needed:
            return True
        if name.startswith("consumer ") and name.removeprefix("consumer ").split("/", 1)[0] in emptied:
            return True
        configs = [config for config in (before, after) if config]
        if prune and any(owner_of(config) == plan.owner for config in configs):
            return True
        return any(subjects_overlap(mine, theirs)
                   for config in configs for theirs in config.get("subjects") or [] for mine in claimed)

    return relevant
