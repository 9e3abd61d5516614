"""The `topology` command line: a thin layer over the library.

Exit codes: validate 0 valid, 1 invalid. plan 0 success, 1 error; with --detailed-exitcode
0 no changes, 1 error, 2 changes present. apply 0 success, 1 error.
"""

from __future__ import annotations

import gc
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Coroutine, TypeVar

import click

from . import __version__, options
from .errors import TopologyError
from .loader import InvalidTopology
from .units import plural
from .validate import load_every_environment, load_topology, schema_file

if TYPE_CHECKING:
    from .apply import ApplyResult
    from .progress import Progress
    from .session import ApplyCallbacks

# The commands that connect (plan, apply) and show plans import what they need themselves: `validate`, `schema`
# and `--help` start without nats-py and asyncio, in about half the time (validate of topology.yaml 0.22 -> 0.13 s).

T = TypeVar("T")


class TopologyGroup(click.Group):
    """Turns the library's errors into a clean "Error: ..." and exit 1, never a traceback.

    Usage errors exit 1 too: click's 2 would read as "changes present" to `plan --detailed-exitcode`.
    """

    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            exc.exit_code = 1
            raise

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            exc.exit_code = 1
            raise
        except InvalidTopology as exc:
            lines = "\n".join(str(p) for p in exc.problems)
            raise click.ClickException(f"the topology is invalid ({plural(len(exc.problems), 'problem')}):\n{lines}") from None
        except TopologyError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=TopologyGroup)
@click.version_option(__version__, prog_name="topology")
def main():
    """Topology-as-code for NATS JetStream: validate, plan and apply topology.yaml."""
    # A command builds a few hundred thousand small dicts and lists without cycles (the file's data, live
    # state, a plan), and the collector's default pace traversed them again and again: with this, a plan of
    # 1,000 streams takes a tenth less time and no more memory.
    gc.set_threshold(100_000, 50, 1000)


@main.command()
@options.topology_file
def validate(paths, env):
    """Check a topology offline. Exit 0 valid, 1 invalid (every problem listed).

    Without --env, each environment declared under `environments:` is checked too.
    """
    topologies = {env: load_topology(paths, env)} if env else load_every_environment(paths)
    for name, topology in topologies.items():
        counts = [plural(len(topology.streams), "stream"), plural(topology.consumer_count(), "consumer")]
        for kind, noun in (("key_value", "KV bucket"), ("object_store", "object store")):
            buckets = sum(spec.kind == kind for spec in topology.buckets.values())
            counts += [plural(buckets, noun)] if buckets else []
        counts += [plural(len(topology.services), "service")] if topology.services else []
        where = f" in environment {name}" if name else ""
        for note in topology.notes:
            click.echo(f"Note{where}: {note}")
        click.echo(f"{', '.join(paths)} is valid{where}: {', '.join(counts)}")


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
@click.option("--allow-data-loss", is_flag=True,
              help="With --out: the saved plan may update streams in ways that destroy messages (a limit lowered).")
@options.migrate
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 when there are no changes, 2 when there are, 1 on error.")
@options.target
@options.no_color
def plan(paths, env, connect, fmt, prune, adopt, out, allow_replace, allow_data_loss, migrate, detailed_exitcode,
         targets, no_color):
    """Show what apply would change, field by field.

    Exit 0 success, 1 error; with --detailed-exitcode: 0 no changes, 1 error, 2 changes present.
    A plan with errors is not saved; one that replaces resources is saved only with --allow-replace.
    """
    from . import dataloss
    from .planfile import plan_key, save_plan
    from .render import render
    from .session import check_data_loss, check_replacements, plan_live

    plan_options = {"prune": prune, "adopt": adopt, "allow_replace": allow_replace, "allow_data_loss": allow_data_loss,
                    "migrate": migrate, "targets": list(targets)}
    the_plan, saved = _run(plan_live(lambda: load_topology(paths, env), connect, plan_options, save=bool(out)))
    # Where a markdown plan too long to show whole points: the saved plan, when it will be saved.
    saveable = (saved and not the_plan.errors and (allow_replace or not the_plan.counts()["replace"])
                and (allow_data_loss or not dataloss.destroying_updates(the_plan)))
    saved_as = out if saveable else None
    click.echo(render(the_plan, fmt, color=_color(no_color), saved_as=saved_as), nl=False)
    if the_plan.errors:
        if out:
            click.echo(f"The plan has errors; it was not saved to {out}.", err=True)
        sys.exit(1)
    if saved:
        check_replacements(the_plan, allow_replace, "pass --allow-replace to save a plan that does. The plan was not saved.")
        check_data_loss(the_plan, allow_data_loss, "pass --allow-data-loss to save a plan that does. The plan was not saved.")
        save_plan(out, saved, plan_key())
        click.echo(f"Saved the plan to {out}: `topology apply {out}` applies exactly these operations.", err=True)
    if detailed_exitcode and the_plan.has_changes:
        sys.exit(2)


