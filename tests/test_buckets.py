"""KV buckets and object stores as backing streams: the mapping both ways, then on a real server
that nats-py opens the buckets we create, and that we create what nats-py's own calls create."""

from __future__ import annotations

import asyncio
import json

import nats
import pytest
from conftest import too_new
from nats.js.errors import KeyNotFoundError

from medisync_topology import rules
from medisync_topology.buckets import (
    bucket_of,
    bucket_settings,
    bucket_stream_config,
    bucket_subjects,
)
from medisync_topology.errors import TopologyError
from medisync_topology.live import LiveState
from medisync_topology.loader import parse_document
from medisync_topology.model import build_topology
from medisync_topology.plan import make_plan

SECOND = 10**9
MINUTE = 60 * SECOND


# -- the mapping, without a server -------------------------------------------

def test_kv_defaults_are_what_nats_go_sends():
    # Transcribed from nats.go jetstream/kv.go prepareKeyValueConfig with only a bucket name.
    assert bucket_stream_config("key_value", "sessions", {}) == {
        "name": "KV_sessions",
        "subjects": ["$KV.sessions.>"],
        "max_msgs_per_subject": 1,
        "max_bytes": -1,
        "max_age": 0,
        "max_msg_size": -1,
        "storage": "file",
        "num_replicas": 1,
        "allow_rollup_hdrs": True,
        "deny_delete": True,
        "duplicate_window": 2 * MINUTE,
        "max_msgs": -1,
        "max_consumers": -1,
        "allow_direct": True,
        "compression": "none",
        "discard": "new",
    }


def test_object_store_defaults_are_what_nats_go_sends():
    # Transcribed from nats.go jetstream/object.go prepareObjectStoreConfig with only a bucket name.
    assert bucket_stream_config("object_store", "files", {}) == {
        "name": "OBJ_files",
        "subjects": ["$O.files.C.>", "$O.files.M.>"],
        "max_age": 0,
        "max_bytes": -1,
        "storage": "file",
        "num_replicas": 1,
        "discard": "new",
        "allow_rollup_hdrs": True,
        "allow_direct": True,
        "compression": "none",
    }


def test_kv_settings_map_onto_stream_fields():
    config = bucket_stream_config("key_value", "s", {
        "description": "sessions", "history": 5, "ttl": 30 * MINUTE, "max_value_size": 1024,
        "max_bytes": 10**6, "storage": "memory", "num_replicas": 3, "compression": True,
        "placement": {"tags": ["az:a"]}, "republish": {"src": ">", "dest": "out.>"},
        "metadata": {"team": "etl"},
    })
    assert config["description"] == "sessions"
    assert config["max_msgs_per_subject"] == 5
    assert config["max_age"] == 30 * MINUTE
    assert config["duplicate_window"] == 2 * MINUTE
    assert config["max_msg_size"] == 1024
    assert config["max_bytes"] == 10**6
    assert (config["storage"], config["num_replicas"], config["compression"]) == ("memory", 3, "s2")
    assert config["placement"] == {"tags": ["az:a"]}
    assert config["republish"] == {"src": ">", "dest": "out.>"}
    assert config["metadata"] == {"team": "etl"}


def test_kv_duplicate_window_is_capped_at_the_ttl():
    # The server refuses a duplicate window longer than max_age.
    assert bucket_stream_config("key_value", "s", {"ttl": 30 * SECOND})["duplicate_window"] == 30 * SECOND


def test_a_kv_setting_too_new_for_the_server_is_refused_by_the_name_it_is_written_with():
    text = "version: 1\nowner: o\nkey_value:\n  sessions: {history: 2, limit_marker_ttl: 10s}\n"
    model, problems = build_topology(parse_document(text, "t.yaml"))
    assert not problems
    errors = make_plan(model, LiveState("2.10.26", {})).errors
    # Not the stream fields it sets (allow_msg_ttl, subject_delete_marker_ttl), which the file never names.
    assert [(str(f.ref), f.message) for f in errors] == [
        ("key_value sessions", "limit_marker_ttl needs nats-server 2.11 or newer; the server is 2.10.26"),
    ]
    assert not make_plan(model, LiveState("2.11.11", {})).errors


def test_kv_limit_marker_ttl_turns_on_message_ttls():
    config = bucket_stream_config("key_value", "s", {"limit_marker_ttl": 5 * SECOND})
    assert config["subject_delete_marker_ttl"] == 5 * SECOND
    assert config["allow_msg_ttl"] is True
    assert "allow_msg_ttl" not in bucket_stream_config("key_value", "s", {})


def test_kv_mirror_is_prefixed_once_and_has_no_subjects():
    for origin in ("orders", "KV_orders"):
        config = bucket_stream_config("key_value", "copy", {"mirror": {"name": origin}})
        assert config["mirror"] == {"name": "KV_orders"}
        assert config["mirror_direct"] is True
        assert "subjects" not in config


