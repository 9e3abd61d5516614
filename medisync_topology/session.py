"""A plan or an apply against a live server, from connecting to the audit event.

The steps and their order live here; how each step is shown to a person is the caller's
business (cli.py prints), told through ApplyCallbacks and the returned data.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Callable

from . import buckets, dataloss
from .apply import ApplyResult, Outcome, apply_plan, interrupted_result
from .audit import audit_event, git_commit, publish_audit
from .client import JetStreamClient
from .connectoptions import ConnectOptions
from .errors import TopologyError
from .lock import ApplyLock
from .model import Topology
from .live import LiveState
from .ops import Plan, Ref, ReplaceResource, resulting_config
from .plan import make_plan, saved_plan_refusals
from .targets import targeted
from .render import data_at_risk_text
from .planfile import PlanFileError, SavedPlan, check_target, live_snapshot, read_target, stale_changes, topology_hash


class NothingApplied(TopologyError):
    """Apply stopped before its first operation; ``plan`` is what it would have applied."""

    def __init__(self, message: str, plan: Plan):
        self.plan = plan
        super().__init__(message)


class ApplyInterrupted(TopologyError):
    """Apply was interrupted (Ctrl-C) midway; ``result`` says what was done, under way and not attempted."""

    def __init__(self, plan: Plan, result: ApplyResult, audit: dict | None):
        self.plan, self.result, self.audit = plan, result, audit
        super().__init__("apply was interrupted")


def check_replacements(plan: Plan, allowed: bool, hint: str) -> None:
    """Replacing destroys data: only when asked for, when applying or when saving a plan."""
    # A migration keeps the data: it needs no permission to destroy.
    replaced = [str(op.ref) for op in plan.operations if isinstance(op, ReplaceResource) and not op.migration]
    if replaced and not allowed:
        raise NothingApplied(f"the plan replaces {', '.join(replaced)}, destroying their data; {hint}", plan)


def check_data_loss(plan: Plan, allowed: bool, hint: str) -> None:
    """An update that destroys messages (a limit lowered): only when asked for, as a replacement."""
    destroying = [f"{op.ref} ({data_at_risk_text(op.data_at_risk)})" for op in dataloss.destroying_updates(plan)]
    if destroying and not allowed:
        raise NothingApplied(f"the plan updates {'; '.join(destroying)}; {hint}", plan)


async def plan_against(client: JetStreamClient, topology: Topology, options: dict) -> tuple[Plan, LiveState]:
    """Read live JetStream, plan, and read what the plan's updates would destroy (only where limits shrink)."""
    live = await client.read_live()
    return await _planned(client, topology, live, options), live


async def _planned(client: JetStreamClient, topology: Topology, live: LiveState, options: dict) -> Plan:
    plan = make_plan(topology, live, prune=options["prune"], adopt=options["adopt"],
                     migrate=options.get("migrate", False))
    plan = targeted(plan, topology, options.get("targets") or [])
    await _assess_losses(client, plan, live)
    return plan


async def _assess_losses(client: JetStreamClient, plan: Plan, live: LiveState) -> None:
    """What each update destroys, from live state read now, only for streams whose limits shrink."""
    asked = dataloss.questions(plan, live)
    dataloss.assess(plan, live, await client.read_losses(asked) if asked else {})


def _provenance(topology: Topology) -> tuple[str | None, str, str | None]:
    """(audit subject, topology hash, git commit): where a plan made from this topology came from."""
    return (topology.audit or {}).get("subject"), topology_hash(topology), git_commit(topology.sources)


def _protected(topology: Topology) -> list[str]:
    """Each resource the topology marks protect: true; a saved plan may not replace or delete them."""
    refs = []
    for spec in {**topology.streams, **topology.buckets}.values():
        refs += [str(spec.ref)] if spec.protect else []
        refs += [str(Ref("consumer", c.name, c.stream)) for c in spec.consumers.values() if c.protect]
    return sorted(refs)


