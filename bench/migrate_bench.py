"""How long migrating a stream takes, and how long publishes are refused while it runs.

A script, not a test: it starts its own nats-server (tests/natsserver.py) with a temporary store,
applies a topology with one file stream (replace: migrate) and a consumer, publishes --messages
messages, acknowledges a tenth of them, then applies the same stream with storage: memory while a
publisher keeps publishing (retrying each refused publish). It prints the apply's own report, the
wall time, how many publishes were acknowledged during the migration, how many attempts were refused
and the longest stretch in which the publisher could not get a publish acknowledged; then checks that
every message is in the new stream and the consumer resumes where it stood. With --rename the second
apply renames the stream instead (ORDERS_V2, renamed_from: ORDERS).

    .venv/bin/python bench/migrate_bench.py [--messages 100000] [--rename]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import nats
from click.testing import CliRunner
from nats.errors import NoRespondersError, TimeoutError as NatsTimeout

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the test harness is a plain module, not a package

from natsserver import start_server  # noqa: E402

from medisync_topology.cli import main  # noqa: E402

TOPOLOGY = """\
version: 1
owner: bench
streams:
  {name}:
    subjects: [orders.>]
    max_bytes: 4GiB
    replace: migrate{storage}
    consumers:
      billing: {{ack_policy: all}}
"""


async def fill(url: str, count: int) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    for start in range(0, count, 1000):  # 1,000 in flight at a time
        await asyncio.gather(*(js.publish("orders.created", b"order %d" % i) for i in range(start, min(start + 1000, count))))
    await nc.close()


async def acknowledge(url: str, count: int) -> None:
    nc = await nats.connect(url)
    sub = await nc.jetstream().pull_subscribe_bind("billing", "ORDERS")
    done = 0
    while done < count:
        batch = await sub.fetch(min(500, count - done), timeout=10)
        await batch[-1].ack_sync()  # ack_policy all: the last acknowledges all before it
        done += len(batch)
    await nc.close()


async def publish_through(url: str, stop: asyncio.Event, first: int) -> dict:
    """Publish one at a time, retrying refusals, until ``stop``: counts and the longest refused stretch."""
    nc = await nats.connect(url)
    acked = refused = 0
    longest = 0.0
    i = first
    while not stop.is_set():
        refused_since = None
        while True:
            try:
                ack = await nc.request("orders.created", b"order %d" % i, timeout=2)
                if b"error" not in ack.data:
                    break
            except (NoRespondersError, NatsTimeout):
                pass
            refused += 1
            refused_since = refused_since or time.monotonic()
            await asyncio.sleep(0.001)
        if refused_since:
            longest = max(longest, time.monotonic() - refused_since)
        acked += 1
        i += 1
    await nc.close()
    return {"acked": acked, "refused": refused, "longest": longest}


def cli(url: str, path: Path, text: str, *args: str) -> str:
    path.write_text(text)
    result = CliRunner().invoke(main, [*args, "-f", str(path), "-s", url], catch_exceptions=False)
    if result.exit_code != 0:
        raise SystemExit(result.output)
    return result.output


async def run(messages: int, rename: bool) -> None:
    # The change the second apply makes: to memory storage (a migration), or to a new name (a rename).
    name, change = ("ORDERS_V2", "\n    renamed_from: ORDERS") if rename else ("ORDERS", "\n    storage: memory")
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "nats")
        try:
            path = Path(tmp) / "topology.yaml"
            await asyncio.to_thread(cli, server.url, path, TOPOLOGY.format(name="ORDERS", storage=""), "apply",
                                    "--auto-approve")
            started = time.monotonic()
            await fill(server.url, messages)
            print(f"published {messages:,} messages in {time.monotonic() - started:.1f}s")
            await acknowledge(server.url, messages // 10)
            stop = asyncio.Event()
            publisher = asyncio.create_task(publish_through(server.url, stop, messages))
            await asyncio.sleep(0.2)
            started = time.monotonic()
            out = await asyncio.to_thread(cli, server.url, path, TOPOLOGY.format(name=name, storage=change),
                                          "apply", "--auto-approve")
            wall = time.monotonic() - started
            await asyncio.sleep(0.2)
            stop.set()
            published = await publisher
            print(next(line for line in out.splitlines() if line.startswith(f"stream {name}: ")))
            print(f"apply took {wall:.1f}s; during it {published['acked']:,} publishes were acknowledged, "
                  f"{published['refused']:,} attempts refused, the longest refused stretch "
                  f"{published['longest'] * 1000:.0f}ms")
            nc = await nats.connect(server.url)
            js = nc.jetstream()
            info = await js.stream_info(name)
            expected = messages + published["acked"]
            storage = str(getattr(info.config.storage, "value", info.config.storage))
            assert storage == ("file" if rename else "memory") and info.state.messages == expected, (info.state, expected)
            consumer = await js.consumer_info(name, "billing")
            assert consumer.num_pending == expected - messages // 10, consumer
            await nc.close()
            print(f"checked: {expected:,} messages in {name} ({storage}), billing resumes at message {messages // 10:,}")
        finally:
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rename", action="store_true", help="rename the stream instead of migrating it to memory")
    os.environ.pop("NATS_URL", None)
    args = parser.parse_args()
    asyncio.run(run(args.messages, args.rename))
