"""Updates that destroy messages, and what deleted or replaced consumers lose: predicted by plan from live state,
refused without --allow-data-loss, and proven by what the real server holds after the apply."""

import asyncio
import json
import time

from pathlib import Path

import nats
import pytest
from conftest import topology_cli
from natsserver import raw_js_api, start_server
from test_rules_server import BINARIES

from medisync_topology.dataloss import LossFacts, format_timestamp, timestamp_ns, update_loss


def stream(name="S3", **fields):
    lines = "".join(f"    {k}: {v}\n" for k, v in fields.items())
    return f"version: 1\nowner: medisync\nstreams:\n  {name}:\n    subjects: [s3.>]\n{lines}"


def send(url: str, counts: dict[str, int], payload: bytes = b"x" * 20) -> None:
    """That many messages on each subject, over one connection, each acknowledged by the stream."""

    async def go() -> None:
        nc = await nats.connect(url)
        try:
            for subject, n in counts.items():
                for _ in range(n):
                    ack = json.loads((await nc.request(subject, payload, timeout=10)).data)
                    assert "error" not in ack, ack
        finally:
            await nc.close()

    asyncio.run(go())


@pytest.fixture
def fill(nats_url):
    """``fill({"s3.a": 10, ...})``: that many messages on each subject of this test's server."""
    return lambda counts: send(nats_url, counts)


def state(js_api, name="S3"):
    return js_api(f"STREAM.INFO.{name}")["state"]


def five_subjects(fill):
    fill({f"s3.{letter}": 10 for letter in "abcde"})


def test_the_issue_example_max_msgs_per_subject(run, js_api, fill):
    # From 10: a limit set where there was none is enforced at once only on newer lines (the test below).
    assert run(stream(max_msgs_per_subject=10), "apply", "--auto-approve")[0] == 0
    five_subjects(fill)
    before = state(js_api)
    changed = stream(max_msgs_per_subject=1)
    code, out = run(changed, "plan", "--no-color")
    assert code == 0, out
    size = round(before["bytes"] * 45 / 50 / 1024, 1)
    assert f"~ update stream S3   (destroys 45 messages, about {size} KiB)" in out, out
    code, out = run(changed, "plan", "--format", "json")
    [update] = json.loads(out)["operations"]
    assert update["action"] == "update"
    assert update["data_at_risk"] == {"messages": 45, "bytes": round(before["bytes"] * 0.9), "consumers": 0,
                                      "estimate": ["bytes"]}
    code, out = run(changed, "plan", "--format", "markdown")
    assert f"**Updates stream `S3`: destroys 45 messages, about {size} KiB**" in out
    # Without --allow-data-loss nothing is applied, and the error says what would be lost and how to allow it.
    code, out = run(changed, "apply", "--auto-approve", "--no-color")
    assert code == 1
    assert (f"Error: the plan updates stream S3 (destroys 45 messages, about {size} KiB); pass --allow-data-loss if "
            "that is what you want. Nothing was applied.") in out
    assert state(js_api)["messages"] == 50
    code, out = run(changed, "apply", "--auto-approve", "--allow-data-loss")
    assert code == 0, out
    assert state(js_api)["messages"] == 5  # the 45 the plan said
    assert run(changed, "plan", "--detailed-exitcode")[0] == 0


def test_max_age_and_max_msgs_per_subject_together_destroy_everything(run, js_api, fill):
    assert run(stream(), "apply", "--auto-approve")[0] == 0
    five_subjects(fill)
    size = state(js_api)["bytes"]
    time.sleep(1.1)
    changed = stream(max_msgs_per_subject=1, max_age="1s")
    code, out = run(changed, "plan", "--format", "json")
    assert json.loads(out)["operations"][0]["data_at_risk"] == {"messages": 50, "bytes": size, "consumers": 0,
                                                                 "estimate": []}
    assert run(changed, "apply", "--auto-approve", "--allow-data-loss")[0] == 0
    assert state(js_api)["messages"] == 0


def test_a_shorter_max_age_destroys_what_is_older(run, js_api, fill):
    assert run(stream(), "apply", "--auto-approve")[0] == 0
    fill({"s3.old": 20})
    time.sleep(2.2)
    fill({"s3.new": 10})
    changed = stream(max_age="2s")
    code, out = run(changed, "plan", "--format", "json")
    risk = json.loads(out)["operations"][0]["data_at_risk"]
    assert risk["messages"] == 20, risk
    assert run(changed, "apply", "--auto-approve", "--allow-data-loss")[0] == 0
    assert state(js_api)["messages"] == 10


