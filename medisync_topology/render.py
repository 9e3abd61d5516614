"""Show a plan: text for a terminal, JSON for pipelines and bots, markdown for a pull-request comment.

Pure and deterministic: the same plan renders byte for byte the same, so a plan can be diffed,
cached and compared. Operations are shown in the plan's (execution) order, findings in the order
given. Values are the JetStream API's JSON; text and markdown show durations and sizes in human
units, JSON keeps API units (nanoseconds, bytes) for machines.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from typing import Any, Callable

import click

from . import buckets, fields, migrate
from .errors import TopologyError
from .ops import (
    Action, ConsumerAtRisk, CreateResource, DeleteResource, FieldChange, Finding, Migration, Operation, Plan, Reason, Ref,
    ReplaceResource, Severity, UpdateResource, changes_of, data_at_risk, finding_to_dict, operation_to_dict,
)
from .units import by_field, format_duration, format_size, plural

JSON_FORMAT_VERSION = 1

SYMBOLS = {Action.CREATE: "+", Action.UPDATE: "~", Action.REPLACE: "-/+", Action.DELETE: "-"}
COLORS = {Action.CREATE: "green", Action.UPDATE: "yellow", Action.REPLACE: "magenta", Action.DELETE: "red"}
ABSENT = "(absent)"


# -- shared -------------------------------------------------------------


class _Shown(str):
    """A value already in human units: shown as it is, not as a JSON string."""


def _shown(name: str, value: Any, path: tuple) -> Any:
    if not isinstance(value, int) or isinstance(value, bool):
        return value
    if value in fields.UNLIMITED_VALUES.get(name, ()):
        return _Shown("unlimited")
    unit = fields.UNIT_BY_NAME.get(name)
    if unit == "duration":
        return _Shown(format_duration(value))
    if unit == "size":
        return _Shown(format_size(value))
    return value


def display_value(name: str, value: Any) -> str:
    """One line for an API value: compact JSON, with durations and sizes in human units and values meaning
    no limit as ``unlimited``. ``name`` is the field the value sits under (units.by_field).
    """
    return _compact(by_field(value, name, _shown))


def _compact(value: Any) -> str:
    if isinstance(value, _Shown):
        return str(value)
    if isinstance(value, dict):
        items = (f"{json.dumps(k, ensure_ascii=False)}: {_compact(v)}" for k, v in sorted(value.items()))
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_compact(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _named_changes(op: Operation) -> list[tuple[str, FieldChange]]:
    """Each change under the name topology.yaml gives its field (a bucket's history, not its
    stream's max_msgs_per_subject), sorted by that name."""
    names = buckets.SETTING_NAMES.get(op.ref.kind, {})
    return sorted(((names.get(c.path, c.path), c) for c in changes_of(op)), key=lambda named: named[0])


def _drifted(plan: Plan) -> list[tuple[Operation, list[tuple[str, FieldChange]]]]:
    """Each operation with the fields of it that changed outside the topology (drift.py), in plan order."""
    found = [(op, [(name, c) for name, c in _named_changes(op) if c.drift]) for op in plan.operations]
    return [(op, named) for op, named in found if named]


DRIFT_MARK = "changed outside the topology"


def _drift_note(arrow: str) -> str:
    # The section's "old -> new" is applied -> live: the value applied is the one the file still asks for.
    return f"since the last apply (applied {arrow} live; the plan sets them back to the file's values)"


def _change_value(path: str, value: Any) -> str:
    return ABSENT if value is None else display_value(path.rsplit(".", 1)[-1], value)


def _adopts(op: Operation) -> bool:
    return isinstance(op, UpdateResource) and op.adopt


def _renames_stream(op: Operation) -> bool:
    """A stream's create that takes a live stream's messages and consumers (renamed_from)."""
    return isinstance(op, CreateResource) and op.migration is not None


def _verb(op: Operation) -> str:
    return "adopt" if _adopts(op) else "rename" if _renames_stream(op) else op.action


def _named(op: Operation) -> str:
    """The resource an operation is about; a rename's with the name it had: "stream OLD -> NEW"."""
    return f"{op.ref.kind} {op.renamed_from} -> {op.ref.name}" if _renames_stream(op) else str(op.ref)


def _counts_text(plan: Plan) -> str:
    counts = plan.counts()
    return ", ".join(f"{counts[a]} to {a}" for a in Action)


def _approximate_size(n: int) -> str:
    """Data at risk is read by a person deciding, not parsed back: "5.2 MiB", not units' exact "5452595"."""
    value, unit = float(n), "B"
    for bigger in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        if round(value, 1) < 1024:
            break
        value, unit = value / 1024, bigger
    if unit == "B":
        return f"{n:,} B"
    return f"{value:.1f}".removesuffix(".0") + f" {unit}"


def data_at_risk_text(risk: Risk) -> str:
    """"destroys 45 messages, about 1.6 KiB" ("about" before an estimate); for a consumer "loses 3 pending messages, ..."."""
    if isinstance(risk, ConsumerAtRisk):
        return (f"loses {plural(risk.pending, 'pending message')}, {risk.ack_pending:,} awaiting ack, its position "
                f"(delivered to stream sequence {risk.delivered_stream_seq:,}, acknowledged to "
                f"{risk.ack_floor_stream_seq:,})")
    about = {name: "about " if name in risk.estimate else "" for name in ("messages", "bytes")}
    parts = [about["messages"] + plural(risk.messages, "message"), about["bytes"] + _approximate_size(risk.bytes)]
    if risk.consumers:
        parts.append(plural(risk.consumers, "consumer"))
    return "destroys " + ", ".join(parts)


def _migration_summary(migration: Migration, renaming: bool = False) -> str:
    """"migrates 100 messages; 1 consumer keeps its position": what a migrating replacement (or a rename) keeps."""
    text = f"migrates {plural(migration.messages, 'message')}"
    if migration.resume:
        what = "rename" if renaming else "migration"
        text = f"resumes an interrupted {what} at step {migration.resume!r}; {text} held in {migration.temp}"
    if renaming:
        text = "renamed; " + text
    if migration.kept:
        verb = "keeps its" if len(migration.kept) == 1 else "keep their"
        text += f"; {plural(len(migration.kept), 'consumer')} {verb} position"
    return text


def _renamed_text(op: CreateResource) -> str:
    return f"renamed from {op.renamed_from}: starts after its acknowledged floor, then {op.renamed_from} is deleted"


def _migration_costs(op: Operation) -> list[str]:
    """What a migration costs, for the person deciding: storage, sequences, refused publishes, consumers."""
    m = op.migration
    name = op.ref.stream_name
    if _renames_stream(op):
        costs = [f"needs {_approximate_size(m.bytes)} more storage while {m.temp} and {name} both hold the messages"]
    else:
        costs = [f"needs {_approximate_size(m.bytes)} more storage while {m.temp} holds a copy of the messages"]
    if m.messages:
        costs.append(f"sequence numbers change: {m.first_seq:,}..{m.last_seq:,} become 1..{m.messages:,}; "
                     "message timestamps become the migration's time (max_age counts from then)")
    if _renames_stream(op):
        costs.append(f"publishes to {m.temp}'s subjects are refused once, for at most {migrate.SWAP_TIMEOUT:g}s "
                     f"(usually milliseconds), then {name} takes its own; publishers must retry")
    else:
        costs.append(f"publishes to {name}'s subjects are refused twice, each time for at most "
                     f"{migrate.SWAP_TIMEOUT:g}s (usually milliseconds); publishers must retry")
    fresh = sorted(set(m.consumers) - set(m.kept))
    if fresh:
        costs.append(f"consumers starting over as their deliver_policy says: {', '.join(fresh)}")
    if m.kept:
        costs.append(f"consumers resuming after their acknowledged floor: "
                     f"{', '.join(f'{n} (from {m.renamed[n]})' if n in m.renamed else n for n in m.kept)}")
    if _renames_stream(op):
        gone = f", with its consumers {', '.join(m.dropped)} ({name} does not declare them)" if m.dropped else ""
        costs.append(f"then {m.temp} is deleted{gone}")
    return costs


def _finding_text(finding: Finding) -> str:
    """The message, led by the resource it is about unless it already names it."""
    ref = str(finding.ref)
    return finding.message if finding.message.startswith(ref) else f"{ref}: {finding.message}"


def _header(plan: Plan, *, name: Callable[[str], str], file: Callable[[str], str]) -> str:
    """What the plan was made from: owner, files, environment and server; ``name`` and ``file`` quote them."""
    header = "Topology plan"
    if plan.owner:
        header += f" for owner {name(plan.owner)}"
    context = [file(source) for source in plan.sources]
    context += [f"environment {name(plan.environment)}"] if plan.environment else []
    if context:
        header += f" ({', '.join(context)})"
    if plan.server.get("version"):
        header += f" against nats-server {plan.server['version']}"
    return header


def _partial_text(plan: Plan) -> str:
    """terraform's -target warning, in our words."""
    return (f"This is a partial plan (--target {', --target '.join(plan.targets)}): only those resources and what they "
            "need were planned, so the server may still differ from the topology elsewhere; a plan without "
            "--target shows everything.")


def _matches_text(plan: Plan) -> str:
    return f"Live JetStream matches {', '.join(plan.sources) or 'the topology'}."


def _unmanaged(plan: Plan) -> list[Ref]:
    return [f.ref for f in plan.findings if f.severity is Severity.NOTE and f.reason is Reason.UNMANAGED]


def _other_notes(plan: Plan) -> list[Finding]:
    return [f for f in plan.findings if f.severity is Severity.NOTE and f.reason is not Reason.UNMANAGED]


# -- text ---------------------------------------------------------------


def render_text(plan: Plan, *, color: bool) -> str:
    """A terraform-style plan for a terminal; ANSI colour only when ``color``."""

    def style(text: str, **kw) -> str:
        return click.style(text, **kw) if color else text

    blocks = []
    if plan.operations or plan.errors:
        blocks.append(_header(plan, name=lambda text: f'"{text}"', file=str))
    if plan.targets:
        blocks.append(style("Warning:", fg="yellow", bold=True) + f" {_partial_text(plan)}")
    drifted = _drifted(plan)
    if drifted:
        blocks.append("\n".join(_text_drift(drifted, style)))
    for op in plan.operations:
        blocks.append("\n".join(_text_operation(op, style)))
    findings = _text_findings(plan, style)
    if findings:
        blocks.append("\n".join(findings))
    if plan.errors:
        count = plural(len(plan.errors), "error")
        blocks.append(style(f"Plan cannot be applied ({count}):", fg="red", bold=True) + f" {_counts_text(plan)}.")
    elif plan.operations:
        blocks.append(style("Plan:", bold=True) + f" {_counts_text(plan)}.")
    else:
        blocks.append(f"No changes. {_matches_text(plan)}")
    return "\n\n".join(blocks) + "\n"


def _text_operation(op: Operation, style: Callable[..., str]) -> list[str]:
    head = "  " + style(f"{SYMBOLS[op.action]} {_verb(op)}", fg=COLORS[op.action], bold=True) + f" {_named(op)}"
    if _adopts(op):
        head += " (take ownership)"
    risk = data_at_risk(op)
    if risk is not None:
        head += "   " + style(f"({data_at_risk_text(risk)})", fg="red")
    migration = getattr(op, "migration", None)
    if migration is not None:
        head += "   " + style(f"({_migration_summary(migration, _renames_stream(op))})", fg="green")
    elif getattr(op, "renamed_from", None):
        head += "   " + style(f"({_renamed_text(op)})", fg="green")
    match op:
        case CreateResource():
            rows = [(key, display_value(key, value), None) for key, value in sorted(op.settings.items())]
        case UpdateResource() | ReplaceResource():
            rows = [(name, f"{_change_value(c.path, c.old)} -> {_change_value(c.path, c.new)}", c)
                    for name, c in _named_changes(op)]
        case DeleteResource():
            rows = []
    lines = [head]
    for line, change in _text_rows(rows):
        if change is not None and change.forces_replacement:
            line += "   " + style("# forces replacement", fg="red")
        if change is not None and change.drift:
            line += "   " + style(f"# {DRIFT_MARK}", fg="yellow")
        lines.append(line)
    if migration is not None:
        lines += [f"      # {cost}" for cost in _migration_costs(op)]
    return lines


def _text_rows(rows: list[tuple]) -> list[tuple[str, Any]]:
    """(name, text, anything) rows as aligned lines under a resource, each with its third item."""
    width = max((len(name) for name, _, _ in rows), default=0) + 3  # name, colon, two spaces
    return [(f"      {name + ':':<{width}}{text}", extra) for name, text, extra in rows]


def _text_drift(drifted: list, style: Callable[..., str]) -> list[str]:
    """terraform's "Objects have changed outside of Terraform": what was applied, and what the server has now."""
    lines = [style("Changed outside the topology", fg="yellow", bold=True) + f" {_drift_note('->')}:"]
    for op, named in drifted:
        lines.append(f"  {op.ref}")
        rows = [(name, f"{_change_value(c.path, c.new)} -> {_change_value(c.path, c.old)}", None) for name, c in named]
        lines += [line for line, _ in _text_rows(rows)]
    return lines


def _text_findings(plan: Plan, style: Callable[..., str]) -> list[str]:
    lines = []
    unmanaged = _unmanaged(plan)
    if unmanaged:
        lines.append(f"Unmanaged (left alone): {', '.join(str(ref) for ref in unmanaged)}")
    lines += [f"Note: {_finding_text(f)}" for f in _other_notes(plan)]
    lines += [style("Error:", fg="red", bold=True) + f" {_finding_text(f)}" for f in plan.errors]
    return lines


# -- json ---------------------------------------------------------------


def render_json(plan: Plan) -> str:
    """The plan as versioned JSON (``format_version``) in API units; indent 2, sorted keys."""
    counts = plan.counts()
    document = {
        "format_version": JSON_FORMAT_VERSION,
        "owner": plan.owner,
        "sources": list(plan.sources),
        "environment": plan.environment,
        "server": plan.server,
        "options": {name: bool(plan.options.get(name)) for name in PLAN_OPTIONS},
        "targets": list(plan.targets),
        "summary": {**counts, "errors": len(plan.errors), "has_changes": plan.has_changes},
        "operations": [operation_to_dict(op) for op in plan.operations],
        "findings": [finding_to_dict(f) for f in plan.findings],
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


# -- markdown -----------------------------------------------------------

COMMENT_LIMIT = 65_536  # GitHub refuses a comment body longer than this many characters
MARKER = "medisync-topology plan"
PLAN_OPTIONS = ("prune", "adopt", "allow_replace", "allow_data_loss")
_DESTRUCTIVE = (Action.DELETE, Action.REPLACE)
# Shares of the limit the lists above the table may take; what does not fit is counted, not shown.
_LIST_SHARE = {"caution": 8, "errors": 4, "drift": 16, "unmanaged": 16, "notes": 16}


def comment_marker(plan: Plan) -> str:
    """The hidden first line of a markdown plan: a bot finds its comment by it and updates it in place.

    Owner and environment names cannot hold "-->" (schema patterns), so the comment cannot end early.
    """
    environment = f" environment={plan.environment}" if plan.environment else ""
    return f"<!-- {MARKER} owner={plan.owner}{environment} -->"


def render_markdown(plan: Plan, *, saved_as: str | None = None, limit: int = COMMENT_LIMIT) -> str:
    """A pull-request comment that reads well on GitHub and never exceeds ``limit`` characters.

    First the marker, the header, the summary, what destroys data, errors and the table of actions;
    then each resource's field details folded in ``<details>``. When the whole is too long, details
    are summarised to one line each, largest first (then left out), and the comment says so and
    where the full plan is: ``saved_as``, the saved plan, if there is one.
    """
    head = [comment_marker(plan)]
    if not plan.operations and not plan.errors:  # as render_text: a plan that changes nothing is one line
        return f"{head[0]}\n**No changes.** {_md_text(_matches_text(plan))}\n"
    head[0] += "\n" + _header(plan, name=_code, file=_code) + _md_options(plan)
    if plan.targets:
        head.append(f"> [!WARNING]\n> {_md_text(_partial_text(plan))}")
    if plan.errors:
        head.append(f"**Plan cannot be applied** ({plural(len(plan.errors), 'error')}): {_counts_text(plan)}")
    else:
        head.append(f"**Plan:** {_counts_text(plan)}")
    above = [_md_caution(plan, limit // _LIST_SHARE["caution"])]
    above.append(_md_list("**Errors:**", [_md_text(_finding_text(f)) for f in plan.errors],
                          limit // _LIST_SHARE["errors"], "errors"))
    above.append(_md_list(f"**Changed outside the topology** {_drift_note('→')}:", _md_drift(plan),
                          limit // _LIST_SHARE["drift"], "fields"))
    unmanaged = [_md_ref(ref) for ref in _unmanaged(plan)]
    below = [
        _md_list("**Unmanaged (left alone):**", unmanaged, limit // _LIST_SHARE["unmanaged"], "resources", inline=True),
        _md_list("**Notes:**", [_md_text(_finding_text(f)) for f in _other_notes(plan)],
                 limit // _LIST_SHARE["notes"], "notes"),
    ]
    rows = [_md_row(op, _md_details(op)) for op in plan.operations]
    details = [_md_detail(op) for op in plan.operations if not isinstance(op, DeleteResource)]  # the table's order

    def document(notice: str, shown_rows: list[str], shown_details: list[str]) -> str:
        table = "\n".join(["| Action | Resource | Details |", "| --- | --- | --- |", *shown_rows]) if shown_rows else ""
        blocks = [*head, notice, *above, table, *shown_details, *below]
        return "\n\n".join(block for block in blocks if block) + "\n"

    whole = document("", rows, [full for full, _ in details])
    if len(whole) <= limit:
        return whole
    # Too long: the notice (sized for the largest counts it can say) and the fixed blocks come first,
    # then the table (naming fewer details, then losing rows), then the details in what is left.
    cut = _Shortened(len(details), len(rows), summarised=len(details), left_out=len(details), compact=True,
                     rows_left_out=len(rows))
    budget = limit - len(document(_md_size_notice(cut, saved_as, limit), [], [])) - 64  # the table's head and gaps
    cut.compact = sum(len(row) + 1 for row in rows) > budget
    if cut.compact:
        rows = [_md_row(op, _md_details(op, compact=True)) for op in plan.operations]
    shown_rows = _bounded(rows, budget, lambda n: f"| … | {n:,} more | not shown: see the full plan |")
    cut.rows_left_out = len(rows) - len(shown_rows) + 1 if shown_rows is not rows else 0
    if cut.rows_left_out:  # details of resources the table does not show would confuse
        shown_details, cut.summarised, cut.left_out = [], 0, len(details)
    else:
        shown_details, cut.summarised, cut.left_out = _fit_details(details, budget - len("\n".join(shown_rows)))
    return document(_md_size_notice(cut, saved_as, limit), shown_rows, shown_details)


@dataclass
class _Shortened:
    """How a markdown plan was cut to fit, for the notice that says so."""

    details: int  # resources with details
    rows: int  # rows of the table
    summarised: int = 0
    left_out: int = 0  # details
    compact: bool = False  # the table counts changed fields instead of naming them
    rows_left_out: int = 0


def _md_options(plan: Plan) -> str:
    """Which of --prune, --adopt, --allow-replace and --allow-data-loss the plan was made with: they decide what
    it may do."""
    flags = [(f"`--{name.replace('_', '-')}`", bool(plan.options.get(name))) for name in PLAN_OPTIONS]
    given = [flag for flag, on in flags if on]
    without = [flag for flag, on in flags if not on]
    if not given:
        return ", planned without " + ", ".join(without)
    return ", planned with " + ", ".join(given) + (f" (without {', '.join(without)})" if without else "")


def _md_action(op: Operation) -> str:
    """Deletions and replacements destroy what the server holds: bold in the table."""
    return f"**{op.action}**" if op.action in _DESTRUCTIVE else _verb(op)


def _md_caution(plan: Plan, budget: int) -> str:
    """Everything the plan deletes or replaces, and each update that destroys messages, with the data it
    destroys, as a GitHub caution alert."""
    destroying = [op for op in plan.operations if isinstance(op, (DeleteResource, ReplaceResource))
                  or (isinstance(op, UpdateResource) and op.data_at_risk is not None)]
    if not destroying:
        return ""
    counts = plan.counts()
    title = ", ".join(f"{counts[a]} to {a}" for a in _DESTRUCTIVE if counts[a])
    updates = sum(isinstance(op, UpdateResource) for op in destroying)
    title = ", ".join(filter(None, [title, plural(updates, "update") + " destroying messages" if updates else ""]))
    items = []
    for op in destroying:
        verb = {Action.REPLACE: "Replaces", Action.DELETE: "Deletes", Action.UPDATE: "Updates"}[op.action]
        risk = f": {data_at_risk_text(op.data_at_risk)}" if op.data_at_risk is not None else ""
        items.append(f"**{verb} {_md_ref(op.ref)}{risk}**")
    listed = _md_list(f"**Destructive: {title}**", items, budget, "resources")
    return "> [!CAUTION]\n" + "\n".join(f"> {line}".rstrip() for line in listed.splitlines())


def _md_list(title: str, items: list[str], budget: int, noun: str, *, inline: bool = False) -> str:
    """A titled bullet list (or comma-separated line) of the items that fit in ``budget`` characters."""
    if not items:
        return ""
    shown = _bounded(items, budget, lambda n: f"… and {n:,} more {noun} (see the full plan)")
    if inline:
        return f"{title} " + ", ".join(shown)
    return f"{title}\n\n" + "\n".join(f"- {item}" for item in shown)


def _bounded(items: list[str], budget: int, more: Callable[[int], str]) -> list[str]:
    """The first items that fit in ``budget`` characters (one separator each), then a line counting the rest."""
    if sum(len(item) + 2 for item in items) <= budget:
        return items
    budget -= len(more(len(items))) + 2
    shown, used = [], 0
    for item in items:
        used += len(item) + 2
        if used > budget:
            break
        shown.append(item)
    return shown + [more(len(items) - len(shown))]


def _fit_details(details: list[tuple[str, str]], budget: int) -> tuple[list[str], int, int]:
    """(blocks, how many summarised, how many left out): the (full, summary) details within ``budget``.

    The largest are summarised first; when every one is summarised and still too long, the last
    are left out, replaced by one line counting them.
    """
    sizes = [len(full) + 2 for full, _ in details]
    total = sum(sizes)
    summarised: set[int] = set()
    for i in sorted(range(len(details)), key=lambda i: (-sizes[i], i)):
        if total <= budget:
            break
        total -= sizes[i] - (len(details[i][1]) + 2)
        summarised.add(i)
    blocks = [summary if i in summarised else full for i, (full, summary) in enumerate(details)]
    if total <= budget:
        return blocks, len(summarised), 0
    shown = _bounded(blocks, budget, lambda n: f"… and the details of {n:,} more resources: see the full plan")
    return shown, len(shown) - 1, len(details) - (len(shown) - 1)


def _md_size_notice(cut: _Shortened, saved_as: str | None, limit: int) -> str:
    where = (f"the saved plan {_code(saved_as)} (`topology show {saved_as}` prints it)" if saved_as else
             "`topology plan` itself, or `topology plan --format json`")
    said = []
    if cut.summarised:
        said.append(f"the details of {cut.summarised:,} of {cut.details:,} resources are summarised, largest first")
    if cut.left_out:
        said.append(f"the details of {cut.left_out:,} are left out")
    if cut.compact:
        said.append("the table counts the changed fields")
    if cut.rows_left_out:
        said.append(f"{cut.rows_left_out:,} of {cut.rows:,} rows of the table are left out")
    return (f"**This plan is too long for one comment** ({limit:,} characters): {'; '.join(said)}. "
            f"The full plan: {where}.")


def _md_detail(op: CreateResource | UpdateResource | ReplaceResource) -> tuple[str, str]:
    """(the folded details, a one-line summary) of one resource's create, update or replace."""
    if isinstance(op, CreateResource):
        items = [f"- {_code(key)}: {_code(display_value(key, value))}" for key, value in sorted(op.settings.items())]
        what = plural(len(items), "setting")
        if not items and op.migration is None:
            line = f"Create {_md_ref(op.ref)} with the server's defaults."
            return line, line
    else:
        items = []
        for name, c in _named_changes(op):
            item = f"- {_code(name)}: {_md_change_value(c.path, c.old)} → {_md_change_value(c.path, c.new)}"
            item += " (**forces replacement**)" if c.forces_replacement else ""
            items.append(item + (f" ({DRIFT_MARK})" if c.drift else ""))
        what = plural(len(items), "change")
    if getattr(op, "migration", None) is not None:
        items += ["", "The migration:", ""] + [f"- {_md_text(cost)}" for cost in _migration_costs(op)]
    verb = _verb(op).capitalize()
    html_title = f"{verb} {op.ref.kind} <code>{html.escape(_ref_name(op.ref))}</code>"
    full = f"<details><summary>{html_title}: {what}</summary>\n\n" + "\n".join(items) + "\n\n</details>"
    return full, f"{verb} {_md_ref(op.ref)}: {what} (summarised)"


def _md_drift(plan: Plan) -> list[str]:
    """One item a drifted field: the resource, the field, what was applied → what the server has now."""
    return [f"{_md_ref(op.ref)}: {_code(name)}: {_md_change_value(c.path, c.new)} → {_md_change_value(c.path, c.old)}"
            for op, named in _drifted(plan) for name, c in named]


def _md_row(op: Operation, details: str) -> str:
    resource = f"{_md_ref(op.ref)} (was {_code(op.renamed_from)})" if _renames_stream(op) else _md_ref(op.ref)
    return f"| {_md_action(op)} | {_cell(resource)} | {_cell(details)} |"


def _md_details(op: Operation, *, compact: bool = False) -> str:
    """The table's Details cell; ``compact`` counts the changed fields instead of naming them."""
    details = []
    if _adopts(op):
        details.append("take ownership")
    match op:
        case UpdateResource():
            names = [name for name, _ in _named_changes(op)]
            details.append(plural(len(names), "change") if compact else "changes: " + ", ".join(map(_code, names)))
        case ReplaceResource():
            forcing = [name for name, c in _named_changes(op) if c.forces_replacement]
            details.append("forces replacement: " + ", ".join(_code(name) for name in forcing))
    risk = data_at_risk(op)
    if risk is not None:
        details.append(f"**{data_at_risk_text(risk)}**")
    if getattr(op, "migration", None) is not None:
        details.append(_md_text(_migration_summary(op.migration, _renames_stream(op))))
    elif getattr(op, "renamed_from", None):
        details.append(_md_text(_renamed_text(op)))
    return "; ".join(details)


def _md_change_value(path: str, value: Any) -> str:
    return ABSENT if value is None else _code(_change_value(path, value))


def _ref_name(ref: Ref) -> str:
    return f"{ref.stream}/{ref.name}" if ref.kind == "consumer" else ref.name


def _md_ref(ref: Ref) -> str:
    return f"{ref.kind} {_code(_ref_name(ref))}"


def _code(text: str) -> str:
    """An inline code span; a longer fence when the text itself holds backticks (CommonMark code spans)."""
    if "`" not in text:
        return f"`{text}`"
    fence = "`" * (max(len(run) for run in re.findall("`+", text)) + 1)
    return f"{fence} {text} {fence}"


_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]<>#~])")


def _md_text(text: str) -> str:
    """Free text with markdown's inline punctuation escaped, so names like ``a_*_b`` stay literal."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", text)


def _cell(text: str) -> str:
    """A table cell: GitHub splits cells on every ``|``, even inside code spans, unless escaped."""
    return text.replace("|", "\\|").replace("\n", " ")


# -- dispatch -----------------------------------------------------------

FORMATS = ("text", "json", "markdown")


def render(plan: Plan, fmt: str, *, color: bool, saved_as: str | None = None) -> str:
    """The plan in ``fmt``: "text" (coloured when ``color``), "json" or "markdown" (``saved_as``: the saved plan)."""
    if fmt == "text":
        return render_text(plan, color=color)
    if fmt == "json":
        return render_json(plan)
    if fmt == "markdown":
        return render_markdown(plan, saved_as=saved_as)
    raise TopologyError(f"unknown plan format {fmt!r}: use one of {', '.join(FORMATS)}")
