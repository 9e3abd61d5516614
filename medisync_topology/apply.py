"""Carry out a plan's operations against JetStream, independent ones concurrently, stopping at the first failure."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Callable

from . import drift, errors, refusals, rules
from .client import CONCURRENT_REQUESTS, JetStreamAPIError, JetStreamClient
from .errors import TopologyError
from .migrator import migrate_stream, rename_consumer, rename_stream
from .probe import Refused, probe_replacement
from .ops import (
    Action, CreateResource, DeleteResource, Migration, Operation, Plan, ReplaceResource, UpdateResource, finding_to_dict,
    operation_to_dict, prior_config, resulting_config,
)
from .plan import origins
from .subjects import SubjectIndex

# Operations under way at once; each is one request, or two or three in a row (a replace, a sealed create).
CONCURRENT_OPERATIONS = CONCURRENT_REQUESTS

# Before this version a cluster counted streams being created in every tier; the waits (seconds) before
# each new try of a create so refused, while those finish (milliseconds on a healthy cluster).
IN_FLIGHT_PER_TIER = (2, 12, 0)
IN_FLIGHT_WAITS = (0.05, 0.1, 0.2, 0.4, 0.8)

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
        """The first failure in plan order (others may have been in flight with it)."""
        return self._failed

    def __post_init__(self):
        # Found once: a scan per call made printing an apply of many operations quadratic.
        self._failed = next((o for o in self.outcomes if o.status == "failed"), None)

    @property
    def interrupted(self) -> Outcome | None:
        """The first operation under way when apply was interrupted (Ctrl-C): it may or may not have taken effect."""
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
    """What an interrupted apply did: the outcomes reported so far (apply_plan reports the operations under
    way as "interrupted"), the rest "not attempted"."""
    reported = {id(o.operation) for o in outcomes}
    return ApplyResult([*outcomes, *(Outcome(op, "not attempted") for op in plan.operations if id(op) not in reported)])


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
    """Run the operations, independent ones concurrently (up to CONCURRENT_OPERATIONS at a time).

    ``on_done`` hears of each operation that was done or failed, in plan order. After the first failure
    nothing new is sent; what is in flight is awaited and reported; the rest are not attempted. When
    interrupted (Ctrl-C), ``on_done`` hears of everything done or failed so far and of each operation
    under way, as "interrupted" (it may or may not have taken effect), before the cancellation goes on.
    """
    if plan.errors:
        raise TopologyError("the plan has errors; nothing was applied")
    run = _Run(client, plan.operations, on_done)
    deletes = [i for i, op in enumerate(plan.operations) if isinstance(op, DeleteResource)]
    changes = [i for i, op in enumerate(plan.operations) if not isinstance(op, DeleteResource)]
    try:
        # Deletes free subjects, names and storage before anything is changed or created.
        for group in (deletes, changes):
            await run.all(group)
    except (asyncio.CancelledError, KeyboardInterrupt):
        run.interrupted()
        raise
    except _Interrupted:
        run.interrupted()
        raise KeyboardInterrupt from None
    return ApplyResult([o or Outcome(op, "not attempted") for op, o in zip(plan.operations, run.outcomes)])


def dependencies(ops: list[Operation]) -> tuple[list[list[int]], set[int]]:
    """What each operation waits for (indices into ``ops``), and the consumer deletes that their stream's
    delete carries out (deleting a stream deletes its consumers: those wait for it and send nothing).

    An operation waits only for earlier ones, so whatever succeeded one by one in plan order succeeds
    concurrently: a stream waits for the streams it mirrors or sources from, and for earlier updates that
    take subjects it wants away from their streams; a stream's delete waits for the deletes of the streams
    that mirror or source it; a consumer waits for its stream and for the consumer before it on the same
    stream (a workqueue stream refuses overlapping filters, so a filter that moves must move first).
    """
    waits: list[list[int]] = [[] for _ in ops]
    carried: set[int] = set()
    deleted = {op.ref.stream_name: i for i, op in enumerate(ops)
               if isinstance(op, DeleteResource) and op.ref.kind != "consumer"}
    changed: dict[str, int] = {}  # stream name -> its create, update or replace, so far
    last_consumer: dict[str, int] = {}  # stream name -> the last consumer create, update or replace on it
    readers: dict[str, list[int]] = {}  # stream name -> deletes of streams mirroring or sourcing it, so far
    moved = SubjectIndex()  # the subjects updates and replaces had before, so far
    for i, op in enumerate(ops):
        ref, deleting = op.ref, isinstance(op, DeleteResource)
        if ref.kind == "consumer":
            if deleting and ref.stream in deleted:
                waits[i].append(deleted[ref.stream])
                carried.add(i)
            elif not deleting:
                waits[i] += [j for j in (changed.get(ref.stream), last_consumer.get(ref.stream)) if j is not None]
                last_consumer[ref.stream] = i
        elif deleting:
            waits[i] += readers.get(ref.stream_name, [])
            for origin in origins(op.before):
                readers.setdefault(origin, []).append(i)
        else:
            config = resulting_config(op)
            waits[i] += [changed[name] for name in origins(config) if name in changed]
            for subject in config.get("subjects") or []:
                waits[i] += moved.overlapping(subject)
            for subject in (prior_config(op) or {}).get("subjects") or []:
                moved.add(subject, i)
            changed[ref.stream_name] = i
    return [sorted(set(w)) for w in waits], carried


class _Interrupted(Exception):
    """A KeyboardInterrupt inside one operation's task, carried out of the task as an ordinary exception."""


