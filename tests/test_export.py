"""topology export: minimal configs (rules.minimal_*), the document it writes, and the round trip on a real server."""

import asyncio
import json
import time

import nats
import pytest
import yaml
from click.testing import CliRunner
from conftest import too_new
from nats.js.api import KeyValueConfig, ObjectStoreConfig

from medisync_topology import rules
from medisync_topology.cli import main
from medisync_topology.errors import TopologyError
from medisync_topology.export import MODELINE, export_topology, to_yaml
from medisync_topology.live import LiveState, LiveStream
from medisync_topology.loader import parse_document
from medisync_topology.model import build_topology
from medisync_topology.ops import CreateResource, Plan, Ref
from medisync_topology.plan import OWNER_KEY, make_plan
from medisync_topology.render import render_markdown, render_text
from medisync_topology.validate import schema_file

S = 10**9
MINUTE = 60 * S
DAY = 86400 * S


def roundtrip_stream(config, version=None, streams=None):
    complete = rules.complete_stream(config, version, streams)
    minimal = rules.minimal_stream(complete, version, streams)
    assert rules.complete_stream(minimal, version, streams) == complete
    return minimal


def roundtrip_consumer(config, stream, version=None):
    complete = rules.complete_consumer(config, stream, version)
    minimal = rules.minimal_consumer(complete, stream, version)
    assert rules.complete_consumer(minimal, stream, version) == complete
    return minimal


# -- minimal_stream / minimal_consumer --------------------------------------


@pytest.mark.parametrize(
    "given, minimal",
    [
        # Every plain default goes, the name stays.
        ({"name": "S"}, {"name": "S"}),
        ({"name": "S", "subjects": ["S"], "max_msgs": -1, "storage": "file", "duplicate_window": 2 * MINUTE},
         {"name": "S"}),
        # duplicate_window follows a max_age shorter than 2m, and is 2m beside a longer one.
        ({"name": "S", "max_age": 30 * S, "duplicate_window": 30 * S}, {"name": "S", "max_age": 30 * S}),
        ({"name": "S", "max_age": DAY, "duplicate_window": 2 * MINUTE}, {"name": "S", "max_age": DAY}),
        ({"name": "S", "max_age": DAY, "duplicate_window": 30 * S},
         {"name": "S", "max_age": DAY, "duplicate_window": 30 * S}),
        # A sealed stream implies discard new, deny_delete and deny_purge.
        ({"name": "S", "sealed": True, "discard": "new", "deny_delete": True, "deny_purge": True},
         {"name": "S", "sealed": True}),
        # A mirror has no duplicate window and takes mirror_direct from its origin's allow_direct.
        ({"name": "M", "mirror": {"name": "O"}, "mirror_direct": True}, {"name": "M", "mirror": {"name": "O"}}),
        # subjects other than [name] are the user's.
        ({"name": "S", "subjects": ["s.>"]}, {"name": "S", "subjects": ["s.>"]}),
    ],
)
def test_minimal_stream_keeps_only_what_the_server_would_not_fill_in(given, minimal):
    assert roundtrip_stream(given, None, {"O": {"name": "O", "allow_direct": True}}) == minimal


def test_minimal_stream_knows_the_duplicate_window_of_sourcing_streams_by_server_version():
    sourcing = {"name": "S", "sources": [{"name": "O"}], "duplicate_window": 2 * MINUTE}
    # Before 2.14 the server gives a sourcing stream the 2m window itself; since 2.14 it gives none.
    assert rules.minimal_stream(sourcing, (2, 12, 0)) == {"name": "S", "sources": [{"name": "O"}]}
    assert rules.minimal_stream(sourcing, (2, 15, 0)) == sourcing


