"""`topology plan` of this checkout beside another checkout's (an older commit) and the floor, taken turn about.

A script, not a test. For each size it starts its own nats-server, creates the streams and consumers and the
matching topology.yaml (plan_bench.py's setup, so every plan says "No changes"), then runs, --repeat times in
turn, bench/floor.py, `topology plan` with the other checkout's package and with this one's, each a process of
its own, and prints each one's median time, CPU time (user + system) and peak memory, and their ratios to the
floor's. Both packages are byte-compiled first, as an install is.

    git worktree add --detach /tmp/before 45d8f2b
    .venv/bin/python bench/versus.py /tmp/before [--sizes 1000x5,10000x1] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
from pathlib import Path

from plan_bench import REPO, byte_compile, populate, topology_yaml, whole_process
from natsserver import start_server


# Each checkout's own `topology` command, as the console script of its pyproject.toml calls it: __main__.run where
# it has one, else cli.main. Run with -P: `python -c` would put the working directory first on sys.path, and from a
# checkout that package would be measured twice.
ENTRY = """import sys
sys.argv[0] = "topology"
try:
    from medisync_topology.__main__ import run
except ModuleNotFoundError:
    from medisync_topology.cli import main as run
run()"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("other", type=Path, help="the other checkout (its medisync_topology package is measured)")
    parser.add_argument("--sizes", default="1000x5,10000x1", metavar="NxK,...", help="streams x consumers (default 1000x5,10000x1)")
    parser.add_argument("--repeat", type=int, default=5, metavar="R", help="runs of each (default 5)")
    args = parser.parse_args()
    sizes = [tuple(int(part) for part in size.split("x")) for size in args.sizes.split(",")]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    checkouts = {"other": str(args.other.resolve()), "this": str(REPO)}
    for checkout in checkouts.values():
        byte_compile(Path(checkout) / "medisync_topology")
    python = sys.executable
    for n, k in sizes:
        with tempfile.TemporaryDirectory(prefix="versus-") as tmp:
            server = start_server(Path(tmp) / "nats")
            try:
                asyncio.run(populate(server.url, n, k))
                topology_file = Path(tmp) / "topology.yaml"
                topology_file.write_text(topology_yaml(n, k))
                runs: dict[str, list] = {"floor": [], **{name: [] for name in checkouts}}
                for _ in range(args.repeat):
                    runs["floor"].append(whole_process(python, str(REPO / "bench" / "floor.py"), server.url,
                                                       env={"PYTHONPATH": ""}))
                    for name, checkout in checkouts.items():
                        runs[name].append(whole_process(python, "-P", "-c", ENTRY, "plan", "-f", str(topology_file), "-s",
                                                        server.url, "--no-color", env={"PYTHONPATH": checkout}))
            finally:
                server.stop()
        medians = {name: [statistics.median(x) for x in zip(*values)] for name, values in runs.items()}
        floor = medians["floor"]
        print(f"\n{n} streams x {k} consumers, {args.repeat} runs each (load average {os.getloadavg()[0]:.1f})")
        print(f"  {'':<28} {'ms':>7} {'cpu ms':>7} {'peak MB':>8}   vs floor: time   cpu  memory")
        for name, (seconds, peak, cpu) in medians.items():
            label = {"floor": "floor: bench/floor.py", "other": f"plan: {args.other}", "this": "plan: this checkout"}[name]
            ratios = "" if name == "floor" else f"{seconds / floor[0]:14.2f}x {cpu / floor[2]:5.2f}x {peak / floor[1]:6.2f}x"
            print(f"  {label:<28} {seconds * 1000:7.0f} {cpu * 1000:7.0f} {peak:8.1f} {ratios}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
