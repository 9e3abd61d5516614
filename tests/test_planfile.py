"""Saved plans: `plan --out FILE` then `apply FILE`, against real servers; the file format round trip."""

import json
import textwrap

import pytest
from click.testing import CliRunner
from conftest import topology_cli
from natsserver import start_server

from medisync_topology.cli import main
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
from medisync_topology.planfile import PlanFileError, SavedPlan, load_plan, save_plan

BASE = """
version: 1
owner: medisync
streams:
  EVENTS:
    subjects: [medisync.etl.>]
    max_age: 7d
    consumers:
      etl-notifier:
        filter_subject: medisync.etl.*.completed
        ack_policy: explicit
"""
LATER = BASE.replace("max_age: 7d", "max_age: 14d")


@pytest.fixture
def apply_saved(nats_server, monkeypatch):
    """``apply_saved(path, *args)``: `topology apply PATH` against this test's server -> (exit code, output)."""
    monkeypatch.setenv("NATS_URL", nats_server.url)

    def invoke(path, *args):
        result = CliRunner().invoke(main, ["apply", str(path), "--no-color", *args])
        assert "Traceback" not in result.output, result.output
        return result.exit_code, result.output

    return invoke


def saved_plan(run, tmp_path, text, *args):
    path = tmp_path / "plan.json"
    code, out = run(text, "plan", "--out", str(path), "--no-color", *args)
    assert code == 0 and f"Saved the plan to {path}" in out, out
    return path


def test_a_saved_plan_applies_exactly_its_operations_without_asking(run, apply_saved, tmp_path, js_api):
    path = saved_plan(run, tmp_path, BASE)
    # The file changes after planning: the saved plan still applies what was planned, no more.
    (tmp_path / "topology.yaml").write_text(textwrap.dedent(BASE + "  OTHER:\n    subjects: [other.>]\n"))
    code, out = apply_saved(path)
    assert code == 0, out
    assert "Apply complete: 2 created, 0 updated, 0 replaced, 0 deleted." in out
    assert "Do you want to perform these actions?" not in out
    assert sorted(js_api("STREAM.NAMES")["streams"]) == ["EVENTS", "KV_medisync_topology_lock"]
    assert js_api("CONSUMER.INFO.EVENTS.etl-notifier")["config"]["filter_subject"] == "medisync.etl.*.completed"


def test_an_update_saved_then_applied(run, apply_saved, tmp_path, js_api):
    run(BASE, "apply", "--auto-approve")
    path = saved_plan(run, tmp_path, LATER)
    code, out = apply_saved(path)
    assert code == 0 and "stream EVENTS: updated" in out, out
    assert js_api("STREAM.INFO.EVENTS")["config"]["max_age"] == 14 * 86400 * 10**9


def test_a_stale_plan_is_refused_naming_what_changed(run, apply_saved, tmp_path, js_api):
    run(BASE, "apply", "--auto-approve")
    later = LATER.replace("ack_policy: explicit", "ack_policy: explicit\n        description: notifies")
    path = saved_plan(run, tmp_path, later + "  OTHER:\n    subjects: [other.>]\n")
    config = js_api("STREAM.INFO.EVENTS")["config"]
    js_api("STREAM.UPDATE.EVENTS", {**config, "max_age": 3600 * 10**9, "description": "changed by hand"})
    js_api("STREAM.CREATE.THEIRS", {"name": "THEIRS", "subjects": ["other.theirs.>"]})  # would collide with OTHER
    js_api("STREAM.CREATE.LEGACY", {"name": "LEGACY", "subjects": ["legacy.>"]})  # the plan does not care
    js_api("CONSUMER.DELETE.EVENTS.etl-notifier")
    code, out = apply_saved(path)
    assert code == 1
    assert out == (
        f"Error: {path} is stale; live JetStream changed since the plan was made:\n"
        "  consumer EVENTS/etl-notifier was deleted since the plan was made\n"
        "  stream EVENTS changed since the plan was made: description, max_age\n"
        "  stream THEIRS appeared since the plan was made\n"
        "Nothing was applied; make a new plan.\n"
    )
    assert js_api("STREAM.INFO.EVENTS")["config"]["max_age"] == 3600 * 10**9