@pytest.mark.parametrize(
    "given, stream, minimal",
    [
        # ack_wait is 30s for explicit acks, backoff[0] beside a backoff; the name is the durable's.
        ({"durable_name": "c", "name": "c", "ack_policy": "explicit", "ack_wait": 30 * S}, {},
         {"durable_name": "c", "ack_policy": "explicit"}),
        ({"durable_name": "c", "ack_policy": "explicit", "backoff": [S, 5 * S], "ack_wait": S}, {},
         {"durable_name": "c", "ack_policy": "explicit", "backoff": [S, 5 * S]}),
        # Without acks there is no ack wait to default: 30s is then the user's.
        ({"durable_name": "c", "ack_policy": "none", "ack_wait": 30 * S}, {},
         {"durable_name": "c", "ack_wait": 30 * S}),
        # max_waiting 512 is a pull default; a push consumer has none.
        ({"durable_name": "c", "max_waiting": 512}, {}, {"durable_name": "c"}),
        ({"durable_name": "c", "max_waiting": 100}, {}, {"durable_name": "c", "max_waiting": 100}),
        ({"durable_name": "c", "deliver_subject": "d.c"}, {}, {"durable_name": "c", "deliver_subject": "d.c"}),
        # max_ack_pending and inactive_threshold come from the stream's consumer_limits.
        ({"durable_name": "c", "ack_policy": "explicit", "max_ack_pending": 1000}, {},
         {"durable_name": "c", "ack_policy": "explicit"}),
        ({"durable_name": "c", "ack_policy": "explicit", "max_ack_pending": 50, "inactive_threshold": MINUTE},
         {"consumer_limits": {"max_ack_pending": 50, "inactive_threshold": MINUTE}},
         {"durable_name": "c", "ack_policy": "explicit"}),
        ({"durable_name": "c", "ack_policy": "explicit", "max_ack_pending": 1000},
         {"consumer_limits": {"max_ack_pending": 50}},
         {"durable_name": "c", "ack_policy": "explicit", "max_ack_pending": 1000}),
    ],
)
def test_minimal_consumer_drops_context_dependent_defaults(given, stream, minimal):
    assert roundtrip_consumer(given, stream) == minimal


# -- the document, without a server -----------------------------------------


def live(*streams, version="2.15.1"):
    return LiveState(version, {s.config["name"]: s for s in streams})


def stream(name, consumers=(), **config):
    full = rules.complete_stream({"name": name, **config})
    return LiveStream(full, {}, {c["name"]: c for c in consumers})


def consumer(stream_name, name, **config):
    return rules.complete_consumer({"durable_name": name, **config}, rules.complete_stream({"name": stream_name}))


def test_owner_is_the_one_the_resources_carry_and_our_key_and_server_metadata_are_dropped():
    state = live(
        stream("A", [consumer("A", "c", metadata={OWNER_KEY: "billing"})],
               metadata={OWNER_KEY: "billing", "_nats.req.level": "0", "team": "x"}),
        stream("B"),  # unowned: adopted, no say in the owner
    )
    document = export_topology(state).document
    assert document["owner"] == "billing"
    assert document["streams"]["A"] == {"metadata": {"team": "x"}, "consumers": {"c": {}}}
    assert export_topology(state, owner="medisync").document["owner"] == "medisync"
    assert export_topology(live(stream("B"))).document["owner"] == "medisync"


def test_resources_of_different_owners_need_an_explicit_owner():
    state = live(stream("A", metadata={OWNER_KEY: "billing"}), stream("B", metadata={OWNER_KEY: "etl"}))
    with pytest.raises(TopologyError, match=r"different owners \('billing' owns stream A; 'etl' owns stream B\); pass --owner"):
        export_topology(state)
    assert export_topology(state, ["B"]).document["owner"] == "etl"


def test_stream_patterns_are_shell_wildcards_and_bring_the_origins_of_mirrors_along():
    state = live(stream("ORDERS", subjects=["o.>"]), stream("ORDERS_BACKUP", mirror={"name": "ORDERS"}),
                 stream("AUDIT", subjects=["a.>"]))
    exported = export_topology(state, ["*_BACKUP"])
    assert list(exported.document["streams"]) == ["ORDERS", "ORDERS_BACKUP"]
    assert exported.warnings == ["stream ORDERS is exported too: stream ORDERS_BACKUP mirrors or sources from it"]
    with pytest.raises(TopologyError, match=r"--stream EVENTS\*: no stream or bucket on the server matches it"):
        export_topology(state, ["EVENTS*"])


def test_yaml_has_the_modeline_human_units_and_flow_lists():
    state = live(stream("S", subjects=["s.>", "t.*"], max_age=7 * DAY, max_bytes=1024**3, max_msg_size=1500),
                 stream("T"))
    assert to_yaml(export_topology(state).document, "schema/topology.schema.json") == (
        f"{MODELINE}schema/topology.schema.json\n"
        "version: 1\n"
        "owner: medisync\n"
        "streams:\n"
        "  S:\n"
        "    subjects: [s.>, t.*]\n"
        "    max_bytes: 1GiB\n"
        "    max_age: 7d\n"
        "    max_msg_size: 1500\n"
        "  T: {}\n"
    )


