"""How long `topology apply` takes to create, update and prune many streams, beside a hand-written
sequential loop and the same requests pipelined.

A script, not a test. For a single node and for a 3-node cluster (R3 streams) it times, in one run:

  sequential loop   nats-py's JetStream API, one request at a time (the seed's EnsureStream style):
                    add_stream + add_consumer, update_stream, delete_stream
  pipelined floor   the raw JetStream API requests, 64 in flight (a stream, then its consumers, per chain)
  apply ops         the product's apply_plan() alone, in-process: the plan made first, off the clock
  command           `topology apply --auto-approve` as a command (interpreter start, lock, read live, plan,
                    apply, output to a pipe: one line per operation)

for: create (from empty), update (max_age of every stream) and prune (`--prune` of everything; the floor
and the loop delete each stream, which takes its consumers with it). Between measurements the state is
reset with pipelined raw requests, outside the clock.

    .venv/bin/python bench/apply_bench.py [--streams 1000] [--consumers 5] [--cluster-streams 300] [--no-cluster]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
import time
from pathlib import Path

import nats
from nats.js.api import ConsumerConfig, StreamConfig
from plan_bench import (
    IN_FLIGHT, TIMEOUT, api, byte_compile, consumer_config, consumer_name, run_cli, stream_config, stream_name, topology_yaml,
)
from natsserver import start_cluster, start_server

from medisync_topology.apply import apply_plan
from medisync_topology.client import JetStreamClient
from medisync_topology.connection import ConnectOptions
from medisync_topology.plan import make_plan
from medisync_topology.validate import load_topology


async def pipelined(urls: list[str], chains: list[list[tuple[str, dict | None]]]) -> None:
    """Each chain's requests in order, IN_FLIGHT chains at a time."""
    nc = await nats.connect(urls)
    limit = asyncio.Semaphore(IN_FLIGHT)

    async def one(chain) -> None:
        async with limit:
            for subject, body in chain:
                await api(nc, subject, body)

    try:
        await asyncio.gather(*(one(chain) for chain in chains))
    finally:
        await nc.close()


def create_chains(n: int, k: int, replicas: int, max_age_days: int = 7) -> list:
    return [
        [(f"STREAM.CREATE.{stream_name(i)}", stream_config(i, replicas, max_age_days))]
        + [(f"CONSUMER.CREATE.{stream_name(i)}.{consumer_name(j)}",
            {"stream_name": stream_name(i), "config": consumer_config(i, j)}) for j in range(k)]
        for i in range(n)
    ]


async def sequential(urls: list[str], mode: str, n: int, k: int, replicas: int, max_age_days: int) -> None:
    """One request at a time through nats-py's JetStream manager."""
    nc = await nats.connect(urls)
    js = nc.jsm(timeout=TIMEOUT)
    try:
        for i in range(n):
            if mode == "create":
                await js.add_stream(StreamConfig.from_response(stream_config(i, replicas, max_age_days)))
                for j in range(k):
                    await js.add_consumer(stream_name(i), ConsumerConfig.from_response(consumer_config(i, j)))
            elif mode == "update":
                await js.update_stream(StreamConfig.from_response(stream_config(i, replicas, max_age_days)))
            else:
                await js.delete_stream(stream_name(i))
    finally:
        await nc.close()


async def delete_all(urls: list[str]) -> None:
    nc = await nats.connect(urls)
    try:
        names = (await api(nc, "STREAM.NAMES")).get("streams") or []
    finally:
        await nc.close()
    await pipelined(urls, [[(f"STREAM.DELETE.{name}", None)] for name in names])


