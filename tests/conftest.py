"""Fixtures: real nats-server processes, and raw JetStream API access that bypasses the product code."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from pathlib import Path

import nats
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))  # tests import natsserver / natsauth as plain modules

from natsserver import NatsServer, raw_js_api, start_cluster, start_server  # noqa: E402

from medisync_topology import fields, rules
from medisync_topology.cli import main

# The smallest useful topology, for tests about connecting rather than planning: one stream, one consumer.
ONE_STREAM_TOPOLOGY = """\
version: 1
owner: medisync
streams:
  EVENTS:
    subjects: [medisync.etl.>]
    consumers:
      etl-notifier: {filter_subject: medisync.etl.*.completed, ack_policy: explicit}
"""


@pytest.fixture
def nats_server(tmp_path):
    """A fresh single node with JetStream for each test, so tests never share state."""
    server = start_server(tmp_path / "nats")
    yield server
    server.stop()


@pytest.fixture
def nats_url(nats_server) -> str:
    return nats_server.url


@pytest.fixture
def server_version(nats_server) -> fields.Version:
    """This test's server version, (2, 15, 1): what a test written for every line asks fields.py about."""
    return rules.parse_version(nats_server.version)


def too_new(kind: str, name: str, version: fields.Version) -> str | None:
    """None when a server of ``version`` knows the field (fields.py's ``since``), else the plan error refusing
    it: "pause_until needs nats-server 2.11 or newer; the server is 2.10.26"."""
    since = fields.RESOURCES[kind][name].since
    return None if fields.at_least(version, since) else rules.needs_newer(name, since, version)


@pytest.fixture(scope="module")
def module_servers(tmp_path_factory):
    """``start("token", config)``: a server with this configuration, shared by the test module, stopped after it."""
    started: list[NatsServer] = []

    def start(name: str, config: str = "") -> NatsServer:
        started.append(start_server(tmp_path_factory.mktemp(name), config=config))
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def run(nats_server, tmp_path, monkeypatch):
    """``run(text, "plan", ...)``: the CLI on a topology text against this test's server -> (exit code, output)."""
    return topology_cli(nats_server.url, tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def nats_cluster(tmp_path_factory):
    """Three JetStream nodes with routes between them; node i has the tag ``node:ni``, nodes 1-2 ``ssd``."""
    nodes = start_cluster(tmp_path_factory.mktemp("cluster"), tags_per_node=[["node:n1", "ssd"], ["node:n2", "ssd"], ["node:n3"]])
    yield nodes
    for node in nodes:
        node.stop()


@pytest.fixture
def js_api(nats_server):
    """``js_api("STREAM.INFO.EVENTS")`` on this test's server; an API error fails the test."""

    def call(subject: str, body: dict | None = None) -> dict:
        reply = raw_js_api(nats_server.url, subject, body)
        assert "error" not in reply, reply
        return reply

    return call


@pytest.fixture
def js_request():
    """``js_request(url, "STREAM.NAMES", None, user=..., password=...)`` on any server; errors come back as replies."""
    return raw_js_api


@pytest.fixture
def publish(nats_server):
    """Publish one message through JetStream (waits for the stream's ack)."""

    def send(subject: str, data: bytes) -> dict:
        async def go() -> dict:
            nc = await nats.connect(nats_server.url)
            try:
                reply = await nc.request(subject, data, timeout=10)
                return json.loads(reply.data)
            finally:
                await nc.close()

        ack = asyncio.run(go())
        assert "error" not in ack, ack
        return ack

    return send


def topology_cli(url: str, workdir: Path, monkeypatch):
    """``invoke(text, "plan", ...)``: the CLI on a topology text against ``url``; returns (exit code, output)."""
    monkeypatch.setenv("NATS_URL", url)
    monkeypatch.delenv("NO_COLOR", raising=False)

    def invoke(text: str, *args: str):
        path = workdir / "topology.yaml"
        path.write_text(textwrap.dedent(text))
        result = CliRunner().invoke(main, [*args, "-f", str(path)])
        assert "Traceback" not in result.output, result.output
        return result.exit_code, result.output

    return invoke


@pytest.fixture(autouse=True)
def crashes_fail_tests(monkeypatch):
    """CliRunner turns an uncaught exception into exit code 1 with no output, which looks like a clean error;
    every CLI test here runs with exceptions raised instead, so a traceback can never pass as an error."""
    invoke = CliRunner.invoke

    def strict(self, cli, args=None, input=None, env=None, catch_exceptions=False, **kwargs):
        return invoke(self, cli, args, input, env, catch_exceptions, **kwargs)

    monkeypatch.setattr(CliRunner, "invoke", strict)
