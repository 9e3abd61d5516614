"""How long `topology plan --format markdown` is for big plans, against GitHub's 65,536-character comment limit.

A script, not a test, and offline: it writes a topology of N streams with K durable consumers each,
plans it against an empty server (every resource a create) and, with --changed, against a live state
where every stream and consumer differs in a few fields (every resource an update), then prints the
length of the markdown in characters and UTF-8 bytes.

    .venv/bin/python bench/markdown_size.py [--streams 500 1000 10000] [--consumers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from medisync_topology.client import LiveState, LiveStream
from medisync_topology.plan import make_plan
from medisync_topology.render import render_markdown
from medisync_topology.validate import load_topology

OWNER = "bench"


def topology_yaml(streams: int, consumers: int) -> str:
    lines = ["version: 1", f"owner: {OWNER}", "streams:"]
    for i in range(streams):
        lines += [f"  S{i:05d}:", f"    subjects: [bench.s{i}.>]", "    max_age: 7d", "    max_bytes: 1GiB",
                  "    consumers:"]
        lines += [f"      c{j}: {{filter_subject: bench.s{i}.c{j}, max_deliver: 5, ack_wait: 30s}}" for j in range(consumers)]
    return "\n".join(lines) + "\n"


def changed_live(creates) -> LiveState:
    """Every resource as apply of ``creates`` made it, then max_age and max_deliver changed by hand."""
    streams = {}
    for op in creates.operations:
        if op.ref.kind == "stream":
            streams[op.ref.name] = LiveStream({**op.config, "max_age": op.config["max_age"] * 2}, {}, {})
        else:
            streams[op.ref.stream].consumers[op.ref.name] = {**op.config, "max_deliver": 9}
    return LiveState("2.15.1", streams)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[500, 1000, 10000])
    parser.add_argument("--consumers", type=int, default=2)
    args = parser.parse_args()
    print(f"{'plan':<32} {'operations':>10} {'characters':>11} {'bytes':>9} {'ms':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.streams:
            path = Path(tmp) / f"topology-{n}.yaml"
            path.write_text(topology_yaml(n, args.consumers))
            topology = load_topology(path)
            creates = make_plan(topology, LiveState("2.15.1", {}))
            for label, plan in (("creates", creates), ("updates", make_plan(topology, changed_live(creates)))):
                start = time.perf_counter()
                text = render_markdown(plan)
                ms = (time.perf_counter() - start) * 1000
                name = f"{n:,} streams x {args.consumers} consumers, {label}"
                print(f"{name:<32} {len(plan.operations):>10,} {len(text):>11,} {len(text.encode()):>9,} {ms:>7.0f}")


if __name__ == "__main__":
    main()