def test_kv_sources_rewrite_the_source_keys_into_this_bucket():
    sources = [
        {"name": "east"},
        {"name": "KV_west", "opt_start_seq": 3},
        {"name": "agg", "external": {"api": "$JS.hub.API"}},  # same bucket, other domain: keys already match
        {"name": "ORDERS", "subject_transforms": [{"src": "orders.>", "dest": "$KV.agg.>"}]},  # as written
    ]
    config = bucket_stream_config("key_value", "agg", {"sources": sources})
    assert config["subjects"] == ["$KV.agg.>"]
    assert config["sources"] == [
        {"name": "KV_east", "subject_transforms": [{"src": "$KV.east.>", "dest": "$KV.agg.>"}]},
        {"name": "KV_west", "opt_start_seq": 3, "subject_transforms": [{"src": "$KV.west.>", "dest": "$KV.agg.>"}]},
        {"name": "KV_agg", "external": {"api": "$JS.hub.API"}},
        {"name": "ORDERS", "subject_transforms": [{"src": "orders.>", "dest": "$KV.agg.>"}]},
    ]
    assert sources[0] == {"name": "east"}  # the caller's settings are not changed


ROUND_TRIPS = [
    ("key_value", {}),
    ("key_value", {"history": 10, "ttl": 90 * SECOND, "storage": "memory"}),
    ("key_value", {"description": "d", "max_value_size": 4096, "max_bytes": 2**20, "compression": True,
                   "num_replicas": 3, "metadata": {"team": "etl"}}),
    ("key_value", {"placement": {"cluster": "c1", "tags": ["ssd"]}, "republish": {"src": ">", "dest": "r.>",
                                                                                   "headers_only": True}}),
    ("key_value", {"ttl": 10 * MINUTE, "limit_marker_ttl": 2 * SECOND}),
    ("key_value", {"mirror": {"name": "orders", "opt_start_seq": 5}}),
    ("key_value", {"mirror": {"name": "orders", "external": {"api": "$JS.hub.API", "deliver": "dlv"}}}),
    ("key_value", {"sources": [
        {"name": "east"},
        {"name": "agg", "external": {"api": "$JS.hub.API"}},
        {"name": "east", "external": {"api": "$JS.hub.API"}},
        {"name": "ORDERS", "subject_transforms": [{"src": "orders.>", "dest": "$KV.agg.>"}]},
        {"name": "KV_west", "subject_transforms": [{"src": "$KV.west.a.>", "dest": "$KV.agg.a.>"}]},
    ]}),
    ("object_store", {}),
    ("object_store", {"description": "scans", "ttl": 7 * 24 * 60 * MINUTE, "max_bytes": 10**9, "storage": "memory",
                      "num_replicas": 3, "compression": True, "placement": {"tags": ["ssd"]},
                      "metadata": {"team": "docs"}}),
]


@pytest.mark.parametrize(("kind", "settings"), ROUND_TRIPS)
def test_settings_round_trip_through_the_stream_config(kind, settings):
    assert bucket_settings(kind, bucket_stream_config(kind, "agg", settings)) == settings


def test_settings_ignore_what_the_server_fills_in():
    # A KV stream as nats-server 2.15 reports it: server defaults and _nats.* metadata are not settings.
    live = {
        **bucket_stream_config("key_value", "s", {"history": 3, "metadata": {"team": "etl"}}),
        "retention": "limits", "max_consumers": -1, "sealed": False, "deny_purge": False, "mirror_direct": False,
        "allow_msg_ttl": False, "consumer_limits": {}, "first_seq": 0,
        "metadata": {"team": "etl", "_nats.req.level": "0", "_nats.ver": "2.15.1", "_nats.level": "3"},
    }
    assert bucket_settings("key_value", live) == {"history": 3, "metadata": {"team": "etl"}}


def test_bucket_of_names_the_bucket_behind_a_stream():
    assert bucket_of("KV_sessions") == ("key_value", "sessions")
    assert bucket_of("OBJ_files") == ("object_store", "files")
    assert bucket_of("KV_a-b_c") == ("key_value", "a-b_c")
    for ordinary in ("EVENTS", "KV_", "OBJ_", "KV", "kv_sessions", "OBJ_a.b"):
        assert bucket_of(ordinary) is None, ordinary


def test_bucket_subjects():
    assert bucket_subjects("key_value", "s") == ["$KV.s.>"]
    assert bucket_subjects("object_store", "f") == ["$O.f.C.>", "$O.f.M.>"]