@pytest.mark.parametrize(("discard", "kept"), [("old", 20), ("new", 50)])
def test_max_msgs_is_enforced_at_once_only_with_discard_old(run, js_api, fill, discard, kept):
    assert run(stream(discard=discard), "apply", "--auto-approve")[0] == 0
    fill({"s3.a": 50})
    changed = stream(discard=discard, max_msgs=20)
    code, out = run(changed, "plan", "--format", "json")
    risk = json.loads(out)["operations"][0]["data_at_risk"]
    assert risk == (None if discard == "new" else {"messages": 30, "bytes": risk["bytes"], "consumers": 0,
                                                   "estimate": ["bytes"]})
    args = ("--allow-data-loss",) if discard == "old" else ()
    code, out = run(changed, "apply", "--auto-approve", *args)
    assert code == 0, out
    assert state(js_api)["messages"] == kept


def test_max_bytes_cut_is_the_bytes_beyond_it(run, js_api, fill):
    assert run(stream(), "apply", "--auto-approve")[0] == 0
    fill({"s3.a": 100})
    size = state(js_api)["bytes"]
    changed = stream(max_bytes=size // 2)
    code, out = run(changed, "plan", "--format", "json")
    risk = json.loads(out)["operations"][0]["data_at_risk"]
    assert risk["bytes"] == size - size // 2 and risk["estimate"] == ["messages"]
    assert run(changed, "apply", "--auto-approve", "--allow-data-loss")[0] == 0
    assert abs(state(js_api)["messages"] - (100 - risk["messages"])) <= 1  # the estimate, one message either way


def test_interest_retention_without_consumers_keeps_nothing(run, js_api, fill, nats_server):
    assert run(stream(), "apply", "--auto-approve")[0] == 0
    fill({"s3.a": 10})
    changed = stream(retention="interest")
    code, out = run(changed, "plan", "--format", "json")
    # 2.15 drops what no consumer wants at once; older lines keep it until a consumer comes.
    dropped = tuple(int(part) for part in nats_server.version.split(".")) >= (2, 15, 0)
    risk = json.loads(out)["operations"][0]["data_at_risk"]
    assert (risk["messages"] if risk else 0) == (10 if dropped else 0)
    assert run(changed, "apply", "--auto-approve", *(["--allow-data-loss"] if dropped else []))[0] == 0
    assert state(js_api)["messages"] == (0 if dropped else 10)


def test_a_saved_plan_that_destroys_messages_needs_allow_data_loss(run, js_api, fill, tmp_path, nats_url, monkeypatch):
    from click.testing import CliRunner

    from medisync_topology.cli import main

    assert run(stream(max_msgs_per_subject=10), "apply", "--auto-approve")[0] == 0
    five_subjects(fill)
    path = tmp_path / "plan.json"
    changed = stream(max_msgs_per_subject=2)
    code, out = run(changed, "plan", "--out", str(path))
    assert code == 1 and "pass --allow-data-loss to save a plan that does. The plan was not saved." in out
    assert not path.exists()
    code, out = run(changed, "plan", "--out", str(path), "--allow-data-loss")
    assert code == 0, out
    result = CliRunner().invoke(main, ["apply", str(path), "--allow-data-loss"])
    assert result.exit_code == 1 and "--allow-data-loss cannot be used with a saved plan" in result.output
    result = CliRunner().invoke(main, ["apply", str(path)])
    assert result.exit_code == 0, result.output
    assert state(js_api)["messages"] == 10


def test_deleting_or_replacing_a_consumer_shows_what_it_loses(run, js_api, fill, nats_url):
    text = stream(consumers="{worker: {ack_policy: explicit}}")
    assert run(text, "apply", "--auto-approve")[0] == 0
    fill({"s3.a": 10})

    async def take_three() -> None:
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            sub = await js.pull_subscribe_bind("worker", "S3")
            messages = await sub.fetch(3, timeout=5)
            await messages[0].ack_sync()
        finally:
            await nc.close()

    asyncio.run(take_three())
    loses = ("loses 7 pending messages, 2 awaiting ack, its position (delivered to stream sequence 3, "
             "acknowledged to 1)")
    replaced = stream(consumers="{worker: {ack_policy: explicit, deliver_policy: new}}")
    code, out = run(replaced, "plan", "--no-color")
    assert f"-/+ replace consumer S3/worker   ({loses})" in out, out
    code, out = run(stream(), "plan", "--prune", "--format", "json")
    [delete] = json.loads(out)["operations"]
    assert delete["data_at_risk"] == {"pending": 7, "ack_pending": 2, "delivered_stream_seq": 3,
                                      "ack_floor_stream_seq": 1}
    code, out = run(stream(), "plan", "--prune", "--no-color")
    assert f"- delete consumer S3/worker   ({loses})" in out


# -- the pure parts ----------------------------------------------------


def test_timestamps_round_trip_in_nanoseconds():
    ns = timestamp_ns("2026-12-01T19:47:04.2860827Z")
    assert ns % 10**9 == 286082700
    assert format_timestamp(ns) == "2026-12-01T19:47:04.286082700Z"
    assert timestamp_ns("2026-12-01T21:47:04+02:00") == timestamp_ns("2026-12-01T19:47:04Z")


def test_an_update_that_raises_limits_destroys_nothing():
    facts = LossFacts({"messages": 50, "bytes": 5000, "first_seq": 1}, {"a": 50}, None)
    assert update_loss({"max_msgs_per_subject": 1}, {"max_msgs_per_subject": 100}, facts, {}) is None
    assert update_loss({"max_msgs": 10}, {"max_msgs": 100, "discard": "old"}, facts, {}) is None


def test_a_saved_plan_is_assessed_anew_when_applied(run, js_api, fill, tmp_path):
    from click.testing import CliRunner

    from medisync_topology.cli import main

    assert run(stream(max_msgs_per_subject=10), "apply", "--auto-approve")[0] == 0
    path = tmp_path / "plan.json"
    changed = stream(max_msgs_per_subject=2)
    assert run(changed, "plan", "--out", str(path))[0] == 0  # an empty stream: nothing to lose yet
    five_subjects(fill)  # message counts do not make a plan stale, but now the update destroys 40
    result = CliRunner().invoke(main, ["apply", str(path), "--no-color"])
    assert result.exit_code == 1, result.output
    assert ("the plan updates stream S3 (destroys 40 messages, about" in result.output
            and "it was saved without --allow-data-loss. Nothing was applied." in result.output)
    assert state(js_api)["messages"] == 50


@pytest.mark.parametrize("binary", BINARIES, ids=lambda b: "default" if b == BINARIES[0] else Path(b).parent.parent.name)
def test_each_server_line_destroys_what_plan_predicts(binary, tmp_path, monkeypatch):
    # 2.10 cannot look a message up by time: there the age cut is found by a binary search over sequences.
    server = start_server(tmp_path / "line", binary=binary)
    try:
        run = topology_cli(server.url, tmp_path, monkeypatch)
        assert run(stream(), "apply", "--auto-approve")[0] == 0
        send(server.url, {f"s3.{letter}": 10 for letter in "abcde"})
        time.sleep(1.1)
        send(server.url, {"s3.new": 3})
        changed = stream(max_msgs_per_subject=2, max_age="1s")
        code, out = run(changed, "plan", "--format", "json")
        risk = json.loads(out)["operations"][0]["data_at_risk"]
        version = tuple(int(part) for part in server.version.split("."))
        per_subject_at_once = version >= (2, 14, 2) or (2, 12, 10) <= version < (2, 14, 0)
        if per_subject_at_once:
            # The 50 older than a second go, and one of the three new: 51. The two cuts overlap by an amount only
            # the messages would tell, so the plan gives at most what both cut (53), as an estimate.
            assert risk["messages"] == 53 and "messages" in risk["estimate"], risk
        else:
            # Older stores compare the old limit with 0, not -1: a new max_msgs_per_subject waits for new messages.
            assert risk["messages"] == 50 and "messages" not in risk["estimate"], risk
        code, out = run(stream(max_age="1s"), "plan", "--format", "json")
        assert json.loads(out)["operations"][0]["data_at_risk"]["messages"] == 50  # the age cut alone, exact
        assert run(changed, "apply", "--auto-approve", "--allow-data-loss")[0] == 0
        assert raw_js_api(server.url, "STREAM.INFO.S3")["state"]["messages"] == (2 if per_subject_at_once else 3)
    finally:
        server.stop()
