"""Real nats-server processes for the tests: single nodes and 3-node clusters on free loopback ports.

Never a server someone started by hand: each test gets processes it started and stops. A plain module
(not a pytest plugin), so any test can start a server with its own configuration.
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import json
import re
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import nats

from medisync_topology.devserver import find_binary  # the product's lookup: NATS_SERVER_BIN, beside Python, PATH

# A configuration that brings its own top-level (unindented) jetstream block keeps it; an account's
# indented `jetstream: enabled` does not count.
OWN_JETSTREAM = re.compile(r"^jetstream\b", re.MULTILINE)
PORT_TAKEN = "address already in use"
REPO_NATS_CONF = Path(__file__).resolve().parents[1] / "nats.conf"
INCLUDE = re.compile(r'^include "([^"]+)"$', re.MULTILINE)

_running: set[NatsServer] = set()
ANONYMOUS: dict = {}  # nats.connect's arguments for no credentials
CLUSTER_ATTEMPTS = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def refused_url() -> str:
    """A loopback URL where nothing listens: connecting is refused at once."""
    return f"nats://127.0.0.1:{free_port()}"


def _find_prctl():
    try:
        return ctypes.CDLL(None, use_errno=True).prctl  # resolved here: the forked child must not dlopen
    except (OSError, AttributeError):
        return None  # not Linux: the atexit hook below still covers a normal interpreter exit


_PRCTL = _find_prctl()
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Linux: the kernel kills the server when the test process dies, even by SIGKILL or a timeout's os._exit."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass(eq=False)
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
    def log_file(self) -> Path:
        return self.workdir / "server.log"

    @cached_property
    def version(self) -> str:
        """"2.15.1", from `nats-server --version` ("nats-server: v2.15.1")."""
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True, check=True).stdout
        return out.strip().split("v")[-1]

    def start(self, timeout: float = 15.0) -> "NatsServer":
        for _ in range(3):
            self.launch()
            try:
                self.wait_healthy(timeout)
                return self
            except PortTaken:
                # free_port() only proves a port was free a moment ago; another process may have taken it since.
                self.port, self.http_port = free_port(), free_port()
        raise RuntimeError(f"nats-server found no free port: {self.log_tail()}")

    def launch(self) -> None:
        """Start the process without waiting (cluster nodes only become healthy together)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(
            f'listen: "127.0.0.1:{self.port}"\nhttp: "127.0.0.1:{self.http_port}"\n{self.config_text}\n'
        )
        self.log_file.write_bytes(b"")
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen([self.binary, "-c", str(self.config_file)], stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=log, preexec_fn=_die_with_parent)
        _running.add(self)

    def wait_healthy(self, timeout: float) -> None:
        """Until /healthz answers 200: JetStream is up and, in a cluster, a meta leader exists (monitor.go healthz)."""
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.http_port}/healthz"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                _running.discard(self)
                if PORT_TAKEN in self.log_tail():
                    raise PortTaken(self.log_tail())
                raise RuntimeError(f"nats-server exited: {self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=1) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"nats-server did not become healthy in {timeout}s: {self.log_tail()}")

    def log_tail(self) -> str:
        return self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        _running.discard(self)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        _running.discard(self)

    def restart(self) -> "NatsServer":
        """Same ports, same store: what a server finds after a reboot."""
        self.stop()
        return self.start()


class PortTaken(RuntimeError):
    pass


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_running):
        server.kill()


def start_server(workdir: Path, *, config: str = "", binary: str | None = None, jetstream: bool = True,
                 name: str | None = None) -> NatsServer:
    """One node; ``config`` is extra server configuration text (accounts, jetstream domain, ...).

    When ``config`` has its own top-level ``jetstream`` block, none is added.
    """
    workdir = Path(workdir)
    lines = [f'server_name: "{name}"'] if name else []
    if jetstream and not OWN_JETSTREAM.search(config):
        lines.append(f'jetstream {{ store_dir: "{workdir / "store"}" }}')
    lines.append(config)
    return NatsServer(workdir, binary or find_binary(), "\n".join(lines)).start()


def start_cluster(workdir: Path, size: int = 3, *, tags_per_node: list[list[str]] | None = None,
                  binary: str | None = None, name: str = "medisync-test", config: str = "",
                  probe_as: dict | None = ANONYMOUS) -> list[NatsServer]:
    """A JetStream cluster on loopback, routes between all nodes, server tags for placement; ``config`` is
    extra configuration text for every node (accounts, ...). Returned once it places ``size`` replicas, as
    the user ``probe_as`` (nats.connect's arguments; None: only once healthy)."""
    for attempt in range(CLUSTER_ATTEMPTS):
        nodes: list[NatsServer] = []
        try:
            nodes = _launch_cluster(Path(workdir) / (f"again{attempt}" if attempt else ""), size, tags_per_node,
                                    binary or find_binary(), name, config)
            if probe_as is not None:
                wait_until_placeable(nodes[0].url, size, timeout=15, **probe_as)
            return nodes
        except (AssertionError, RuntimeError):
            # 2.10 now and then forms the meta group without one of the nodes started together (its /jsz
            # leader lists one peer), and never takes it in: about 1 start in 8 here; under load a node may
            # also wait for a meta leader past healthz's 30 s. A fresh start does.
            for node in nodes:
                node.kill()
            if attempt == CLUSTER_ATTEMPTS - 1:
                raise


