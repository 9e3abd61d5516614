"""The `topology` command line: a thin layer over the library.

Exit codes: validate 0 valid, 1 invalid. plan 0 success, 1 error; with --detailed-exitcode
0 no changes, 1 error, 2 changes present. apply 0 success, 1 error.
"""

from __future__ import annotations

import asyncio
import os
import sys

import click

from . import __version__, options
from .apply import ApplyResult, Outcome, apply_plan
from .client import JetStreamClient
from .connection import ConnectOptions
from .errors import TopologyError
from .export import export_from_server, to_yaml
from .loader import InvalidTopology
from .model import Topology
from .ops import Plan
from .plan import make_plan
from .render import render
from .validate import load_every_environment, load_topology

PAST_TENSE = {"create": "created", "update": "updated", "replace": "replaced", "delete": "deleted"}


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
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 when there are no changes, 2 when there are, 1 on error.")
@options.no_color
def plan(paths, env, connect, fmt, prune, adopt, detailed_exitcode, no_color):
    """Show what apply would change, field by field.

    Exit 0 success, 1 error; with --detailed-exitcode: 0 no changes, 1 error, 2 changes present.
    """
    topology = load_topology(paths, env)
    the_plan = asyncio.run(_make_plan(topology, connect, prune=prune, adopt=adopt))
    click.echo(render(the_plan, fmt, color=_color(no_color)), nl=False)
    if the_plan.errors:
        sys.exit(1)
    if detailed_exitcode and the_plan.has_changes:
        sys.exit(2)


async def _make_plan(topology: Topology, connect: ConnectOptions, **flags) -> Plan:
    async with JetStreamClient(connect) as client:
        return make_plan(topology, await client.read_live(), **flags)


@main.command()
@options.topology_file
@options.connection
@click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation.")
@options.prune
@click.option("--allow-replace", is_flag=True, help="Allow replacing (delete then create) resources; data is lost.")
@options.adopt
@options.no_color
def apply(paths, env, connect, auto_approve, prune, allow_replace, adopt, no_color):
    """Make live JetStream match the topology. Exit 0 success, 1 error."""
    topology = load_topology(paths, env)
    if not auto_approve and not sys.stdin.isatty():
        raise click.ClickException("apply needs confirmation: run it in a terminal, or pass --auto-approve")
    result = asyncio.run(_apply(topology, connect, auto_approve, prune, allow_replace, adopt, _color(no_color)))
    if result is not None and result.failed:
        sys.exit(1)


async def _apply(topology, connect, auto_approve, prune, allow_replace, adopt, color) -> ApplyResult | None:
    async with JetStreamClient(connect) as client:
        the_plan = make_plan(topology, await client.read_live(), prune=prune, adopt=adopt)
        click.echo(render(the_plan, "text", color=color), nl=False)
        if the_plan.errors:
            raise TopologyError("the plan has errors (above); nothing was applied")
        if not the_plan.has_changes:
            return None
        replaced = [str(op.ref) for op in the_plan.operations if op.action == "replace"]
        if replaced and not allow_replace:
            raise TopologyError(
                f"the plan replaces {', '.join(replaced)}, destroying their data; "
                "pass --allow-replace if that is what you want. Nothing was applied."
            )
        if not auto_approve and not await asyncio.to_thread(_confirm):
            raise TopologyError("apply cancelled; nothing was applied")
        result = await apply_plan(client, the_plan, on_done=_report_progress)
    _report_result(result)
    return result


def _confirm() -> bool:
    click.echo("\nDo you want to perform these actions?\n  Only 'yes' will be accepted to approve.\n")
    return click.prompt("  Enter a value", default="", show_default=False) == "yes"


def _report_progress(outcome: Outcome) -> None:
    op = outcome.operation
    if outcome.status == "done":
        click.echo(f"{op.ref}: {PAST_TENSE[op.action]}")
    else:
        click.echo(f"{op.ref}: {op.action} FAILED: {outcome.error}", err=True)


def _report_result(result: ApplyResult) -> None:
    done = [o for o in result.outcomes if o.status == "done"]
    if not result.failed:
        counts = {a: sum(o.operation.action == a for o in done) for a in PAST_TENSE}
        summary = ", ".join(f"{n} {PAST_TENSE[a]}" for a, n in counts.items())
        click.echo(f"\nApply complete: {summary}.")
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
