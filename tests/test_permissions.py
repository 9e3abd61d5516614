"""Each service's least privilege, proven on a real server with nats-py: the repository's nats.conf
(with the generated permissions.conf) runs the shipped topology, and every service does exactly its
job and is denied the rest."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from natsserver import raw_js_api, repo_nats_conf, start_server
from test_nats_conf import denied
from test_nats_conf import run_as as run_as_user

from medisync_topology.cli import main

REPO = Path(__file__).resolve().parent.parent
PROVISIONER = {"user": "provisioner", "password": "provisioner-dev"}


def creds(service: str) -> dict:
    return {"user": service, "password": f"{service}-dev", "inbox_prefix": f"_INBOX.{service}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The repository's nats.conf with the shipped topology applied by the provisioner."""
    workdir = tmp_path_factory.mktemp("permissions")
    server = start_server(workdir, config=repo_nats_conf(listen=None, http=None, store_dir=str(workdir / "store")))
    result = CliRunner().invoke(main, ["apply", "-f", str(REPO / "topology.yaml"), "--auto-approve", "--server", server.url,
                                       "--user", "provisioner", "--password", "provisioner-dev"])
    assert result.exit_code == 0, result.output
    yield server
    server.stop()


def run_as(server, service: str, scenario, *, denials: int = 0, **connect) -> list[str]:
    """Run ``scenario(nc)`` connected as the service (its own inbox prefix unless ``connect`` says otherwise)."""
    return run_as_user(server, {**creds(service), **connect}, scenario, denials=denials)


def subscribe_denied(subject: str) -> str:
    return f'nats: permissions violation for subscription to "{subject}"'.lower()


def stream_messages(server, stream: str) -> int:
    return raw_js_api(server.url, f"STREAM.INFO.{stream}", **PROVISIONER)["state"]["messages"]


def test_the_committed_permissions_conf_is_generated_from_topology_yaml():
    result = CliRunner().invoke(main, ["permissions", "--format", "nats-conf", "-f", str(REPO / "topology.yaml")])
    assert result.exit_code == 0, result.output
    stale = "permissions.conf is out of date: run `topology permissions --format nats-conf > permissions.conf`"
    assert (REPO / "permissions.conf").read_text() == result.output.replace(str(REPO / "topology.yaml"), "topology.yaml"), stale


def test_nats_conf_has_one_user_per_service_with_its_permissions():
    text = (REPO / "nats.conf").read_text()
    users = dict(re.findall(r"\{ user: ([\w-]+), password: \"[^\"]+\", permissions: \$(\w+) \}", text))
    services = json.loads(CliRunner().invoke(main, ["permissions", "-f", str(REPO / "topology.yaml")]).output)["services"]
    assert users == {name: name.upper().replace("-", "_") for name in services}
    assert 'include "permissions.conf"' in text


def test_a_publisher_publishes_its_subjects_with_acks_and_nothing_else(server):
    before = stream_messages(server, "EVENTS")

    async def scenario(nc):
        ack = await nc.jetstream().publish("medisync.etl.hims.synced", b"{}")
        assert ack.stream == "EVENTS"
        await nc.publish("medisync.tally.sync.approved", b"{}")  # tally-service's subject

    assert run_as(server, "etl-service", scenario, denials=1) == [denied("medisync.tally.sync.approved")]
    assert stream_messages(server, "EVENTS") == before + 1


def test_a_pull_consumer_is_fetched_acked_nakked_and_termed_by_its_service_only(server):
    async def publish(nc):
        js = nc.jetstream()
        for source in ("tally", "hims", "lab"):
            await js.publish(f"medisync.etl.{source}.completed", b"{}")

    async def work(nc):
        js = nc.jetstream()
        info = await js.consumer_info("EVENTS", "etl-notifier")
        assert info.num_pending >= 3
        subscription = await js.pull_subscribe_bind("etl-notifier", stream="EVENTS")
        first, second, third = await subscription.fetch(3, timeout=5)
        await first.ack_sync()
        await second.nak()
        await third.term()
        [again] = await subscription.fetch(1, timeout=5)  # the nak'ed one comes back
        assert again.subject == second.subject
        await again.in_progress()
        await again.ack_sync()

    assert run_as(server, "etl-service", publish) == []
    assert run_as(server, "etl-notifier", work) == []
    info = raw_js_api(server.url, "CONSUMER.INFO.EVENTS.etl-notifier", **PROVISIONER)
    assert (info["num_ack_pending"], info["num_pending"]) == (0, 0)