@pytest.mark.parametrize(("kind", "bucket", "settings", "message"), [
    ("stream", "s", {}, "unknown bucket kind 'stream'"),
    ("key_value", "a.b", {}, "key_value bucket name 'a.b' contains '.'"),
    ("object_store", "", {}, "object store name is empty"),
    ("key_value", "s", {"histroy": 2}, "key_value bucket 's': unknown setting(s) histroy"),
    ("object_store", "f", {"history": 2}, "object store 'f': unknown setting(s) history"),
    ("key_value", "s", {"history": 65}, "history 65 must be a whole number from 1 to 64"),
    ("key_value", "s", {"history": 0}, "history 0 must be a whole number from 1 to 64"),
    ("key_value", "s", {"mirror": {"name": "a"}, "sources": [{"name": "b"}]}, "either a mirror or has sources"),
])
def test_bad_settings_are_clear_errors(kind, bucket, settings, message):
    with pytest.raises(TopologyError) as error:
        bucket_stream_config(kind, bucket, settings)
    assert message in str(error.value)


# -- on a real server ---------------------------------------------------------

async def _create(nc, config: dict) -> dict:
    """STREAM.CREATE with our config, through the raw JetStream API; the config the server reports."""
    reply = await nc.request(f"$JS.API.STREAM.CREATE.{config['name']}", json.dumps(config).encode(), timeout=5)
    answer = json.loads(reply.data)
    assert "error" not in answer, answer
    return answer["config"]


async def _info(nc, stream: str) -> dict:
    reply = await nc.request(f"$JS.API.STREAM.INFO.{stream}", b"", timeout=5)
    return json.loads(reply.data)["config"]


def _run(nats_server, scenario):
    async def main():
        nc = await nats.connect(nats_server.url)
        try:
            await scenario(nc, nc.jetstream())
        finally:
            await nc.close()

    asyncio.run(main())


def _known(kind: str, settings: dict, version) -> dict:
    """The settings a server of ``version`` knows; plan refuses the others, so they are never sent to it."""
    known = {k: v for k, v in settings.items() if not too_new(kind, k, version)}
    unknown = {k: v for k, v in settings.items() if k not in known}
    assert rules.unsupported_settings(kind, unknown, version) == sorted(too_new(kind, k, version) for k in unknown)
    return known


def _without_server_metadata(config: dict) -> dict:
    """The server (2.11+) adds _nats.* keys to every stream's metadata: not ours to compare."""
    config = dict(config)
    metadata = {k: v for k, v in config.pop("metadata", {}).items() if not k.startswith("_nats.")}
    return {**config, "metadata": metadata} if metadata else config


KV_ON_SERVER = [
    {},
    {"history": 5, "ttl": 90 * SECOND, "description": "sessions", "max_value_size": 1024},
    {"history": 2, "ttl": 10 * MINUTE, "storage": "memory", "compression": True, "max_bytes": 2**20,
     "limit_marker_ttl": 2 * SECOND, "metadata": {"team": "etl"}, "republish": {"src": ">", "dest": "kvout.>"}},
]


@pytest.mark.parametrize("index", range(len(KV_ON_SERVER)))
def test_nats_py_opens_a_kv_bucket_we_created(nats_server, server_version, index):
    settings, bucket = _known("key_value", KV_ON_SERVER[index], server_version), f"opened{index}"

    async def scenario(nc, js):
        sent = bucket_stream_config("key_value", bucket, settings)
        reported = _without_server_metadata(await _create(nc, sent))
        # The server keeps every field we send as sent, so a re-plan sees no difference.
        assert {k: reported.get(k) for k in sent} == sent
        assert bucket_settings("key_value", reported) == settings

        kv = await js.key_value(bucket)
        await kv.put("patient.42", b"admitted")
        assert (await kv.get("patient.42")).value == b"admitted"
        status = await kv.status()
        assert status.history == settings.get("history", 1)
        assert status.ttl == settings.get("ttl", 0) / SECOND

    _run(nats_server, scenario)


def test_nats_py_opens_an_object_store_we_created(nats_server):
    settings = {"description": "scans", "ttl": 10 * MINUTE, "compression": True, "metadata": {"team": "docs"}}

    async def scenario(nc, js):
        sent = bucket_stream_config("object_store", "scans", settings)
        reported = _without_server_metadata(await _create(nc, sent))
        assert {k: reported.get(k) for k in sent} == sent
        assert bucket_settings("object_store", reported) == settings

        store = await js.object_store("scans")
        payload = bytes(range(256)) * 1000  # several chunks
        await store.put("xray.png", payload)
        assert (await store.get("xray.png")).data == payload

    _run(nats_server, scenario)


