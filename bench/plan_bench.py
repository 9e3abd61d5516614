"""How long `topology plan` takes on a large account, against the bare JetStream LIST requests it needs.

A script, not a test: it starts its own nats-server (tests/natsserver.py) with a temporary store,
creates N streams with K durable consumers each through the raw JetStream API, writes the matching
topology.yaml (so the plan says "No changes", the steady state CI sees), then times each step
--repeat times and prints min / median:

  bare LIST requests   STREAM.LIST pages + CONSUMER.LIST per stream, raw nats-py, no product code
  read_live()          the product's JetStreamClient.read_live() on an open connection
  plan, in-process     load + validate the file, connect, read live, make_plan, render text
  validate             load + validate the file alone, in-process and as `topology validate`
  CLI start            `topology --version`: what every subprocess pays before any work
  whole process        `topology plan -f topology.yaml -s URL` beside bench/floor.py (the same LIST requests
                       in a process of its own, no product code): time and peak memory, taken turn about
  render               the plan that creates everything, as json, text and markdown

    .venv/bin/python bench/plan_bench.py [--sizes 1000x5,10000x1] [--repeat 5] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import cProfile
import json
import os
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the test harness is a plain module, not a package

from natsserver import start_server  # noqa: E402

from medisync_topology import drift, rules  # noqa: E402
from medisync_topology.client import JetStreamClient  # noqa: E402
from medisync_topology.connectoptions import ConnectOptions  # noqa: E402
from medisync_topology.live import LiveState  # noqa: E402
from medisync_topology.plan import OWNER_KEY, make_plan  # noqa: E402
from medisync_topology.render import render  # noqa: E402
from medisync_topology.validate import load_topology  # noqa: E402

OWNER = "bench"
# The floor script imports nothing of the product, so its process is the floor; this one shares its requests.
from floor import IN_FLIGHT, TIMEOUT, api, bare_lists, counted  # noqa: E402


def stream_name(i: int) -> str:
    return f"S{i:05d}"


def consumer_name(j: int) -> str:
    return f"c{j}"


def stream_config(i: int, replicas: int = 1, max_age_days: int = 7, storage: str = "file") -> dict:
    return {"name": stream_name(i), "subjects": [f"bench.s{i}.>"], "storage": storage, "num_replicas": replicas,
            "max_age": max_age_days * 24 * 3600 * 10**9, "metadata": {OWNER_KEY: OWNER}}


def consumer_config(i: int, j: int) -> dict:
    return {"durable_name": consumer_name(j), "ack_policy": "explicit", "max_deliver": 5,
            "ack_wait": 30 * 10**9, "filter_subject": f"bench.s{i}.{consumer_name(j)}.>",
            "metadata": {OWNER_KEY: OWNER}}


def topology_yaml(streams: int, consumers: int, replicas: int = 1, max_age_days: int = 7, storage: str = "file") -> str:
    """The same streams and consumers as the file declares them (human units, defaults section)."""
    lines = [
        "version: 1",
        f"owner: {OWNER}",
        "defaults:",
        f"  stream: {{storage: {storage}, num_replicas: {replicas}}}",
        "  consumer: {ack_policy: explicit, max_deliver: 5, ack_wait: 30s}",
        "streams:",
    ]
    if not streams:
        lines[-1] = "streams: {}"
    for i in range(streams):
        lines += [f"  {stream_name(i)}:", f"    subjects: [bench.s{i}.>]", f"    max_age: {max_age_days}d", "    consumers:"]
        lines += [f"      {consumer_name(j)}: {{filter_subject: bench.s{i}.{consumer_name(j)}.>}}" for j in range(consumers)]
    return "\n".join(lines) + "\n"


async def populate(url: str, streams: int, consumers: int) -> None:
    """Every stream then its consumers, IN_FLIGHT streams at a time, each config as apply sends it: complete, with
    the record of itself in its metadata (drift.py), so a plan reads what it reads after an apply."""
    nc = await nats.connect(url)
    limit = asyncio.Semaphore(IN_FLIGHT)

    async def one(i: int) -> None:
        async with limit:
            stream = rules.complete_stream(stream_config(i))
            await api(nc, f"STREAM.CREATE.{stream_name(i)}", drift.recorded(stream))
            for j in range(consumers):
                consumer = rules.complete_consumer({"name": consumer_name(j), **consumer_config(i, j)}, stream)
                await api(nc, f"CONSUMER.CREATE.{stream_name(i)}.{consumer_name(j)}",
                          {"stream_name": stream_name(i), "config": drift.recorded(consumer)})

    try:
        await asyncio.gather(*(one(i) for i in range(streams)))
    finally:
        await nc.close()


def timed(repeat: int, run) -> list[float]:
    """Wall-clock seconds of each of ``repeat`` calls of run()."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def time_on_open_connection(repeat: int, url: str, opener, work) -> list[float]:
    """Time ``work(conn)`` only: connecting happens once, outside the clock."""

    async def go() -> list[float]:
        conn = await opener(url)
        try:
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                await work(conn)
                times.append(time.perf_counter() - start)
            return times
        finally:
            await conn.close()

    return asyncio.run(go())