@main.command()
@click.argument("planfile", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@options.no_color
def show(planfile, fmt, no_color):
    """Show a saved plan (from `plan --out`) offline, exactly as `topology plan` showed it. Exit 0, or 1 on error."""
    from .planfile import load_plan, plan_key
    from .render import render

    saved = load_plan(planfile, plan_key())
    click.echo(render(saved.plan, fmt, color=_color(no_color), saved_as=planfile), nl=False)


@main.command()
@click.argument("planfile", required=False, type=click.Path(dir_okay=False))
@options.topology_file
@options.connection
@click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation.")
@options.prune
@click.option("--allow-replace", is_flag=True, help="Allow replacing (delete then create) resources; data is lost.")
@click.option("--allow-data-loss", is_flag=True,
              help="Allow updates that destroy messages at once (max_msgs, max_bytes, max_age, max_msgs_per_subject lowered).")
@options.migrate
@options.adopt
@options.target
@click.option("--lock-timeout", type=options.LockWait(), default="0", show_default=True,
              help="Wait this long for another apply on the account to finish (default: fail at once, naming it).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: one document with every operation's outcome on stdout at the end; all else on stderr.")
@options.no_color
def apply(planfile, paths, env, connect, auto_approve, prune, allow_replace, allow_data_loss, migrate, adopt,
          targets, lock_timeout, fmt, no_color):
    """Make live JetStream match the topology, or apply a saved plan (PLANFILE). Exit 0 success, 1 error.

    A saved plan is applied exactly as saved, without asking (it was reviewed when it was made), and
    refused when live JetStream changed since; its options (--prune, --adopt, --allow-replace, --allow-data-loss) are the
    ones it was made with.
    """
    from .apply import ApplyResult, apply_document
    from .planfile import load_plan, plan_key
    from .session import ApplyInterrupted, NothingApplied, SavedPlanRun, TopologyRun, run_apply

    as_json = fmt == "json"
    progress = _progress(as_json)
    callbacks = _apply_callbacks(as_json, _color(no_color), progress)
    if planfile:
        _only_the_plan_file(prune=prune, allow_replace=allow_replace, allow_data_loss=allow_data_loss, adopt=adopt,
                            migrate=migrate, target=targets)
        run = SavedPlanRun(connect, lock_timeout, saved=load_plan(planfile, plan_key()), plan_file=planfile)
    else:
        options = {"prune": prune, "adopt": adopt, "allow_replace": allow_replace, "allow_data_loss": allow_data_loss,
                   "migrate": migrate, "targets": list(targets)}
        run = TopologyRun(connect, lock_timeout, topology=load_topology(paths, env), options=options)
        if not auto_approve:
            # Asked only when there is something to apply: with no changes, apply succeeds without a terminal.
            callbacks.confirm = (lambda: _confirm(as_json)) if sys.stdin.isatty() else _no_terminal
    try:
        try:
            the_plan, result, audit = _run(run_apply(run, callbacks))
        finally:
            progress.close()  # before anything else is said
    except NothingApplied as exc:
        if as_json:
            _echo_json(apply_document(exc.plan, ApplyResult(), None, str(exc)))
        raise
    except ApplyInterrupted as exc:
        _report_result(exc.result, as_json)
        if as_json:
            _echo_json(apply_document(exc.plan, exc.result, exc.audit, str(exc)))
        sys.exit(1)
    if result is not None:
        _report_result(result, as_json)
    if as_json:
        _echo_json(apply_document(the_plan, result or ApplyResult(), audit, result and result.failure()))
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


def _progress(as_json: bool) -> Progress:
    """Progress goes where the plan went: stdout, or stderr when stdout carries the JSON document."""
    from .progress import Progress

    stream = sys.stderr if as_json else sys.stdout
    live = stream.isatty() and os.environ.get("TERM") != "dumb"
    return Progress(lambda text, newline: click.echo(text, nl=newline, err=as_json),
                    lambda text: click.echo(text, err=True), live)


def _apply_callbacks(as_json: bool, color: bool, progress: Progress) -> ApplyCallbacks:
    """Human output goes to stdout, or to stderr when stdout carries the JSON document; warnings always to stderr."""
    from .lock import describe_holder
    from .render import render
    from .session import ApplyCallbacks

    def waiting(holder: dict, seconds: float) -> None:
        click.echo(f"Waiting up to {seconds:g}s for the apply lock: held by {describe_holder(holder)}", err=True)

    return ApplyCallbacks(
        show_plan=lambda the_plan: click.echo(render(the_plan, "text", color=color), nl=False, err=as_json),
        starting=progress.start,
        done=progress.outcome,
        warn=lambda text: click.echo(f"Warning: {text}", err=True),
        waiting_for_lock=waiting,
    )


def _echo_json(document: dict) -> None:
    click.echo(json.dumps(document, indent=2, sort_keys=True) + "\n", nl=False)


def _no_terminal() -> bool:
    raise TopologyError("apply needs confirmation: run it in a terminal, or pass --auto-approve; nothing was applied")


def _confirm(to_stderr: bool = False) -> bool:
    click.echo("\nDo you want to perform these actions?\n  Only 'yes' will be accepted to approve.\n", err=to_stderr)
    return click.prompt("  Enter a value", default="", show_default=False, err=to_stderr) == "yes"


def _report_result(result: ApplyResult, to_stderr: bool = False) -> None:
    """The end of an apply: complete, or, after a failure or Ctrl-C, what was done, what stopped and what was not."""
    if not result.failed and not result.interrupted:
        summary = ", ".join(f"{n} {done}" for done, n in result.done_counts().items())
        click.echo(f"\nApply complete: {summary}.", err=to_stderr)
        return

    def listed(status: str) -> str:
        return ", ".join(str(o.operation.ref) for o in result.with_status(status)) or "nothing"

    if result.failed:
        click.echo(f"\nApply failed at {result.failure()}", err=True)
        others = [o for o in result.with_status("failed") if o is not result.failed]
        if others:  # sent beside the first failure, before it was known
            click.echo(f"Also failed: {', '.join(f'{o.operation.ref}: {o.error}' for o in others)}", err=True)
        click.echo(f"Done before the failure: {listed('done')}", err=True)
    else:
        click.echo("\nApply interrupted (Ctrl-C).", err=True)
        click.echo(f"Done before the interruption: {listed('done')}", err=True)
        click.echo(f"Interrupted (it may or may not have taken effect): {listed('interrupted')}", err=True)
    click.echo(f"Not attempted: {listed('not attempted')}", err=True)
    cause = "Fix the cause and run" if result.failed else "Run"
    click.echo(f"{cause} apply again: it continues from where the server is now.", err=True)


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(coroutine), its result handed out beside the task: when asyncio.run puts Python's Ctrl-C
    handler back, signal.signal words the handler it replaces, a partial holding the main task, and with it
    the repr of the task's result (a whole plan, or live state: tens of MB and most of a second at 10,000 streams)."""
    import asyncio

    results: list[T] = []

    async def main() -> None:
        results.append(await coroutine)

    asyncio.run(main())
    return results[0]


def _color(no_color: bool) -> bool:
    """Colour on a terminal, unless --no-color, NO_COLOR, or TERM=dumb (a terminal that cannot show it)."""
    return not no_color and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb" and sys.stdout.isatty()


@main.command()
@options.topology_file
@click.option("--format", "fmt", type=click.Choice(["json", "nats-conf"]), default="json", show_default=True)
def permissions(paths, env, fmt):
    """Each service's least-privilege NATS permissions, from `services:` (offline).

    json: {"services": {NAME: {"pub": {"allow", "deny"}, "sub": {...}}}}, as in user JWTs.
    nats-conf: one variable per service (ALERT_WORKER = {...}) to include in nats.conf.
    """
    from .permissions import render_json, render_nats_conf, topology_permissions  # only this command needs them

    rights = topology_permissions(load_topology(paths, env))
    click.echo(render_json(rights) if fmt == "json" else render_nats_conf(rights, list(paths)), nl=False)


@main.command()
@click.argument("subject")
@options.topology_file
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def explain(subject, paths, env, fmt):
    """Where SUBJECT goes, offline: its stream, the consumers receiving it, who publishes and consumes it."""
    from .explain import explain as explain_subject, render_explain  # only this command needs them

    click.echo(render_explain(explain_subject(load_topology(paths, env), subject), fmt), nl=False)


@main.command()
@options.topology_file
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True)
def graph(paths, env, fmt):
    """The topology as a picture, offline: Mermaid (renders in GitHub markdown) or DOT (Graphviz)."""
    from .graph import render_dot, render_mermaid, topology_graph  # only this command needs them

    picture = topology_graph(load_topology(paths, env))
    click.echo(render_mermaid(picture) if fmt == "mermaid" else render_dot(picture), nl=False)


