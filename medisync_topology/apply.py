"""Carry out a plan's operations against JetStream, in order, stopping at the first failure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from . import errors, refusals, rules
from .client import JetStreamAPIError, JetStreamClient
from .errors import TopologyError
from .migrator import migrate_stream, rename_consumer
from .probe import Refused, probe_replacement
from .ops import (
    Action, CreateResource, DeleteResource, Operation, Plan, ReplaceResource, UpdateResource, finding_to_dict,
    operation_to_dict, resulting_config,
)

PAST_TENSE = {Action.CREATE: "created", Action.UPDATE: "updated", Action.REPLACE: "replaced", Action.DELETE: "deleted"}
APPLY_JSON_VERSION = 1


@dataclass
class Outcome:
    """What happened to one operation: done, failed (with the server's error) or not attempted."""

    operation: Operation
    status: str
    error: str | None = None
    err_code: int | None = None
    detail: str | None = None  # what a migration did: messages copied, how long publishes were refused


@dataclass
class ApplyResult:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def failed(self) -> Outcome | None:
        return next((o for o in self.outcomes if o.status == "failed"), None)

    @property
    def interrupted(self) -> Outcome | None:
        """The operation under way when apply was interrupted (Ctrl-C): it may or may not have taken effect."""
        return next((o for o in self.outcomes if o.status == "interrupted"), None)

    def failure(self) -> str | None:
        """'<resource>: <error>' of the operation that failed; None when none did."""
        return f"{self.failed.operation.ref}: {self.failed.error}" if self.failed else None

    def with_status(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    def done_counts(self) -> dict[str, int]:
        """How many resources were created, updated, replaced, deleted (keys in PAST_TENSE's words)."""
        done = self.with_status("done")
        return {PAST_TENSE[a]: sum(o.operation.action == a for o in done) for a in PAST_TENSE}


def interrupted_result(plan: Plan, outcomes: list[Outcome]) -> ApplyResult:
    """What an interrupted apply did: the outcomes reported so far, the first operation not reported
    "interrupted" (it was under way), the rest "not attempted"."""
    reported = {id(o.operation) for o in outcomes}
    pending = [op for op in plan.operations if id(op) not in reported]
    rest = [Outcome(op, "interrupted" if i == 0 else "not attempted") for i, op in enumerate(pending)]
    return ApplyResult([*outcomes, *rest])


def outcome_rows(plan: Plan, result: ApplyResult) -> list[dict]:
    """Every operation in its JSON form with what happened to it: done, failed (error, err_code) or
    not attempted (also one the run never reached, e.g. after an interruption)."""
    by_operation = {id(o.operation): o for o in result.outcomes}
    rows = []
    for op in plan.operations:
        outcome = by_operation.get(id(op), Outcome(op, "not attempted"))
        rows.append({**operation_to_dict(op), "outcome": outcome.status, "error": outcome.error,
                     "err_code": outcome.err_code, "detail": outcome.detail})
    return rows


def apply_document(plan: Plan, result: ApplyResult, audit: dict | None, error: str | None) -> dict:
    """The machine-readable apply (`apply --format json`): every operation with its outcome, a summary,
    the plan's findings, the audit event published (``audit``) and why the apply stopped (``error``)."""
    rows = outcome_rows(plan, result)
    summary = result.done_counts()
    summary.update(
        failed=sum(row["outcome"] == "failed" for row in rows),
        interrupted=sum(row["outcome"] == "interrupted" for row in rows),
        not_attempted=sum(row["outcome"] == "not attempted" for row in rows),
    )
    return {
        "format_version": APPLY_JSON_VERSION,
        "summary": summary,
        "error": error,
        "operations": rows,
        "findings": [finding_to_dict(f) for f in plan.findings],
        "audit": audit,
    }


async def apply_plan(
    client: JetStreamClient, plan: Plan, on_done: Callable[[Outcome], None] = lambda outcome: None
) -> ApplyResult:
    """Run each operation; after a failure the rest are reported as not attempted."""
    if plan.errors:
        raise TopologyError("the plan has errors; nothing was applied")
    result = ApplyResult()
    for op in plan.operations:
        if result.failed:
            result.outcomes.append(Outcome(op, "not attempted"))
            continue
        try:
            outcome = Outcome(op, "done", detail=await _execute(client, op, plan.operations))
        except Refused as exc:
            what = "" if exc.ref == op.ref else f"{exc.ref}, as it would be created after it: "
            outcome = Outcome(op, "failed", f"the server refuses {what}{await _explain(client, op, exc.error)}; "
                              f"nothing was deleted, {op.ref} is as it was", exc.error.err_code)
        except ReplaceFailed as exc:
            outcome = Outcome(op, "failed", f"{await _explain(client, op, exc.error)}; {exc.aftermath}", exc.error.err_code)
        except JetStreamAPIError as exc:
            outcome = Outcome(op, "failed", await _explain(client, op, exc), exc.err_code)
        except TopologyError as exc:
            outcome = Outcome(op, "failed", str(exc))
        result.outcomes.append(outcome)
        on_done(outcome)
    return result


class ReplaceFailed(Exception):
    """The old resource was deleted, then the server refused the new config; ``aftermath`` says what is left."""

    def __init__(self, error: JetStreamAPIError, aftermath: str):
        self.error, self.aftermath = error, aftermath
        super().__init__(str(error))


async def _execute(client: JetStreamClient, op: Operation, operations: list[Operation]) -> str | None:
    """Carry out one operation; what a migration did, as a line for the person applying, else None."""
    match op:
        case CreateResource(renamed_from=str()):
            return await rename_consumer(client, op)
        case CreateResource():
            await _create(client, op.ref, op.config)
        case ReplaceResource(migration=None):
            await _replace(client, op, operations)
        case ReplaceResource():
            return (await migrate_stream(client, op)).text()
        case UpdateResource():
            await _update(client, op)
        case DeleteResource():
            await client.request(_api("DELETE", op.ref), None)
    return None


async def _replace(client: JetStreamClient, op: ReplaceResource, operations: list[Operation]) -> None:
    """Delete then create, but only once the server accepted the new config on a probe (probe.py); when it
    still refuses it after the delete, the old config is created again, so the resource at least exists."""
    await probe_replacement(client, op, operations, lambda ref, config: _create(client, ref, config),
                            lambda ref: client.request(_api("DELETE", ref), None))
    await client.request(_api("DELETE", op.ref), None)
    try:
        await _create(client, op.ref, op.after)
    except JetStreamAPIError as exc:
        try:
            await _create(client, op.ref, op.before)
        except JetStreamAPIError as again:
            raise ReplaceFailed(exc, f"{op.ref} was deleted and its old config could not be created again "
                                     f"({again.description}, err_code {again.err_code})") from None
        lost = "its messages and consumers" if op.ref.kind != "consumer" else "its position"
        raise ReplaceFailed(exc, f"{op.ref} was created again with its old config ({lost} are lost)") from None


def _kind(ref) -> str:
    """Which rules table the resource's config follows (a bucket's is its stream's)."""
    return "consumer" if ref.kind == "consumer" else "stream"


async def _create(client: JetStreamClient, ref, config: dict) -> None:
    # Some fields the create request refuses (a stream cannot be born sealed): create without, then update.
    kind = _kind(ref)
    later = rules.set_via(kind, config, "update_after_create")
    first = {**config, **{k: rules.RULES[kind][k].default for k in later}}
    await client.request(_api("CREATE", ref), _body(ref, first, "create"))
    if later:
        await client.request(_api("UPDATE", ref), _body(ref, config, "update"))


async def _update(client: JetStreamClient, op: UpdateResource) -> None:
    ref = op.ref
    # The full config: the server resets any field an update omits.
    verb = "UPDATE" if ref.kind != "consumer" else "CREATE"
    await client.request(_api(verb, ref), _body(ref, op.after, "update"))
    if rules.fields_via(_kind(ref), "pause") & {c.path for c in op.changes}:
        # An update keeps the old pause_until; only the PAUSE API changes it (an empty body resumes).
        body = rules.set_via("consumer", op.after, "pause")
        await client.request(f"CONSUMER.PAUSE.{ref.stream}.{ref.name}", body)


def _api(verb: str, ref) -> str:
    if ref.kind == "consumer":
        return f"CONSUMER.{verb}.{ref.stream}.{ref.name}"
    return f"STREAM.{verb}.{ref.stream_name}"


def _body(ref, config: dict, action: str) -> dict:
    # pedantic: the server refuses what it would otherwise silently rewrite, so what we planned is what we get.
    if ref.kind == "consumer":
        return {"stream_name": ref.stream, "config": config, "action": action, "pedantic": True}
    return {**config, "pedantic": True}


async def _explain(client: JetStreamClient, op: Operation, exc: JetStreamAPIError) -> str:
    text = f"{exc.description} (err_code {exc.err_code})"
    meaning = errors.ERROR_MEANINGS.get(exc.err_code)
    if exc.err_code == errors.SUBJECTS_OVERLAP:
        others = await _overlapping_streams(client, op)
        if others:
            meaning = f"its subjects overlap with stream {', '.join(others)}"
    return f"{text}: {meaning}" if meaning else text


async def _overlapping_streams(client: JetStreamClient, op: Operation) -> list[str]:
    config = resulting_config(op) or {}
    names: set[str] = set()
    for subject in config.get("subjects") or []:
        try:
            reply = await client.request("STREAM.NAMES", {"subject": subject})
        except TopologyError:
            continue
        names.update(n for n in reply.get("streams") or [] if n != op.ref.stream_name)
    return sorted(names)
