"""The core cannot connect: each core module, imported alone in a fresh interpreter, leaves nats unloaded."""

import subprocess
import sys

import pytest

# One a line, so branches that add a module merge cleanly.
CORE = (
    "plan",
    "render",
    "rules",
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