@pytest.mark.parametrize("service", ["tally-service", "agent", "etl-service"])
def test_another_services_pull_consumer_is_denied(server, service):
    async def scenario(nc):
        await nc.publish("$JS.API.CONSUMER.MSG.NEXT.EVENTS.etl-notifier", b'{"batch": 1}', reply=nc.new_inbox())
        await nc.publish("$JS.API.CONSUMER.INFO.EVENTS.etl-notifier", b"", reply=nc.new_inbox())

    assert run_as(server, service, scenario, denials=2) == [
        denied("$JS.API.CONSUMER.MSG.NEXT.EVENTS.etl-notifier"),
        denied("$JS.API.CONSUMER.INFO.EVENTS.etl-notifier"),
    ]


def test_a_push_consumer_delivers_to_its_queue_group_only(server):
    async def alert(nc):
        await nc.jetstream().publish("medisync.alert.agent.created", b'{"level": "info"}')

    async def work(nc):
        js = nc.jetstream()
        received = asyncio.Queue()
        info = await js.consumer_info("ALERTS", "alert-delivery")
        # subscribe_bind joins the consumer's deliver_group (nats-py's subscribe wants queue == durable).
        await js.subscribe_bind("ALERTS", info.config, "alert-delivery", cb=received.put, manual_ack=True)
        message = await asyncio.wait_for(received.get(), 5)
        assert message.subject == "medisync.alert.agent.created"
        await message.ack_sync()

    async def eavesdrop(nc):
        await nc.subscribe("medisync.deliver.alerts")  # outside the queue group
        await nc.subscribe("medisync.deliver.alerts", queue="other")

    assert run_as(server, "agent", alert) == []
    assert run_as(server, "alert-worker", work) == []
    assert run_as(server, "alert-worker", eavesdrop, denials=2) == [
        subscribe_denied("medisync.deliver.alerts"), subscribe_denied("medisync.deliver.alerts") + ' using queue "other"',
    ]
    assert raw_js_api(server.url, "CONSUMER.INFO.ALERTS.alert-delivery", **PROVISIONER)["num_ack_pending"] == 0


def test_kv_read_write_puts_gets_watches_and_deletes(server):
    async def scenario(nc):
        kv = await nc.jetstream().key_value("agent-state")
        await kv.put("agent.1", b"idle")
        await kv.put("agent.1", b"busy")
        assert (await kv.get("agent.1")).value == b"busy"
        history = await kv.history("agent.1")
        assert [e.value for e in history] == [b"idle", b"busy"]
        watcher = await kv.watchall()
        update = await watcher.updates(timeout=5)
        assert (update.key, update.value) == ("agent.1", b"busy")
        await watcher.stop()
        await kv.put("agent.2", b"idle")
        await kv.delete("agent.2")
        assert sorted(await kv.keys()) == ["agent.1"]

    assert run_as(server, "agent", scenario) == []


def test_kv_read_only_reads_and_watches_but_may_not_write(server):
    async def seed(nc):
        await (await nc.jetstream().key_value("agent-state")).put("on-call", b"alice")

    async def scenario(nc):
        kv = await nc.jetstream().key_value("agent-state")
        assert (await kv.get("on-call")).value == b"alice"
        watcher = await kv.watch("on-call")
        assert (await watcher.updates(timeout=5)).value == b"alice"
        await watcher.stop()
        await nc.publish("$KV.agent-state.on-call", b"mallory")

    assert run_as(server, "agent", seed) == []
    assert run_as(server, "escalation-agent", scenario, denials=1) == [denied("$KV.agent-state.on-call")]


def test_object_store_read_write_and_read_only(server):
    async def store(nc):
        documents = await nc.jetstream().object_store("documents")
        await documents.put("scan-1.pdf", b"%PDF" + b"x" * 300_000)  # several chunks
        await documents.put("scan-1.pdf", b"%PDF replaced")  # replacing purges the old chunks
        assert (await documents.get("scan-1.pdf")).data == b"%PDF replaced"
        await documents.put("scan-2.pdf", b"%PDF two")
        await documents.delete("scan-2.pdf")

    async def read(nc):
        documents = await nc.jetstream().object_store("documents")
        assert (await documents.get("scan-1.pdf")).data == b"%PDF replaced"
        assert [info.name for info in await documents.list(ignore_deletes=True)] == ["scan-1.pdf"]
        await nc.publish("$O.documents.M.x", b"{}")

    assert run_as(server, "document-service", store) == []
    assert run_as(server, "agent", read, denials=1) == [denied("$O.documents.M.x")]


