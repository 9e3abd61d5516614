"""Plan rendering: exact text, JSON and markdown for hand-built plans (pure, no server)."""

import json

import click
import pytest

from medisync_topology import buckets
from medisync_topology.errors import TopologyError
from medisync_topology.ops import (
    CreateResource,
    DataAtRisk,
    DeleteResource,
    FieldChange,
    Finding,
    Plan,
    Ref,
    ReplaceResource,
    UpdateResource,
)
from medisync_topology.render import display_value, render, render_json, render_markdown, render_text

S = 10**9
DAY = 86400 * S
GiB = 1024**3


def full_plan() -> Plan:
    """One operation of every kind, a note and an error: the shape a real plan has."""
    return Plan(
        operations=[
            CreateResource(
                Ref("stream", "ORDERS"),
                {
                    "name": "ORDERS",
                    "subjects": ["medisync.order.>"],
                    "max_age": 7 * DAY,
                    "max_bytes": -1,
                    "duplicate_window": 120 * S,
                    "consumer_limits": {"inactive_threshold": 300 * S},
                    "allow_rollup_hdrs": False,
                    "placement": None,
                },
                # What the plan found the topology sets beyond the server's defaults: all a create shows in text.
                {"subjects": ["medisync.order.>"], "max_age": 7 * DAY, "consumer_limits": {"inactive_threshold": 300 * S}},
            ),
            UpdateResource(
                Ref("stream", "EVENTS"),
                {"max_age": 7 * DAY, "max_bytes": GiB},
                {"max_age": 14 * DAY, "max_bytes": 2 * GiB},
                (FieldChange("max_age", 7 * DAY, 14 * DAY), FieldChange("max_bytes", GiB, 2 * GiB)),
            ),
            UpdateResource(
                Ref("stream", "BILLING"),
                {},
                {"metadata": {"medisync-topology.owner": "medisync"}},
                (FieldChange("metadata", None, {"medisync-topology.owner": "medisync"}),),
                adopt=True,
            ),
            ReplaceResource(
                Ref("consumer", "etl-notifier", "EVENTS"),
                {"backoff": [S, 2 * S], "deliver_policy": "all"},
                {"backoff": [S, 2 * S, 4 * S], "deliver_policy": "new"},
                (
                    FieldChange("backoff", [S, 2 * S], [S, 2 * S, 4 * S]),
                    FieldChange("deliver_policy", "all", "new", forces_replacement=True),
                ),
            ),
            ReplaceResource(
                Ref("stream", "AUDIT"),
                {"storage": "file"},
                {"storage": "memory"},
                (FieldChange("storage", "file", "memory", forces_replacement=True),),
                DataAtRisk(messages=1234, bytes=5452595, consumers=2),
            ),
            DeleteResource(Ref("stream", "OLD"), {"name": "OLD"}, DataAtRisk(messages=10, bytes=1024)),
        ],
        findings=[
            Finding(Ref("stream", "LEGACY"), "note", "unmanaged", "stream LEGACY is not managed by this tool"),
            Finding(Ref("stream", "STALE"), "note", "needs_prune", "stream STALE is owned by medisync; --prune deletes it"),
            Finding(Ref("consumer", "x", "EVENTS"), "error", "impossible", "deny_delete cannot be turned off"),
        ],
        owner="medisync",
        sources=["topology.yaml"],
        server={"version": "2.15.1"},
    )


FULL_TEXT = """\
Topology plan for owner "medisync" (topology.yaml) against nats-server 2.15.1

  + create stream ORDERS
      consumer_limits:  {"inactive_threshold": 5m}
      max_age:          7d
      subjects:         ["medisync.order.>"]

  ~ update stream EVENTS
      max_age:    7d -> 14d
      max_bytes:  1GiB -> 2GiB

  ~ adopt stream BILLING (take ownership)
      metadata:  (absent) -> {"medisync-topology.owner": "medisync"}

  -/+ replace consumer EVENTS/etl-notifier
      backoff:         [1s, 2s] -> [1s, 2s, 4s]
      deliver_policy:  "all" -> "new"   # forces replacement

  -/+ replace stream AUDIT   (destroys 1,234 messages, 5.2 MiB, 2 consumers)
      storage:  "file" -> "memory"   # forces replacement

  - delete stream OLD   (destroys 10 messages, 1 KiB)

Unmanaged (left alone): stream LEGACY
Note: stream STALE is owned by medisync; --prune deletes it
Error: consumer EVENTS/x: deny_delete cannot be turned off

Plan cannot be applied (1 error): 1 to create, 2 to update, 2 to replace, 1 to delete.
"""


