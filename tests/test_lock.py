"""The apply lock on a real server: exclusion, waiting, release after failure and cancellation, expiry."""

import asyncio
import base64
import getpass
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medisync_topology.client import JetStreamClient
from medisync_topology.connectoptions import ConnectOptions
from medisync_topology.buckets import LOCK_STREAM
from medisync_topology.lock import ApplyLock, LockHeld

BASE = """
version: 1
owner: medisync
streams:
  EVENTS:
    subjects: [medisync.etl.>]
"""
TOPOLOGY = Path(sys.executable).parent / "topology"


def held_by_someone(url: str) -> bool:
    """Whether a fresh contender is refused at once."""

    async def attempt() -> bool:
        options = ConnectOptions(server=url)
        async with JetStreamClient(options) as client:
            try:
                async with ApplyLock(client, options):
                    return False
            except LockHeld:
                return True

    return asyncio.run(attempt())


def test_two_library_applies_never_overlap_and_the_second_fails_fast_naming_the_holder(nats_server):
    options = ConnectOptions(server=nats_server.url, user=None)
    spans = []

    async def one_apply(wait: float) -> None:
        async with JetStreamClient(options) as client:
            async with ApplyLock(client, options, wait=wait):
                start = time.monotonic()
                await asyncio.sleep(0.5)
                spans.append((start, time.monotonic()))

    async def race():
        first = asyncio.create_task(one_apply(0))
        await asyncio.sleep(0.2)
        with pytest.raises(LockHeld) as held:
            await one_apply(0)
        await asyncio.gather(first, one_apply(5), one_apply(5))
        return held.value

    held = asyncio.run(race())
    assert str(held).startswith(
        f"another apply holds the lock on the account used without credentials: OS user {getpass.getuser()} "
        f"on host {socket.gethostname()} (pid {os.getpid()}, NATS identity: no credentials, topology 0.1.0) since 20"
    )
    assert "wait for it with --lock-timeout DURATION" in str(held)
    assert held.holder["pid"] == os.getpid()
    spans.sort()
    assert len(spans) == 3 and all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans


