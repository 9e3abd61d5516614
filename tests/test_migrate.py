"""Migrating a stream instead of destroying it, against a real nats-server: no message lost, consumers
resume where they stood, publishers refused (never acknowledged and then lost) during the swaps."""

import asyncio
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nats
import pytest
from click.testing import CliRunner
from nats.errors import NoRespondersError, TimeoutError as NatsTimeout

from medisync_topology import migrate, migrator
from medisync_topology.buckets import LOCK_STREAM
from medisync_topology.cli import main
from natsserver import raw_js_api

ORDERS = """
version: 1
owner: medisync
streams:
  ORDERS:
    subjects: [orders.>]
    duplicate_window: 1m
    replace: migrate
    consumers:
      billing: {ack_policy: explicit, filter_subject: orders.created}
      audit: {ack_policy: explicit}
"""
TO_MEMORY = ORDERS.replace("duplicate_window: 1m", "duplicate_window: 1m\n    storage: memory")


async def _publish_all(url: str, count: int, start: int = 0) -> None:
    nc = await nats.connect(url)
    try:
        for i in range(start, start + count):
            subject = "orders.created" if i % 2 == 0 else "orders.paid"
            ack = await nc.request(subject, b"order %d" % i, timeout=5, headers={"Nats-Msg-Id": f"id-{i}", "n": str(i)})
            assert b"error" not in ack.data, ack.data
    finally:
        await nc.close()


async def _consume(url: str, durable: str, count: int, stream: str = "ORDERS") -> list[bytes]:
    """Fetch and acknowledge ``count`` messages of the consumer, in order."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe_bind(durable, stream)
        got = []
        while len(got) < count:
            for msg in await sub.fetch(count - len(got), timeout=5):
                got.append(msg.data)
                await msg.ack_sync()
        return got
    finally:
        await nc.close()


async def _stored(url: str, stream: str) -> list[tuple[str, dict, bytes]]:
    """Every message of the stream, in order: (subject, headers, payload)."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        out = []
        seq = info.state.first_seq
        while seq <= info.state.last_seq:
            msg = await js.get_msg(stream, seq, next=True)
            out.append((msg.subject, dict(msg.headers or {}), msg.data))
            seq = msg.seq + 1
        return out
    finally:
        await nc.close()


async def _publish_through(url: str, stop: asyncio.Event, subject: str = "orders.created") -> tuple[list[int], int]:
    """Publish with retries until ``stop``: the numbers the server acknowledged, and how many publishes it refused."""
    nc = await nats.connect(url)
    acked, refused, i = [], 0, 10_000
    try:
        while not stop.is_set():
            while True:
                try:
                    ack = await nc.request(subject, b"order %d" % i, timeout=2,
                                           headers={"Nats-Msg-Id": f"id-{i}"})
                except (NoRespondersError, NatsTimeout):
                    refused += 1
                    await asyncio.sleep(0.001)
                    continue
                if b"error" in ack.data:
                    refused += 1
                    continue
                acked.append(i)
                break
            i += 1
            await asyncio.sleep(0)
        return acked, refused
    finally:
        await nc.close()


def _migrates(server) -> bool:
    """Migrations (and stream renames) need nats-server 2.14 or newer; the plan refuses them on older lines."""
    return tuple(int(part) for part in server.version.split(".")[:2]) >= migrate.RESET_VERSION[:2]


def _refused_here(run, text: str, server) -> bool:
    """On a line before 2.14: the plan and the apply of ``text`` refuse its migration up front, saying why, and
    the server is left as it was (True). On 2.14 and newer: False, and the test goes on to migrate."""
    if _migrates(server):
        return False
    before = raw_js_api(server.url, "STREAM.LIST")["streams"]
    for command in (["plan"], ["apply", "--auto-approve"]):
        code, out = run(text, *command)
        assert code == 1, out
        assert (f"a migration needs nats-server 2.14 or newer, which keeps consumer positions with CONSUMER.RESET"
                in out and f"this server is {server.version}" in out), out
    after = raw_js_api(server.url, "STREAM.LIST")["streams"]
    assert [(s["config"], s["state"]["messages"]) for s in after] == [(s["config"], s["state"]["messages"]) for s in before]
    return True


