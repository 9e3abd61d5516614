"""The harness itself: real servers start, answer JetStream, keep their store across restarts, and stop."""

import re

import pytest

from natsserver import start_server


def test_single_node_answers_jetstream(nats_server, js_api):
    info = js_api("INFO")
    assert info["type"] == "io.nats.jetstream.api.v1.account_info_response"
    js_api("STREAM.CREATE.T", {"name": "T", "subjects": ["t.>"]})
    assert js_api("STREAM.NAMES")["streams"] == ["T"]
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", nats_server.version)
    assert any(nats_server.store_dir.rglob("T"))  # the stream lives in this test's own store


def test_restart_keeps_the_store_and_stop_ends_the_process(nats_server, js_api):
    js_api("STREAM.CREATE.T", {"name": "T", "subjects": ["t.>"]})
    nats_server.restart()
    assert js_api("STREAM.NAMES")["streams"] == ["T"]
    nats_server.stop()
    assert nats_server.process.poll() is not None
    nats_server.restart()
    nats_server.kill()
    assert nats_server.process.poll() is not None


def test_js_request_passes_credentials_and_returns_errors(tmp_path, js_request):
    config = 'accounts { A { jetstream: enabled, users: [{user: a, password: pw}] } }'
    server = start_server(tmp_path, config=config)  # the account's `jetstream: enabled` is not a server block
    try:
        assert js_request(server.url, "STREAM.NAMES", None, user="a", password="pw")["streams"] is None
        assert js_request(server.url, "STREAM.INFO.NOPE", None, user="a", password="pw")["error"]["err_code"] == 10059
        with pytest.raises(Exception, match="Authorization"):
            js_request(server.url, "INFO", None, user="a", password="wrong")
    finally:
        server.stop()


def test_cluster_places_r3_streams(nats_cluster, js_request):
    reply = js_request(nats_cluster[0].url, "STREAM.CREATE.R3", {"name": "R3", "subjects": ["r3.>"], "num_replicas": 3})
    assert reply["config"]["num_replicas"] == 3
    assert len(reply["cluster"]["replicas"]) == 2
    js_request(nats_cluster[0].url, "STREAM.DELETE.R3")


def test_cluster_places_by_server_tag(nats_cluster, js_request):
    reply = js_request(nats_cluster[1].url, "STREAM.CREATE.ON3", {"name": "ON3", "subjects": ["on3.>"],
                                                                  "placement": {"tags": ["node:n3"]}})
    assert reply["cluster"]["leader"] == "n3"
    js_request(nats_cluster[0].url, "STREAM.DELETE.ON3")