# -- plans show what a create sets, not every default ------------------------


def test_create_blocks_show_only_the_users_settings_with_the_streams_consumer_limits_as_context():
    text = (
        "version: 1\nowner: medisync\nstreams:\n"
        "  S:\n    consumer_limits: {max_ack_pending: 50}\n"
        "    consumers:\n      c: {ack_policy: explicit, max_deliver: 5}\n"
        "  T: {}\n"
    )
    desired, problems = build_topology(parse_document(text, "t.yaml"))
    assert problems == []
    planned = {str(op.ref): op for op in make_plan(desired, LiveState("2.15.1", {})).operations}
    consumer_config = planned["consumer S/c"].config
    assert consumer_config["max_ack_pending"] == 50 and consumer_config["ack_wait"] == 30 * S
    owned = {"metadata": {OWNER_KEY: "medisync"}}
    assert planned["stream S"].settings == {"consumer_limits": {"max_ack_pending": 50}, **owned}
    assert planned["consumer S/c"].settings == {"ack_policy": "explicit", "max_deliver": 5, **owned}
    assert planned["stream T"].settings == owned
    plan = Plan(
        operations=[
            CreateResource(Ref("stream", "S"), planned["stream S"].config, {"consumer_limits": {"max_ack_pending": 50}}),
            CreateResource(Ref("consumer", "c", "S"), consumer_config, {"ack_policy": "explicit", "max_deliver": 5}),
            CreateResource(Ref("stream", "T"), planned["stream T"].config, {}),
        ],
        server={"version": "2.15.1"},
    )
    text = render_text(plan, color=False)
    assert (
        "  + create stream S\n      consumer_limits:  {\"max_ack_pending\": 50}\n\n"
        "  + create consumer S/c\n      ack_policy:   \"explicit\"\n      max_deliver:  5\n\n"
        "  + create stream T\n\n"
    ) in text
    markdown = render_markdown(plan)
    assert "Create consumer <code>S/c</code>: 2 settings</summary>\n\n- `ack_policy`: `\"explicit\"`\n- `max_deliver`: `5`\n" in markdown
    assert "Create stream `T` with the server's defaults.\n" in markdown


# -- the round trip on a real server -----------------------------------------

EXPORTED = """\
version: 1
owner: medisync
streams:
  AGG:
    subjects: [agg.>]
    max_age: 1m
    sources:
      - name: EVENTS
        filter_subject: medisync.etl.>
      - name: EVENTS
        subject_transforms:
          - src: medisync.document.>
            dest: agg.doc.>
      - name: SHIP
  EVENTS:
    description: ETL and document events
    subjects: [medisync.etl.>, medisync.document.>]
    max_msgs: 1000000
    max_bytes: 1GiB
    max_age: 7d
    max_msgs_per_subject: 10
    discard: new
    allow_direct: true
    deny_delete: true
    metadata:
      team: etl
    consumers:
      etl-notifier:
        ack_policy: explicit
        max_deliver: 5
        backoff: [1s, 5s, 30s]
        filter_subjects: [medisync.etl.*.completed, medisync.document.>]
        max_waiting: 100
      etl-workers:
        deliver_policy: new
        ack_policy: explicit
        ack_wait: 1m
        filter_subject: medisync.etl.>
        max_ack_pending: 20
        deliver_subject: deliver.etl
        deliver_group: workers
  EVENTS_BACKUP:
    storage: memory
    mirror:
      name: EVENTS
  KV_cache:
    subjects: [$KV.cache.>]
    max_age: 1h
    max_msgs_per_subject: 5
    max_msg_size: 1KiB
    discard: new
    deny_delete: true
    allow_rollup_hdrs: true
    allow_msg_ttl: true
  SHIP:
    subjects: [medisync.ship.>]
    retention: workqueue
key_value:
  sessions:
    history: 3
    ttl: 30m
object_stores:
  documents:
    description: scanned documents
    max_bytes: 10GiB
"""