@pytest.mark.parametrize("subject", [
    "$JS.API.STREAM.CREATE.OTHER", "$JS.API.STREAM.UPDATE.EVENTS", "$JS.API.STREAM.DELETE.EVENTS",
    "$JS.API.STREAM.PURGE.EVENTS", "$JS.API.CONSUMER.CREATE.EVENTS.x", "$JS.API.CONSUMER.DURABLE.CREATE.EVENTS.x",
    "$JS.API.CONSUMER.DELETE.EVENTS.etl-notifier", "$JS.API.STREAM.PURGE.KV_agent-state", "$JS.API.STREAM.DELETE.OBJ_documents",
    "$KV.medisync_topology_lock.apply", "medisync.audit.topology.applied", "$JS.API.STREAM.INFO.AUDIT",
])
def test_no_service_manages_streams_or_consumers(server, subject):
    async def scenario(nc):
        await nc.publish(subject, b"{}", reply=nc.new_inbox())

    assert run_as(server, "document-service", scenario, denials=1) == [denied(subject)]
    assert raw_js_api(server.url, "CONSUMER.INFO.EVENTS.etl-notifier", **PROVISIONER)["config"]["durable_name"] == "etl-notifier"


def test_replies_arrive_on_the_services_own_inbox_only(server):
    async def scenario(nc):
        await nc.subscribe("_INBOX.>")
        await nc.subscribe("_INBOX.agent.>")

    assert run_as(server, "etl-service", scenario, denials=2) == [
        subscribe_denied("_INBOX.>"), subscribe_denied("_INBOX.agent.>"),
    ]

    async def default_inbox(nc):
        with pytest.raises(Exception):
            await nc.jetstream().publish("medisync.etl.x.completed", b"{}", timeout=0.5)

    violations = run_as(server, "etl-service", default_inbox, denials=1, inbox_prefix="_INBOX")
    assert violations and all(v.startswith('nats: permissions violation for subscription to "_inbox.') for v in violations)


SMALL = """version: 1
owner: medisync
audit: {subject: medisync.audit.topology.applied}
streams:
  EVENTS:
    subjects: [medisync.etl.>, medisync.audit.>]
    consumers:
      fire-and-forget: {ack_policy: none}
      pushed: {deliver_subject: deliver.events, flow_control: true, idle_heartbeat: 5s, ack_policy: explicit}
key_value:
  plain: {}
services:
  auditor:
    publish: [medisync.audit.>]
    consume: [EVENTS/fire-and-forget, EVENTS/pushed]
    key_value: {plain: read}
"""


def permissions_of(tmp_path, text, fmt="json"):
    path = tmp_path / "t.yaml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["permissions", "-f", str(path), "--format", fmt])
    assert result.exit_code == 0, result.output
    return json.loads(result.output) if fmt == "json" else result.output


def test_json_is_the_jwt_permissions_shape_with_each_right_from_the_consumers_own_config(tmp_path):
    assert permissions_of(tmp_path, SMALL) == {"services": {"auditor": {
        "pub": {
            "allow": [
                "medisync.audit.>",
                "$JS.API.CONSUMER.INFO.EVENTS.fire-and-forget", "$JS.API.CONSUMER.MSG.NEXT.EVENTS.fire-and-forget",  # no acks
                "$JS.API.CONSUMER.INFO.EVENTS.pushed", "$JS.FC.EVENTS.pushed.*", "$JS.ACK.EVENTS.pushed.>",
                "$JS.API.STREAM.INFO.KV_plain", "$JS.API.DIRECT.GET.KV_plain.$KV.plain.>", "$JS.API.DIRECT.GET.KV_plain",
                "$JS.API.CONSUMER.CREATE.KV_plain", "$JS.API.CONSUMER.CREATE.KV_plain.>", "$JS.API.CONSUMER.INFO.KV_plain.*",
                "$JS.API.CONSUMER.DELETE.KV_plain.*", "$JS.FC.KV_plain.>",
            ],
            "deny": ["medisync.audit.topology.applied"],  # only the provisioner records topology changes
        },
        "sub": {"allow": ["_INBOX.auditor.>", "deliver.events"], "deny": []},
    }}}


def test_nats_conf_names_each_variable_after_its_service(tmp_path):
    text = permissions_of(tmp_path, SMALL.replace("  auditor:", "  audit-archiver:"), "nats-conf")
    assert "\nAUDIT_ARCHIVER = {\n  publish: {\n    allow: [\n      \"medisync.audit.>\"\n" in text
    assert '    deny: [\n      "medisync.audit.topology.applied"\n    ]\n' in text


def test_permissions_of_an_invalid_topology_is_an_error(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(SMALL.replace("EVENTS/pushed", "EVENTS/pulled"))
    result = CliRunner().invoke(main, ["permissions", "-f", str(path)])
    assert result.exit_code == 1 and "stream EVENTS has no consumer pulled" in result.output