def test_two_cli_applies_racing_one_fails_fast_one_waits(nats_server, tmp_path):
    """Real processes: one apply holds the lock while asking for confirmation on a pty; a second
    fails fast naming it, a third waits with --lock-timeout and applies once the first is answered."""
    path = tmp_path / "topology.yaml"
    path.write_text(BASE)
    env = {**os.environ, "NATS_URL": nats_server.url, "PYTHONUNBUFFERED": "1"}
    controller, terminal = os.openpty()

    async def race():
        first = await asyncio.create_subprocess_exec(
            str(TOPOLOGY), "apply", "-f", str(path), "--no-color", stdin=terminal,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env)
        seen = b""
        while b"Enter a value" not in seen:  # holding the lock, waiting for "yes"
            seen += await asyncio.wait_for(first.stdout.read(200), 20)
        second = await asyncio.create_subprocess_exec(
            str(TOPOLOGY), "apply", "-f", str(path), "--auto-approve", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        fast = (await asyncio.wait_for(second.communicate(), 20))[0].decode()
        third = await asyncio.create_subprocess_exec(
            str(TOPOLOGY), "apply", "-f", str(path), "--auto-approve", "--lock-timeout", "20s", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        waiting = await asyncio.wait_for(third.stderr.readline(), 20)
        os.write(controller, b"yes\n")
        first_out = seen + (await asyncio.wait_for(first.communicate(), 20))[0]
        third_out, third_err = await asyncio.wait_for(third.communicate(), 30)
        return second.returncode, fast, waiting.decode(), first.returncode, first_out.decode(), third.returncode, third_out.decode()

    try:
        code2, fast, waiting, code1, out1, code3, out3 = asyncio.run(race())
    finally:
        os.close(controller)
        os.close(terminal)
    assert code2 == 1 and fast.startswith("Error: another apply holds the lock on the account used without credentials: OS user "), fast
    assert "Plan:" not in fast  # it read nothing and planned nothing
    assert waiting.startswith("Waiting up to 20s for the apply lock: held by OS user ")
    assert code1 == 0 and "Apply complete: 1 created" in out1, out1
    assert code3 == 0 and "No changes." in out3, out3  # planned after the first finished


def test_the_lock_is_released_after_a_failed_apply(run, js_api, nats_server):
    # A transform with a mapping function the server does not know: refused, and the plan does not foresee it.
    refused = BASE.replace("  EVENTS:\n", "  EVENTS:\n    subject_transform: {src: medisync.etl.>, dest: 'x.{{nosuch()}}.>'}\n", 1)
    code, out = run(refused, "apply", "--auto-approve")
    assert code == 1 and "create FAILED" in out
    assert not held_by_someone(nats_server.url)


def test_the_lock_is_released_after_a_refused_plan(run, js_api, nats_server):
    js_api("STREAM.CREATE.EVENTS", {"name": "EVENTS", "subjects": ["medisync.etl.>"]})
    code, out = run(BASE, "apply", "--auto-approve")
    assert code == 1 and "--adopt takes it over" in out
    assert not held_by_someone(nats_server.url)


def test_the_lock_is_released_when_the_apply_is_cancelled(nats_server):
    options = ConnectOptions(server=nats_server.url)

    async def cancelled_while_holding() -> bool:
        async with JetStreamClient(options) as client:
            entered = asyncio.Event()

            async def holder():
                async with ApplyLock(client, options):
                    entered.set()
                    await asyncio.sleep(60)

            task = asyncio.create_task(holder())
            await entered.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return True

    assert asyncio.run(cancelled_while_holding())
    assert not held_by_someone(nats_server.url)


def test_a_crashed_runs_lock_expires_and_a_live_one_is_refreshed(nats_server):
    options = ConnectOptions(server=nats_server.url)
    ttl = 10**9  # one second

    async def scenario():
        async with JetStreamClient(options) as alive, JetStreamClient(options) as crashed, JetStreamClient(options) as other:
            live_lock = ApplyLock(alive, options, ttl=ttl)
            await live_lock.acquire()
            await asyncio.sleep(2.0)  # twice the TTL: only the refreshes keep it
            with pytest.raises(LockHeld):
                await ApplyLock(other, options).acquire()
            await live_lock.release()
            dead = ApplyLock(crashed, options)
            await dead.acquire()
            dead.refresher.cancel()  # the process died: no refresh, no release
            started = time.monotonic()
            late = ApplyLock(other, options, wait=10)
            await late.acquire()
            waited = time.monotonic() - started
            await late.release()
            return waited

    waited = asyncio.run(scenario())
    assert 0.3 < waited < 5, waited


def test_the_lock_bucket_is_the_tools_own_never_planned_or_pruned(run, js_api):
    assert run(BASE, "apply", "--auto-approve")[0] == 0
    assert LOCK_STREAM in js_api("STREAM.NAMES")["streams"]
    for fmt in ("text", "json", "markdown"):
        code, out = run(BASE, "plan", "--prune", "--format", fmt)
        assert code == 0 and "medisync_topology_lock" not in out, out
    code, out = run(BASE.split("streams:")[0] + "streams: {}\n", "apply", "--auto-approve", "--prune")
    assert code == 0 and "stream EVENTS: deleted" in out and "medisync_topology_lock" not in out
    assert js_api("STREAM.NAMES")["streams"] == [LOCK_STREAM]


def test_a_bucket_named_like_the_lock_is_refused(run):
    code, out = run(BASE + "key_value:\n  medisync_topology_lock: {}\n", "plan")
    assert code == 1 and "key_value medisync_topology_lock is the bucket of the tool's apply lock" in out


def test_a_stream_on_every_subject_applies_without_the_lock_and_says_so(run, js_api):
    text = BASE.replace("[medisync.etl.>]", "[\">\"]\n    no_ack: true")
    code, out = run(text, "apply", "--auto-approve")
    assert code == 0, out
    assert "Warning: applying without the apply lock: stream EVENTS captures $KV.medisync_topology_lock.apply" in out
    assert js_api("STREAM.NAMES")["streams"] == ["EVENTS"]
    code, out = run(text, "apply", "--auto-approve")  # the live stream now refuses the lock bucket
    assert code == 0 and "Warning: applying without the apply lock: stream EVENTS captures" in out, out


def test_lock_timeout_takes_a_duration(run):
    code, out = run(BASE, "apply", "--auto-approve", "--lock-timeout", "30")
    # A bare number is refused without offering nanoseconds, which no one means by a lock wait.
    assert code == 1 and "Invalid value for '--lock-timeout': '30' is not a duration: use a number with a unit, " \
        "e.g. 30s or 5m (0 does not wait)" in out, out
    code, out = run(BASE, "apply", "--auto-approve", "--lock-timeout", "-1")
    assert code == 1 and "give a duration, e.g. 30s or 5m (0 does not wait)" in out


def test_ctrl_c_during_apply_releases_the_lock_and_audits_what_was_done(nats_server, tmp_path, js_api):
    streams = "".join(f"  S{i:03}:\n    subjects: [s{i:03}.>]\n" for i in range(150))
    path = tmp_path / "topology.yaml"
    path.write_text(BASE.replace("streams:\n", "audit: {subject: medisync.audit.topology.applied}\nstreams:\n")
                    + "  AUDIT:\n    subjects: [medisync.audit.>]\n" + streams)
    process = subprocess.Popen([str(TOPOLOGY), "apply", "-f", str(path), "--auto-approve"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env={**os.environ, "NATS_URL": nats_server.url, "PYTHONUNBUFFERED": "1"})
    while b": created" not in process.stdout.readline():
        pass
    process.send_signal(signal.SIGINT)
    out = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 1 and "Apply complete" not in out and "Aborted!" not in out, out
    assert "\nApply interrupted (Ctrl-C).\nDone before the interruption: stream AUDIT" in out
    # Everything in flight (up to 64 operations) was under way.
    assert re.search(r"\nInterrupted \(it may or may not have taken effect\): stream \w+(, stream \w+)*\nNot attempted: stream \w+, ", out)
    assert out.endswith("Run apply again: it continues from where the server is now.\n")
    assert not held_by_someone(nats_server.url)
    message = js_api("STREAM.MSG.GET.AUDIT", {"last_by_subj": "medisync.audit.topology.applied"})["message"]
    event = json.loads(base64.b64decode(message["data"]))
    assert event["type"] == "topology.apply_failed" and event["payload"]["error"] == "apply was interrupted"
    outcomes = [op["outcome"] for op in event["payload"]["operations"]]
    assert set(outcomes) == {"done", "interrupted", "not attempted"} and 1 <= outcomes.count("interrupted") <= 64
