"""A replace never deletes before the server has accepted what replaces it (probe.py), on a real server.

The plans here carry refusals the tool's own checks would report (validate and plan make them errors); the
findings are dropped to stand for a refusal no check foresees, so that apply meets the server's refusal itself.
"""

import asyncio
import threading
import time

import nats
import pytest

from medisync_topology.apply import apply_plan
from medisync_topology.client import JetStreamClient
from medisync_topology.connectoptions import ConnectOptions
from medisync_topology.loader import parse_document
from medisync_topology.model import build_topology
from medisync_topology.plan import make_plan

QUEUE = """\
version: 1
owner: medisync
streams:
  Q:
    subjects: [q.>]
{extra}    consumers:
      c: {{deliver_policy: {policy}, ack_policy: explicit}}
"""


def apply_unchecked(url, text):
    """Plan ``text`` against the server and apply it as if no check had found anything: the outcomes."""

    async def go():
        async with JetStreamClient(ConnectOptions(server=url)) as client:
            model, problems = build_topology(parse_document(text, "t.yaml"))
            assert problems == []
            plan = make_plan(model, await client.read_live())
            plan.findings = []
            return plan, await apply_plan(client, plan)

    return asyncio.run(go())


@pytest.fixture
def queue(run, publish):
    assert run(QUEUE.format(extra="", policy="last"), "apply", "--auto-approve")[0] == 0
    for i in range(5):
        publish(f"q.{i}", b"x")


def probes_left(js_api):
    return [n for n in js_api("STREAM.NAMES")["streams"] or [] if n.startswith("TOPOLOGY_PROBE_")]


def test_the_issue_example_workqueue_while_a_consumer_delivers_last(queue, nats_url, js_api):
    plan, result = apply_unchecked(nats_url, QUEUE.format(extra="    retention: workqueue\n", policy="last"))
    assert [op.action for op in plan.operations] == ["replace", "create"]
    failed = result.failed
    assert failed.operation.ref.name == "Q" and failed.err_code == 10101
    assert failed.error.startswith("the server refuses consumer Q/c, as it would be created after it: ")
    assert failed.error.endswith("nothing was deleted, stream Q is as it was")
    info = js_api("STREAM.INFO.Q")
    assert info["config"]["retention"] == "limits" and info["state"]["messages"] == 5
    assert js_api("CONSUMER.INFO.Q.c")["config"]["deliver_policy"] == "last"
    assert [o.status for o in result.outcomes] == ["failed", "not attempted"]
    assert probes_left(js_api) == []


def test_a_refused_consumer_replacement_leaves_the_consumer(queue, nats_url, js_api):
    # last_per_subject needs a filter subject (10094): the consumer would be deleted, then refused.
    plan, result = apply_unchecked(nats_url, QUEUE.format(extra="", policy="last_per_subject"))
    [op] = plan.operations
    assert op.action == "replace" and op.ref.kind == "consumer"
    assert result.failed.err_code == 10094
    assert result.failed.error.endswith("nothing was deleted, consumer Q/c is as it was")
    assert js_api("CONSUMER.INFO.Q.c")["config"]["deliver_policy"] == "last"
    assert [c["name"] for c in js_api("CONSUMER.LIST.Q")["consumers"]] == ["c"]  # no probe left


def test_a_refusal_the_probe_cannot_see_creates_the_old_config_again(run, nats_url, js_api, publish):
    # The probe's subjects sit under a prefix: a collision with a live stream shows only on the real create.
    text = "version: 1\nowner: medisync\nstreams:\n  A:\n    subjects: [{subjects}]\n{extra}"
    assert run(text.format(subjects="a.>", extra=""), "apply", "--auto-approve")[0] == 0
    publish("a.1", b"x")
    js_api("STREAM.CREATE.B", {"name": "B", "subjects": ["b.>"]})
    plan, result = apply_unchecked(nats_url, text.format(subjects="a.>, b.>", extra="    storage: memory\n"))
    assert result.failed.err_code == 10065
    assert result.failed.error.endswith("stream A was created again with its old config (its messages and consumers are lost)")
    assert js_api("STREAM.INFO.A")["config"]["storage"] == "file"
    assert probes_left(js_api) == []


def test_an_accepted_replacement_leaves_no_probe(queue, run, js_api):
    text = QUEUE.format(extra="    storage: memory\n", policy="last")
    code, out = run(text, "apply", "--auto-approve", "--allow-replace")
    assert code == 0, out
    assert js_api("STREAM.INFO.Q")["config"]["storage"] == "memory"
    assert js_api("CONSUMER.INFO.Q.c")["config"]["deliver_policy"] == "last"
    assert probes_left(js_api) == []


def test_a_push_consumer_probe_pushes_to_no_one(run, nats_url, js_api, publish):
    text = ("version: 1\nowner: medisync\nstreams:\n  P:\n    subjects: [p.>]\n    consumers:\n"
            "      push: {{deliver_subject: deliver.p, ack_policy: none, deliver_policy: {policy}}}\n")
    assert run(text.format(policy="new"), "apply", "--auto-approve")[0] == 0
    received, ready, stop = [], threading.Event(), threading.Event()

    async def note(msg):
        received.append(msg.subject)

    async def listen():
        nc = await nats.connect(nats_url)
        await nc.subscribe("deliver.p", cb=note)
        await nc.flush()
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.02)
        await nc.close()

    listener = threading.Thread(target=lambda: asyncio.run(listen()))
    listener.start()
    try:
        assert ready.wait(10)
        publish("p.1", b"x")
        deadline = time.monotonic() + 5
        while len(received) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        code, out = run(text.format(policy="all"), "apply", "--auto-approve", "--allow-replace")
        assert code == 0, out
        time.sleep(0.3)
    finally:
        stop.set()
        listener.join(10)
    # Once from the old consumer, once from the new one that delivers all; a probe on deliver.p would make it 3.
    assert len(received) == 2, received
