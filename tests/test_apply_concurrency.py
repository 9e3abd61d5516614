"""apply sends independent operations concurrently: against a real nats-server, the orders the server
insists on are kept, the first failure stops it, and deleting a stream takes its consumers along."""

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import nats
import pytest
from click.testing import CliRunner
from test_apply import converged

from medisync_topology.apply import Outcome, dependencies
from medisync_topology.cli import main
from medisync_topology.lock import LOCK_STREAM
from medisync_topology.ops import CreateResource, DeleteResource, Plan, Ref, UpdateResource
from medisync_topology.plan import OWNER_KEY
from medisync_topology.progress import Progress

OWNED = {"metadata": {OWNER_KEY: "medisync"}}


def streams_yaml(names: list[str], consumers: int = 0, extra: str = "") -> str:
    lines = ["version: 1", "owner: medisync", "streams:" if names else "streams: {}"]
    for name in names:
        lines += [f"  {name}:", f"    subjects: [{name.lower()}.>]"]
        if consumers:
            lines += ["    consumers:"] + [f"      c{j}: {{ack_policy: explicit}}" for j in range(consumers)]
    return "\n".join(lines) + "\n" + extra


@contextmanager
def requests_seen(url: str, subject: str):
    """The (subject, reply subject) of each message published on ``subject`` (a wildcard) while the block
    runs, in the order the server routed them: with ``>``, the JetStream API requests and their answers."""
    seen: list[tuple[str, str]] = []
    ready, stop = threading.Event(), threading.Event()

    async def listen() -> None:
        nc = await nats.connect(url)

        async def record(msg) -> None:
            seen.append((msg.subject, msg.reply))

        await nc.subscribe(subject, cb=record)
        await nc.flush()
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.01)
        await nc.flush()  # the server sends in order: what it sent before the PONG has arrived
        await nc.close()

    thread = threading.Thread(target=asyncio.run, args=(listen(),))
    thread.start()
    assert ready.wait(10)
    try:
        yield seen
    finally:
        stop.set()
        thread.join()


def answered_before_asked(seen: list[tuple[str, str]], first: str, then: str) -> bool:
    """The server answered the request on ``first`` before the request on ``then`` reached it."""
    subjects = [subject for subject, _ in seen]
    reply = seen[subjects.index(f"$JS.API.{first}")][1]
    return subjects.index(reply) < subjects.index(f"$JS.API.{then}")


def apply_observed(run, url: str, lines: list[str], orders: list[tuple[str, str]]) -> str:
    """Apply the topology ``lines``; each (first, then) request pair was answered before asked, and a plan after says
    No changes. The output."""
    text = "\n".join(lines) + "\n"
    with requests_seen(url, ">") as seen:
        code, out = run(text, "apply", "--auto-approve", "--no-color")
    assert code == 0, out
    assert all(answered_before_asked(seen, first, then) for first, then in orders)
    assert converged(run, text)
    return out


def test_many_creates_are_reported_in_plan_order_consumers_after_their_streams(run, nats_url):
    names = [f"S{i:03d}" for i in range(12)]  # 72 operations: all but 8 sent at once
    text = streams_yaml(names, consumers=5)
    with requests_seen(nats_url, ">") as seen:
        code, out = run(text, "apply", "--auto-approve", "--no-color")
    assert code == 0, out
    assert all(answered_before_asked(seen, f"STREAM.CREATE.{n}", f"CONSUMER.CREATE.{n}.c{j}") for n in names for j in range(5))
    done = [line for line in out.splitlines() if line.endswith(": created")]
    assert done == [f"stream {n}: created" for n in names] + [
        f"consumer {n}/c{j}: created" for n in names for j in range(5)
    ]
    assert "Apply complete: 72 created" in out
    assert converged(run, text)


def test_an_update_that_gives_up_subjects_goes_before_the_create_that_takes_them(run, js_api, nats_url):
    # Each A stream hands a.N.moved to a new Z stream: the server refuses Z (10065) while A still has it.
    for i in range(20):
        js_api(f"STREAM.CREATE.A{i:02d}", {"name": f"A{i:02d}", "subjects": [f"a.{i}.kept", f"a.{i}.moved"], **OWNED})
    lines = ["version: 1", "owner: medisync", "streams:"]
    for i in range(20):
        lines += [f"  A{i:02d}: {{subjects: [a.{i}.kept]}}", f"  Z{i:02d}: {{subjects: [a.{i}.moved]}}"]
    out = apply_observed(run, nats_url, lines, [(f"STREAM.UPDATE.A{i:02d}", f"STREAM.CREATE.Z{i:02d}") for i in range(20)])
    assert out.count(": updated") == 20 and out.count(": created") == 20


