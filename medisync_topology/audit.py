"""The audit event that records who applied what, and what it changed.

The event is MediSync's envelope (id, type, timestamp, source, payload; see the messaging guide)
published where topology.yaml's ``audit: {subject: ...}`` says, so the AUDIT stream keeps it.
Publishing is best effort: a failure is a warning for the caller, never a failed apply.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

from .apply import ApplyResult, outcome_rows
from .client import JetStreamClient
from .connectoptions import ConnectOptions
from .errors import TopologyError
from .identity import actor, now_rfc3339
from .ops import Plan

SOURCE = "medisync-topology"
APPLIED = "topology.applied"
APPLY_FAILED = "topology.apply_failed"


def git_commit(sources: list[str]) -> str | None:
    """HEAD of the git checkout the first topology file lives in, with ``-dirty`` appended (as `git describe
    --dirty` does) when a topology file differs from it or was never committed; None outside a checkout or
    without git."""
    if not sources:
        return None
    where = Path(sources[0])
    where = where if where.is_dir() else where.parent
    head = _git(where, "rev-parse", "HEAD")
    if head is None:
        return None
    files = [str(Path(source).resolve()) for source in sources]
    changed = _git(where, "status", "--porcelain", "--untracked-files=all", "--", *files)
    return f"{head}-dirty" if changed else head


def _git(where: Path, *args: str) -> str | None:
    """git's output in ``where``, stripped; None when git is missing or fails."""
    try:
        done = subprocess.run(["git", *args], cwd=where or ".", capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def audit_event(
    plan: Plan,
    result: ApplyResult,
    connect: ConnectOptions,
    *,
    topology_hash: str,
    commit: str | None,
    plan_file: str | None = None,
    interrupted: bool = False,
) -> dict:
    """The envelope for one apply: every operation with its outcome, and where the change came from."""
    failed = result.failed is not None or interrupted
    # Each operation with its outcome and the fields it changed (old and new); the complete
    # before/after configs stay out, so an event is small enough for any stream's max_msg_size.
    operations = [{k: v for k, v in row.items() if k not in ("before", "after")} for row in outcome_rows(plan, result)]
    payload = {
        **actor(connect),
        "server": connect.display_server(),
        "owner": plan.owner,
        "sources": list(plan.sources),
        "environment": plan.environment,
        "topology_hash": topology_hash,
        "git_commit": commit,
        "plan_file": plan_file,
        "operations": operations,
    }
    if interrupted:
        payload["error"] = "apply was interrupted"
    elif result.failed:
        payload["error"] = result.failure()
    return {
        "id": str(uuid.uuid4()),
        "type": APPLY_FAILED if failed else APPLIED,
        "timestamp": now_rfc3339(),
        "source": SOURCE,
        "payload": payload,
    }


# What a message may hold when the server's INFO does not say: nats-server's default max_payload.
DEFAULT_MAX_PAYLOAD = 1024 * 1024


def _encoded(data) -> bytes:
    return json.dumps(data, sort_keys=True).encode()


def audit_messages(event: dict, limit: int) -> list[bytes]:
    """The event as one message; larger than ``limit`` bytes, as parts that share its id.

    Each part is the whole envelope and payload with a run of the operations, in order, and says
    ``part`` and ``parts`` (from 1) in its payload: every part reads alone, and together they hold every
    operation. 5,000 updates were one event over 1 MiB that the server refused (maximum payload exceeded),
    leaving the largest change of all without an audit record.
    """
    whole = _encoded(event)
    if len(whole) <= limit:
        return [whole]
    payload = event["payload"]
    # The largest part and parts numbers there can be, so the room left for operations is never overstated.
    frame = _encoded({**event, "payload": {**payload, "operations": [], "part": 10**9, "parts": 10**9}})
    room = limit - len(frame)
    runs: list[list[dict]] = [[]]
    used = 0
    for operation in payload["operations"]:
        operation = operation if len(_encoded(operation)) < room else _without_values(operation)
        size = len(_encoded(operation)) + 2  # the ", " json.dumps puts between list items
        if runs[-1] and used + size > room:
            runs.append([])
            used = 0
        runs[-1].append(operation)
        used += size
    return [_encoded({**event, "payload": {**payload, "operations": run, "part": i, "parts": len(runs)}})
            for i, run in enumerate(runs, 1)]


def _without_values(operation: dict) -> dict:
    """An operation too large for any message alone (old and new values of a config near max_payload):
    the paths it changed stay, their values do not."""
    changes = [{"path": c["path"], "forces_replacement": c["forces_replacement"]} for c in operation.get("changes") or []]
    return {**operation, "changes": changes, "values_omitted": "larger than the server's max_payload"}


async def _message_limit(client: JetStreamClient, streams: list[str]) -> int:
    """The largest message the server (INFO max_payload) and each capturing stream (max_msg_size) take."""
    limits = [client.connection.server_info.get("max_payload") or DEFAULT_MAX_PAYLOAD]
    for name in streams:
        size = (await client.request(f"STREAM.INFO.{name}", None)).get("config", {}).get("max_msg_size", -1)
        limits += [size] if size > 0 else []
    return min(limits)


async def publish_audit(client: JetStreamClient, subject: str, event: dict) -> tuple[int, str | None]:
    """Publish the event, in parts if it is larger than a message may be; (parts, warning), the warning
    to show when it was not stored, else None.

    When a stream captures the subject we wait for its ack, so the event is known to be stored;
    otherwise a core publish reaches only whoever listens at that moment, and we say so.
    """
    messages, part = [_encoded(event)], 0
    try:
        captured = (await client.request("STREAM.NAMES", {"subject": subject})).get("streams") or []
        messages = audit_messages(event, await _message_limit(client, captured))
        for part, data in enumerate(messages, 1):
            await (client.publish(subject, data) if captured else client.connection.publish(subject, data))
    except TopologyError as exc:
        where = f" (part {part} of {len(messages)})" if len(messages) > 1 else ""
        return len(messages), f"the audit event{where} was not published to {subject}: {exc}"
    if captured:
        return len(messages), None
    return len(messages), f"no stream captures {subject}, so the audit event was published but not stored"
