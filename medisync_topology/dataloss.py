"""What an update in place destroys: limits the server enforces the moment a stream's config changes.

nats-server applies a stream update and then, in the store's UpdateConfig (filestore.go, memstore.go),
drops at once the oldest messages beyond max_msgs and max_bytes (with discard old only), every
subject's oldest beyond a max_msgs_per_subject that shrank, and, by its age timer right after,
everything older than a new or shorter max_age; a change of retention to interest drops what no
consumer still wants (stream.go update). Pure: ``questions`` says what to read, client.read_losses
reads it, ``assess`` puts the loss on each update as its data_at_risk.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from . import rules
from .live import LiveState
from .ops import DataAtRisk, Plan, UpdateResource


@dataclass(frozen=True)
class LossQuestion:
    """What to read of one stream: per-subject counts (``subjects``), and the first sequence not older
    than ``max_age`` nanoseconds before the server's now (0: not asked)."""

    stream: str
    subjects: bool
    max_age: int


@dataclass(frozen=True)
class LossFacts:
    """The answers, read just now: the stream's state; its messages per subject (None: not asked); the
    first sequence at or after now minus max_age (None: not asked; 0: every message is older)."""

    state: dict
    subjects: dict[str, int] | None = None
    first_kept: int | None = None


def _shrinks(before: dict, after: dict, key: str) -> bool:
    """A limit set where there was none, or lowered (0 and -1 mean unlimited)."""
    new, old = after.get(key) or 0, before.get(key) or 0
    return new > 0 and (old <= 0 or new < old)


def _per_subject_enforced(before: dict, after: dict, version: rules.Version | None) -> bool:
    """Whether the server drops each subject's oldest at once. A limit set where there was none (-1) is
    enforced on update only since 2.12.10 and 2.14.2 (the store compared the old value with 0 before)."""
    new, old = after.get("max_msgs_per_subject") or 0, before.get("max_msgs_per_subject") or 0
    if new <= 0 or (old > 0 and new >= old):
        return False
    fixed = version is None or version >= (2, 14, 2) or (2, 12, 10) <= version < (2, 14, 0)
    return old > 0 or fixed


def _update_questions(op: UpdateResource, live: LiveState) -> LossQuestion | None:
    stream = live.streams.get(op.ref.stream_name)
    if op.ref.kind == "consumer" or stream is None or not (stream.state or {}).get("messages"):
        return None
    subjects = _per_subject_enforced(op.before, op.after, live.version)
    max_age = (op.after.get("max_age") or 0) if _shrinks(op.before, op.after, "max_age") else 0
    limits = any(_limit_cut(op.after, stream.state))
    to_interest = op.before.get("retention") != "interest" and op.after.get("retention") == "interest"
    if subjects or max_age or limits or to_interest:
        return LossQuestion(op.ref.stream_name, subjects, max_age)
    return None


def questions(plan: Plan, live: LiveState) -> list[LossQuestion]:
    """The streams whose update may destroy messages, and what must be read to know how many."""
    found = (_update_questions(op, live) for op in plan.operations if isinstance(op, UpdateResource))
    return [q for q in found if q is not None]


def _limit_cut(after: dict, state: dict) -> tuple[int, int]:
    """(messages, bytes) beyond max_msgs and max_bytes, which the server drops at once with discard old."""
    if after.get("discard", "old") != "old":
        return 0, 0
    messages, size = state.get("messages", 0), state.get("bytes", 0)
    max_msgs, max_bytes = after.get("max_msgs") or 0, after.get("max_bytes") or 0
    return (messages - max_msgs if 0 < max_msgs < messages else 0, size - max_bytes if 0 < max_bytes < size else 0)