async def open_client(url: str) -> JetStreamClient:
    client = JetStreamClient(ConnectOptions(server=url, timeout=TIMEOUT))
    await client.connect()
    return client


def plan_in_process(topology_file: Path, url: str) -> str:
    """What `topology plan` does, without the interpreter start: the rendered text."""
    topology = load_topology([str(topology_file)])

    async def read() -> object:
        async with JetStreamClient(ConnectOptions(server=url, timeout=TIMEOUT)) as client:
            return await client.read_live()

    live = asyncio.run(read())
    return render(make_plan(topology, live), "text", color=False)


def byte_compile(package: Path | None = None) -> None:
    """The package's bytecode, compiled as an install compiles it. Where PYTHONDONTWRITEBYTECODE is set (this
    machine sets it) a checkout's modules were otherwise compiled from source again by every command, a
    fifth of a second each time that the floor, nats-py installed with its bytecode, never pays.
    ``package``: the package directory; by default the one imported (this checkout's, or another's on PYTHONPATH)."""
    if package is None:
        import medisync_topology

        package = Path(medisync_topology.__file__).parent
    compileall.compile_dir(package, quiet=1)


def run_cli(*args: str) -> str:
    return run_process(str(Path(sys.executable).parent / "topology"), *args)[0]


# Runs argv[2:] and writes its peak memory and CPU time to argv[1]. A small process in between, because a child
# forked from this one starts out with this process's memory, which ru_maxrss would count (and exec does not reset).
USAGE_OF_CHILD = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[2:]); "
    "usage = resource.getrusage(resource.RUSAGE_CHILDREN); "
    "open(sys.argv[1], 'w').write(f'{usage.ru_maxrss} {usage.ru_utime + usage.ru_stime}'); sys.exit(code)"
)


def run_process(*argv: str, env: dict | None = None) -> tuple[str, int, float]:
    """(stdout, peak resident memory in bytes, CPU seconds) of a process run to its end; an exit code other than 0
    is an error. ``env``: variables set for it beside this process's."""
    with tempfile.NamedTemporaryFile("r") as usage:
        done = subprocess.run([sys.executable, "-c", USAGE_OF_CHILD, usage.name, *argv], capture_output=True, text=True,
                              env={**os.environ, **(env or {})})
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr or done.stdout}")
        peak, cpu = usage.read().split()
        return done.stdout, int(peak) * 1024, float(cpu)  # ru_maxrss is in KiB on Linux


def row(label: str, times: list[float], bare: float | None = None) -> str:
    low, mid = min(times) * 1000, statistics.median(times) * 1000
    ratio = f"{mid / (bare * 1000):6.1f}x" if bare else "       "
    return f"  {label:<34} {low:9.1f} {mid:9.1f}  {ratio}"


def profile_plan(topology_file: Path, url: str) -> None:
    """Where one in-process plan spends its time (cProfile; pyinstrument is not a dependency)."""
    profiler = cProfile.Profile()
    profiler.runcall(plan_in_process, topology_file, url)
    print("\nProfile of one in-process plan (top 25 by cumulative time):")
    pstats.Stats(profiler, stream=sys.stdout).strip_dirs().sort_stats("cumulative").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000x5,10000x1", metavar="NxK,...",
                        help="streams x durable consumers per stream, each size on a server of its own (default 1000x5,10000x1)")
    parser.add_argument("--repeat", type=int, default=5, metavar="R", help="repetitions of each measurement (default 5)")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of one in-process plan")
    args = parser.parse_args()
    try:
        sizes = [tuple(int(part) for part in size.split("x")) for size in args.sizes.split(",")]
    except ValueError:
        parser.error("--sizes is a comma-separated list of NxK, e.g. 1000x5,10000x1")
    if any(len(size) != 2 or size[0] < 1 or size[1] < 0 for size in sizes) or args.repeat < 1:
        parser.error("each size needs at least 1 stream and 0 or more consumers; --repeat at least 1")

    # SIGTERM unwinds like Ctrl-C does, through the finally below that stops the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    byte_compile()
    for n, k in sizes:
        with tempfile.TemporaryDirectory(prefix="plan-bench-") as tmp:
            server = start_server(Path(tmp) / "nats")
            try:
                bench(server, Path(tmp), n, k, args)
            finally:
                server.stop()