def test_text_shows_every_operation_in_human_units_with_findings_and_a_blocked_summary():
    assert render_text(full_plan(), color=False) == FULL_TEXT


def test_text_summary_counts_operations_when_nothing_blocks_the_plan():
    plan = full_plan()
    plan.findings = []
    text = render_text(plan, color=False)
    assert text.endswith("\n\n  - delete stream OLD   (destroys 10 messages, 1 KiB)\n\n"
                         "Plan: 1 to create, 2 to update, 2 to replace, 1 to delete.\n")


def test_text_colour_marks_each_action_and_only_when_asked():
    coloured = render_text(full_plan(), color=True)
    assert "\x1b[32m\x1b[1m+ create\x1b[0m stream ORDERS" in coloured
    assert "\x1b[33m\x1b[1m~ update\x1b[0m stream EVENTS" in coloured
    assert "\x1b[35m\x1b[1m-/+ replace\x1b[0m stream AUDIT" in coloured
    assert "\x1b[31m\x1b[1m- delete\x1b[0m stream OLD" in coloured
    assert "\x1b[31m\x1b[1mError:\x1b[0m consumer EVENTS/x" in coloured
    assert click.unstyle(coloured) == FULL_TEXT
    assert "\x1b" not in render_text(full_plan(), color=False)


def test_text_no_changes_names_the_sources():
    assert render_text(Plan(sources=["topology.yaml"]), color=True) == (
        "No changes. Live JetStream matches topology.yaml.\n"
    )
    assert render_text(Plan(sources=["base.yaml", "prod.yaml"]), color=False) == (
        "No changes. Live JetStream matches base.yaml, prod.yaml.\n"
    )
    assert render_text(Plan(), color=False) == "No changes. Live JetStream matches the topology.\n"


def test_text_no_changes_still_lists_unmanaged_resources():
    plan = Plan(
        findings=[
            Finding(Ref("stream", "LEGACY"), "note", "unmanaged", "not managed"),
            Finding(Ref("consumer", "old", "LEGACY"), "note", "unmanaged", "not managed"),
        ],
        sources=["topology.yaml"],
    )
    assert render_text(plan, color=False) == (
        "Unmanaged (left alone): stream LEGACY, consumer LEGACY/old\n"
        "\n"
        "No changes. Live JetStream matches topology.yaml.\n"
    )


def test_text_errors_without_operations_say_the_plan_cannot_be_applied():
    plan = Plan(
        findings=[
            Finding(Ref("stream", "EVENTS"), "error", "conflict", "stream EVENTS is owned by 'billing', not 'medisync'"),
            Finding(Ref("stream", "NEW"), "error", "unsupported", "allow_msg_ttl needs nats-server 2.11"),
        ],
        owner="medisync",
        sources=["topology.yaml"],
        environment="prod",
    )
    assert render_text(plan, color=False) == (
        'Topology plan for owner "medisync" (topology.yaml, environment "prod")\n'
        "\n"
        "Error: stream EVENTS is owned by 'billing', not 'medisync'\n"
        "Error: stream NEW: allow_msg_ttl needs nats-server 2.11\n"
        "\n"
        "Plan cannot be applied (2 errors): 0 to create, 0 to update, 0 to replace, 0 to delete.\n"
    )