@main.command("export")
@options.connection
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the topology to FILE (default: stdout).")
@click.option("--stream", "patterns", multiple=True, metavar="NAME",
              help="Only streams (or buckets) with this name; shell wildcards (*, ?, [..]); repeatable.")
@click.option("--owner", help="The topology's owner (default: the one owner the resources carry, else medisync).")
@click.option("--merge", "merge_into", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the live values into this existing topology file (in place, or to --output), keeping its "
                   "comments and formatting: what it declares, and the resources of its owner it does not.")
def export_(connect, output, patterns, owner, merge_into):
    """Write a topology.yaml from the live server: minimal, in human units. Exit 0 success, 1 error."""
    from .export import export_from_server, schema_reference, to_yaml  # imported by the commands that need them

    if merge_into:
        if patterns or owner:
            raise TopologyError("--merge takes the resources and the owner from the file: no --stream or --owner")
        _export_merge(connect, merge_into, output)
        return
    result = _run(export_from_server(connect, patterns, owner))
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    text = to_yaml(result.document, schema_reference(Path(output).parent if output else Path.cwd()))
    if not output:
        click.echo(text, nl=False)
        return
    _write(output, text)
    click.echo(f"Wrote {output}: {result.summary()}", err=True)


def _export_merge(connect, path: str, output: str | None) -> None:
    from .export import read_live
    from .merge import merge_file

    merged = merge_file(path, lambda: _run(read_live(connect)))
    for warning in merged.warnings:
        click.echo(f"Warning: {warning}", err=True)
    if not merged.written and not output:
        click.echo(f"{path} matches the server; nothing written", err=True)
        return
    _write(output or path, merged.text)
    click.echo(f"Wrote {output or path}: {merged.summary()}", err=True)
    for line in merged.written:
        click.echo(f"  {line}", err=True)


