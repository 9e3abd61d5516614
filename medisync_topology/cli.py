"""The `topology` command line: a thin layer over the library.

Exit codes: validate 0 valid, 1 invalid. plan 0 success, 1 error; with --detailed-exitcode
0 no changes, 1 error, 2 changes present. apply 0 success, 1 error.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click

from . import __version__, devserver, options
from .apply import ApplyResult, Outcome, apply_plan, outcome_rows
from .audit import audit_event, git_commit, publish_audit
from .client import JetStreamClient
from .connection import ConnectOptions
from .errors import TopologyError
from .export import export_from_server, to_yaml
from .loader import InvalidTopology
from .lock import ApplyLock, capturing_streams, describe_holder
from .model import Topology
from .ops import Plan, finding_to_dict
from .plan import make_plan
from .planfile import PlanFileError, SavedPlan, check_target, live_snapshot, load_plan, read_target, save_plan, stale_changes, topology_hash
from .render import render
from .units import UnitError, parse_duration
from .validate import load_every_environment, load_topology

PAST_TENSE = {"create": "created", "update": "updated", "replace": "replaced", "delete": "deleted"}
APPLY_JSON_VERSION = 1


class TopologyGroup(click.Group):
    """Turns the library's errors into a clean "Error: ..." and exit 1, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except InvalidTopology as exc:
            count = len(exc.problems)
            lines = "\n".join(str(p) for p in exc.problems)
            raise click.ClickException(f"the topology is invalid ({count} problem{'s' * (count != 1)}):\n{lines}") from None
        except TopologyError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=TopologyGroup)
@click.version_option(__version__, prog_name="topology")
def main():
    """Topology-as-code for NATS JetStream: validate, plan and apply topology.yaml."""


@main.command()
@options.topology_file
def validate(paths, env):
    """Check a topology offline. Exit 0 valid, 1 invalid (every problem listed).

    Without --env, each environment declared under `environments:` is checked too.
    """
    topologies = {env: load_topology(paths, env)} if env else load_every_environment(paths)
    for name, topology in topologies.items():
        streams, consumers = len(topology.streams), topology.consumer_count()
        where = f" in environment {name}" if name else ""
        click.echo(f"{', '.join(paths)} is valid{where}: {_count(streams, 'stream')}, {_count(consumers, 'consumer')}")


@main.command()
@options.topology_file
@options.connection
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@options.prune
@options.adopt
@click.option("--out", type=click.Path(dir_okay=False), metavar="PLANFILE",
              help="Also save the plan, for `topology apply PLANFILE` to apply exactly these operations.")
@click.option("--allow-replace", is_flag=True,
              help="With --out: the saved plan may replace (delete then create) resources; data is lost.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 when there are no changes, 2 when there are, 1 on error.")
@options.no_color
def plan(paths, env, connect, fmt, prune, adopt, out, allow_replace, detailed_exitcode, no_color):
    """Show what apply would change, field by field.

    Exit 0 success, 1 error; with --detailed-exitcode: 0 no changes, 1 error, 2 changes present.
    A plan with errors is not saved; one that replaces resources is saved only with --allow-replace.
    """
    topology = load_topology(paths, env)
    flags = {"prune": prune, "adopt": adopt, "allow_replace": allow_replace}
    the_plan, saved = asyncio.run(_make_plan(topology, connect, flags, save=bool(out)))
    click.echo(render(the_plan, fmt, color=_color(no_color)), nl=False)
    if the_plan.errors:
        if out:
            click.echo(f"The plan has errors; it was not saved to {out}.", err=True)
        sys.exit(1)
    if saved:
        _check_replacements(the_plan, allow_replace, "pass --allow-replace to save a plan that does. The plan was not saved.")
        save_plan(out, saved)
        click.echo(f"Saved the plan to {out}: `topology apply {out}` applies exactly these operations.", err=True)
    if detailed_exitcode and the_plan.has_changes:
        sys.exit(2)


async def _make_plan(topology: Topology, connect: ConnectOptions, flags: dict, *, save: bool) -> tuple[Plan, SavedPlan | None]:
    async with JetStreamClient(connect) as client:
        live = await client.read_live()
        the_plan = make_plan(topology, live, prune=flags["prune"], adopt=flags["adopt"])
        if not save:
            return the_plan, None
        saved = SavedPlan(
            the_plan, flags, topology_hash(topology), await read_target(client), live_snapshot(live),
            audit_subject=(topology.audit or {}).get("subject"), git_commit=git_commit(topology.sources),
        )
        return the_plan, saved


