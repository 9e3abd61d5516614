"""Fixtures: real nats-server processes, and raw JetStream API access that bypasses the product code."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import nats
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests import natsserver / natsauth as plain modules

from natsserver import start_cluster, start_server  # noqa: E402


@pytest.fixture
def nats_server(tmp_path):
    """A fresh single node with JetStream for each test, so tests never share state."""
    server = start_server(tmp_path / "nats")
    yield server
    server.stop()


@pytest.fixture
def nats_url(nats_server) -> str:
    return nats_server.url


@pytest.fixture(scope="module")
def nats_cluster(tmp_path_factory):
    """Three JetStream nodes with routes between them; node i has the tag ``node:ni``, nodes 1-2 ``ssd``."""
    nodes = start_cluster(tmp_path_factory.mktemp("cluster"), tags_per_node=[["node:n1", "ssd"], ["node:n2", "ssd"], ["node:n3"]])
    yield nodes
    for node in nodes:
        node.stop()


def raw_js_api(url: str, subject: str, body: dict | None = None, **connect) -> dict:
    """One raw JetStream API request ($JS.API.<subject>) with nats-py's core client."""

    async def request() -> dict:
        nc = await nats.connect(url, **connect)
        try:
            payload = json.dumps(body).encode() if body is not None else b""
            reply = await nc.request(f"$JS.API.{subject}", payload, timeout=10)
            return json.loads(reply.data or b"{}")
        finally:
            await nc.close()

    return asyncio.run(request())


@pytest.fixture
def js_api(nats_server):
    """``js_api("STREAM.INFO.EVENTS")`` on this test's server; an API error fails the test."""

    def call(subject: str, body: dict | None = None) -> dict:
        reply = raw_js_api(nats_server.url, subject, body)
        assert "error" not in reply, reply
        return reply

    return call


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