def populate(url, js_api, version):
    """Varied resources made the way apps and people make them: the raw API, nats-py's KV and object store calls."""
    js_api("STREAM.CREATE.EVENTS", {
        "name": "EVENTS", "description": "ETL and document events",
        "subjects": ["medisync.etl.>", "medisync.document.>"], "max_age": 7 * DAY, "max_bytes": 1024**3,
        "max_msgs": 1_000_000, "max_msgs_per_subject": 10, "discard": "new", "deny_delete": True,
        "allow_direct": True, "metadata": {"team": "etl"},
    })
    js_api("STREAM.CREATE.EVENTS_BACKUP", {"name": "EVENTS_BACKUP", "mirror": {"name": "EVENTS"}, "storage": "memory",
                                           "mirror_direct": True})
    # Sourcing from a workqueue stream makes the server create a consumer on it (JS_SRC_..., sourcing: true).
    js_api("STREAM.CREATE.SHIP", {"name": "SHIP", "subjects": ["medisync.ship.>"], "retention": "workqueue"})
    js_api("STREAM.CREATE.AGG", {
        "name": "AGG", "subjects": ["agg.>"], "max_age": MINUTE,
        "sources": [{"name": "EVENTS", "filter_subject": "medisync.etl.>"},
                    {"name": "EVENTS", "subject_transforms": [{"src": "medisync.document.>", "dest": "agg.doc.>"}]},
                    {"name": "SHIP"}],
    })
    js_api("CONSUMER.CREATE.EVENTS.etl-workers", {"stream_name": "EVENTS", "config": {
        "durable_name": "etl-workers", "deliver_subject": "deliver.etl", "deliver_group": "workers",
        "deliver_policy": "new", "ack_policy": "explicit", "ack_wait": MINUTE, "max_ack_pending": 20,
        "filter_subject": "medisync.etl.>",
    }})
    js_api("CONSUMER.CREATE.EVENTS.etl-notifier", {"stream_name": "EVENTS", "config": {
        "durable_name": "etl-notifier", "ack_policy": "explicit", "backoff": [S, 5 * S, 30 * S], "max_deliver": 5,
        "max_waiting": 100, "filter_subjects": ["medisync.etl.*.completed", "medisync.document.>"],
    }})
    js_api("CONSUMER.CREATE.EVENTS", {"stream_name": "EVENTS", "config": {"ack_policy": "none"}})  # ephemeral
    # A KV bucket as nats.go (and `nats kv add`) creates it.
    js_api("STREAM.CREATE.KV_sessions", {
        "name": "KV_sessions", "subjects": ["$KV.sessions.>"], "max_msgs_per_subject": 3, "max_age": 30 * MINUTE,
        "max_bytes": -1, "max_msg_size": -1, "max_msgs": -1, "max_consumers": -1, "storage": "file",
        "num_replicas": 1, "allow_rollup_hdrs": True, "deny_delete": True, "duplicate_window": 2 * MINUTE,
        "allow_direct": True, "compression": "none", "discard": "new",
    })

    async def buckets():
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            await js.create_key_value(KeyValueConfig(bucket="cache", history=5, ttl=3600, max_value_size=1024))
            await js.create_object_store("documents", ObjectStoreConfig(description="scanned documents",
                                                                        max_bytes=10 * 1024**3))
        finally:
            await nc.close()

    asyncio.run(buckets())
    listed = wait_for_sourcing_consumer(js_api, "AGG", "SHIP")
    # Since 2.14 the server's consumer is listed, marked sourcing; before, it is direct, which no list shows.
    assert [c["config"].get("sourcing") for c in listed] == ([] if too_new("consumer", "sourcing", version) else [True])


def wait_for_sourcing_consumer(js_api, stream, origin) -> list[dict]:
    """The server creates its sourcing consumer on the origin a moment after the sourcing stream: then the
    source is active. The origin's consumers as CONSUMER.LIST gives them."""
    deadline = time.monotonic() + 10
    while any(s["active"] < 0 for s in js_api(f"STREAM.INFO.{stream}")["sources"] if s["name"] == origin):
        assert time.monotonic() < deadline, f"stream {stream} never reached its source {origin}"
        time.sleep(0.05)
    return js_api(f"CONSUMER.LIST.{origin}").get("consumers") or []


def cli(*args):
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output, result.output
    return result