@pytest.mark.parametrize(
    "name, value, shown",
    [
        ("max_age", 0, "unlimited"),
        ("ttl", 0, "unlimited"),
        ("max_msgs", 0, "unlimited"),
        ("max_deliver", -1, "unlimited"),
        ("max_ack_pending", -1, "unlimited"),
        ("max_ack_pending", 0, "0"),  # the server fills in its default: not "no limit"
        ("duplicate_window", 0, "0s"),
        ("max_age", 90 * 60 * S, "1h30m"),
        ("ack_wait", 30 * S, "30s"),
        ("backoff", [S, 500 * 10**6], "[1s, 500ms]"),
        ("max_bytes", 512 * 1024**2, "512MiB"),
        ("max_bytes", 10 * 10**9, "10GB"),
        ("max_msg_size", -1, "unlimited"),
        ("max_msg_size", 1024, "1KiB"),
        ("max_msgs", 1000, "1000"),  # a count, not a size
        ("consumer_limits", {"max_ack_pending": 5, "inactive_threshold": 60 * S}, '{"inactive_threshold": 1m, "max_ack_pending": 5}'),
        ("sources", [{"name": "A", "filter_subject": "a.>"}], '[{"filter_subject": "a.>", "name": "A"}]'),
        ("deny_delete", True, "true"),
        ("description", 'says "hi" ✓', '"says \\"hi\\" ✓"'),
        ("placement", None, "null"),
    ],
)
def test_values_show_durations_and_sizes_in_human_units_and_the_rest_as_json(name, value, shown):
    assert display_value(name, value) == shown


def test_nested_change_paths_take_units_from_their_last_component():
    plan = Plan(
        operations=[
            UpdateResource(
                Ref("stream", "S"), {}, {},
                (FieldChange("consumer_limits.inactive_threshold", 60 * S, 120 * S),),
            )
        ]
    )
    assert "      consumer_limits.inactive_threshold:  1m -> 2m\n" in render_text(plan, color=False)


def test_buckets_show_their_bucket_settings_not_their_streams_fields():
    created = buckets.bucket_stream_config("key_value", "cache", {"history": 3, "ttl": 3600 * S, "max_value_size": 1024})
    plan = Plan(
        operations=[
            CreateResource(Ref("key_value", "cache"), created, buckets.bucket_settings("key_value", created)),
            ReplaceResource(
                Ref("key_value", "sessions"), {}, {},
                (FieldChange("max_age", 3600 * S, 30 * S), FieldChange("max_msgs_per_subject", 3, 5),
                 FieldChange("storage", "file", "memory", True)),
            ),
            UpdateResource(Ref("object_store", "docs"), {}, {}, (FieldChange("max_age", DAY, 2 * DAY),)),
        ]
    )
    text = render_text(plan, color=False)
    assert "  + create key_value cache\n      history:         3\n      max_value_size:  1KiB\n      ttl:             1h\n\n" in text
    assert (
        "  -/+ replace key_value sessions\n"
        "      history:  3 -> 5\n"
        "      storage:  \"file\" -> \"memory\"   # forces replacement\n"
        "      ttl:      1h -> 30s\n\n"
        "  ~ update object_store docs\n      ttl:  1d -> 2d\n"
    ) in text
    markdown = render_markdown(plan)
    assert "| **replace** | key_value `sessions` | forces replacement: `storage` |" in markdown
    assert "| update | object_store `docs` | changes: `ttl` |" in markdown
    assert ("<summary>Create key_value <code>cache</code>: 3 settings</summary>\n\n"
            "- `history`: `3`\n- `max_value_size`: `1KiB`\n- `ttl`: `1h`\n") in markdown
    assert "<summary>Replace key_value <code>sessions</code>: 3 changes</summary>\n\n- `history`: `3` → `5`\n" in markdown
    # JSON is for machines: the stream's own fields, as the server has them.
    assert [c["path"] for c in json.loads(render_json(plan))["operations"][1]["changes"]] == [
        "max_age", "max_msgs_per_subject", "storage",
    ]


@pytest.mark.parametrize(
    "size, shown",
    [(0, "0 B"), (1023, "1,023 B"), (1024, "1 KiB"), (1536, "1.5 KiB"), (1024**2 - 1, "1 MiB"), (3 * GiB, "3 GiB")],
)
def test_data_at_risk_sizes_are_approximate_for_people(size, shown):
    plan = Plan(operations=[DeleteResource(Ref("stream", "S"), {}, DataAtRisk(messages=1, bytes=size, consumers=1))])
    assert f"  - delete stream S   (destroys 1 message, {shown}, 1 consumer)\n" in render_text(plan, color=False)