def test_a_plan_is_stale_only_when_something_it_depends_on_changed(run, apply_saved, tmp_path, js_api):
    run(BASE, "apply", "--auto-approve")
    path = saved_plan(run, tmp_path, LATER + "  OTHER:\n    subjects: [other.>]\n")
    # Another team's streams elsewhere in the account, and a consumer the plan does not touch.
    js_api("STREAM.CREATE.BILLING", {"name": "BILLING", "subjects": ["billing.>"]})
    js_api("CONSUMER.CREATE.BILLING.invoices", {"stream_name": "BILLING", "config": {"durable_name": "invoices"}})
    js_api("CONSUMER.DELETE.EVENTS.etl-notifier")
    code, out = apply_saved(path)
    assert code == 0 and "stream EVENTS: updated" in out and "stream OTHER: created" in out, out


def test_a_pruning_plan_depends_on_every_resource_of_its_owner(run, apply_saved, tmp_path, js_api):
    run(BASE, "apply", "--auto-approve")
    path = saved_plan(run, tmp_path, LATER, "--prune")
    js_api("STREAM.CREATE.UNOWNED", {"name": "UNOWNED", "subjects": ["unowned.>"]})
    ours = {"name": "OURS", "subjects": ["ours.>"], "metadata": {"medisync-topology.owner": "medisync"}}
    js_api("STREAM.CREATE.OURS", ours)
    code, out = apply_saved(path)
    assert code == 1 and "  stream OURS appeared since the plan was made\n" in out and "UNOWNED" not in out, out
    js_api("STREAM.DELETE.OURS")
    assert apply_saved(path)[0] == 0  # without the pruning plan's owner's new stream it holds again


def test_a_plan_applied_once_is_stale_the_second_time(run, apply_saved, tmp_path):
    path = saved_plan(run, tmp_path, BASE)
    assert apply_saved(path)[0] == 0
    code, out = apply_saved(path)
    assert code == 1 and "stream EVENTS appeared since the plan was made" in out


def test_message_counts_do_not_make_a_plan_stale(run, apply_saved, tmp_path, publish):
    run(BASE, "apply", "--auto-approve")
    path = saved_plan(run, tmp_path, LATER)
    publish("medisync.etl.tally.completed", b"{}")
    code, out = apply_saved(path)
    assert code == 0, out


def test_a_plan_edited_by_hand_is_refused(run, apply_saved, tmp_path, js_api):
    path = saved_plan(run, tmp_path, BASE)
    document = json.loads(path.read_text())
    document["plan"]["operations"][0]["after"]["max_age"] = 1
    path.write_text(json.dumps(document, indent=2))
    code, out = apply_saved(path)
    assert code == 1
    assert out == (
        f"Error: {path} was changed after it was written (its checksum does not match): "
        "a saved plan is applied exactly as it was made and reviewed; make a new plan\n"
    )
    assert js_api("STREAM.NAMES")["streams"] in (None, [])  # refused before connecting


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda text: text[: len(text) // 2], "is not a plan file: it is not valid JSON (truncated or corrupt?)"),
        (lambda text: "[1, 2]", "is not a plan file made by `topology plan --out`"),
        (lambda text: text.replace('"format_version": 1', '"format_version": 2'),
         "is plan file format 2, but this topology (0.1.0) reads format 1: make the plan again with this version"),
    ],
    ids=["truncated", "not-a-plan", "other-version"],
)
def test_a_corrupt_or_foreign_plan_file_is_refused(run, apply_saved, tmp_path, damage, message):
    path = saved_plan(run, tmp_path, BASE)
    path.write_text(damage(path.read_text()))
    code, out = apply_saved(path)
    assert (code, out) == (1, f"Error: {path} {message}\n")


@pytest.mark.parametrize("content, message", [
    (None, "is larger than the limit of 64 MiB for a plan file"),  # /dev/zero: endless, read no further than the limit
    ("[" * 100_000 + "]" * 100_000, "is not a plan file: it is not valid JSON (truncated or corrupt?)"),  # was a RecursionError
], ids=["endless", "nested"])
def test_a_hostile_plan_file_is_refused_without_a_runaway(apply_saved, tmp_path, content, message):
    path = "/dev/zero" if content is None else tmp_path / "plan.json"
    if content is not None:
        path.write_text(content)
    code, out = apply_saved(path)
    assert (code, out) == (1, f"Error: {path} {message}\n")


