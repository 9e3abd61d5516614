"""Drift told apart from change: apply records what it sent, plan says what changed outside the topology.

Hand changes are made as a person would make them, with nats-py's JetStream management API.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path

import nats
import pytest
from click.testing import CliRunner
from conftest import ONE_STREAM_TOPOLOGY

from medisync_topology import drift
from medisync_topology.cli import main
from medisync_topology.fields import APPLIED_KEY
from medisync_topology.ops import FieldChange, Plan, Ref, UpdateResource
from medisync_topology.plan import OWNER_KEY
from medisync_topology.render import COMMENT_LIMIT, render_markdown
from natsserver import start_server
from test_rules_server import BINARIES

# One stream with a consumer, a KV bucket and an object store: every kind of resource has metadata.
BASE = ONE_STREAM_TOPOLOGY.replace("    consumers:", "    max_age: 7d\n    consumers:").replace(
    "ack_policy: explicit}", "ack_policy: explicit, max_deliver: 5}"
) + "key_value:\n  agent-state: {history: 5}\nobject_stores:\n  documents: {max_bytes: 1GiB}\n"


def by_hand(url: str, change) -> None:
    """``change(js)``: edits made outside the topology, with nats-py's JetStream management API."""

    async def go() -> None:
        nc = await nats.connect(url)
        try:
            await change(nc.jetstream())
        finally:
            await nc.close()

    asyncio.run(go())


def set_stream(url: str, name: str, **values) -> None:
    async def change(js) -> None:
        config = (await js.stream_info(name)).config
        for key, value in values.items():
            setattr(config, key, value)
        await js.update_stream(config)

    by_hand(url, change)


def set_consumer(url: str, stream: str, name: str, **values) -> None:
    async def change(js) -> None:
        config = (await js.consumer_info(stream, name)).config
        for key, value in values.items():
            setattr(config, key, value)
        await js.add_consumer(stream, config)  # the same durable: an update

    by_hand(url, change)


def plan_json(run, text: str) -> dict:
    code, out = run(text, "plan", "--format", "json")
    assert code == 0, out
    return json.loads(out)


def changes(document: dict) -> dict[str, dict[str, bool]]:
    """{resource: {path: drift}} of every update and replace."""
    found = {}
    for op in document["operations"]:
        name = op["name"] if op["kind"] != "consumer" else f"{op['stream']}/{op['name']}"
        found[f"{op['kind']} {name}"] = {c["path"]: c["drift"] for c in op["changes"]}
    return found


def test_apply_records_what_it_sent_and_the_record_is_no_change(run, js_api):
    assert run(BASE, "apply", "--auto-approve")[0] == 0
    for subject in ("STREAM.INFO.EVENTS", "STREAM.INFO.KV_agent-state", "STREAM.INFO.OBJ_documents",
                    "CONSUMER.INFO.EVENTS.etl-notifier"):
        metadata = js_api(subject)["config"]["metadata"]
        record = json.loads(metadata[APPLIED_KEY])
        assert metadata[OWNER_KEY] == "medisync" and record and all(len(v) == drift.DIGEST_CHARS for v in record.values())
    assert run(BASE, "plan")[1].startswith("No changes.")
    code, out = run(BASE, "apply", "--auto-approve")  # apply twice changes nothing
    assert code == 0 and "No changes." in out


def test_a_field_changed_by_hand_is_drift_and_a_file_change_is_not(run, nats_url):
    assert run(BASE, "apply", "--auto-approve")[0] == 0
    set_stream(nats_url, "EVENTS", max_msgs=100)  # by hand
    asked = BASE.replace("max_age: 7d", "max_age: 14d")  # by the file, on another field of the same stream
    document = plan_json(run, asked)
    assert changes(document) == {"stream EVENTS": {"max_age": False, "max_msgs": True}}

    code, out = run(asked, "plan", "--no-color")
    assert code == 0, out
    section = out.split("Changed outside the topology")[1].split("~ update")[0]
    assert "stream EVENTS" in section and "max_msgs:  unlimited -> 100" in section and "max_age" not in section
    assert "max_msgs:  100 -> unlimited   # changed outside the topology" in out
    assert "max_age:   7d -> 14d\n" in out  # the file's change, unmarked

    code, out = run(asked, "plan", "--format", "markdown")
    assert code == 0, out
    drifted = out.split("**Changed outside the topology**")[1].split("\n\n|")[0]
    assert "- stream `EVENTS`: `max_msgs`: `unlimited` → `100`" in drifted and "max_age" not in drifted
    assert "- `max_msgs`: `100` → `unlimited` (changed outside the topology)" in out
    assert "- `max_age`: `7d` → `14d`\n" in out

    assert run(asked, "apply", "--auto-approve")[0] == 0
    assert run(asked, "plan")[1].startswith("No changes.")