FULL_MARKDOWN = """\
<!-- medisync-topology plan owner=medisync -->
Topology plan for owner `medisync` (`topology.yaml`) against nats-server 2.15.1, planned with `--prune` (without `--adopt`, `--allow-replace`, `--allow-data-loss`)

**Plan cannot be applied** (1 error): 1 to create, 2 to update, 2 to replace, 1 to delete

> [!CAUTION]
> **Destructive: 1 to delete, 2 to replace**
>
> - **Replaces consumer `EVENTS/etl-notifier`**
> - **Replaces stream `AUDIT`: destroys 1,234 messages, 5.2 MiB, 2 consumers**
> - **Deletes stream `OLD`: destroys 10 messages, 1 KiB**

**Errors:**

- consumer EVENTS/x: deny\\_delete cannot be turned off

| Action | Resource | Details |
| --- | --- | --- |
| create | stream `ORDERS` |  |
| update | stream `EVENTS` | changes: `max_age`, `max_bytes` |
| adopt | stream `BILLING` | take ownership; changes: `metadata` |
| **replace** | consumer `EVENTS/etl-notifier` | forces replacement: `deliver_policy` |
| **replace** | stream `AUDIT` | forces replacement: `storage`; **destroys 1,234 messages, 5.2 MiB, 2 consumers** |
| **delete** | stream `OLD` | **destroys 10 messages, 1 KiB** |

<details><summary>Create stream <code>ORDERS</code>: 3 settings</summary>

- `consumer_limits`: `{"inactive_threshold": 5m}`
- `max_age`: `7d`
- `subjects`: `["medisync.order.>"]`

</details>

<details><summary>Update stream <code>EVENTS</code>: 2 changes</summary>

- `max_age`: `7d` → `14d`
- `max_bytes`: `1GiB` → `2GiB`

</details>

<details><summary>Adopt stream <code>BILLING</code>: 1 change</summary>

- `metadata`: (absent) → `{"medisync-topology.owner": "medisync"}`

</details>

<details><summary>Replace consumer <code>EVENTS/etl-notifier</code>: 2 changes</summary>

- `backoff`: `[1s, 2s]` → `[1s, 2s, 4s]`
- `deliver_policy`: `"all"` → `"new"` (**forces replacement**)

</details>

<details><summary>Replace stream <code>AUDIT</code>: 1 change</summary>

- `storage`: `"file"` → `"memory"` (**forces replacement**)

</details>

**Unmanaged (left alone):** stream `LEGACY`

**Notes:**

- stream STALE is owned by medisync; --prune deletes it
"""


def test_markdown_has_marker_summary_caution_table_folded_changes_and_findings():
    plan = full_plan()
    plan.options = {"prune": True, "adopt": False, "allow_replace": False}
    assert render_markdown(plan) == FULL_MARKDOWN


@pytest.mark.parametrize(("options", "said"), [
    ({}, ", planned without `--prune`, `--adopt`, `--allow-replace`, `--allow-data-loss`\n"),
    ({"adopt": True, "allow_replace": True},
     ", planned with `--adopt`, `--allow-replace` (without `--prune`, `--allow-data-loss`)\n"),
    ({"prune": True, "adopt": True, "allow_replace": True, "allow_data_loss": True},
     ", planned with `--prune`, `--adopt`, `--allow-replace`, `--allow-data-loss`\n"),
])
def test_markdown_header_says_which_options_the_plan_was_made_with(options, said):
    plan = full_plan()
    plan.options = options
    assert render_markdown(plan).splitlines()[1].endswith(said.rstrip("\n"))


def test_markdown_marker_names_owner_and_environment_on_the_first_line():
    plan = full_plan()
    assert render_markdown(plan).startswith("<!-- medisync-topology plan owner=medisync -->\nTopology plan for")
    plan.environment = "production"
    assert render_markdown(plan).startswith("<!-- medisync-topology plan owner=medisync environment=production -->\n")
    no_changes = Plan(owner="medisync", environment="production", sources=["topology.yaml"])
    assert render_markdown(no_changes) == (
        "<!-- medisync-topology plan owner=medisync environment=production -->\n"
        "**No changes.** Live JetStream matches topology.yaml.\n"
    )