def test_a_missing_plan_file_is_a_clean_error(apply_saved, tmp_path):
    code, out = apply_saved(tmp_path / "nope.json")
    assert code == 1 and out.startswith(f"Error: cannot read plan file {tmp_path / 'nope.json'}: ")


def test_a_plan_made_against_another_server_is_refused(run, apply_saved, tmp_path, monkeypatch):
    path = saved_plan(run, tmp_path, BASE)
    planned_on = json.loads(path.read_text())["target"]
    other = start_server(tmp_path / "other", name="elsewhere")
    try:
        monkeypatch.setenv("NATS_URL", other.url)
        result = CliRunner().invoke(main, ["apply", str(path)])
    finally:
        other.stop()
    assert result.exit_code == 1
    assert (
        f"Error: {path} was made against server {planned_on['server_name']!r}, account '$G' at {planned_on['url']}, "
        f"but this connection reaches server 'elsewhere', account '$G' at {other.url}: "
        "a saved plan applies only where it was made; make a new plan against this server\n"
    ) == result.output


def test_the_file_records_where_it_came_from_and_no_secret(nats_server, tmp_path, monkeypatch):
    secured = start_server(tmp_path / "secured", config='authorization { user: deployer, password: "s3cret-pw" }')
    try:
        path = tmp_path / "plan.json"
        run = topology_cli(secured.url.replace("nats://", "nats://deployer:s3cret-pw@"), tmp_path, monkeypatch)
        code, out = run(BASE, "plan", "--out", str(path))
    finally:
        secured.stop()
    assert code == 0, out
    text = path.read_text()
    assert "s3cret-pw" not in text
    document = json.loads(text)
    assert document["target"]["url"] == secured.url.replace("nats://", "nats://deployer:***@")
    assert document["target"]["account"] == "$G" and document["target"]["server_version"]
    assert document["options"] == {"prune": False, "adopt": False, "allow_replace": False, "allow_data_loss": False,
                                   "migrate": False, "targets": []}
    assert document["topology"]["sources"] == [str(tmp_path / "topology.yaml")]
    assert document["topology"]["hash"].startswith("sha256:") and document["tool_version"] == "0.1.0"


def test_options_are_fixed_when_the_plan_is_made(run, apply_saved, tmp_path):
    path = saved_plan(run, tmp_path, BASE)
    code, out = apply_saved(path, "--prune", "--adopt")
    assert code == 1 and out.startswith("Error: --prune, --adopt cannot be used with a saved plan")
    code, out = apply_saved(path, "-f", "topology.yaml")
    assert code == 1 and out.startswith("Error: -f cannot be used with a saved plan")


def test_a_replacing_plan_is_saved_only_with_allow_replace_and_then_applies(run, apply_saved, tmp_path, js_api):
    run(BASE, "apply", "--auto-approve")
    replacing = BASE.replace("max_age: 7d", "max_age: 7d\n    storage: memory")
    path = tmp_path / "plan.json"
    code, out = run(replacing, "plan", "--out", str(path))
    assert code == 1 and "Error: the plan replaces stream EVENTS, destroying their data; pass --allow-replace" in out
    assert "The plan was not saved." in out and not path.exists()
    path = saved_plan(run, tmp_path, replacing, "--allow-replace")
    assert json.loads(path.read_text())["options"]["allow_replace"] is True
    code, out = apply_saved(path)
    assert code == 0 and "stream EVENTS: replaced" in out, out
    assert js_api("STREAM.INFO.EVENTS")["config"]["storage"] == "memory"


def test_a_plan_with_errors_is_not_saved(run, tmp_path, js_api):
    js_api("STREAM.CREATE.EVENTS", {"name": "EVENTS", "subjects": ["medisync.etl.>"]})
    path = tmp_path / "plan.json"
    code, out = run(BASE, "plan", "--out", str(path))
    assert code == 1 and "--adopt takes it over" in out and f"it was not saved to {path}" in out
    assert not path.exists()