def test_only_drift_is_all_drift_and_applying_sets_it_back(run, nats_url, js_api):
    assert run(BASE, "apply", "--auto-approve")[0] == 0
    set_consumer(nats_url, "EVENTS", "etl-notifier", max_deliver=9)
    set_stream(nats_url, "KV_agent-state", max_msgs_per_subject=2)  # the bucket's history
    set_stream(nats_url, "OBJ_documents", description="edited")
    assert changes(plan_json(run, BASE)) == {
        "consumer EVENTS/etl-notifier": {"max_deliver": True},
        "key_value agent-state": {"max_msgs_per_subject": True},
        "object_store documents": {"description": True},
    }
    code, out = run(BASE, "plan", "--no-color")
    section = out.split("Changed outside the topology")[1].split("  ~ update")[0]
    assert "key_value agent-state\n      history:  5 -> 2" in section  # under the file's own name
    assert "consumer EVENTS/etl-notifier\n      max_deliver:  5 -> 9" in section
    assert "object_store documents\n      description:  (absent) -> \"edited\"" in section
    assert run(BASE, "apply", "--auto-approve")[0] == 0
    assert js_api("CONSUMER.INFO.EVENTS.etl-notifier")["config"]["max_deliver"] == 5
    assert run(BASE, "plan")[1].startswith("No changes.")


def test_a_field_changed_by_hand_and_in_the_file_is_the_files_change(run, nats_url):
    assert run(BASE, "apply", "--auto-approve")[0] == 0
    set_stream(nats_url, "EVENTS", max_msgs=100)
    document = plan_json(run, BASE.replace("max_age: 7d", "max_age: 7d\n    max_msgs: 50"))
    assert changes(document) == {"stream EVENTS": {"max_msgs": False}}
    assert "Changed outside" not in run(BASE.replace("max_age: 7d", "max_age: 7d\n    max_msgs: 50"), "plan")[1]


def test_resources_applied_without_a_record_have_no_drift(run, nats_url, js_api):
    assert run(BASE, "apply", "--auto-approve")[0] == 0
    config = js_api("STREAM.INFO.EVENTS")["config"]
    config["metadata"] = {k: v for k, v in config["metadata"].items() if k == OWNER_KEY}  # as older versions left it
    js_api("STREAM.UPDATE.EVENTS", config)
    set_stream(nats_url, "EVENTS", max_msgs=100)
    assert changes(plan_json(run, BASE)) == {"stream EVENTS": {"max_msgs": False}}
    code, out = run(BASE, "plan")
    assert code == 0 and "max_msgs" in out and "Changed outside" not in out and "# changed outside" not in out


def test_drift_survives_a_saved_plan_and_show(nats_server, tmp_path, monkeypatch):
    monkeypatch.setenv("NATS_URL", nats_server.url)
    topology = tmp_path / "topology.yaml"
    topology.write_text(BASE)
    assert CliRunner().invoke(main, ["apply", "--auto-approve", "-f", str(topology)]).exit_code == 0
    set_stream(nats_server.url, "EVENTS", max_msgs=100)
    saved = tmp_path / "plan.json"
    planned = CliRunner().invoke(main, ["plan", "-f", str(topology), "--no-color", "--out", str(saved)])
    assert planned.exit_code == 0 and "# changed outside the topology" in planned.output
    monkeypatch.setenv("NATS_URL", "nats://127.0.0.1:1")  # offline
    shown = CliRunner().invoke(main, ["show", str(saved), "--no-color"])
    assert shown.exit_code == 0 and shown.stdout == planned.stdout
    as_json = CliRunner().invoke(main, ["show", str(saved), "--format", "json"])
    assert changes(json.loads(as_json.stdout)) == {"stream EVENTS": {"max_msgs": True}}
    monkeypatch.setenv("NATS_URL", nats_server.url)
    applied = CliRunner().invoke(main, ["apply", str(saved)])
    assert applied.exit_code == 0, applied.output
    replanned = CliRunner().invoke(main, ["plan", "-f", str(topology)])
    assert replanned.output.startswith("No changes.")


