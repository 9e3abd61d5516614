"""How long `topology apply` takes to create, update and prune many streams, beside a hand-written
sequential loop and the same requests pipelined.

A script, not a test. For a single node and for a 3-node cluster (R3 streams) it times, in one run:

  sequential loop   nats-py's JetStream API, one request at a time (the seed's EnsureStream style):
                    add_stream + add_consumer, update_stream, delete_stream
  pipelined floor   the raw JetStream API requests, 64 in flight (a stream, then its consumers, per chain)
  read + pipelined  the LIST requests that read what is there (bench/floor.py's), then the pipelined floor:
                    the least a tool that plans against the server before changing it waits for
  apply ops         the product's apply_plan() alone, in-process: the plan made first, off the clock
  command           `topology apply --auto-approve` as a command (interpreter start, lock, read live, plan,
                    apply, output to a pipe: one line per operation)

for: create (from empty), update (max_age of every stream) and prune (`--prune` of everything; the floor
and the loop delete each stream, which takes its consumers with it). Each measurement runs on a server (or
cluster) of its own, its starting state made with pipelined raw requests off the clock.

    .venv/bin/python bench/apply_bench.py [--streams 1000] [--consumers 5] [--cluster-streams 300] [--no-cluster]
                                          [--storage file|memory]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
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
from floor import counted
from natsserver import NatsServer, start_cluster, start_server

from medisync_topology.apply import apply_plan
from medisync_topology.devserver import find_binary
from medisync_topology.client import JetStreamClient
from medisync_topology.connectoptions import ConnectOptions
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


def create_chains(n: int, k: int, replicas: int, storage: str) -> list:
    return [
        [(f"STREAM.CREATE.{stream_name(i)}", stream_config(i, replicas, 7, storage))]
        + [(f"CONSUMER.CREATE.{stream_name(i)}.{consumer_name(j)}",
            {"stream_name": stream_name(i), "config": consumer_config(i, j)}) for j in range(k)]
        for i in range(n)
    ]


async def sequential(urls: list[str], mode: str, n: int, k: int, replicas: int, max_age_days: int, storage: str) -> None:
    """One request at a time through nats-py's JetStream manager."""
    nc = await nats.connect(urls)
    js = nc.jsm(timeout=TIMEOUT)
    try:
        for i in range(n):
            if mode == "create":
                await js.add_stream(StreamConfig.from_response(stream_config(i, replicas, max_age_days, storage)))
                for j in range(k):
                    await js.add_consumer(stream_name(i), ConsumerConfig.from_response(consumer_config(i, j)))
            elif mode == "update":
                await js.update_stream(StreamConfig.from_response(stream_config(i, replicas, max_age_days, storage)))
            else:
                await js.delete_stream(stream_name(i))
    finally:
        await nc.close()


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


@contextlib.contextmanager
def fresh(start, tmp: Path, setup):
    """The URLs of a server (or cluster) of its own for one measurement, ``setup(urls)`` done and on disk, stopped
    after it. Measured one after another on one store, each run met what the ones before left (the files of
    thousands of deleted streams): the command's create, measured last, took 4x the pipelined requests, 1.2x on a
    store of its own. And the disk is shared: what one run wrote was still being written back during the next
    (/proc/pressure/io over 50% stalled), so each starts once everything written so far is on disk (sync)."""
    workdir = Path(tempfile.mkdtemp(dir=tmp))
    nodes = start(workdir)
    try:
        urls = [node.url for node in nodes]
        setup(urls)
        os.sync()
        yield urls
    finally:
        for node in nodes:
            node.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        os.sync()


