"""The repository's nats.conf on a real server: the provisioner manages JetStream (each service's own rights:
test_permissions.py)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import nats
import pytest
from click.testing import CliRunner

from natsserver import raw_js_api, repo_nats_conf, start_server

from medisync_topology.cli import main
from medisync_topology.subjects import subject_is_subset
from medisync_topology.validate import load_topology

PROVISIONER = {"user": "provisioner", "password": "provisioner-dev"}
WORKER = {"durable_name": "worker", "ack_policy": "explicit", "filter_subject": "medisync.etl.*.completed"}


@pytest.fixture
def server(tmp_path):
    config = repo_nats_conf(listen=None, http=None, store_dir=str(tmp_path / "store"))  # the harness picks ports
    server = start_server(tmp_path, config=config)
    yield server
    server.stop()


@pytest.fixture
def events(server):
    """EVENTS with the durable pull consumer ``worker``, made by the provisioner."""
    as_provisioner(server, "STREAM.CREATE.EVENTS", {"name": "EVENTS", "subjects": ["medisync.etl.>"]})
    as_provisioner(server, "CONSUMER.CREATE.EVENTS.worker", {"stream_name": "EVENTS", "config": WORKER})
    return server


def as_provisioner(server, subject: str, body: dict | None = None) -> dict:
    reply = raw_js_api(server.url, subject, body, **PROVISIONER)
    assert "error" not in reply, reply
    return reply


def run_as(server, creds: dict, scenario, *, denials: int = 0) -> list[str]:
    """Run ``scenario(nc)`` connected as a user; the permission violations the server reported,
    after waiting (up to 5 s) for the ``denials`` expected.
    """
    violations: list[str] = []

    async def on_error(error):
        violations.append(str(error))

    async def go():
        nc = await nats.connect(server.url, allow_reconnect=False, error_cb=on_error, **creds)
        try:
            await scenario(nc)
            await nc.flush()
            # No flush proves a denial has arrived: nats-py writes the flush's PING ahead of
            # still-buffered PUBs, so the server's PONG can come before its -ERR.
            for _ in range(100):
                if len(violations) >= denials:
                    break
                await asyncio.sleep(0.05)
        finally:
            await nc.close()

    asyncio.run(go())
    return violations


def denied(subject: str) -> str:
    # nats-py passes on the server's -ERR 'Permissions Violation for Publish to "<subject>"' lowercased.
    return f'nats: permissions violation for publish to "{subject}"'.lower()


def test_provisioner_creates_and_deletes_streams_and_consumers(server):
    assert as_provisioner(server, "STREAM.CREATE.EVENTS", {"name": "EVENTS", "subjects": ["medisync.etl.>"]})["config"]
    as_provisioner(server, "CONSUMER.CREATE.EVENTS.worker", {"stream_name": "EVENTS", "config": WORKER})
    assert as_provisioner(server, "CONSUMER.NAMES.EVENTS")["consumers"] == ["worker"]
    assert as_provisioner(server, "CONSUMER.DELETE.EVENTS.worker")["success"] is True
    assert as_provisioner(server, "STREAM.DELETE.EVENTS")["success"] is True
    assert as_provisioner(server, "STREAM.NAMES")["streams"] is None


def test_provisioner_may_not_publish_events(events):
    async def scenario(nc):
        await nc.publish("medisync.etl.tally.completed", b"{}")

    assert run_as(events, PROVISIONER, scenario, denials=1) == [denied("medisync.etl.tally.completed")]
    assert as_provisioner(events, "STREAM.INFO.EVENTS")["state"]["messages"] == 0


@pytest.mark.parametrize("creds", [
    {"user": "provisioner", "password": "etl-service-dev"},
    {"user": "etl-service", "password": "wrong"},
    {"user": "admin", "password": "admin"},
    {},
])
def test_wrong_or_missing_credentials_are_rejected(server, creds):
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        raw_js_api(server.url, "INFO", **creds)


def test_the_shipped_topology_applies_as_provisioner_converges_and_stores_its_audit_event(server, monkeypatch):
    """The example is real: the repo's topology.yaml applied through the tool on the repo's nats.conf."""
    repo = Path(__file__).resolve().parent.parent
    auth = ["--server", server.url, "--user", "provisioner"]
    monkeypatch.setenv("NATS_PASSWORD", "provisioner-dev")
    result = CliRunner().invoke(main, ["apply", "-f", str(repo / "topology.yaml"), "--auto-approve", *auth])
    assert result.exit_code == 0, result.output
    # What holds for any valid topology, so editing MediSync's does not break this test: everything it
    # declares is created, the audit event is stored where the topology captures it, and a plan converges.
    topology = load_topology(repo / "topology.yaml")
    declared = len(topology.streams) + topology.consumer_count() + len(topology.buckets)
    assert f"Apply complete: {declared} created, 0 updated, 0 replaced, 0 deleted." in result.output
    assert "Warning" not in result.output
    subject = (topology.audit or {}).get("subject")
    capturing = [name for name, spec in topology.streams.items()
                 if subject and any(subject_is_subset(subject, s) for s in spec.config.get("subjects") or [])]
    for name in capturing:
        assert as_provisioner(server, f"STREAM.INFO.{name}")["state"]["messages"] == 1  # the audit event, stored
    result = CliRunner().invoke(main, ["plan", "-f", str(repo / "topology.yaml"), "--detailed-exitcode", *auth])
    assert result.exit_code == 0 and "No changes." in result.output, result.output