@pytest.mark.parametrize("binary", BINARIES, ids=lambda b: "default" if b == BINARIES[0] else Path(b).parent.parent.name)
def test_every_server_line_keeps_the_record_of_streams_and_consumers(binary, tmp_path, monkeypatch):
    """2.10 has metadata on streams and consumers; 2.11+ adds its own _nats.* keys beside ours."""
    server = start_server(tmp_path / "nats", binary=binary)
    try:
        monkeypatch.setenv("NATS_URL", server.url)
        topology = tmp_path / "topology.yaml"
        topology.write_text(textwrap.dedent(BASE.split("key_value:")[0]))
        assert CliRunner().invoke(main, ["apply", "--auto-approve", "-f", str(topology)]).exit_code == 0
        set_stream(server.url, "EVENTS", description="by hand")
        set_consumer(server.url, "EVENTS", "etl-notifier", max_deliver=9)
        planned = CliRunner().invoke(main, ["plan", "-f", str(topology), "--format", "json"])
        assert changes(json.loads(planned.stdout)) == {
            "stream EVENTS": {"description": True}, "consumer EVENTS/etl-notifier": {"max_deliver": True},
        }
    finally:
        server.stop()


def test_marked_needs_the_live_value_to_differ_from_the_record_and_the_files_to_equal_it():
    applied = {"max_age": drift.digest("max_age", 7), "subjects": drift.digest("subjects", ["b", "a"])}
    found = (
        FieldChange("max_age", 1, 7),  # changed by hand
        FieldChange("max_msgs", 5, None),  # set by hand where nothing was applied
        FieldChange("subjects", ["a", "c"], ["a", "b"]),  # applied in another order: the server ignores order
        FieldChange("max_bytes", None, 10),  # the file asks
    )
    assert [c.drift for c in drift.marked(found, applied)] == [True, True, True, False]
    assert not any(c.drift for c in drift.marked(found, None))  # no record, no drift
    assert drift.applied({"metadata": {APPLIED_KEY: "not json"}}) is None
    assert drift.digest("max_age", 7.0) == drift.digest("max_age", 7)


def test_the_record_is_the_same_text_as_the_one_servers_already_hold():
    """Records written by earlier versions stay readable: a digest is a promise, not an implementation detail."""
    assert drift.digest("subjects", ["b.>", "a.>"]) == "9f7514fc"  # an unordered list, sorted first
    assert drift.digest("metadata", {"z": "1", "a": "é"}) == "5539544d"  # keys sorted, not escaped to ASCII
    assert drift.digest("max_age", 60.0) == "042eeb1a"
    assert drift.record({"name": "S", "subjects": ["x"], "metadata": {"o": "p"}}) == (
        '{"metadata":"44d402b1","name":"0e808990","subjects":"27d1dcb2"}')


def test_a_markdown_plan_of_much_drift_still_fits_one_comment():
    ops = [UpdateResource(Ref("stream", f"S{i}"), {}, {}, (FieldChange("max_msgs", 100 + i, -1, drift=True),))
           for i in range(3000)]
    text = render_markdown(Plan(operations=ops, owner="medisync"))
    assert len(text) <= COMMENT_LIMIT
    drifted = text.split("**Changed outside the topology**")[1].split("\n\n|")[0]
    assert "- stream `S0`: `max_msgs`: `unlimited` → `100`" in drifted and "more fields (see the full plan)" in drifted
