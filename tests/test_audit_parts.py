"""Every apply leaves its audit record: an event larger than a message may be (the server's max_payload
from its INFO, or the AUDIT stream's max_msg_size) is stored as parts sharing the apply's id, each within
the limit, together holding every operation (issue 12). Against real servers."""

import asyncio
import base64
import json

import pytest
from click.testing import CliRunner
from natsserver import raw_js_api, start_server

from medisync_topology.apply import ApplyResult, Outcome
from medisync_topology.audit import audit_event, audit_messages, publish_audit
from medisync_topology.client import JetStreamClient
from medisync_topology.connectoptions import ConnectOptions
from medisync_topology.cli import main
from medisync_topology.ops import FieldChange, Plan, Ref, UpdateResource

SUBJECT = "medisync.audit.topology.applied"
SMALL = 16 * 1024  # a server configured with max_payload: 16KB


@pytest.fixture(params=[None, SMALL], ids=["default-1MiB", "max_payload-16KiB"])
def server(request, tmp_path):
    server = start_server(tmp_path / "nats", config=f"max_payload: {request.param}" if request.param else "")
    raw_js_api(server.url, "STREAM.CREATE.AUDIT", {"name": "AUDIT", "subjects": ["medisync.audit.>"]})
    yield server, request.param or 1024 * 1024
    server.stop()


def stored(url) -> list[tuple[int, dict]]:
    """(size, event) of each message the AUDIT stream holds, oldest first."""
    state = raw_js_api(url, "STREAM.INFO.AUDIT")["state"]
    messages = [raw_js_api(url, "STREAM.MSG.GET.AUDIT", {"seq": seq})["message"]["data"]
                for seq in range(state["first_seq"], state["last_seq"] + 1)] if state["messages"] else []
    return [(len(data), json.loads(data)) for data in map(base64.b64decode, messages)]


def updates(count: int) -> tuple[Plan, ApplyResult]:
    ops = [UpdateResource(Ref("consumer", f"c{i:05d}", "EVENTS"), {"max_deliver": 5}, {"max_deliver": 6},
                          (FieldChange("max_deliver", 5, 6),)) for i in range(count)]
    return Plan(operations=ops, owner="medisync"), ApplyResult([Outcome(op, "done") for op in ops])


def test_5000_updates_are_stored_in_parts_within_max_payload_none_missing(server):
    nats, limit = server
    plan, result = updates(5000)
    event = audit_event(plan, result, ConnectOptions(server=nats.url), topology_hash="sha256:x", commit=None)
    assert len(json.dumps(event)) > 1024 * 1024  # one message would exceed even the default max_payload

    async def publish():
        async with JetStreamClient(ConnectOptions(server=nats.url)) as client:
            return await publish_audit(client, SUBJECT, event)

    parts, warning = asyncio.run(publish())
    assert warning is None
    messages = stored(nats.url)
    assert len(messages) == parts > 1 and all(size <= limit for size, _ in messages)
    assert {e["id"] for _, e in messages} == {event["id"]} and {e["type"] for _, e in messages} == {"topology.applied"}
    assert [(e["payload"]["part"], e["payload"]["parts"]) for _, e in messages] == [(i, parts) for i in range(1, parts + 1)]
    assert all(e["payload"]["owner"] == "medisync" and e["payload"]["topology_hash"] == "sha256:x" for _, e in messages)
    assert [op for _, e in messages for op in e["payload"]["operations"]] == event["payload"]["operations"]


def test_an_apply_on_a_small_server_leaves_its_record_in_parts(tmp_path, monkeypatch):
    nats = start_server(tmp_path / "nats", config="max_payload: 4KB")
    try:
        consumers = "\n".join(f"      c{i:02d}: {{filter_subject: medisync.etl.c{i:02d}, ack_policy: explicit}}" for i in range(40))
        (tmp_path / "topology.yaml").write_text(
            "version: 1\nowner: medisync\naudit: {subject: medisync.audit.topology.applied}\nstreams:\n"
            "  AUDIT: {subjects: [medisync.audit.>]}\n  EVENTS:\n    subjects: [medisync.etl.>]\n    consumers:\n" + consumers + "\n")
        monkeypatch.chdir(tmp_path)
        result = CliRunner().invoke(main, ["apply", "--auto-approve", "-s", nats.url, "--format", "json"])
        assert result.exit_code == 0 and "Warning" not in result.output, result.output
        audit = json.loads(result.stdout)["audit"]
        messages = stored(nats.url)
        assert len(messages) == audit["parts"] > 1 and all(size <= 4096 for size, _ in messages)
        assert {e["id"] for _, e in messages} == {audit["id"]}
        assert len([op for _, e in messages for op in e["payload"]["operations"]]) == 42
    finally:
        nats.stop()


def test_the_audit_streams_max_msg_size_bounds_the_parts_too(tmp_path):
    nats = start_server(tmp_path / "nats")
    try:
        raw_js_api(nats.url, "STREAM.CREATE.AUDIT", {"name": "AUDIT", "subjects": ["medisync.audit.>"], "max_msg_size": 2048})
        plan, result = updates(50)
        event = audit_event(plan, result, ConnectOptions(server=nats.url), topology_hash="sha256:x", commit=None)

        async def publish():
            async with JetStreamClient(ConnectOptions(server=nats.url)) as client:
                return await publish_audit(client, SUBJECT, event)

        parts, warning = asyncio.run(publish())
        assert warning is None and parts > 1
        assert [op for _, e in stored(nats.url) for op in e["payload"]["operations"]] == event["payload"]["operations"]
    finally:
        nats.stop()


def test_an_operation_larger_than_any_message_keeps_its_paths():
    plan, result = updates(1)
    big = "x" * 5000
    plan.operations[0] = UpdateResource(Ref("stream", "S"), {"description": ""}, {"description": big},
                                        (FieldChange("description", "", big),))
    result = ApplyResult([Outcome(plan.operations[0], "done")])
    event = audit_event(plan, result, ConnectOptions(), topology_hash="sha256:x", commit=None)
    [message] = audit_messages(event, 2048)
    assert len(message) <= 2048
    [operation] = json.loads(message)["payload"]["operations"]
    assert operation["changes"] == [{"path": "description", "forces_replacement": False}]
    assert operation["values_omitted"] == "larger than the server's max_payload"