def clock(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def apply_operations(url: str, topology_file: Path, prune: bool) -> float:
    """Seconds of apply_plan alone: the file loaded, live state read and the plan made first, off the clock."""
    topology = load_topology([str(topology_file)])

    async def go() -> float:
        async with JetStreamClient(ConnectOptions(server=url, timeout=TIMEOUT)) as client:
            plan = make_plan(topology, await client.read_live(), prune=prune)
            start = time.perf_counter()
            result = await apply_plan(client, plan)
            seconds = time.perf_counter() - start
        if result.failed:
            raise RuntimeError(f"apply failed: {result.failure()}")
        return seconds

    return asyncio.run(go())


def measure(label: str, urls: list[str], n: int, k: int, replicas: int, tmp: Path) -> list[tuple[str, float, float, float]]:
    """(mode, sequential s, pipelined s, apply_plan s, topology apply s) for create, update, prune."""
    url = ",".join(urls)
    topo = tmp / f"{label}.yaml"
    rows = []

    def apply(*extra: str) -> None:
        run_cli("apply", "--auto-approve", "-f", str(topo), "-s", url, "--timeout", "60s", "--no-color", *extra)

    # create: from empty each time
    asyncio.run(delete_all(urls))
    seq = clock(lambda: asyncio.run(sequential(urls, "create", n, k, replicas, 7)))
    asyncio.run(delete_all(urls))
    floor = clock(lambda: asyncio.run(pipelined(urls, create_chains(n, k, replicas))))
    asyncio.run(delete_all(urls))
    topo.write_text(topology_yaml(n, k, replicas, 7))
    ops = apply_operations(urls[0], topo, prune=False)
    asyncio.run(delete_all(urls))
    ours = clock(apply)
    rows.append(("create", seq, floor, ops, ours))

    # update: max_age of every stream, to a value it does not have yet
    seq = clock(lambda: asyncio.run(sequential(urls, "update", n, k, replicas, 8)))
    floor = clock(lambda: asyncio.run(pipelined(
        urls, [[(f"STREAM.UPDATE.{stream_name(i)}", stream_config(i, replicas, 9))] for i in range(n)])))
    topo.write_text(topology_yaml(n, k, replicas, 10))
    ops = apply_operations(urls[0], topo, prune=False)
    topo.write_text(topology_yaml(n, k, replicas, 11))
    ours = clock(apply)
    rows.append(("update", seq, floor, ops, ours))

    # prune: everything, from the full set each time
    seq = clock(lambda: asyncio.run(sequential(urls, "delete", n, k, replicas, 10)))
    asyncio.run(pipelined(urls, create_chains(n, k, replicas, 10)))
    floor = clock(lambda: asyncio.run(pipelined(urls, [[(f"STREAM.DELETE.{stream_name(i)}", None)] for i in range(n)])))
    asyncio.run(pipelined(urls, create_chains(n, k, replicas, 10)))
    topo.write_text(topology_yaml(0, 0))
    ops = apply_operations(urls[0], topo, prune=True)
    asyncio.run(pipelined(urls, create_chains(n, k, replicas, 10)))
    ours = clock(lambda: apply("--prune"))
    rows.append(("prune", seq, floor, ops, ours))
    asyncio.run(delete_all(urls))
    return rows


def report(title: str, rows) -> None:
    print(f"\n{title}")
    print(f"  {'':<7} {'sequential':>10} {'pipelined':>10} {'apply ops':>10} {'command':>8}   apply ops vs    command vs")
    print(f"  {'':<7} {'s':>10} {'s':>10} {'s':>10} {'s':>8}   seq.  pipel.    seq.  pipel.")
    for mode, seq, floor, ops, ours in rows:
        print(f"  {mode:<7} {seq:10.2f} {floor:10.2f} {ops:10.2f} {ours:8.2f}  {seq / ops:5.1f}x {ops / floor:5.2f}x "
              f"{seq / ours:6.1f}x {ours / floor:5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=1000, metavar="N", help="streams on the single node (default 1000)")
    parser.add_argument("--consumers", type=int, default=5, metavar="K", help="durable consumers per stream (default 5)")
    parser.add_argument("--cluster-streams", type=int, default=300, metavar="N",
                        help="R3 streams on the 3-node cluster (default 300)")
    parser.add_argument("--no-cluster", action="store_true", help="only the single node")
    parser.add_argument("--no-single", action="store_true", help="only the cluster")
    args = parser.parse_args()
    if args.streams < 1 or args.cluster_streams < 1 or args.consumers < 0:
        parser.error("--streams and --cluster-streams must be at least 1, --consumers at least 0")

    # SIGTERM unwinds like Ctrl-C does, through the finally blocks that stop the servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    byte_compile()
    k = args.consumers
    print(f"apply benchmark: streams x {k} durable consumers; requests {IN_FLIGHT} in flight where pipelined")
    with tempfile.TemporaryDirectory(prefix="apply-bench-") as tmp:
        if not args.no_single:
            server = start_server(Path(tmp) / "single")
            try:
                rows = measure("single", [server.url], args.streams, k, 1, Path(tmp))
            finally:
                server.stop()
            report(f"single node, nats-server {server.version}: {args.streams} streams x {k} consumers", rows)
        if not args.no_cluster:
            nodes = start_cluster(Path(tmp) / "cluster")
            try:
                rows = measure("cluster", [node.url for node in nodes], args.cluster_streams, k, 3, Path(tmp))
            finally:
                for node in nodes:
                    node.stop()
            report(f"3-node cluster, R3: {args.cluster_streams} streams x {k} consumers", rows)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
