"""Partial plans, --target KIND/NAME: the pure narrowing, and plan/apply on a real server."""

import json

import pytest
from conftest import ONE_STREAM_TOPOLOGY

from medisync_topology.errors import TopologyError
from medisync_topology.live import LiveState, LiveStream
from medisync_topology.loader import parse_document
from medisync_topology.model import build_topology
from medisync_topology.plan import OWNER_KEY, make_plan
from medisync_topology.targets import targeted

TEXT = ONE_STREAM_TOPOLOGY + """\
  BACKUP:
    mirror: {name: EVENTS}
  OTHER:
    subjects: [other.>]
    consumers:
      worker: {ack_policy: explicit}
key_value:
  cache: {}
"""


def topology(text=TEXT):
    topo, problems = build_topology(parse_document(text, "t.yaml"))
    assert not problems
    return topo


def refs(plan):
    return [str(op.ref) for op in plan.operations]


@pytest.mark.parametrize(("targets", "planned"), [
    (["stream/OTHER"], ["stream OTHER"]),
    (["stream/BACKUP"], ["stream EVENTS", "stream BACKUP"]),  # a mirror needs its origin
    (["consumer/EVENTS/etl-*"], ["stream EVENTS", "consumer EVENTS/etl-notifier"]),  # a consumer needs its stream
    (["key_value/c*", "stream/OTH*"], ["key_value cache", "stream OTHER"]),
    (["consumer/*/*"], ["stream EVENTS", "stream OTHER", "consumer EVENTS/etl-notifier", "consumer OTHER/worker"]),
])
def test_only_the_targets_and_what_they_need_are_planned(targets, planned):
    topo = topology()
    full = make_plan(topo, LiveState("2.15.1", {}))
    partial = targeted(full, topo, targets)
    assert refs(partial) == planned and partial.targets == targets
    assert targeted(full, topo, []) is full


def test_a_replaced_stream_takes_its_consumers_along():
    topo = topology()
    creates = make_plan(topo, LiveState("2.15.1", {}))
    live = {}
    for op in creates.operations:
        if op.ref.kind == "consumer":
            live[op.ref.stream].consumers[op.ref.name] = op.config
        else:
            config = {**op.config, "storage": "memory"} if op.ref.name == "OTHER" else op.config
            live[op.ref.stream_name] = LiveStream(config, {"messages": 0, "bytes": 0}, {})
    full = make_plan(topo, LiveState("2.15.1", live))
    assert refs(targeted(full, topo, ["stream/OTHER"])) == [op for op in refs(full) if "OTHER" in op]
    assert "consumer OTHER/worker" in refs(targeted(full, topo, ["stream/OTHER"]))


def test_live_resources_can_be_targeted_and_a_target_naming_nothing_is_an_error():
    topo = topology("version: 1\nowner: medisync\nstreams: {}\n")
    old = LiveStream({"name": "OLD", "subjects": ["old.>"], "metadata": {OWNER_KEY: "medisync"}}, {"messages": 1, "bytes": 9}, {})
    full = make_plan(topo, LiveState("2.15.1", {"OLD": old}), prune=True)
    assert refs(targeted(full, topo, ["stream/OLD"])) == ["stream OLD"]
    with pytest.raises(TopologyError, match="^--target stream/NEW names nothing in the topology or on the server$"):
        targeted(full, topo, ["stream/OLD", "stream/NEW"])
    for bad in ("streams/X", "consumer/EVENTS", "stream/", "stream/A/B"):
        with pytest.raises(TopologyError, match=f"^--target {bad}: give stream/NAME, consumer/STREAM/NAME"):
            targeted(full, topo, [bad])


def test_plan_and_apply_with_targets_on_a_server(run, js_api, tmp_path):
    code, out = run(TEXT, "plan", "--target", "stream/BACKUP", "--no-color")
    assert code == 0 and "Warning: This is a partial plan (--target stream/BACKUP)" in out
    assert "create stream BACKUP" in out and "create stream OTHER" not in out
    code, out = run(TEXT, "plan", "--target", "stream/OTHER", "--format", "json")
    assert json.loads(out)["targets"] == ["stream/OTHER"]
    code, out = run(TEXT, "plan", "--target", "stream/OTHER", "--format", "markdown")
    assert "> [!WARNING]\n> This is a partial plan (--target stream/OTHER)" in out
    code, out = run(TEXT, "apply", "--auto-approve", "--target", "consumer/OTHER/worker")
    assert code == 0 and "Apply complete: 2 created" in out, out
    assert sorted(js_api("STREAM.NAMES")["streams"]) == ["KV_medisync_topology_lock", "OTHER"]
    code, out = run(TEXT, "plan", "--target", "stream/NOPE*")
    assert code == 1 and out == "Error: --target stream/NOPE* names nothing in the topology or on the server\n"
    # A saved partial plan applies exactly what it planned, and takes no --target of its own.
    path = tmp_path / "plan.json"
    code, out = run(TEXT, "plan", "--target", "key_value/cache", "--out", str(path))
    assert code == 0, out
    code, out = run(TEXT, "apply", str(path), "--target", "stream/EVENTS")
    assert code == 1 and "Error: --target, -f cannot be used with a saved plan" in out