def test_every_kind_of_operation_reads_back_exactly(tmp_path):
    config = {"name": "S", "subjects": ["s.>"], "max_age": 0, "metadata": {"medisync-topology.owner": "o"}}
    change = FieldChange("max_age", 0, 10**9)
    plan = Plan(
        operations=[
            CreateResource(Ref("stream", "S"), config),
            UpdateResource(Ref("consumer", "c", "S"), {"durable_name": "c"}, {"durable_name": "c", "max_deliver": 5},
                           (FieldChange("max_deliver", None, 5),), adopt=True),
            ReplaceResource(Ref("key_value", "cache"), config, {**config, "storage": "memory"},
                            (change, FieldChange("storage", "file", "memory", True)), DataAtRisk(3, 300, 1)),
            DeleteResource(Ref("object_store", "files"), config, DataAtRisk(0, 0)),
            DeleteResource(Ref("consumer", "old", "S"), {"durable_name": "old"}),
        ],
        findings=[Finding(Ref("stream", "LEGACY"), "note", "unmanaged", "stream LEGACY is not managed")],
        owner="o", sources=["topology.yaml"], environment="prod", server={"version": "2.15.1"},
        options={"prune": True, "adopt": True, "allow_replace": True},
    )
    saved = SavedPlan(plan, plan.options, "sha256:x",
                      {"server_name": "n1", "url": "nats://h:4222"}, {"stream S": config}, "audit.subject", "abc123")
    path = tmp_path / "plan.json"
    save_plan(path, saved)
    assert load_plan(path) == saved


def test_a_bad_structure_with_a_good_checksum_is_damaged_not_a_traceback(tmp_path):
    from medisync_topology.planfile import _canonical, _sha256

    document = {"format": "medisync-topology plan", "format_version": 1, "plan": {}}
    document["checksum"] = _sha256(_canonical(document))
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(document))
    with pytest.raises(PlanFileError, match=r"plan.json is damaged: KeyError"):
        load_plan(path)


def test_a_cluster_is_one_target_whichever_node_is_reached(nats_cluster, tmp_path, monkeypatch):
    text = BASE.replace("EVENTS", "PLANNED_ON_N1").replace("medisync.etl", "planned.etl")
    path = tmp_path / "plan.json"
    code, out = topology_cli(nats_cluster[0].url, tmp_path, monkeypatch)(text, "plan", "--out", str(path))
    assert code == 0, out
    assert json.loads(path.read_text())["target"]["cluster"] == "medisync-test"
    monkeypatch.setenv("NATS_URL", nats_cluster[1].url)
    result = CliRunner().invoke(main, ["apply", str(path)])
    assert result.exit_code == 0 and "Apply complete: 2 created" in result.output, result.output


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_show_renders_a_saved_plan_offline_exactly_as_plan_did(nats_server, tmp_path, monkeypatch, fmt):
    monkeypatch.setenv("NATS_URL", nats_server.url)
    (tmp_path / "topology.yaml").write_text(textwrap.dedent(BASE))
    path = tmp_path / "plan.json"
    args = ["-f", str(tmp_path / "topology.yaml"), "--format", fmt, "--no-color", "--out", str(path), "--prune"]
    planned = CliRunner().invoke(main, ["plan", *args])
    assert planned.exit_code == 0, planned.output
    monkeypatch.setenv("NATS_URL", "nats://127.0.0.1:1")  # offline: nothing listens there
    shown = CliRunner().invoke(main, ["show", str(path), "--format", fmt, "--no-color"])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout == planned.stdout and "EVENTS" in shown.stdout
    if fmt == "markdown":
        assert "planned with `--prune` (without `--adopt`, `--allow-replace`, `--allow-data-loss`)" in shown.stdout


def test_show_refuses_what_apply_refuses(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text("{")
    result = CliRunner().invoke(main, ["show", str(path)])
    assert result.exit_code == 1
    assert result.output == f"Error: {path} is not a plan file: it is not valid JSON (truncated or corrupt?)\n"
