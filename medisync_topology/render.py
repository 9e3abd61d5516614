"""Show a plan: text for a terminal, JSON for pipelines and bots, markdown for a pull-request comment.

Pure and deterministic: the same plan renders byte for byte the same, so a plan can be diffed,
cached and compared. Operations are shown in the plan's (execution) order, findings in the order
given. Values are the JetStream API's JSON; text and markdown show durations and sizes in human
units, JSON keeps API units (nanoseconds, bytes) for machines.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

import click

from . import buckets, rules
from .errors import TopologyError
from .ops import (
    Action, CreateResource, DataAtRisk, DeleteResource, FieldChange, Finding, Operation, Plan, Reason, Ref,
    ReplaceResource, Severity, UpdateResource, changes_of, data_at_risk, finding_to_dict, operation_to_dict,
)
from .units import format_duration, format_size, plural

JSON_FORMAT_VERSION = 1

SYMBOLS = {Action.CREATE: "+", Action.UPDATE: "~", Action.REPLACE: "-/+", Action.DELETE: "-"}
COLORS = {Action.CREATE: "green", Action.UPDATE: "yellow", Action.REPLACE: "magenta", Action.DELETE: "red"}
ABSENT = "(absent)"


# -- shared -------------------------------------------------------------


def display_value(name: str, value: Any) -> str:
    """One line for an API value: compact JSON, with durations and sizes in human units.

    ``name`` is the field the value sits under; list items (``backoff``) take their list's name,
    keys of nested objects (``consumer_limits.inactive_threshold``) their own.
    """
    if isinstance(value, dict):
        items = (f"{json.dumps(k, ensure_ascii=False)}: {display_value(k, v)}" for k, v in sorted(value.items()))
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(display_value(name, item) for item in value) + "]"
    if isinstance(value, int) and not isinstance(value, bool):
        if name in rules.DURATION_FIELDS:
            return format_duration(value)
        if name in rules.SIZE_FIELDS:
            return format_size(value)
    return json.dumps(value, ensure_ascii=False)


def _named_changes(op: Operation) -> list[tuple[str, FieldChange]]:
    """Each change under the name topology.yaml gives its field (a bucket's history, not its
    stream's max_msgs_per_subject), sorted by that name."""
    names = buckets.SETTING_NAMES.get(op.ref.kind, {})
    return sorted(((names.get(c.path, c.path), c) for c in changes_of(op)), key=lambda named: named[0])


def _change_value(path: str, value: Any) -> str:
    return ABSENT if value is None else display_value(path.rsplit(".", 1)[-1], value)


def _adopts(op: Operation) -> bool:
    return isinstance(op, UpdateResource) and op.adopt


def _verb(op: Operation) -> str:
    return "adopt" if _adopts(op) else op.action


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


def _data_at_risk_text(risk: DataAtRisk) -> str:
    parts = [plural(risk.messages, "message"), _approximate_size(risk.bytes)]
    if risk.consumers:
        parts.append(plural(risk.consumers, "consumer"))
    return "destroys " + ", ".join(parts)


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
    head = "  " + style(f"{SYMBOLS[op.action]} {_verb(op)}", fg=COLORS[op.action], bold=True) + f" {op.ref}"
    if _adopts(op):
        head += " (take ownership)"
    risk = data_at_risk(op)
    if risk is not None:
        head += "   " + style(f"({_data_at_risk_text(risk)})", fg="red")
    match op:
        case CreateResource():
            rows = [(key, display_value(key, value), False) for key, value in sorted(op.settings.items())]
        case UpdateResource() | ReplaceResource():
            rows = [
                (name, f"{_change_value(c.path, c.old)} -> {_change_value(c.path, c.new)}", c.forces_replacement)
                for name, c in _named_changes(op)
            ]
        case DeleteResource():
            rows = []
    width = max((len(name) for name, _, _ in rows), default=0) + 3  # name, colon, two spaces
    lines = [head]
    for name, text, forces in rows:
        line = f"      {name + ':':<{width}}{text}"
        if forces:
            line += "   " + style("# forces replacement", fg="red")
        lines.append(line)
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
        "summary": {**counts, "errors": len(plan.errors), "has_changes": plan.has_changes},
        "operations": [operation_to_dict(op) for op in plan.operations],
        "findings": [finding_to_dict(f) for f in plan.findings],
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


# -- markdown -----------------------------------------------------------


def render_markdown(plan: Plan) -> str:
    """A pull-request comment that reads well on GitHub."""
    blocks = []
    if plan.operations or plan.errors:  # as render_text: a plan that changes nothing is one line
        blocks.append(_header(plan, name=_code, file=_code))
    if plan.errors:
        count = plural(len(plan.errors), "error")
        blocks.append(f"**Plan cannot be applied** ({count}): {_counts_text(plan)}")
        blocks.append("**Errors:**\n\n" + "\n".join(f"- {_md_text(_finding_text(f))}" for f in plan.errors))
    elif plan.operations:
        blocks.append(f"**Plan:** {_counts_text(plan)}")
    else:
        blocks.append(f"**No changes.** {_md_text(_matches_text(plan))}")
    if plan.operations:
        rows = ["| Action | Resource | Details |", "| --- | --- | --- |"]
        rows += [f"| {_verb(op)} | {_cell(_md_ref(op.ref))} | {_cell(_md_details(op))} |" for op in plan.operations]
        blocks.append("\n".join(rows))
    blocks += [_md_risk_warning(op) for op in plan.operations if data_at_risk(op) is not None]
    # The details follow the table's order.
    blocks += [_md_operation(op) for op in plan.operations if not isinstance(op, DeleteResource)]
    unmanaged = _unmanaged(plan)
    if unmanaged:
        blocks.append("**Unmanaged (left alone):** " + ", ".join(_md_ref(ref) for ref in unmanaged))
    notes = _other_notes(plan)
    if notes:
        blocks.append("**Notes:**\n\n" + "\n".join(f"- {_md_text(_finding_text(f))}" for f in notes))
    return "\n\n".join(blocks) + "\n"


def _md_details(op: Operation) -> str:
    details = []
    if _adopts(op):
        details.append("take ownership")
    match op:
        case UpdateResource():
            details.append("changes: " + ", ".join(_code(name) for name, _ in _named_changes(op)))
        case ReplaceResource():
            forcing = [name for name, c in _named_changes(op) if c.forces_replacement]
            details.append("forces replacement: " + ", ".join(_code(name) for name in forcing))
    risk = data_at_risk(op)
    if risk is not None:
        details.append(f"**{_data_at_risk_text(risk)}**")
    return "; ".join(details)


def _md_risk_warning(op: ReplaceResource | DeleteResource) -> str:
    verb = "Replacing" if isinstance(op, ReplaceResource) else "Deleting"
    return f"**{verb} {_md_ref(op.ref)} {_data_at_risk_text(op.data_at_risk)}.**"


def _md_operation(op: CreateResource | UpdateResource | ReplaceResource) -> str:
    return _md_created(op) if isinstance(op, CreateResource) else _md_changes(op)


def _md_changes(op: UpdateResource | ReplaceResource) -> str:
    lines = [f"{_verb(op).capitalize()} {_md_ref(op.ref)}:", ""]
    for name, c in _named_changes(op):
        line = f"- {_code(name)}: {_md_change_value(c.path, c.old)} → {_md_change_value(c.path, c.new)}"
        if c.forces_replacement:
            line += " (**forces replacement**)"
        lines.append(line)
    return "\n".join(lines)


def _md_created(op: CreateResource) -> str:
    settings = sorted(op.settings.items())
    lines = [f"Create {_md_ref(op.ref)}" + (":" if settings else " with the server's defaults.")]
    if settings:
        lines.append("")
    lines += [f"- {_code(key)}: {_code(display_value(key, value))}" for key, value in settings]
    return "\n".join(lines)


def _md_change_value(path: str, value: Any) -> str:
    return ABSENT if value is None else _code(_change_value(path, value))


def _md_ref(ref: Ref) -> str:
    return f"{ref.kind} {_code(f'{ref.stream}/{ref.name}' if ref.kind == 'consumer' else ref.name)}"


def _code(text: str) -> str:
    """An inline code span; a longer fence when the text itself holds backticks (CommonMark code spans)."""
    if "`" not in text:
        return f"`{text}`"
    fence = "`" * (max(len(run) for run in re.findall("`+", text)) + 1)
    return f"{fence} {text} {fence}"


def _md_text(text: str) -> str:
    """Free text with markdown's inline punctuation escaped, so names like ``a_*_b`` stay literal."""
    return "".join(f"\\{ch}" if ch in "\\`*_[]<>#~" else ch for ch in text)


def _cell(text: str) -> str:
    """A table cell: GitHub splits cells on every ``|``, even inside code spans, unless escaped."""
    return text.replace("|", "\\|").replace("\n", " ")


# -- dispatch -----------------------------------------------------------

FORMATS = ("text", "json", "markdown")


def render(plan: Plan, fmt: str, *, color: bool) -> str:
    """The plan in ``fmt``: "text" (coloured when ``color``), "json" or "markdown"."""
    if fmt == "text":
        return render_text(plan, color=color)
    if fmt == "json":
        return render_json(plan)
    if fmt == "markdown":
        return render_markdown(plan)
    raise TopologyError(f"unknown plan format {fmt!r}: use one of {', '.join(FORMATS)}")