def test_sourced_and_mirror_kv_buckets_on_the_server(nats_server):
    async def scenario(nc, js):
        await _create(nc, bucket_stream_config("key_value", "east", {}))
        for bucket, settings in (("agg", {"sources": [{"name": "east"}]}), ("copy", {"mirror": {"name": "east"}})):
            sent = bucket_stream_config("key_value", bucket, settings)
            reported = _without_server_metadata(await _create(nc, sent))
            assert {k: reported.get(k) for k in sent} == sent
            assert bucket_settings("key_value", reported) == settings
        await (await js.key_value("east")).put("k", b"v")
        agg = await js.key_value("agg")
        entry = None
        for _ in range(100):  # sourcing is asynchronous
            try:
                entry = await agg.get("k")
                break
            except KeyNotFoundError:
                await asyncio.sleep(0.05)
        assert entry is not None and entry.value == b"v"

    _run(nats_server, scenario)


# Fields the server manages itself, or that name the bucket, are not compared.
SERVER_OWNED = {"name", "subjects", "metadata", "created"}


def _comparable(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in SERVER_OWNED}


def test_we_create_the_kv_stream_nats_py_creates(nats_server, server_version):
    async def scenario(nc, js):
        await js.create_key_value(
            bucket="theirs", description="d", history=5, ttl=90, max_value_size=1024, max_bytes=2**20,
            direct=True,  # nats.go always turns direct get on; nats-py only when asked
        )
        theirs = _comparable(await _info(nc, "KV_theirs"))
        ours = _comparable(await _create(nc, bucket_stream_config("key_value", "ours", {
            "description": "d", "history": 5, "ttl": 90 * SECOND, "max_value_size": 1024, "max_bytes": 2**20,
        })))
        # nats-py also turns on per-message TTLs for every bucket; nats.go (and we) only with limit_marker_ttl.
        # A server without them (2.10) drops the field from nats-py's request.
        ttls = None if too_new("stream", "allow_msg_ttl", server_version) else (True, False)
        assert (theirs.pop("allow_msg_ttl", None), ours.pop("allow_msg_ttl", None)) == (ttls or (None, None))
        assert ours == theirs

    _run(nats_server, scenario)


def test_we_create_the_object_store_stream_nats_py_creates(nats_server):
    async def scenario(nc, js):
        await js.create_object_store("theirs", description="d", ttl=600, max_bytes=2**20, storage="memory")
        theirs = _comparable(await _info(nc, "OBJ_theirs"))
        ours = _comparable(await _create(nc, bucket_stream_config("object_store", "ours", {
            "description": "d", "ttl": 10 * MINUTE, "max_bytes": 2**20, "storage": "memory",
        })))
        assert ours == theirs

    _run(nats_server, scenario)


def test_a_bucket_we_created_shows_no_difference_to_the_rules(nats_server, server_version):
    # What plan compares: the completed desired config (sent pedantic, as apply sends it) against
    # the live one. A perpetual difference here would make every plan re-update the bucket.
    cases = [
        ("key_value", "plain", {}),
        ("key_value", "full", {"history": 5, "ttl": 90 * SECOND, "limit_marker_ttl": 2 * SECOND, "compression": True,
                               "metadata": {"team": "etl"}}),
        ("key_value", "sourced", {"sources": [{"name": "plain"}]}),
        ("key_value", "mirrored", {"mirror": {"name": "plain"}}),
        ("object_store", "store", {}),
        ("object_store", "short", {"ttl": 30 * SECOND, "storage": "memory"}),
    ]

    async def scenario(nc, js):
        streams: dict[str, dict] = {}
        for kind, bucket, settings in cases:
            settings = _known(kind, settings, server_version)
            desired = rules.complete_stream(bucket_stream_config(kind, bucket, settings), server_version, streams)
            live = await _create(nc, {**desired, "pedantic": True})
            streams[desired["name"]] = live
            assert rules.strip_live(live, "stream") == desired, bucket

    _run(nats_server, scenario)


def test_replicated_buckets_are_placed_by_tag_in_a_cluster(nats_cluster):
    # Nodes n1 and n2 carry the tag ssd, n3 does not.
    settings = {"num_replicas": 2, "placement": {"tags": ["ssd"]}, "history": 3}

    async def scenario(nc, js):
        for kind, bucket in (("key_value", "placed"), ("object_store", "placed")):
            sent = bucket_stream_config(kind, bucket, settings if kind == "key_value" else {
                k: v for k, v in settings.items() if k != "history"})
            await _create(nc, sent)
            reply = await nc.request(f"$JS.API.STREAM.INFO.{sent['name']}", b"", timeout=5)
            cluster = json.loads(reply.data)["cluster"]
            placed_on = {cluster["leader"]} | {replica["name"] for replica in cluster.get("replicas", [])}
            assert placed_on == {"n1", "n2"}
        kv = await js.key_value("placed")
        await kv.put("k", b"v")
        assert (await kv.get("k")).value == b"v"
        assert (await kv.status()).history == 3

    _run(nats_cluster[0], scenario)