def test_markdown_summary_without_errors():
    plan = full_plan()
    plan.findings = []
    plan.sources, plan.environment = ["base.yaml", "prod.yaml"], "production"
    assert render_markdown(plan).startswith(
        "<!-- medisync-topology plan owner=medisync environment=production -->\n"
        "Topology plan for owner `medisync` (`base.yaml`, `prod.yaml`, environment `production`) against nats-server 2.15.1"
        ", planned without `--prune`, `--adopt`, `--allow-replace`, `--allow-data-loss`\n\n"
        "**Plan:** 1 to create, 2 to update, 2 to replace, 1 to delete\n\n> [!CAUTION]\n"
    )


def test_markdown_escapes_pipes_in_cells_backticks_in_code_and_markup_in_messages():
    plan = Plan(
        operations=[
            UpdateResource(
                Ref("stream", "A|B"), {}, {},
                (FieldChange("description", "a `tick`", "b"), FieldChange("placement.tags", ["x"], ["y"])),
            )
        ],
        findings=[Finding(Ref("stream", "Z"), "error", "impossible", "subject a.*.b overlaps *c* in <X>")],
    )
    assert render_markdown(plan) == (
        "<!-- medisync-topology plan owner= -->\n"
        "Topology plan, planned without `--prune`, `--adopt`, `--allow-replace`, `--allow-data-loss`\n"
        "\n"
        "**Plan cannot be applied** (1 error): 0 to create, 1 to update, 0 to replace, 0 to delete\n"
        "\n"
        "**Errors:**\n"
        "\n"
        "- stream Z: subject a.\\*.b overlaps \\*c\\* in \\<X\\>\n"
        "\n"
        "| Action | Resource | Details |\n"
        "| --- | --- | --- |\n"
        "| update | stream `A\\|B` | changes: `description`, `placement.tags` |\n"
        "\n"
        "<details><summary>Update stream <code>A|B</code>: 2 changes</summary>\n"
        "\n"
        '- `description`: `` "a `tick`" `` → `"b"`\n'
        '- `placement.tags`: `["x"]` → `["y"]`\n'
        "\n"
        "</details>\n"
    )


def test_markdown_no_changes_is_one_line_after_the_marker():
    marker = "<!-- medisync-topology plan owner= -->\n"
    assert render_markdown(Plan(sources=["topology.yaml"])) == marker + "**No changes.** Live JetStream matches topology.yaml.\n"
    assert render_markdown(Plan()) == marker + "**No changes.** Live JetStream matches the topology.\n"


def test_json_is_versioned_sorted_and_keeps_api_units():
    text = render_json(full_plan())
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    document = json.loads(text)
    assert {k: v for k, v in document.items() if k not in ("operations", "findings")} == {
        "format_version": 1,
        "owner": "medisync",
        "sources": ["topology.yaml"],
        "environment": None,
        "server": {"version": "2.15.1"},
        "options": {"prune": False, "adopt": False, "allow_replace": False, "allow_data_loss": False},
        "targets": [],
        "summary": {"create": 1, "update": 2, "replace": 2, "delete": 1, "errors": 1, "has_changes": True},
    }
    operations = document["operations"]
    assert [(o["action"], o["kind"], o["name"], o["stream"], o["adopt"]) for o in operations] == [
        ("create", "stream", "ORDERS", None, False),
        ("update", "stream", "EVENTS", None, False),
        ("update", "stream", "BILLING", None, True),
        ("replace", "consumer", "etl-notifier", "EVENTS", False),
        ("replace", "stream", "AUDIT", None, False),
        ("delete", "stream", "OLD", None, False),
    ]
    create, update, _, replace_consumer, replace_stream, delete = operations
    assert create["before"] is None and create["after"]["max_age"] == 7 * DAY and create["changes"] == []
    assert update["changes"][0] == {"path": "max_age", "old": 7 * DAY, "new": 14 * DAY, "forces_replacement": False,
                                 "drift": False}
    assert update["before"] == {"max_age": 7 * DAY, "max_bytes": GiB} and update["data_at_risk"] is None
    assert replace_consumer["forces_replacement"] == ["deliver_policy"]
    assert replace_stream["data_at_risk"] == {"messages": 1234, "bytes": 5452595, "consumers": 2, "estimate": []}
    assert delete["after"] is None and delete["before"] == {"name": "OLD"}
    assert delete["data_at_risk"] == {"messages": 10, "bytes": 1024, "consumers": 0, "estimate": []}
    assert document["findings"][2] == {
        "kind": "consumer", "name": "x", "stream": "EVENTS",
        "severity": "error", "reason": "impossible", "message": "deny_delete cannot be turned off",
    }