async def plan_live(
    load: Callable[[], Topology], connect: ConnectOptions, options: dict, *, save: bool
) -> tuple[Plan, SavedPlan | None]:
    """The plan of the topology ``load`` reads against live JetStream; with ``save``, also the SavedPlan that
    records what it was made from. ``options``: prune, adopt, allow_replace, allow_data_loss, migrate.

    ``load`` runs in a thread while this one connects and reads live state: the file is read and validated in
    the time the server takes to answer (about 80 ms of 840 at 1,000 streams x 5 consumers). What is wrong with
    the file is still what is reported, at once, whether the server answers or not.
    """
    client = JetStreamClient(connect)
    reading = asyncio.ensure_future(_connected_read(client))
    try:
        topology = await asyncio.to_thread(load)
        live = await reading
        plan = await _planned(client, topology, live, options)
        plan.options = dict(options)
        if not save:
            return plan, None
        subject, file_hash, commit = _provenance(topology)
        saved = SavedPlan(
            plan, options, file_hash, await read_target(client), live_snapshot(live),
            audit_subject=subject, git_commit=commit, protected=_protected(topology),
        )
        return plan, saved
    finally:
        reading.cancel()  # still connecting or reading when the file failed; done otherwise
        await asyncio.gather(reading, return_exceptions=True)  # its failure, if the file's went first, is not news
        await client.close()


async def _connected_read(client: JetStreamClient) -> LiveState:
    await client.connect()
    return await client.read_live()


@dataclass
class ApplyCallbacks:
    """How an apply tells what happens as it goes; each does nothing unless given."""

    show_plan: Callable[[Plan], None] = lambda plan: None
    # Asked before anything changes, in a thread: the lock's refresh goes on while a person reads the plan.
    # None applies without asking.
    confirm: Callable[[], bool] | None = None
    starting: Callable[[Plan], None] = lambda plan: None  # confirmed: the operations are about to be sent
    done: Callable[[Outcome], None] = lambda outcome: None  # each done or failed operation, in plan order
    warn: Callable[[str], None] = lambda text: None
    waiting_for_lock: Callable[[dict, float], None] = lambda holder, seconds: None


@dataclass
class ApplyRun:
    """What every apply has: where it connects and how long it waits for another apply's lock.

    A TopologyRun plans now; a SavedPlanRun applies a plan made and reviewed before.
    """

    connect: ConnectOptions
    lock_timeout: float = 0.0  # seconds to wait for another apply's lock

    async def audit(self, client: JetStreamClient, plan: Plan, result: ApplyResult, warn: Callable[[str], None],
                    interrupted: bool = False) -> dict | None:
        """Publish the audit event, if topology.yaml asks for one; a failure to publish is only a warning."""
        subject, file_hash, commit = self.audit_source()
        if not subject:
            return None
        event = audit_event(plan, result, self.connect, topology_hash=file_hash, commit=commit,
                            plan_file=self.plan_file, interrupted=interrupted)
        parts, warning = await publish_audit(client, subject, event)
        if warning:
            warn(warning)
        return {"subject": subject, "id": event["id"], "type": event["type"], "parts": parts, "warning": warning}


@dataclass(kw_only=True)
class TopologyRun(ApplyRun):
    """An apply of a topology, planned now against what the server has."""

    topology: Topology
    options: dict  # prune, adopt, allow_replace, allow_data_loss, migrate
    plan_file = None
    replace_hint = "pass --allow-replace if that is what you want. Nothing was applied."
    data_loss_hint = "pass --allow-data-loss if that is what you want. Nothing was applied."

    async def plan_to_apply(self, client: JetStreamClient) -> Plan:
        return (await plan_against(client, self.topology, self.options))[0]

    def capturing_lock(self) -> list[str]:
        """Streams this apply would create or keep on the lock's subject: then it cannot be locked."""
        return buckets.capturing_streams({name: spec.config.get("subjects") for name, spec in self.topology.streams.items()})

    def audit_source(self) -> tuple[str | None, str, str | None]:
        return _provenance(self.topology)

    def replacement_allowed(self) -> bool:
        return self.options.get("allow_replace", False)

    def data_loss_allowed(self) -> bool:
        return self.options.get("allow_data_loss", False)


