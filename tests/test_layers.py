"""The core cannot connect: each core module, imported alone in a fresh interpreter, leaves nats unloaded; nor do
the commands that never connect load it."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# One a line, so branches that add a module merge cleanly.
CORE = (
    "plan",
    "render",
    "rules",
    "refusals",
    "model",
    "ops",
    "validate",
    "units",
    "subjects",
    "live",
    "buckets",
    "identity",
    "fields",
    "schema",
    "policy",
    "services",
    "explain",
    "graph",
    "permissions",
    "target",
    "dataloss",
    "migrate",
    "targets",
    "connectoptions",
)


@pytest.mark.parametrize("name", CORE)
def test_each_core_module_alone_leaves_nats_unloaded(name):
    probe = f"import sys, medisync_topology.{name}; print('nats' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout == "False\n", done.stderr


def test_the_probe_would_see_a_module_that_connects():
    done = subprocess.run([sys.executable, "-c", "import sys, medisync_topology.client; print('nats' in sys.modules)"],
                          capture_output=True, text=True, timeout=60)
    assert done.stdout == "True\n", done.stderr


@pytest.mark.parametrize("args", [["validate", "-f", "topology.yaml"], ["--help"], ["schema"]])
def test_the_offline_commands_start_without_nats(args, tmp_path):
    # Half of their start was importing nats-py and asyncio for commands that never connect.
    probe = ("import sys, contextlib, io\nfrom medisync_topology.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n"
             f"    try: main({args!r})\n    except SystemExit as exc: assert not exc.code, exc.code\n"
             "print(sorted(m for m in ('nats', 'asyncio') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.stdout == "[]\n", done.stderr