def test_json_exact_for_a_small_plan():
    plan = Plan(
        operations=[DeleteResource(Ref("consumer", "c", "S"), {"durable_name": "c", "ack_wait": 30 * S})],
        owner="medisync",
        environment="dev",
    )
    assert render_json(plan) == """\
{
  "environment": "dev",
  "findings": [],
  "format_version": 1,
  "operations": [
    {
      "action": "delete",
      "adopt": false,
      "after": null,
      "before": {
        "ack_wait": 30000000000,
        "durable_name": "c"
      },
      "changes": [],
      "data_at_risk": null,
      "forces_replacement": [],
      "kind": "consumer",
      "migration": null,
      "name": "c",
      "stream": "S"
    }
  ],
  "options": {
    "adopt": false,
    "allow_data_loss": false,
    "allow_replace": false,
    "prune": false
  },
  "owner": "medisync",
  "server": {},
  "sources": [],
  "summary": {
    "create": 0,
    "delete": 1,
    "errors": 0,
    "has_changes": true,
    "replace": 0,
    "update": 0
  },
  "targets": []
}
"""


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_same_plan_renders_byte_identical_whatever_the_dict_order(fmt):
    plan = full_plan()
    reordered = full_plan()
    config = reordered.operations[0].config
    settings = reordered.operations[0].settings
    reordered.operations[0] = CreateResource(
        reordered.operations[0].ref, dict(reversed(list(config.items()))), dict(reversed(list(settings.items())))
    )
    assert render(plan, fmt, color=False) == render(plan, fmt, color=False) == render(reordered, fmt, color=False)


def test_render_dispatches_on_format_and_refuses_unknown_ones():
    plan = full_plan()
    assert render(plan, "text", color=True) == render_text(plan, color=True)
    assert render(plan, "json", color=True) == render_json(plan)
    assert render(plan, "markdown", color=True) == render_markdown(plan)
    with pytest.raises(TopologyError, match="unknown plan format 'yaml': use one of text, json, markdown"):
        render(plan, "yaml", color=False)


def test_markdown_details_follow_the_tables_order():
    update = UpdateResource(Ref("stream", "EVENTS"), {"name": "EVENTS", "max_age": DAY}, {"name": "EVENTS", "max_age": 2 * DAY},
                            (FieldChange("max_age", DAY, 2 * DAY),))
    create = CreateResource(Ref("consumer", "new-one", "EVENTS"), {"durable_name": "new-one", "description": "d"},
                            {"description": "d"})
    out = render_markdown(Plan(operations=[update, create], owner="medisync", sources=["t.yaml"]))
    assert out.index("| update | stream `EVENTS`") < out.index("| create | consumer `EVENTS/new-one`")
    assert out.index("Update stream <code>EVENTS</code>") < out.index("Create consumer <code>EVENTS/new-one</code>")


# -- pull-request comments of any size ---------------------------------------


def _updates(n: int, changes: int = 3, name: str = "S") -> list[UpdateResource]:
    """n stream updates of ``changes`` fields each: cheap to render, so big plans stay fast to test."""
    return [
        UpdateResource(Ref("stream", f"{name}{i:05d}"), {}, {},
                       tuple(FieldChange(f"metadata.key{j}", f"old-{i}-{j}", f"new-{i}-{j}") for j in range(changes)))
        for i in range(n)
    ]