class LockWait(click.ParamType):
    """How long to wait for another apply's lock: a duration with a unit (units.parse_duration), or 0."""

    name = "DURATION"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        try:
            nanoseconds = parse_duration(value)
        except UnitError as exc:
            self.fail(str(exc), param, ctx)
        if nanoseconds < 0:
            self.fail(f"{value!r}: give a duration, e.g. 30s or 5m (0 does not wait)", param, ctx)
        return nanoseconds / 1e9


@main.command()
@click.argument("planfile", required=False, type=click.Path(dir_okay=False))
@options.topology_file
@options.connection
@click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation.")
@options.prune
@click.option("--allow-replace", is_flag=True, help="Allow replacing (delete then create) resources; data is lost.")
@options.adopt
@click.option("--lock-timeout", type=LockWait(), default="0", show_default=True,
              help="Wait this long for another apply on the account to finish (default: fail at once, naming it).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: one document with every operation's outcome on stdout at the end; all else on stderr.")
@options.no_color
def apply(planfile, paths, env, connect, auto_approve, prune, allow_replace, adopt, lock_timeout, fmt, no_color):
    """Make live JetStream match the topology, or apply a saved plan (PLANFILE). Exit 0 success, 1 error.

    A saved plan is applied exactly as saved, without asking (it was reviewed when it was made), and
    refused when live JetStream changed since; its options (--prune, --adopt, --allow-replace) are the
    ones it was made with.
    """
    run = _ApplyRun(connect, lock_timeout=lock_timeout, as_json=fmt == "json", color=_color(no_color))
    if planfile:
        _only_the_plan_file(prune=prune, allow_replace=allow_replace, adopt=adopt)
        run.saved, run.plan_file = load_plan(planfile), planfile
    else:
        run.topology = load_topology(paths, env)
        run.flags = {"prune": prune, "adopt": adopt, "allow_replace": allow_replace}
        if not auto_approve and not sys.stdin.isatty():
            raise click.ClickException("apply needs confirmation: run it in a terminal, or pass --auto-approve")
        run.confirm = not auto_approve
    try:
        the_plan, result, audit = asyncio.run(_apply(run))
    except NothingApplied as exc:
        if run.as_json:
            click.echo(_apply_json(exc.plan, ApplyResult(), None, str(exc)), nl=False)
        raise
    if run.as_json:
        error = f"{result.failed.operation.ref}: {result.failed.error}" if result and result.failed else None
        click.echo(_apply_json(the_plan, result or ApplyResult(), audit, error), nl=False)
    if result is not None and result.failed:
        sys.exit(1)