def test_a_consumer_filter_moves_before_another_consumer_of_a_workqueue_stream_takes_it(run, js_api, nats_url):
    # A workqueue stream refuses a consumer whose filter overlaps another's (10100): c1 must move off wq.N.a first.
    for i in range(10):
        js_api(f"STREAM.CREATE.WQ{i}", {"name": f"WQ{i}", "subjects": [f"wq.{i}.*"], "retention": "workqueue", **OWNED})
        js_api(f"CONSUMER.CREATE.WQ{i}.c1", {"stream_name": f"WQ{i}", "config": {
            "durable_name": "c1", "ack_policy": "explicit", "filter_subject": f"wq.{i}.a", **OWNED}})
    lines = ["version: 1", "owner: medisync", "streams:"]
    for i in range(10):
        lines += [f"  WQ{i}:", f"    subjects: [wq.{i}.*]", "    retention: workqueue", "    consumers:",
                  f"      c1: {{ack_policy: explicit, filter_subject: wq.{i}.b}}",
                  f"      c2: {{ack_policy: explicit, filter_subject: wq.{i}.a}}"]
    out = apply_observed(run, nats_url, lines, [(f"CONSUMER.CREATE.WQ{i}.c1", f"CONSUMER.CREATE.WQ{i}.c2") for i in range(10)])
    assert out.count(": updated") == 10 and out.count(": created") == 10


def test_the_first_failure_stops_new_requests_and_what_was_in_flight_is_reported(run, js_api, tmp_path):
    # A000 is refused at once (a transform with a mapping function the server does not know: 10156, 10049 before
    # 2.11), which
    # the plan does not foresee; 120 independent streams follow.
    names = [f"S{i:03d}" for i in range(120)]
    refused = "  A000:\n    subjects: [a000.>]\n    subject_transform: {src: a000.>, dest: 'x.{{nosuch()}}.>'}\n"
    (tmp_path / "topology.yaml").write_text(streams_yaml(names).replace("streams:\n", "streams:\n" + refused, 1))
    result = CliRunner().invoke(main, ["apply", "-f", str(tmp_path / "topology.yaml"), "--auto-approve", "--format", "json"])
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    outcomes = {op["name"]: op["outcome"] for op in document["operations"]}
    assert [op["name"] for op in document["operations"]] == ["A000", *names]  # plan order, every operation
    assert outcomes["A000"] == "failed" and document["error"].startswith("stream A000: ")
    done = {name for name, outcome in outcomes.items() if outcome == "done"}
    not_attempted = {name for name, outcome in outcomes.items() if outcome == "not attempted"}
    # At most the operations in flight with the failure were sent; the server has exactly what is reported done.
    assert len(not_attempted) >= 120 - 64 and done | not_attempted == set(names)
    assert set(js_api("STREAM.NAMES")["streams"]) - {LOCK_STREAM} == done
    assert document["summary"]["created"] == len(done) and document["summary"]["not_attempted"] == len(not_attempted)
    # Running it again, without the refused stream, converges.
    text = streams_yaml(names)
    code, out = run(text, "apply", "--auto-approve")
    assert code == 0 and f"{len(not_attempted)} created" in out
    assert converged(run, text)


def test_deleting_a_stream_takes_its_consumers_without_a_request_each(run, nats_server):
    names = [f"S{i:02d}" for i in range(10)]
    assert run(streams_yaml(names, consumers=3), "apply", "--auto-approve")[0] == 0
    # S00 stays but loses c2: that consumer delete is sent; the other streams' consumers go with their streams.
    keep = streams_yaml(["S00"], consumers=2)
    with requests_seen(nats_server.url, "$JS.API.*.DELETE.>") as seen:
        code, out = run(keep, "apply", "--auto-approve", "--prune", "--no-color")
    assert code == 0, out
    assert sorted(subject for subject, _ in seen) == ["$JS.API.CONSUMER.DELETE.S00.c2"] + [f"$JS.API.STREAM.DELETE.{n}" for n in names[1:]]
    deleted = [line for line in out.splitlines() if line.endswith(": deleted")]
    assert deleted == ["consumer S00/c2: deleted"] + [f"consumer {n}/c{j}: deleted" for n in names[1:] for j in range(3)] + [
        f"stream {n}: deleted" for n in reversed(names[1:])  # the plan deletes mirrors first: reverse name order
    ]
    assert "Apply complete: 0 created, 0 updated, 0 replaced, 37 deleted." in out
    assert converged(run, keep)