def test_export_validate_adopt_apply_converges(nats_server, js_api, server_version, tmp_path, monkeypatch):
    monkeypatch.setenv("NATS_URL", nats_server.url)
    populate(nats_server.url, js_api, server_version)
    path = str(tmp_path / "topology.yaml")

    result = cli("export", "--output", path)
    assert result.exit_code == 0, result.output
    # nats-py turns on per-message TTLs for its KV buckets; a server without them (2.10) drops the flag.
    ttls = not too_new("stream", "allow_msg_ttl", server_version)
    exported = EXPORTED if ttls else EXPORTED.replace("    allow_msg_ttl: true\n", "")
    # No checkout around tmp_path: the modeline names the schema this tool carries, by its file URI.
    assert (tmp_path / "topology.yaml").read_text() == f"{MODELINE}{schema_file().resolve().as_uri()}\n{exported}"
    # nats-py builds KV streams unlike nats.go: the bucket is kept as its stream, so nothing changes.
    assert result.stderr == (
        f"Warning: key_value cache: its stream KV_cache has allow_direct: false{', allow_msg_ttl: true' * ttls}, which "
        "key_value settings cannot express (made by another client than nats.go?); exported as stream KV_cache "
        "under streams:\n"
        f"Wrote {path}: 5 streams, 2 consumers, 1 key_value bucket, 1 object store\n"
    )

    result = cli("validate", "-f", path)
    assert result.exit_code == 0 and result.output == f"{path} is valid: 5 streams, 2 consumers, 1 KV bucket, 1 object store\n"

    result = cli("plan", "-f", path, "--adopt", "--format", "json")
    assert result.exit_code == 0, result.output
    operations = json.loads(result.stdout)["operations"]
    assert sorted((op["kind"], op["name"]) for op in operations) == [
        ("consumer", "etl-notifier"), ("consumer", "etl-workers"), ("key_value", "sessions"),
        ("object_store", "documents"), ("stream", "AGG"), ("stream", "EVENTS"), ("stream", "EVENTS_BACKUP"),
        ("stream", "KV_cache"), ("stream", "SHIP"),
    ]
    for op in operations:
        assert op["action"] == "update" and op["adopt"], op
        assert [c["path"] for c in op["changes"]] == ["metadata"], op
        assert op["after"]["metadata"][OWNER_KEY] == "medisync"

    result = cli("apply", "-f", path, "--adopt", "--auto-approve")
    assert result.exit_code == 0 and "Apply complete: 0 created, 9 updated, 0 replaced, 0 deleted." in result.output
    # The server's own consumer on SHIP (for AGG's source) is neither unmanaged noise nor pruned.
    result = cli("plan", "-f", path, "--detailed-exitcode", "--prune")
    assert result.exit_code == 0 and result.output.startswith("No changes."), result.output
    assert "JS_SRC_" not in result.output

    # Exporting what we now own gives the same file: the owner comes from the resources. Written inside a
    # checkout, the modeline is the relative path to its schema from where the file is.
    checkout = tmp_path / "repo"
    (checkout / "schema").mkdir(parents=True)
    (checkout / "schema" / "topology.schema.json").write_text("{}")
    (checkout / "config" / "prod").mkdir(parents=True)
    result = cli("export", "--output", str(checkout / "config" / "prod" / "topology.yaml"))
    assert result.exit_code == 0, result.output
    written = (checkout / "config" / "prod" / "topology.yaml").read_text()
    assert written == f"{MODELINE}../../schema/topology.schema.json\n{exported}"
    monkeypatch.chdir(checkout)
    result = cli("export")
    assert result.exit_code == 0 and result.stdout == f"{MODELINE}schema/topology.schema.json\n{exported}"


def test_export_to_stdout_filtered_and_clean_errors(nats_server, js_api, monkeypatch):
    monkeypatch.setenv("NATS_URL", nats_server.url)
    js_api("STREAM.CREATE.ALERTS", {"name": "ALERTS", "subjects": ["medisync.alert.>"], "num_replicas": 1})
    js_api("STREAM.CREATE.AUDIT", {"name": "AUDIT", "subjects": ["medisync.audit.>"], "max_age": 365 * DAY})
    result = cli("export", "--stream", "AU*", "--owner", "compliance")
    assert result.exit_code == 0 and result.stderr == ""
    assert yaml.safe_load(result.stdout) == {"version": 1, "owner": "compliance", "streams": {"AUDIT": {"subjects": ["medisync.audit.>"], "max_age": "365d"}}}
    assert result.stdout.startswith(MODELINE)
    result = cli("export", "--stream", "EVENTS")
    assert result.exit_code == 1 and result.output == "Error: --stream EVENTS: no stream or bucket on the server matches it\n"


def test_an_unwritable_output_is_a_clean_error(nats_server, tmp_path, monkeypatch):
    monkeypatch.setenv("NATS_URL", nats_server.url)
    result = cli("export", "--output", str(tmp_path / "missing" / "topology.yaml"))
    assert result.exit_code == 1
    assert result.output == f"Error: cannot write {tmp_path / 'missing' / 'topology.yaml'}: No such file or directory\n"