def _launch_cluster(workdir: Path, size: int, tags_per_node: list[list[str]] | None, binary: str, name: str,
                    config: str) -> list[NatsServer]:
    """The nodes of a cluster, started and healthy (JetStream up, a meta leader elected)."""
    cluster_ports = [free_port() for _ in range(size)]
    routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in cluster_ports)
    nodes = []
    for i in range(size):
        tags = (tags_per_node or [[] for _ in range(size)])[i]
        text = (
            f'server_name: "n{i + 1}"\n'
            f'jetstream {{ store_dir: "{workdir / f"n{i + 1}" / "store"}" }}\n'
            + (f"server_tags: {json.dumps(tags)}\n" if tags else "")
            + f'cluster {{ name: "{name}", listen: "127.0.0.1:{cluster_ports[i]}", routes: [{routes}] }}\n'
            + config
        )
        nodes.append(NatsServer(workdir / f"n{i + 1}", binary, text))
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


def answer(url: str, subject: str, body: dict | None = None, **connect) -> dict | str:
    """The reply to one JetStream API request, or why there is none: a cluster without a meta leader, or a
    stream without a leader, leaves requests unanswered, so each waits a second at most."""
    try:
        reply = raw_js_api(url, subject, body, timeout=1, **connect)
    except (OSError, TimeoutError, nats.errors.Error) as exc:
        return f"no answer to {subject}: {exc!r}"
    return f"{subject}: {reply['error']}" if "error" in reply else reply


def wait_for(what: str, check, timeout: float = 30.0) -> dict:
    """``check()`` again until it gives a reply (a dict), not a reason; elections in a loaded cluster take seconds."""
    deadline = time.monotonic() + timeout
    while isinstance(reply := check(), str):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout:g}s: {reply}")
        time.sleep(0.1)
    return reply


def wait_until_placeable(url: str, replicas: int = 3, timeout: float = 30.0, **connect) -> None:
    """Until the cluster places a stream of ``replicas``: its meta leader picks only peers whose statsz it has
    had (selectPeerGroup: "peer offline" before), which takes a moment longer than healthz, and longer after a
    node restarts. A probe stream is created and deleted; ``connect`` goes to nats.connect (user_credentials=, ...)."""
    probe = {"name": "PLACEMENT_PROBE", "subjects": ["placement.probe"], "num_replicas": replicas}
    wait_for(f"the cluster placed {replicas} replicas",
             lambda: answer(url, f"STREAM.CREATE.{probe['name']}", probe, **connect), timeout)
    raw_js_api(url, f"STREAM.DELETE.{probe['name']}", None, **connect)


def repo_nats_conf(**settings: str | None) -> str:
    """The repository's nats.conf with top-level settings rewritten (a value) or dropped (None).

    Tests run the real file, changing only where it listens and stores, never port 4222 or .dev/.
    Its includes (the generated permissions.conf) are put in place, as nats-server reads them, so the
    text works from any directory.
    """
    text = INCLUDE.sub(lambda m: (REPO_NATS_CONF.parent / m.group(1)).read_text(), REPO_NATS_CONF.read_text())
    for key, value in settings.items():
        line = re.compile(rf"^(\s*){key}:.*$", re.MULTILINE)
        if len(line.findall(text)) != 1:
            raise AssertionError(f"nats.conf should set {key} exactly once")
        text = line.sub("" if value is None else lambda m: f"{m.group(1)}{key}: {json.dumps(value)}", text)
    return text


def raw_js_api(url: str, subject: str, body: dict | None = None, *, timeout: float = 10, **connect) -> dict:
    """One raw JetStream API request ($JS.API.<subject>) with nats-py's core client; the server's JSON reply.

    ``connect`` goes to nats.connect (user=, password=, token=, ...).
    """

    async def request() -> dict:
        # nats-py retries a refused login until its reconnect attempts run out: fail at once instead.
        nc = await nats.connect(url, **{"allow_reconnect": False, **connect})
        try:
            payload = json.dumps(body).encode() if body is not None else b""
            reply = await nc.request(f"$JS.API.{subject}", payload, timeout=timeout)
            return json.loads(reply.data or b"{}")
        finally:
            await nc.close()

    return asyncio.run(request())