def bench(server, tmp: Path, n: int, k: int, args) -> None:
    r = args.repeat
    start = time.perf_counter()
    asyncio.run(populate(server.url, n, k))
    setup = time.perf_counter() - start
    topology_file = tmp / "topology.yaml"
    topology_file.write_text(topology_yaml(n, k))

    counts = asyncio.run(counted(server.url))  # also warms the server up before anything is timed
    if counts != (n, n * k):
        raise RuntimeError(f"the server lists {counts[0]} streams and {counts[1]} consumers, not {n} and {n * k}")
    first_line = plan_in_process(topology_file, server.url).splitlines()[0]

    bare = time_on_open_connection(r, server.url, nats.connect, bare_lists)
    read_live = time_on_open_connection(r, server.url, open_client, lambda c: c.read_live())
    plan_inproc = timed(r, lambda: plan_in_process(topology_file, server.url))
    validate_inproc = timed(r, lambda: load_topology([str(topology_file)]))
    validate_cli = timed(r, lambda: run_cli("validate", "-f", str(topology_file)))
    cli_start = timed(r, lambda: run_cli("--version"))
    # The floor and the plan as processes of their own, taken turn about so a busy machine slows both alike.
    floor, plan_cli = [], []
    for _ in range(r):
        floor.append(whole_process(sys.executable, str(Path(__file__).parent / "floor.py"), server.url))
        plan_cli.append(whole_process(str(Path(sys.executable).parent / "topology"), "plan", "-f", str(topology_file),
                                      "-s", server.url, "--no-color"))

    bare_median = statistics.median(bare)
    pages = -(-n // 256)  # the server answers STREAM.LIST and CONSUMER.LIST 256 items a page (JSApiListLimit)
    print(f"\nplan benchmark: {n} streams x {k} durable consumers = {n * k} consumers; {r} repetitions each")
    print(f"machine: {os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), Python {sys.version.split()[0]}, "
          f"nats-server {server.version} (file store in a temp dir)")
    print(f"requests per read: {pages} STREAM.LIST page(s) + {n} CONSUMER.LIST, up to {IN_FLIGHT} in flight")
    print(f"setup (create streams and consumers): {setup:.1f}s; the plan says: {first_line!r}\n")
    print(f"  {'step':<34} {'min ms':>9} {'median ms':>9}  vs bare")
    print(row("1. bare LIST requests (nats-py)", bare))
    print(row("2. read_live()", read_live, bare_median))
    print(row("3. plan, in-process", plan_inproc, bare_median))
    print(row("4. validate, in-process", validate_inproc, bare_median))
    print(row("4. validate, subprocess", validate_cli, bare_median))
    print(row("   CLI start (topology --version)", cli_start, bare_median))
    floor_s, floor_mb, _ = (statistics.median(x) for x in zip(*floor))
    plan_s, plan_mb, _ = (statistics.median(x) for x in zip(*plan_cli))
    print(f"\n  {'whole process':<34} {'median ms':>9} {'peak MB':>9}")
    print(f"  {'floor: bench/floor.py':<34} {floor_s * 1000:9.1f} {floor_mb:9.1f}")
    print(f"  {'topology plan':<34} {plan_s * 1000:9.1f} {plan_mb:9.1f}")
    print(f"  {'plan / floor':<34} {plan_s / floor_s:8.2f}x {plan_mb / floor_mb:8.2f}x")
    print(f"  (`python -c pass` alone peaks at {whole_process(sys.executable, '-c', 'pass')[1]:.0f} MB)")
    render_rows(n, k, topology_file, r)
    if args.profile:
        profile_plan(topology_file, server.url)


def whole_process(*argv: str, env: dict | None = None) -> tuple[float, float, float]:
    """(seconds, peak MB, CPU seconds) of one process run to its end."""
    start = time.perf_counter()
    _, peak, cpu = run_process(*argv, env=env)
    return time.perf_counter() - start, peak / 2**20, cpu


def render_rows(n: int, k: int, topology_file: Path, r: int) -> None:
    """Rendering a plan that creates everything (the first apply's), in each format, beside JSON."""
    topology = load_topology([str(topology_file)])
    plan = make_plan(topology, LiveState(server_version="2.15.1", streams={}))
    times = {fmt: statistics.median(timed(r, lambda: render(plan, fmt, color=False))) for fmt in ("json", "text", "markdown")}
    print(f"\n  render {len(plan.operations)} creates     {'median ms':>9}  vs json")
    for fmt, seconds in times.items():
        print(f"  {fmt:<34} {seconds * 1000:9.1f}  {seconds / times['json']:6.1f}x")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