def test_waits_keep_the_orders_the_server_needs_and_point_only_backwards():
    owned = OWNED["metadata"]
    origin = CreateResource(Ref("stream", "ORIGIN"), {"name": "ORIGIN", "subjects": ["o.>"], "metadata": owned})
    mirror = CreateResource(Ref("stream", "MIRROR"), {"name": "MIRROR", "mirror": {"name": "ORIGIN"}})
    giver = UpdateResource(Ref("stream", "GIVER"), {"subjects": ["g.a", "g.b"]}, {"subjects": ["g.a"]}, ())
    taker = CreateResource(Ref("stream", "TAKER"), {"subjects": ["g.b"]})
    other = CreateResource(Ref("stream", "OTHER"), {"subjects": ["x.>"]})
    c1 = CreateResource(Ref("consumer", "c1", "MIRROR"), {})
    c2 = CreateResource(Ref("consumer", "c2", "MIRROR"), {})
    gone_consumer = DeleteResource(Ref("consumer", "c", "GONE"), {})
    gone_mirror = DeleteResource(Ref("stream", "GONE"), {"mirror": {"name": "GONE_ORIGIN"}})
    gone_origin = DeleteResource(Ref("stream", "GONE_ORIGIN"), {"subjects": ["go.>"]})
    ops = [gone_consumer, gone_mirror, gone_origin, origin, mirror, giver, taker, other, c1, c2]
    waits, carried = dependencies(ops)
    assert waits == [[1], [], [1], [], [3], [], [5], [], [4], [4, 8]]
    assert carried == {0}


def apply_on_a_terminal(url: str, path, env: dict) -> str:
    """`topology apply --auto-approve` with stdout on a pty, as a person sees it; everything printed."""
    controller, terminal = os.openpty()
    topology = Path(sys.executable).parent / "topology"
    process = subprocess.Popen([str(topology), "apply", "-f", str(path), "--server", url, "--auto-approve"],
                               stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal, env={**os.environ, **env})
    os.close(terminal)
    out = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the process closed the terminal's last writer
            break
        if not chunk:
            break
        out += chunk
    os.close(controller)
    assert process.wait(30) == 0, out
    return out.decode()


@pytest.mark.parametrize("term", ["xterm", "dumb"])
def test_on_a_terminal_many_operations_show_a_live_counter_instead_of_a_line_each(nats_url, tmp_path, term):
    path = tmp_path / "topology.yaml"
    path.write_text(streams_yaml([f"S{i:02d}" for i in range(10)], consumers=2))
    out = apply_on_a_terminal(nats_url, path, {"TERM": term, "NO_COLOR": "1"})
    assert "Apply complete: 30 created" in out
    assert "\x1b[" not in out  # no escape sequences: the counter goes back with \r and wipes with spaces
    if term == "dumb":  # a terminal that cannot go back to the start of a line gets the lines
        assert "stream S00: created" in out and "Applying:" not in out
    else:
        assert "stream S00: created" not in out
        assert re.search(r"\rApplying: 30/30 operations, \d+\.\ds, \d+/s *\r?\n", out), out


def test_the_counter_shows_done_of_total_elapsed_and_rate_and_failures_above_it():
    now = [0.0]
    written: list[tuple[str, bool]] = []
    failures: list[str] = []
    progress = Progress(lambda text, newline: written.append((text, newline)), failures.append, live=True,
                        clock=lambda: now[0])
    ops = [CreateResource(Ref("stream", f"S{i}"), {}) for i in range(40)]
    progress.start(Plan(operations=ops))
    assert written == [("\rApplying: 0/40 operations, 0.0s", False)]
    for i, op in enumerate(ops[:20]):
        now[0] = (i + 1) / 16  # redrawn every 0.1s, not per operation: every second one here
        progress.outcome(Outcome(op, "done"))
    assert [text for text, _ in written[1:]] == [f"\rApplying: {n}/40 operations, {n / 16:.1f}s, 16/s" for n in range(2, 21, 2)]
    progress.outcome(Outcome(ops[20], "failed", "refused (err_code 10052)"))
    assert failures == ["stream S20: create FAILED: refused (err_code 10052)"]
    assert written[-2][0] == "\r" + " " * len("Applying: 20/40 operations, 1.2s, 16/s") + "\r"
    assert written[-1][0] == "\rApplying: 21/40 operations, 1.2s, 17/s"
    progress.close()
    assert written[-1] == ("", True)
    few = Progress(lambda text, newline: written.append((text, newline)), failures.append, live=True)
    few.start(Plan(operations=ops[:3]))
    few.outcome(Outcome(ops[0], "done"))
    assert written[-1] == ("stream S0: created", True)