def update_loss(before: dict, after: dict, facts: LossFacts, consumer_states: dict[str, dict],
                version: rules.Version | None = None) -> DataAtRisk | None:
    """The messages and bytes an update from ``before`` to ``after`` destroys at once on a server of
    ``version`` (None: the newest); None when nothing."""
    state = facts.state
    total, size = state.get("messages", 0), state.get("bytes", 0)
    if not total:
        return None
    average = size / total
    # max_msgs, max_bytes, max_age and interest all drop the oldest messages: the largest of these cuts wins.
    cuts: dict[str, int] = {}
    guessed = False  # whether the message count is an estimate
    over_msgs, over_bytes = _limit_cut(after, state)
    if over_msgs:
        cuts["max_msgs"] = over_msgs
    if over_bytes:
        cuts["max_bytes"] = -(-over_bytes // max(round(average), 1))
        guessed = True
    first_seq, gaps = state.get("first_seq", 0), state.get("num_deleted", 0)
    if facts.first_kept is not None:
        older = total if facts.first_kept == 0 else min(max(facts.first_kept - first_seq, 0), total)
        if older:
            cuts["max_age"] = older
            guessed |= bool(gaps) and older < total  # messages deleted in between are not counted apart
    if before.get("retention") != "interest" and after.get("retention") == "interest":
        # What every consumer has acknowledged goes (each consumer checks on the change). Without consumers no
        # message has interest: 2.15 drops them all at once, older lines keep them until a consumer comes.
        floors = [(s.get("ack_floor") or {}).get("stream_seq", 0) for s in consumer_states.values()]
        if floors:
            acked = min(max(min(floors) - first_seq + 1, 0), total)
        else:
            acked = total if version is None or version >= (2, 15, 0) else 0
        if acked:
            cuts["retention"] = acked
            guessed |= bool(floors)
    oldest = max(cuts.values(), default=0)
    keep = after.get("max_msgs_per_subject") or 0
    per_subject = 0
    if facts.subjects is not None and keep > 0:
        per_subject = sum(count - keep for count in facts.subjects.values() if count > keep)
    messages = min(oldest + per_subject, total)
    if not messages:
        return None
    if per_subject and oldest and max(oldest, per_subject) < total:
        guessed = True  # the two cuts overlap by an amount only the messages themselves would tell
    if messages == total:
        lost, bytes_guessed = size, guessed
    elif list(cuts) == ["max_bytes"] and not per_subject:
        lost, bytes_guessed = over_bytes, False  # exactly what max_bytes cuts, in however many messages
    else:
        lost, bytes_guessed = round(average * messages), True
    estimate = tuple(name for name, on in (("messages", guessed), ("bytes", bytes_guessed)) if on)
    return DataAtRisk(messages, lost, 0, estimate)


def assess(plan: Plan, live: LiveState, facts: dict[str, LossFacts]) -> None:
    """Every stream update gets what it destroys as its data_at_risk (None where nothing): ``facts`` answers
    ``questions``, and an update not asked about destroys nothing. A saved plan is assessed anew at apply."""
    for i, op in enumerate(plan.operations):
        if not isinstance(op, UpdateResource) or op.ref.kind == "consumer":
            continue
        answer = facts.get(op.ref.stream_name)
        stream = live.streams.get(op.ref.stream_name)
        risk = None if answer is None or stream is None else update_loss(op.before, op.after, answer,
                                                                          stream.consumer_states, live.version)
        if risk != op.data_at_risk:
            plan.operations[i] = dataclasses.replace(op, data_at_risk=risk)


def destroying_updates(plan: Plan) -> list[UpdateResource]:
    return [op for op in plan.operations if isinstance(op, UpdateResource) and op.data_at_risk is not None]


_TIMESTAMP = re.compile(r"^(.{19})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$")


def timestamp_ns(text: str) -> int:
    """Nanoseconds since the epoch of the server's RFC 3339 timestamp ("2026-12-01T19:47:04.2860827Z")."""
    match = _TIMESTAMP.match(text)
    if not match:
        raise ValueError(f"not a timestamp: {text!r}")
    zone = "+00:00" if match[3] == "Z" else match[3]
    seconds = int(datetime.fromisoformat(match[1] + zone).timestamp())
    return seconds * 10**9 + int((match[2] or "0").ljust(9, "0"))


def format_timestamp(ns: int) -> str:
    """The inverse of ``timestamp_ns``, in UTC with nine digits."""
    seconds, fraction = divmod(ns, 10**9)
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{fraction:09d}Z"