def _sixty_orders(run, server) -> list | None:
    """ORDERS applied with 60 messages, billing having acknowledged orders 0..18: the messages stored; None on a line
    that refuses migrations (``_refused_here`` asserted it)."""
    assert run(ORDERS, "apply", "--auto-approve")[0] == 0
    asyncio.run(_publish_all(server.url, 60))
    before = asyncio.run(_stored(server.url, "ORDERS"))
    asyncio.run(_consume(server.url, "billing", 10))
    return None if _refused_here(run, TO_MEMORY, server) else before


def _apply_with_a_publisher(run, text: str, url: str, subject: str = "orders.created"):
    """Apply ``text`` while a publisher keeps publishing, retrying refusals: ((code, output), (acked, refused))."""

    async def scenario():
        stop = asyncio.Event()
        publisher = asyncio.create_task(_publish_through(url, stop, subject))
        await asyncio.sleep(0.05)
        result = await asyncio.to_thread(run, text, "apply", "--auto-approve")
        await asyncio.sleep(0.05)
        stop.set()
        return result, await publisher

    return asyncio.run(scenario())


@contextlib.contextmanager
def _apply_paused_before(step: str, text: str, workdir: Path, url: str, **env: str):
    """`topology apply` of ``text`` as a process of its own (``env`` added to its environment), stopped (SIGSTOP,
    migrator's test hook) before the migration's ``step``: yields the process, which SIGCONT lets go on; its
    stderr so far is ``process.seen``."""
    path = workdir / "topology.yaml"
    path.write_text(textwrap.dedent(text))
    env = {**os.environ, "NATS_URL": url, migrator.PAUSE_VARIABLE: step, "PYTHONPATH": str(Path(__file__).parents[1]),
           **env}
    process = subprocess.Popen([sys.executable, "-c", "from medisync_topology.cli import main; main()", "apply",
                                "--auto-approve", "-f", str(path)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline, process.seen = time.monotonic() + 30, ""
        while "paused before step" not in process.seen:
            assert time.monotonic() < deadline and process.poll() is None, process.seen
            if select.select([process.stderr], [], [], 0.1)[0]:
                process.seen += process.stderr.readline()
        while Path(f"/proc/{process.pid}/stat").read_text().split(") ")[1][0] != "T":  # until it has stopped
            assert time.monotonic() < deadline, process.seen
            time.sleep(0.01)
        yield process
    finally:
        process.kill()
        process.wait()


def _finish(process) -> tuple[int, str]:
    out, rest = process.communicate(timeout=60)
    return process.returncode, out + process.seen + rest


def _apply_stopped_before(step: str, text: str, workdir: Path, url: str, how: signal.Signals) -> tuple[int, str]:
    """Apply ``text`` in a process of its own and send it ``how`` before the migration's ``step`` (SIGKILL: the
    tool killed; SIGINT: Ctrl-C): (exit code, output)."""
    with _apply_paused_before(step, text, workdir, url) as process:
        process.send_signal(how)
        process.send_signal(signal.SIGCONT)
        return _finish(process)


def _lock_expired(js_api) -> None:
    """A killed apply's lock expires a minute after its last refresh (lock.py); the tests do not wait for it."""
    js_api(f"STREAM.PURGE.{LOCK_STREAM}")


def _killed_and_restarted(step: str, text: str, workdir: Path, server, js_api, monkeypatch) -> None:
    """Apply ``text``, the tool killed (SIGKILL) before ``step``; then the server restarted."""
    code, out = _apply_stopped_before(step, text, workdir, server.url, signal.SIGKILL)
    assert code == -signal.SIGKILL, out
    if step == "swap in":  # ORDERS' subjects are on the holding subject: publishes refused, never lost
        assert _refused_publish(server.url)
    _lock_expired(js_api)
    server.restart()
    monkeypatch.setenv("NATS_URL", server.url)


def _refused_publish(url: str, subject: str = "orders.created") -> bool:
    """Whether a publish is refused outright (no stream takes the subject), rather than acknowledged."""

    async def publish():
        nc = await nats.connect(url)
        try:
            await nc.request(subject, b"while interrupted", timeout=1)
            return False
        except (NoRespondersError, NatsTimeout):
            return True
        finally:
            await nc.close()

    return asyncio.run(publish())


def test_plan_shows_the_migration_and_its_costs(run, nats_url, nats_server):
    assert run(ORDERS, "apply", "--auto-approve")[0] == 0
    asyncio.run(_publish_all(nats_url, 100))
    asyncio.run(_consume(nats_url, "billing", 10))
    if _refused_here(run, TO_MEMORY, nats_server):
        return
    code, out = run(TO_MEMORY, "plan", "--no-color")
    assert code == 0, out
    assert "-/+ replace stream ORDERS   (migrates 100 messages; 2 consumers keep their position)" in out
    assert 'storage:  "file" -> "memory"   # forces replacement' in out
    assert "sequence numbers change: 1..100 become 1..100" in out
    assert f"refused twice, each time for at most {migrate.SWAP_TIMEOUT:g}s" in out
    assert "destroys" not in out and "to create" in out and "consumer ORDERS/billing" not in out.split("#")[0]


def test_migration_keeps_every_message_and_consumer_positions(run, nats_url, js_api, nats_server):
    assert run(ORDERS, "apply", "--auto-approve")[0] == 0
    asyncio.run(_publish_all(nats_url, 100))
    before = asyncio.run(_stored(nats_url, "ORDERS"))
    assert asyncio.run(_consume(nats_url, "billing", 20)) == [b"order %d" % i for i in range(0, 40, 2)]
    if _refused_here(run, TO_MEMORY, nats_server):
        return

    code, out = run(TO_MEMORY, "apply", "--auto-approve")
    assert code == 0, out
    assert "stream ORDERS: replaced (migrated 100 messages in" in out and "publishes refused" in out
    info = js_api("STREAM.INFO.ORDERS")
    assert info["config"]["storage"] == "memory" and "sources" not in info["config"]
    after = asyncio.run(_stored(nats_url, "ORDERS"))
    # Subject, payload and the publisher's headers, in order; the copy adds where it came from.
    assert [(s, {k: v for k, v in h.items() if k != "Nats-Stream-Source"}, d) for s, h, d in after] == before
    assert all(h["Nats-Stream-Source"].startswith(migrate.temp_name("ORDERS") + " ") for _, h, _ in after)
    assert "ORDERS_migrating" not in js_api("STREAM.NAMES")["streams"]
    # billing acknowledged 0..38 (its first 20): it resumes at 40; audit acknowledged nothing: it starts at 0.
    assert asyncio.run(_consume(nats_url, "billing", 1)) == [b"order 40"]
    assert asyncio.run(_consume(nats_url, "audit", 1)) == [b"order 0"]
    code, out = run(TO_MEMORY, "plan", "--detailed-exitcode")
    assert code == 0 and "No changes." in out, out


def test_publisher_through_the_migration_loses_nothing_acknowledged(run, nats_url, nats_server):
    assert run(ORDERS, "apply", "--auto-approve")[0] == 0
    asyncio.run(_publish_all(nats_url, 500))
    if _refused_here(run, TO_MEMORY, nats_server):
        return

    (code, out), (acked, refused) = _apply_with_a_publisher(run, TO_MEMORY, nats_url)
    assert code == 0, out
    stored = asyncio.run(_stored(nats_url, "ORDERS"))
    payloads = [d for _, _, d in stored]
    assert payloads[:500] == [b"order %d" % i for i in range(500)]
    live = [int(p.split()[1]) for p in payloads[500:]]
    assert len(acked) > 10 and live == acked, (len(acked), len(live), refused)  # every acknowledged one, in order, once



@pytest.mark.parametrize("step", ["swap_in", "delete", "create", "swap_out", "consumers"])
def test_a_migration_interrupted_before_any_step_is_finished_by_the_next_apply(step, run, nats_url, js_api,
                                                                                monkeypatch, nats_server):
    before = _sixty_orders(run, nats_server)
    if before is None:
        return

    async def killed(self, *args):
        raise KeyboardInterrupt  # as Ctrl-C, or the tool killed, between two steps

    with monkeypatch.context() as patch:
        patch.setattr(migrator._Migration, step, killed)
        code, out = run(TO_MEMORY, "apply", "--auto-approve")
    assert code == 1 and "Apply interrupted (Ctrl-C)." in out, out
    assert migrate.temp_name("ORDERS") in js_api("STREAM.NAMES")["streams"]

    code, out = run(TO_MEMORY, "plan", "--no-color", "--prune")
    assert code == 0, out
    assert f"resumes an interrupted migration at step {step.replace('_', ' ')!r}" in out
    assert "ORDERS_migrating" not in out.split("-/+ replace stream ORDERS")[0] and "  - delete" not in out
    assert "Unmanaged" not in out and "Plan: 0 to create, 0 to update, 1 to replace, 0 to delete." in out
    code, out = run(TO_MEMORY, "apply", "--auto-approve", "--prune")
    assert code == 0, out
    assert migrate.temp_name("ORDERS") not in js_api("STREAM.NAMES")["streams"]
    after = asyncio.run(_stored(nats_url, "ORDERS"))
    assert [d for _, _, d in after] == [d for _, _, d in before]
    assert asyncio.run(_consume(nats_url, "billing", 1)) == [b"order 20"]
    assert run(TO_MEMORY, "plan", "--detailed-exitcode")[0] == 0


# Where the next plan finds the migration: once the new ORDERS exists it is a memory stream, which a standalone
# server does not keep over a restart, so the copy back from ORDERS_migrating (file storage) starts again.
@pytest.mark.parametrize("step, resumed", [("swap in", "swap in"), ("delete", "delete"), ("create", "create"),
                                           ("swap out", "create"), ("consumers", "create")])
def test_a_migration_killed_and_the_server_restarted_is_finished_by_the_next_apply(step, resumed, run, nats_server,
                                                                                    js_api, tmp_path, monkeypatch):
    before = _sixty_orders(run, nats_server)
    if before is None:
        return
    _killed_and_restarted(step, TO_MEMORY, tmp_path, nats_server, js_api, monkeypatch)
    code, out = run(TO_MEMORY, "plan", "--no-color", "--prune")
    assert code == 0, out
    assert f"resumes an interrupted migration at step {resumed!r}" in out
    assert "Unmanaged" not in out and "- delete" not in out
    code, out = run(TO_MEMORY, "apply", "--auto-approve", "--prune")
    assert code == 0, out
    assert migrate.temp_name("ORDERS") not in js_api("STREAM.NAMES")["streams"]
    after = asyncio.run(_stored(nats_server.url, "ORDERS"))
    assert [d for _, _, d in after] == [d for _, _, d in before]  # all 60, in order, once
    assert asyncio.run(_consume(nats_server.url, "billing", 1)) == [b"order 20"]
    assert run(TO_MEMORY, "plan", "--detailed-exitcode")[0] == 0


def _killed_inside_the_consumers_step(run, text: str, stream: str, workdir: Path, js_api, server,
                                      restart=None) -> list[bytes]:
    """Apply ``text``, the tool killed in its consumers step once audit is positioned on ``stream`` (the new one) and
    billing is not yet: meanwhile audit acknowledges 3 messages there (returned), and billing is created there as a run
    killed before positioning it leaves it (delivering from the start, unrecorded); then (the server restarted when
    ``restart``, a monkeypatch, is given) the next apply."""
    billing = js_api("CONSUMER.INFO.ORDERS.billing")["config"]
    with _apply_paused_before("consumer billing", text, workdir, server.url) as process:
        acked = asyncio.run(_consume(server.url, "audit", 3, stream))
        js_api(f"CONSUMER.CREATE.{stream}.billing", {"stream_name": stream, "config": billing, "action": "create"})
        assert asyncio.run(_consume(server.url, "billing", 1, stream)) == [b"order 0"]
    assert process.returncode == -signal.SIGKILL
    _lock_expired(js_api)
    if restart:
        server.restart()
        restart.setenv("NATS_URL", server.url)
    code, out = run(text, "apply", "--auto-approve")
    assert code == 0 and "resumes an interrupted " in out and "at step 'consumers'" in out, out
    return acked


def test_a_migration_killed_inside_its_consumers_step_keeps_the_consumers_it_positioned(run, nats_url, js_api,
                                                                                        tmp_path, nats_server):
    assert run(ORDERS, "apply", "--auto-approve")[0] == 0
    asyncio.run(_publish_all(nats_url, 30))
    asyncio.run(_consume(nats_url, "audit", 5))
    asyncio.run(_consume(nats_url, "billing", 4))  # orders 0, 2, 4, 6
    if _refused_here(run, TO_MEMORY, nats_server):
        return
    acked = _killed_inside_the_consumers_step(run, TO_MEMORY, "ORDERS", tmp_path, js_api, nats_server)
    assert acked == [b"order 5", b"order 6", b"order 7"]
    # audit goes on after what it acknowledged on the new stream; billing, recreated, after its old floor.
    assert asyncio.run(_consume(nats_url, "audit", 1)) == [b"order 8"]
    assert asyncio.run(_consume(nats_url, "billing", 1)) == [b"order 8"]
    assert migrate.temp_name("ORDERS") not in js_api("STREAM.NAMES")["streams"]
    assert run(TO_MEMORY, "plan", "--detailed-exitcode")[0] == 0


def _restarted_under_it(step: str, text: str, workdir: Path, server, monkeypatch) -> tuple[int, str]:
    """Apply ``text``, the server restarted while the tool waits before ``step``, then the tool going on (its
    request on the lost connection times out: after 1s, not the usual 5s)."""
    with _apply_paused_before(step, text, workdir, server.url, NATS_TIMEOUT="1s") as process:
        server.restart()
        monkeypatch.setenv("NATS_URL", server.url)
        process.send_signal(signal.SIGCONT)
        return _finish(process)


def test_a_migration_whose_server_restarts_under_it_is_finished_by_the_next_apply(run, nats_server, js_api, tmp_path,
                                                                                  monkeypatch):
    before = _sixty_orders(run, nats_server)
    if before is None:
        return
    # The run stops at its next request, saying so; the lock it could not release expires by itself. The new
    # ORDERS, a memory stream copying ORDERS_migrating back, did not survive the restart: the next apply copies the
    # messages back again.
    code, out = _restarted_under_it("swap out", TO_MEMORY, tmp_path, nats_server, monkeypatch)
    assert code == 1 and "stream ORDERS: replace FAILED: lost the connection to" in out and "Traceback" not in out, out
    _lock_expired(js_api)
    code, out = run(TO_MEMORY, "apply", "--auto-approve")
    assert code == 0 and "stream ORDERS: replaced" in out, out
    assert [d for _, _, d in asyncio.run(_stored(nats_server.url, "ORDERS"))] == [d for _, _, d in before]
    assert asyncio.run(_consume(nats_server.url, "billing", 1)) == [b"order 20"]


def test_a_stream_gone_under_a_running_migration_stops_it_and_the_next_apply_finishes(run, nats_url, js_api, tmp_path,
                                                                                      nats_server):
    assert run(ORDERS, "apply", "--auto-approve")[0] == 0
    asyncio.run(_publish_all(nats_url, 20))
    if _refused_here(run, TO_MEMORY, nats_server):
        return
    with _apply_paused_before("swap out", TO_MEMORY, tmp_path, nats_url) as process:
        js_api("STREAM.DELETE.ORDERS")  # the new ORDERS, as a memory stream is lost in a restart
        process.send_signal(signal.SIGCONT)
        code, out = _finish(process)
    assert code == 1 and "ORDERS disappeared during the migration (the server restarted?); run apply again" in out, out
    code, out = run(TO_MEMORY, "apply", "--auto-approve")
    assert code == 0 and "resumes an interrupted migration at step 'create'" in out, out
    assert js_api("STREAM.INFO.ORDERS")["state"]["messages"] == 20


def test_a_migration_stopped_by_ctrl_c_is_finished_by_the_next_apply(run, nats_url, js_api, tmp_path, nats_server):
    assert run(ORDERS, "apply", "--auto-approve")[0] == 0
    asyncio.run(_publish_all(nats_url, 30))
    if _refused_here(run, TO_MEMORY, nats_server):
        return
    code, out = _apply_stopped_before("create", TO_MEMORY, tmp_path, nats_url, signal.SIGINT)
    assert code == 1 and "Apply interrupted (Ctrl-C)." in out and "stream ORDERS" in out.split("Interrupted")[-1], out
    # The old ORDERS is deleted (the new one may be created: Ctrl-C cancels at the next request); the messages
    # are held in ORDERS_migrating.
    assert js_api(f"STREAM.INFO.{migrate.temp_name('ORDERS')}")["state"]["messages"] == 30
    code, out = run(TO_MEMORY, "apply", "--auto-approve")
    assert code == 0 and js_api("STREAM.INFO.ORDERS")["state"]["messages"] == 30, out


def test_a_saved_plan_made_with_migrate_applies_the_migration(run, nats_url, js_api, tmp_path, nats_server):
    plain = ORDERS.replace("    replace: migrate\n", "")
    assert run(plain, "apply", "--auto-approve")[0] == 0
    asyncio.run(_publish_all(nats_url, 30))
    changed = plain.replace("duplicate_window: 1m", "duplicate_window: 1m\n    storage: memory")
    code, out = run(changed, "plan", "--out", str(tmp_path / "destroys.json"))
    assert code == 1 and "--allow-replace" in out  # without --migrate the replacement destroys: refused
    if _refused_here(run, TO_MEMORY, nats_server):  # the same change, as a migration
        return
    code, out = run(changed, "plan", "--migrate", "--out", str(tmp_path / "plan.json"), "--no-color")
    assert code == 0 and "(migrates 30 messages; 2 consumers keep their position)" in out, out
    result = CliRunner().invoke(main, ["apply", str(tmp_path / "plan.json")])
    assert result.exit_code == 0 and "stream ORDERS: replaced (migrated 30 messages" in result.output, result.output
    assert js_api("STREAM.INFO.ORDERS")["state"]["messages"] == 30
    assert run(changed, "plan", "--detailed-exitcode")[0] == 0


def test_a_renamed_consumer_starts_where_the_old_one_stands(run, nats_url, js_api, nats_server):
    assert run(ORDERS, "apply", "--auto-approve")[0] == 0
    asyncio.run(_publish_all(nats_url, 20))
    asyncio.run(_consume(nats_url, "audit", 7))  # acknowledged orders 0..6
    renamed = ORDERS.replace("      audit: {ack_policy: explicit}", "      auditor: {ack_policy: explicit, renamed_from: audit}")
    code, out = run(renamed, "plan", "--no-color", "--prune")
    if not _migrates(nats_server):  # CONSUMER.RESET came with 2.14
        assert code == 1 and ("consumer ORDERS/auditor cannot take over the position of audit: that needs nats-server "
                              "2.14 or newer (CONSUMER.RESET)") in out, out
        return
    assert code == 0, out
    assert ("+ create consumer ORDERS/auditor   (renamed from audit: starts after its acknowledged floor, "
            "then audit is deleted)") in out
    assert "delete consumer ORDERS/audit" not in out and "Plan: 1 to create, 0 to update, 0 to replace, 0 to delete." in out
    code, out = run(renamed, "apply", "--auto-approve")
    assert code == 0 and "consumer ORDERS/auditor: created (renamed from audit, starting after stream sequence 7)" in out, out
    assert sorted(js_api("CONSUMER.NAMES.ORDERS")["consumers"]) == ["auditor", "billing"]
    assert asyncio.run(_consume(nats_url, "auditor", 1)) == [b"order 7"]
    assert run(renamed, "plan", "--detailed-exitcode")[0] == 0


def test_without_renamed_from_a_rename_is_a_create_and_a_delete_that_says_what_it_loses(run, nats_url):
    assert run(ORDERS, "apply", "--auto-approve")[0] == 0
    asyncio.run(_publish_all(nats_url, 20))
    asyncio.run(_consume(nats_url, "audit", 7))
    renamed = ORDERS.replace("      audit: {ack_policy: explicit}", "      auditor: {ack_policy: explicit}")
    code, out = run(renamed, "plan", "--no-color", "--prune")
    assert code == 0 and "+ create consumer ORDERS/auditor" in out and "- delete consumer ORDERS/audit" in out, out
    assert "(renamed from" not in out
    assert "loses 13 pending messages" in out.split("- delete consumer ORDERS/audit")[1].splitlines()[0]


def test_a_replicated_stream_migrates_on_a_3_node_cluster(nats_cluster, tmp_path, monkeypatch):
    from conftest import topology_cli

    url = nats_cluster[0].url
    run = topology_cli(",".join(node.url for node in nats_cluster), tmp_path, monkeypatch)
    replicated = ORDERS.replace("ORDERS:", "CLUSTERED:").replace("orders.", "clustered.").replace(
        "duplicate_window: 1m", "duplicate_window: 1m\n    num_replicas: 3")
    code, out = run(replicated, "apply", "--auto-approve")
    assert code == 0, out
    memory = replicated.replace("num_replicas: 3", "num_replicas: 3\n    storage: memory")
    if _refused_here(run, memory, nats_cluster[0]):
        return

    async def publish():
        nc = await nats.connect(url)
        for i in range(200):
            await nc.request("clustered.created", b"order %d" % i, timeout=5)
        js = nc.jetstream()
        sub = await js.pull_subscribe_bind("billing", "CLUSTERED")
        for msg in await sub.fetch(50, timeout=5):
            await msg.ack_sync()
        await nc.close()

    asyncio.run(publish())

    (code, out), (acked, _) = _apply_with_a_publisher(run, memory, url, "clustered.created")
    assert code == 0 and "stream CLUSTERED: replaced (migrated " in out, out
    payloads = [d for _, _, d in asyncio.run(_stored(url, "CLUSTERED"))]
    assert payloads[:200] == [b"order %d" % i for i in range(200)]
    assert acked and [int(p.split()[1]) for p in payloads[200:]] == acked  # every acknowledged publish, once, in order

    async def next_for_billing():
        nc = await nats.connect(url)
        sub = await nc.jetstream().pull_subscribe_bind("billing", "CLUSTERED")
        data = (await sub.fetch(1, timeout=5))[0].data
        await nc.close()
        return data

    assert asyncio.run(next_for_billing()) == b"order 50"


def test_a_migration_a_step_would_refuse_is_a_plan_error(run):
    sourcing = ORDERS + "  ALL:\n    sources: [{name: ORDERS}]\n    replace: migrate\n"
    assert run(sourcing, "apply", "--auto-approve")[0] == 0
    code, out = run(sourcing.replace("    sources: [{name: ORDERS}]", "    sources: [{name: ORDERS}]\n    storage: memory"),
                    "plan", "--no-color")
    assert code == 1, out
    assert "stream ALL cannot be migrated: the live stream has sources: they would be read again from the start" in out
    code, out = run(TO_MEMORY + "  ALL:\n    sources: [{name: ORDERS}]\n    replace: migrate\n", "plan", "--no-color")
    assert code == 1, out
    assert "stream ORDERS cannot be migrated: stream ALL mirrors or sources it, and would repeat or miss messages" in out


def test_the_duplicate_window_holds_the_ids_published_before_the_migration(run, nats_url, js_api, nats_server):
    assert run(ORDERS, "apply", "--auto-approve")[0] == 0
    asyncio.run(_publish_all(nats_url, 10))
    if _refused_here(run, TO_MEMORY, nats_server):
        return
    assert run(TO_MEMORY, "apply", "--auto-approve")[0] == 0

    async def retry(msg_id: str) -> dict:
        nc = await nats.connect(nats_url)
        ack = await nc.request("orders.created", b"again", timeout=5, headers={"Nats-Msg-Id": msg_id})
        await nc.close()
        return json.loads(ack.data)

    assert asyncio.run(retry("id-4")).get("duplicate") is True  # a retry of a publish made before the migration
    assert asyncio.run(retry("id-new")).get("duplicate") is None
    assert js_api("STREAM.INFO.ORDERS")["state"]["messages"] == 11