def _write(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as file:
            file.write(text)
    except OSError as exc:
        raise TopologyError(f"cannot write {path}: {exc.strerror}") from None


@main.command()
def schema():
    """Print the JSON Schema of topology.yaml (its $id is stable), for editors and checkers outside this repository."""
    click.echo(schema_file().read_text(), nl=False)


@main.group()
def dev():
    """A local nats-server with this repository's nats.conf (store under .dev/)."""


_root = click.option(
    "--root", type=click.Path(file_okay=False, path_type=Path),
    help="The folder with nats.conf (default: the nearest one from here upwards); the server's store, log and "
         "pid go under its .dev/.",
)


def _dev_root(root: Path | None) -> Path:
    from . import devserver  # the dev commands import it, no other command

    return root if root is not None else devserver.find_root(Path.cwd())


@dev.command("up")
@_root
@click.option("--port", type=click.IntRange(1, 65535), help="Client port instead of nats.conf's (4222).")
@click.option("--monitor-port", type=click.IntRange(1, 65535),
              help="Monitoring port instead of nats.conf's (8222); with --port alone it is the port + 4000.")
def dev_up(root, port, monitor_port):
    """Start the local server in the background and wait until it answers."""
    from . import devserver

    server = devserver.up(_dev_root(root), port=port, monitor_port=monitor_port)
    state = "started" if server.started else "already running"
    click.echo(f"nats-server {state} at {server.url} (pid {server.pid}, log {server.log})")
    click.echo(f"Connect with --server {server.url} --user provisioner (its local-only password is in nats.conf)")


@dev.command("down")
@_root
def dev_down(root):
    """Stop the local server started by `dev up` (by its recorded pid, nothing else)."""
    from . import devserver

    server = devserver.down(_dev_root(root))
    click.echo(f"nats-server stopped (pid {server.pid})" if server else "nats-server is not running")


@dev.command("status")
@_root
def dev_status(root):
    """Say whether the local server runs. Exit 0 running, 1 not running."""
    from . import devserver

    server = devserver.status(_dev_root(root))
    if server is None:
        click.echo("nats-server is not running")
        sys.exit(1)
    click.echo(f"nats-server is running at {server.url} (pid {server.pid}, log {server.log})")


def run() -> None:
    """The `topology` command: main(), then the process ends at once with main's exit status.

    The interpreter's own shutdown (every module torn down, a last collection over every object) took
    about 0.1 s after a plan of 1,000 streams had printed, as long as the plan's diff. Nothing here needs
    it: no atexit handler, no thread left, and what was written is flushed first. An error that is not
    an exit still ends the usual way, with its traceback."""
    try:
        main()
        status: Any = 0
    except SystemExit as exc:
        status = exc.code
    if status is not None and not isinstance(status, int):
        print(status, file=sys.stderr)  # sys.exit("text") prints the text and exits 1
        status = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # the reader went away (`topology plan | head`): what it did not read is lost anyway
        status = status or 1
    os._exit(status or 0)