def measure(label: str, start, n: int, k: int, replicas: int, storage: str, tmp: Path) -> list[tuple]:
    """(mode, sequential, pipelined, read + pipelined, apply_plan, topology apply) seconds for create, update and
    prune, each measured on a server of its own, its starting state made first off the clock."""
    topo = tmp / f"{label}.yaml"
    rows = []

    def full(urls: list[str]) -> None:
        asyncio.run(pipelined(urls, create_chains(n, k, replicas, storage)))

    def timed(setup, work) -> float:
        with fresh(start, tmp, setup) as urls:
            return clock(lambda: work(urls))

    def floors(setup, chains) -> tuple[float, float]:
        """(pipelined, read + pipelined): the requests alone, and after the LIST requests that read what is there,
        the least any tool that plans against the server before it changes it has to wait for."""
        with fresh(start, tmp, setup) as urls:
            read = clock(lambda: asyncio.run(counted(urls[0])))
            requests = clock(lambda: asyncio.run(pipelined(urls, chains)))
            return requests, read + requests

    def command(setup, expected: str, *extra: str) -> float:
        def run(urls: list[str]) -> None:
            said = run_cli("apply", "--auto-approve", "-f", str(topo), "-s", ",".join(urls), "--timeout", "60s",
                           "--no-color", *extra)
            if expected not in said:
                raise RuntimeError(f"apply did not say {expected!r}:\n{said[-500:]}")
        return timed(setup, run)

    def ops(setup, prune: bool) -> float:
        with fresh(start, tmp, setup) as urls:
            return apply_operations(urls[0], topo, prune)

    empty = lambda urls: None  # noqa: E731
    for mode, setup, chains, file, done in (
        ("create", empty, create_chains(n, k, replicas, storage), topology_yaml(n, k, replicas, 7, storage),
         f"Apply complete: {n * (k + 1)} created, 0 updated"),
        ("update", full, [[(f"STREAM.UPDATE.{stream_name(i)}", stream_config(i, replicas, 8, storage))] for i in range(n)],
         topology_yaml(n, k, replicas, 8, storage), f"Apply complete: 0 created, {n} updated"),
        ("prune", full, [[(f"STREAM.DELETE.{stream_name(i)}", None)] for i in range(n)], topology_yaml(0, 0),
         f"0 replaced, {n * (k + 1)} deleted."),
    ):
        seq = timed(setup, lambda urls: asyncio.run(sequential(urls, mode if mode != "prune" else "delete", n, k,
                                                                replicas, 8, storage)))
        floor, read_floor = floors(setup, chains)
        topo.write_text(file)
        rows.append((mode, seq, floor, read_floor, ops(setup, mode == "prune"),
                     command(setup, done, *(["--prune"] if mode == "prune" else []))))
    return rows


def report(title: str, rows) -> None:
    print(f"\n{title}")
    print(f"  {'':<7} {'sequential':>10} {'pipelined':>10} {'read+pipe':>10} {'apply ops':>10} {'command':>8}"
          "   apply ops vs    command vs")
    print(f"  {'':<7} {'s':>10} {'s':>10} {'s':>10} {'s':>10} {'s':>8}   seq.  pipel.    seq.  pipel. read+pipe")
    for mode, seq, floor, read_floor, ops, ours in rows:
        print(f"  {mode:<7} {seq:10.2f} {floor:10.2f} {read_floor:10.2f} {ops:10.2f} {ours:8.2f}  {seq / ops:5.1f}x "
              f"{ops / floor:5.2f}x {seq / ours:6.1f}x {ours / floor:5.2f}x {ours / read_floor:8.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=1000, metavar="N", help="streams on the single node (default 1000)")
    parser.add_argument("--consumers", type=int, default=5, metavar="K", help="durable consumers per stream (default 5)")
    parser.add_argument("--cluster-streams", type=int, default=300, metavar="N",
                        help="R3 streams on the 3-node cluster (default 300)")
    parser.add_argument("--no-cluster", action="store_true", help="only the single node")
    parser.add_argument("--no-single", action="store_true", help="only the cluster")
    parser.add_argument("--storage", choices=["file", "memory"], default="file",
                        help="the streams' storage (default file); memory leaves the disk out of the figures")
    args = parser.parse_args()
    if args.streams < 1 or args.cluster_streams < 1 or args.consumers < 0:
        parser.error("--streams and --cluster-streams must be at least 1, --consumers at least 0")

    # SIGTERM unwinds like Ctrl-C does, through the finally blocks that stop the servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    byte_compile()
    k = args.consumers
    print(f"apply benchmark: streams x {k} durable consumers, {args.storage} storage; requests {IN_FLIGHT} in flight "
          "where pipelined")
    with tempfile.TemporaryDirectory(prefix="apply-bench-") as tmp:
        if not args.no_single:
            single = lambda workdir: [start_server(workdir)]  # noqa: E731
            rows = measure("single", single, args.streams, k, 1, args.storage, Path(tmp))
            version = NatsServer(Path(tmp), find_binary(), "").version  # of the binary every measurement started
            report(f"single node, nats-server {version}: {args.streams} streams x {k} consumers", rows)
        if not args.no_cluster:
            rows = measure("cluster", start_cluster, args.cluster_streams, k, 3, args.storage, Path(tmp))
            report(f"3-node cluster, R3: {args.cluster_streams} streams x {k} consumers", rows)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