def test_markdown_of_a_big_plan_fits_a_comment_with_the_whole_table_and_says_what_it_summarised():
    plan = Plan(operations=_updates(400), owner="medisync", sources=["topology.yaml"])
    assert len(render_markdown(plan, limit=10**9)) > 100_000  # the whole would not fit
    out = render_markdown(plan, saved_as="plan.json")
    assert len(out) <= 65_536
    lines = out.splitlines()
    assert lines[0] == "<!-- medisync-topology plan owner=medisync -->"
    assert lines[1].startswith("Topology plan for owner `medisync`") and lines[3].startswith("**Plan:** 0 to create, 400")
    row = "| update | stream `S{:05d}` | changes: `metadata.key0`, `metadata.key1`, `metadata.key2` |"
    assert all(row.format(i) in out for i in range(400))  # every row of the table, whole
    summarised = out.count(" (summarised)")
    assert 0 < summarised < 400 and out.count("<details>") == 400 - summarised
    assert lines[5] == (
        f"**This plan is too long for one comment** (65,536 characters): the details of {summarised:,} of 400 "
        "resources are summarised, largest first. "
        "The full plan: the saved plan `plan.json` (`topology show plan.json` prints it)."
    )
    assert "Update stream `S00399`: 3 changes (summarised)" in out and "<summary>Update stream <code>S00000</code>" in out
    # A thousand: the table counts the fields instead of naming them, and keeps every row.
    out = render_markdown(Plan(operations=_updates(1000), owner="medisync"))
    assert len(out) <= 65_536 and all(f"| update | stream `S{i:05d}` | 3 changes |" in out for i in range(1000))
    assert "; the table counts the changed fields." in out


def test_markdown_summarises_the_largest_details_first():
    small = _updates(30, changes=1)
    large = _updates(3, changes=40, name="BIG")
    plan = Plan(operations=small[:10] + large + small[10:], owner="o")
    whole = render_markdown(plan, limit=10**9)
    out = render_markdown(plan, limit=len(whole) - 100)
    assert len(out) <= len(whole) - 100
    summarised = [line.split("`")[1] for line in out.splitlines() if line.endswith("(summarised)")]
    assert summarised == ["BIG00000"]  # the first of the three equally large ones was enough
    assert out.count("<details>") == 32


def test_markdown_never_exceeds_the_limit_whatever_the_plan_and_cuts_the_table_last():
    for limit in (3_000, 9_000, 65_536):
        for n in (1, 40, 400):
            plan = Plan(operations=_updates(n, changes=n % 7 + 1), owner="o",
                        findings=[Finding(Ref("stream", f"X{i}"), "error", "impossible", "no " * 20) for i in range(n)])
            out = render_markdown(plan, limit=limit)
            assert len(out) <= limit, (limit, n)
            assert out.startswith("<!-- medisync-topology plan owner=o -->\n") and "**Plan cannot be applied**" in out
    plan = Plan(operations=_updates(2_000), owner="o")
    out = render_markdown(plan, limit=20_000)
    assert len(out) <= 20_000 and "<details>" not in out and " (summarised)" not in out
    shown = out.count("| update | stream `S")
    assert 200 < shown < 2_000
    assert f"| update | stream `S00000` | 3 changes |" in out
    assert f"| … | {2_000 - shown:,} more | not shown: see the full plan |" in out
    assert (f"the details of 2,000 are left out; the table counts the changed fields; {2_000 - shown:,} of 2,000 rows "
            "of the table are left out. The full plan: `topology plan` itself, or `topology plan --format json`.") in out


def test_markdown_lists_every_deletion_and_replacement_in_a_caution_alert_above_the_table():
    deletes = [DeleteResource(Ref("consumer", f"c{i}", "S"), {}) for i in range(3)]
    plan = Plan(operations=[*_updates(1), *deletes], owner="o")
    out = render_markdown(plan)
    alert = "> [!CAUTION]\n> **Destructive: 3 to delete**\n>\n" + "".join(
        f"> - **Deletes consumer `S/c{i}`**\n" for i in range(3))
    assert alert in out and out.index(alert) < out.index("| Action |")
    assert "| **delete** | consumer `S/c0` |" in out
    many = Plan(operations=[DeleteResource(Ref("stream", f"OLD{i}"), {}, DataAtRisk(5, 100)) for i in range(2000)], owner="o")
    out = render_markdown(many)
    assert len(out) <= 65_536 and "> - … and " in out and " more resources (see the full plan)" in out
