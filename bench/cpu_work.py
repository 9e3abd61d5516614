"""The CPU work of one plan of no changes, counted in instructions by valgrind's callgrind, not timed: the count is
the same for the same code and input however busy the machine is, so a change of a few percent shows on 2 shared
cores where seconds vary by half.

A script, not a test. It starts its own nats-server, creates the streams and consumers and the matching
topology.yaml (plan_bench.py's setup), reads live state once and saves it, stops the server, then counts under
callgrind, for this checkout (and with --other for another one's package, on PYTHONPATH):

  start   a process that imports the product and unpickles the saved live state
  plan    the same, then load_topology + make_plan + render text: what `topology plan` computes

and prints plan - start, the plan's own work, in millions of instructions (and this checkout's over the other's).
Each count takes about a minute (callgrind runs Python some 30 times slower).

    .venv/bin/python bench/cpu_work.py [--streams 1000] [--consumers 5] [--other /tmp/before]
"""

from __future__ import annotations

import argparse
import asyncio
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from plan_bench import REPO, byte_compile, open_client, populate, topology_yaml
from natsserver import start_server


def work(folder: Path, step: str) -> None:
    """What callgrind counts (run as ``cpu_work.py --step STEP FOLDER``)."""
    import gc

    from medisync_topology.plan import make_plan
    from medisync_topology.render import render
    from medisync_topology.validate import load_topology

    gc.set_threshold(100_000, 50, 1000)  # as the command sets it
    live = pickle.loads((folder / "live.pickle").read_bytes())
    if step == "plan":
        plan = make_plan(load_topology([str(folder / "topology.yaml")]), live)
        if plan.has_changes:
            raise SystemExit("the plan has changes: the saved live state does not match topology.yaml")
        render(plan, "text", color=False)


def instructions(folder: Path, step: str, pythonpath: str) -> int:
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__, "--step", step,
         str(folder)], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": pythonpath})
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"callgrind of {step} failed: {done.stderr[-2000:]}")
    return int(found[1])


async def save_live(url: str, folder: Path) -> None:
    client = await open_client(url)
    try:
        (folder / "live.pickle").write_bytes(pickle.dumps(await client.read_live()))
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=1000, metavar="N", help="streams (default 1000)")
    parser.add_argument("--consumers", type=int, default=5, metavar="K", help="durable consumers per stream (default 5)")
    parser.add_argument("--other", type=Path, help="another checkout, counted beside this one")
    parser.add_argument("--step", choices=["start", "plan"], help=argparse.SUPPRESS)
    parser.add_argument("folder", type=Path, nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        work(args.folder, args.step)
        return
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (Debian: apt-get install valgrind)")
    checkouts = {"this": REPO} | ({"other": args.other.resolve()} if args.other else {})
    with tempfile.TemporaryDirectory(prefix="cpu-work-") as tmp:
        folder = Path(tmp)
        server = start_server(folder / "nats")
        try:
            asyncio.run(populate(server.url, args.streams, args.consumers))
            asyncio.run(save_live(server.url, folder))
        finally:
            server.stop()
        (folder / "topology.yaml").write_text(topology_yaml(args.streams, args.consumers))
        print(f"plan of no changes, {args.streams} streams x {args.consumers} consumers, nats-server {server.version}: "
              "millions of instructions (callgrind)")
        counted = {}
        for name, checkout in checkouts.items():
            byte_compile(checkout / "medisync_topology")
            start, plan = (instructions(folder, step, str(checkout)) for step in ("start", "plan"))
            counted[name] = plan - start
            print(f"  {str(checkout):<40} start {start / 1e6:8.0f}  plan {plan / 1e6:8.0f}  plan - start "
                  f"{counted[name] / 1e6:8.0f}")
        if "other" in counted:
            print(f"  this checkout / the other: {counted['this'] / counted['other']:.2f}x")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