def _only_the_plan_file(**flags) -> None:
    """A saved plan carries its options and its operations: planning options would be silently ignored."""
    ctx = click.get_current_context()
    given = [f"--{name.replace('_', '-')}" for name, value in flags.items() if value]
    given += [flag for name, flag in (("paths", "-f"), ("env", "--env"))
              if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
    if given:
        raise TopologyError(
            f"{', '.join(given)} cannot be used with a saved plan: it applies what was planned, with the options it "
            "was made with; make a new plan with `topology plan --out PLANFILE` to change them"
        )


class NothingApplied(TopologyError):
    """Apply stopped before its first operation; ``plan`` is what it would have applied."""

    def __init__(self, message: str, plan: Plan):
        self.plan = plan
        super().__init__(message)


@dataclass
class _ApplyRun:
    """One apply: where its operations come from (a topology planned now, or a saved plan) and how to report."""

    connect: ConnectOptions
    lock_timeout: float = 0.0
    as_json: bool = False
    color: bool = False
    topology: Topology | None = None
    flags: dict = field(default_factory=dict)
    confirm: bool = False
    saved: SavedPlan | None = None
    plan_file: str | None = None

    def echo(self, text: str, **kw) -> None:
        """Human output: stdout, or stderr when stdout carries the JSON document."""
        click.echo(text, err=self.as_json, **kw)

    async def plan_to_apply(self, client: JetStreamClient) -> Plan:
        """The plan to apply: made from the topology now, or the saved one if live JetStream still matches it."""
        live = await client.read_live()
        if self.saved is None:
            return make_plan(self.topology, live, prune=self.flags["prune"], adopt=self.flags["adopt"])
        check_target(self.saved, await read_target(client), self.plan_file)
        changes = stale_changes(self.saved, live_snapshot(live), client.server_version)
        if changes:
            listed = "\n".join(f"  {change}" for change in changes)
            raise PlanFileError(
                f"{self.plan_file} is stale; live JetStream changed since the plan was made:\n{listed}\n"
                "Nothing was applied; make a new plan."
            )
        return self.saved.plan

    def capturing_lock(self) -> list[str]:
        """Streams this apply would create or keep on the lock's subject: then it cannot be locked."""
        if self.saved is not None:
            configs = {op.ref.stream_name: getattr(op, "config", None) or getattr(op, "after", None) or {}
                       for op in self.saved.plan.operations if op.ref.kind != "consumer"}
        else:
            configs = {name: spec.config for name, spec in self.topology.streams.items()}
        return capturing_streams({name: config.get("subjects") for name, config in configs.items()})

    def audit_source(self) -> tuple[str | None, str, str | None]:
        """(audit subject, topology hash, git commit): as recorded in the saved plan, else read now."""
        if self.saved is not None:
            return self.saved.audit_subject, self.saved.topology_hash, self.saved.git_commit
        subject = (self.topology.audit or {}).get("subject")
        return subject, topology_hash(self.topology), git_commit(self.topology.sources)

    async def audit(self, client: JetStreamClient, the_plan: Plan, result: ApplyResult, interrupted=False) -> dict | None:
        """Publish the audit event, if topology.yaml asks for one; a failure to publish is only a warning."""
        subject, file_hash, commit = self.audit_source()
        if not subject:
            return None
        event = audit_event(the_plan, result, self.connect, topology_hash=file_hash, commit=commit,
                            plan_file=self.plan_file, interrupted=interrupted)
        warning = await publish_audit(client, subject, event)
        if warning:
            click.echo(f"Warning: {warning}", err=True)
        return {"subject": subject, "id": event["id"], "type": event["type"], "warning": warning}


async def _apply(run: _ApplyRun) -> tuple[Plan, ApplyResult | None, dict | None]:
    async with JetStreamClient(run.connect) as client:
        def waiting(holder: dict) -> None:
            click.echo(f"Waiting up to {run.lock_timeout:g}s for the apply lock: held by {describe_holder(holder)}", err=True)

        # The lock is taken before live state is read, so no other apply changes it under this plan.
        lock = ApplyLock(client, run.connect, wait=run.lock_timeout, on_wait=waiting, capturing=run.capturing_lock())
        async with lock:
            if lock.unavailable:
                click.echo(f"Warning: {lock.unavailable}", err=True)
            the_plan = await run.plan_to_apply(client)
            run.echo(render(the_plan, "text", color=run.color), nl=False)
            if the_plan.errors:
                raise NothingApplied("the plan has errors (above); nothing was applied", the_plan)
            if not the_plan.has_changes:
                return the_plan, None, None
            hint = ("it was saved without --allow-replace. Nothing was applied." if run.saved else
                    "pass --allow-replace if that is what you want. Nothing was applied.")
            allowed = (run.saved.options if run.saved else run.flags).get("allow_replace", False)
            _check_replacements(the_plan, allowed, hint)
            if run.confirm and not await asyncio.to_thread(_confirm, run.as_json):
                raise NothingApplied("apply cancelled; nothing was applied", the_plan)
            outcomes: list[Outcome] = []

            def done(outcome: Outcome) -> None:
                outcomes.append(outcome)
                _report_progress(outcome, run.as_json)

            try:
                result = await apply_plan(client, the_plan, on_done=done)
            except (asyncio.CancelledError, KeyboardInterrupt):
                # Ctrl-C: what was done so far is on the server; the audit trail says so.
                await run.audit(client, the_plan, ApplyResult(outcomes), interrupted=True)
                raise
            audit = await run.audit(client, the_plan, result)
        if lock.warning:
            click.echo(f"Warning: {lock.warning}", err=True)
    _report_result(result, run.as_json)
    return the_plan, result, audit


def _check_replacements(the_plan: Plan, allowed: bool, hint: str) -> None:
    """Replacing destroys data: only when asked for, when applying or when saving a plan."""
    replaced = [str(op.ref) for op in the_plan.operations if op.action == "replace"]
    if replaced and not allowed:
        raise NothingApplied(f"the plan replaces {', '.join(replaced)}, destroying their data; {hint}", the_plan)


def _apply_json(the_plan: Plan, result: ApplyResult, audit: dict | None, error: str | None) -> str:
    """The machine-readable apply: every operation with its outcome, a summary, the plan's findings."""
    rows = outcome_rows(the_plan, result)
    done = [row for row in rows if row["outcome"] == "done"]
    summary = {PAST_TENSE[a]: sum(row["action"] == a for row in done) for a in PAST_TENSE}
    summary.update(
        failed=sum(row["outcome"] == "failed" for row in rows),
        not_attempted=sum(row["outcome"] == "not attempted" for row in rows),
    )
    document = {
        "format_version": APPLY_JSON_VERSION,
        "summary": summary,
        "error": error,
        "operations": rows,
        "findings": [finding_to_dict(f) for f in the_plan.findings],
        "audit": audit,
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _confirm(to_stderr: bool = False) -> bool:
    click.echo("\nDo you want to perform these actions?\n  Only 'yes' will be accepted to approve.\n", err=to_stderr)
    return click.prompt("  Enter a value", default="", show_default=False, err=to_stderr) == "yes"


def _report_progress(outcome: Outcome, to_stderr: bool = False) -> None:
    op = outcome.operation
    if outcome.status == "done":
        click.echo(f"{op.ref}: {PAST_TENSE[op.action]}", err=to_stderr)
    else:
        click.echo(f"{op.ref}: {op.action} FAILED: {outcome.error}", err=True)


def _report_result(result: ApplyResult, to_stderr: bool = False) -> None:
    done = [o for o in result.outcomes if o.status == "done"]
    if not result.failed:
        counts = {a: sum(o.operation.action == a for o in done) for a in PAST_TENSE}
        summary = ", ".join(f"{n} {PAST_TENSE[a]}" for a, n in counts.items())
        click.echo(f"\nApply complete: {summary}.", err=to_stderr)
        return
    skipped = [o for o in result.outcomes if o.status == "not attempted"]
    click.echo(f"\nApply failed at {result.failed.operation.ref}: {result.failed.error}", err=True)
    click.echo(f"Done before the failure: {', '.join(str(o.operation.ref) for o in done) or 'nothing'}", err=True)
    click.echo(f"Not attempted: {', '.join(str(o.operation.ref) for o in skipped) or 'nothing'}", err=True)
    click.echo("Fix the cause and run apply again: it continues from where the server is now.", err=True)


def _color(no_color: bool) -> bool:
    return not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


@main.command("export")
@options.connection
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the topology to FILE (default: stdout).")
@click.option("--stream", "patterns", multiple=True, metavar="NAME",
              help="Only streams (or buckets) with this name; shell wildcards (*, ?, [..]); repeatable.")
@click.option("--owner", help="The topology's owner (default: the one owner the resources carry, else medisync).")
def export_(connect, output, patterns, owner):
    """Write a topology.yaml from the live server: minimal, in human units. Exit 0 success, 1 error."""
    result = asyncio.run(export_from_server(connect, patterns, owner))
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    text = to_yaml(result.document)
    if not output:
        click.echo(text, nl=False)
        return
    try:
        with open(output, "w", encoding="utf-8") as file:
            file.write(text)
    except OSError as exc:
        raise TopologyError(f"cannot write {output}: {exc.strerror}") from None
    click.echo(f"Wrote {output}: {result.summary()}", err=True)


@main.group()
def dev():
    """A local nats-server with this repository's nats.conf (store under .dev/)."""


@dev.command("up")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=".", show_default=True,
              help="The folder with nats.conf; the server's store, log and pid go under its .dev/.")
def dev_up(root):
    """Start the local server in the background and wait until it answers."""
    server = devserver.up(root)
    state = "started" if server.started else "already running"
    click.echo(f"nats-server {state} at {server.url} (pid {server.pid}, log {server.log})")
    click.echo(f"Connect with --server {server.url} --user provisioner (its local-only password is in nats.conf)")


@dev.command("down")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=".", show_default=True)
def dev_down(root):
    """Stop the local server started by `dev up` (by its recorded pid, nothing else)."""
    server = devserver.down(root)
    click.echo(f"nats-server stopped (pid {server.pid})" if server else "nats-server is not running")


@dev.command("status")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=".", show_default=True)
def dev_status(root):
    """Say whether the local server runs. Exit 0 running, 1 not running."""
    server = devserver.status(root)
    if server is None:
        click.echo("nats-server is not running")
        sys.exit(1)
    click.echo(f"nats-server is running at {server.url} (pid {server.pid}, log {server.log})")