@dataclass(kw_only=True)
class SavedPlanRun(ApplyRun):
    """An apply of a saved plan (`topology apply PLANFILE`): exactly its operations, if live JetStream still matches."""

    saved: SavedPlan
    plan_file: str
    replace_hint = "it was saved without --allow-replace. Nothing was applied."
    data_loss_hint = "it was saved without --allow-data-loss. Nothing was applied."

    async def plan_to_apply(self, client: JetStreamClient) -> Plan:
        live = await client.read_live()
        check_target(self.saved, await read_target(client), self.plan_file)
        changes = stale_changes(self.saved, live_snapshot(live), client.server_version)
        if changes:
            listed = "\n".join(f"  {change}" for change in changes)
            raise PlanFileError(
                f"{self.plan_file} is stale; live JetStream changed since the plan was made:\n{listed}\n"
                "Nothing was applied; make a new plan."
            )
        options = self.saved.options
        refusals = saved_plan_refusals(self.saved.plan, live, prune=options.get("prune", False),
                                       adopt=options.get("adopt", False), protected=set(self.saved.protected))
        if refusals:
            listed = "\n".join(f"  {refusal}" for refusal in refusals)
            raise PlanFileError(
                f"{self.plan_file} holds operations `topology plan` could not make against this server "
                f"(was it edited?):\n{listed}\nNothing was applied."
            )
        # What its updates destroy is the server's now, not the file's word: --allow-data-loss is checked on it.
        await _assess_losses(client, self.saved.plan, live)
        return self.saved.plan

    def capturing_lock(self) -> list[str]:
        configs = {op.ref.stream_name: resulting_config(op) or {}
                   for op in self.saved.plan.operations if op.ref.kind != "consumer"}
        return buckets.capturing_streams({name: config.get("subjects") for name, config in configs.items()})

    def audit_source(self) -> tuple[str | None, str, str | None]:
        """As recorded in the saved plan."""
        return self.saved.audit_subject, self.saved.topology_hash, self.saved.git_commit

    def replacement_allowed(self) -> bool:
        return self.saved.options.get("allow_replace", False)

    def data_loss_allowed(self) -> bool:
        return self.saved.options.get("allow_data_loss", False)


async def run_apply(run: TopologyRun | SavedPlanRun, callbacks: ApplyCallbacks) -> tuple[Plan, ApplyResult | None, dict | None]:
    """Lock, plan, check, confirm, apply, audit; (plan, result, audit), result None when there was nothing to do.

    NothingApplied (carrying the plan) when it stopped before the first operation.
    """
    async with JetStreamClient(run.connect) as client:
        # The lock is taken before live state is read, so no other apply changes it under this plan.
        lock = ApplyLock(client, run.connect, wait=run.lock_timeout, capturing=run.capturing_lock(),
                         on_wait=lambda holder: callbacks.waiting_for_lock(holder, run.lock_timeout))
        async with lock:
            if lock.unavailable:
                callbacks.warn(lock.unavailable)
            plan = await run.plan_to_apply(client)
            callbacks.show_plan(plan)
            if plan.errors:
                raise NothingApplied("the plan has errors (above); nothing was applied", plan)
            if not plan.has_changes:
                return plan, None, None
            check_replacements(plan, run.replacement_allowed(), run.replace_hint)
            check_data_loss(plan, run.data_loss_allowed(), run.data_loss_hint)
            if callbacks.confirm and not await asyncio.to_thread(callbacks.confirm):
                raise NothingApplied("apply cancelled; nothing was applied", plan)
            outcomes: list[Outcome] = []

            def done(outcome: Outcome) -> None:
                outcomes.append(outcome)
                callbacks.done(outcome)

            callbacks.starting(plan)
            try:
                result = await apply_plan(client, plan, on_done=done)
            except (asyncio.CancelledError, KeyboardInterrupt):
                # Ctrl-C: what was done so far is on the server; the audit trail and the person are told so.
                result = interrupted_result(plan, outcomes)
                audit = await run.audit(client, plan, result, callbacks.warn, interrupted=True)
                raise ApplyInterrupted(plan, result, audit) from None
            audit = await run.audit(client, plan, result, callbacks.warn)
        if lock.warning:
            callbacks.warn(lock.warning)
    return plan, result, audit