class _Run:
    """One apply's operations under way: their outcomes, in plan order, and who is told of them."""

    def __init__(self, client: JetStreamClient, ops: list[Operation], on_done: Callable[[Outcome], None]):
        self.client, self.ops, self.on_done = client, ops, on_done
        self.waits, self.carried = dependencies(ops)
        self.outcomes: list[Outcome | None] = [None] * len(ops)
        self.finished = [asyncio.Event() for _ in ops]
        self.limit = asyncio.Semaphore(CONCURRENT_OPERATIONS)
        self.stopped = False  # set by the first failure: nothing new is sent
        self.under_way: set[int] = set()
        self.reported = 0  # outcomes[:reported] have been told to on_done

    async def all(self, indices: list[int]) -> None:
        tasks = [asyncio.create_task(self.one(i)) for i in indices]
        try:
            await asyncio.gather(*tasks)
        finally:  # an interruption, or an error no outcome can hold: nothing goes on behind the caller's back
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def one(self, i: int) -> None:
        op = self.ops[i]
        for j in self.waits[i]:
            await self.finished[j].wait()
        if i in self.carried:
            stream_deleted = self.outcomes[self.waits[i][0]].status == "done"
            self.finish(i, Outcome(op, "done" if stream_deleted else "not attempted"))
            return
        async with self.limit:
            if self.stopped or any(self.outcomes[j].status != "done" for j in self.waits[i]):
                self.finish(i, Outcome(op, "not attempted"))
                return
            self.under_way.add(i)
            try:
                outcome = Outcome(op, "done", detail=await _execute(self.client, op, self.ops))
            except Refused as exc:
                what = "" if exc.ref == op.ref else f"{exc.ref}, as it would be created after it: "
                outcome = Outcome(op, "failed", f"the server refuses {what}{await _explain(self.client, op, exc.error)}; "
                                  f"nothing was deleted, {op.ref} is as it was", exc.error.err_code)
            except ReplaceFailed as exc:
                outcome = Outcome(op, "failed", f"{await _explain(self.client, op, exc.error)}; {exc.aftermath}",
                                  exc.error.err_code)
            except JetStreamAPIError as exc:
                outcome = Outcome(op, "failed", await _explain(self.client, op, exc), exc.err_code)
            except TopologyError as exc:
                outcome = Outcome(op, "failed", str(exc))
            except KeyboardInterrupt:
                # Raised in a task, asyncio would end the event loop with it, past the caller's handling of it.
                raise _Interrupted from None
            self.under_way.discard(i)  # not when cancelled: then it stays under way, for interrupted()
        self.stopped = self.stopped or outcome.status == "failed"
        self.finish(i, outcome)

    def finish(self, i: int, outcome: Outcome) -> None:
        self.outcomes[i] = outcome
        self.finished[i].set()
        self.report()

    def report(self) -> None:
        """Tell on_done of the outcomes known since the last time, as far as plan order allows."""
        while self.reported < len(self.ops) and self.outcomes[self.reported] is not None:
            outcome = self.outcomes[self.reported]
            self.reported += 1
            if outcome.status != "not attempted":
                self.on_done(outcome)

    def interrupted(self) -> None:
        """Tell on_done of everything known, in plan order: what was under way is "interrupted"."""
        for i in self.under_way:
            self.outcomes[i] = Outcome(self.ops[i], "interrupted")
        for outcome in self.outcomes[self.reported:]:
            if outcome is not None and outcome.status != "not attempted":
                self.on_done(outcome)
        self.reported = len(self.ops)


class ReplaceFailed(Exception):
    """The old resource was deleted, then the server refused the new config; ``aftermath`` says what is left."""

    def __init__(self, error: JetStreamAPIError, aftermath: str):
        self.error, self.aftermath = error, aftermath
        super().__init__(str(error))


async def _execute(client: JetStreamClient, op: Operation, operations: list[Operation]) -> str | None:
    """Carry out one operation; what a migration did, as a line for the person applying, else None."""
    match op:
        case CreateResource(migration=Migration()):
            return await rename_stream(client, op)
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
    for wait in (*IN_FLIGHT_WAITS, None):
        try:
            await client.request(_api("CREATE", ref), _body(ref, first, "create"))
            break
        except JetStreamAPIError as exc:
            if wait is None or not _counted_in_flight(client, ref, exc):
                raise
            await asyncio.sleep(wait)
    if later:
        await client.request(_api("UPDATE", ref), _body(ref, config, "update"))


def _counted_in_flight(client: JetStreamClient, ref, exc: JetStreamAPIError) -> bool:
    """Whether a stream create refused for max_streams may only have met another one still being created:
    a cluster before 2.12 counts every stream create in flight, of any replica tier, against the tier's
    max_streams (jsClusteredStreamLimitsCheck), so creates applied together are refused where the plan,
    counting per tier, found room."""
    return (exc.err_code == errors.MAXIMUM_STREAMS and ref.kind != "consumer"
            and bool(client.connection.server_info.get("cluster"))
            and rules.parse_version(client.server_version) < IN_FLIGHT_PER_TIER)


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
    # The config carries the record of itself, so the next plan tells drift from what the file asks (drift.py).
    config = drift.recorded(config)
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
