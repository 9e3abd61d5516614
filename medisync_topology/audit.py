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
from .connection import ConnectOptions
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


async def publish_audit(client: JetStreamClient, subject: str, event: dict) -> str | None:
    """Publish the event; a warning to show when it was not stored, else None.

    When a stream captures the subject we wait for its ack, so the event is known to be stored;
    otherwise a core publish reaches only whoever listens at that moment, and we say so.
    """
    data = json.dumps(event, sort_keys=True).encode()
    try:
        captured = (await client.request("STREAM.NAMES", {"subject": subject})).get("streams") or []
        if captured:
            await client.publish(subject, data)
            return None
        await client.connection.publish(subject, data)
    except TopologyError as exc:
        return f"the audit event was not published to {subject}: {exc}"
    return f"no stream captures {subject}, so the audit event was published but not stored"
