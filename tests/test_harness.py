"""The harness itself: real servers start, answer JetStream, and stop."""

from conftest import raw_js_api


def test_single_node_answers_jetstream(nats_server, js_api):
    info = js_api("INFO")
    assert info["type"] == "io.nats.jetstream.api.v1.account_info_response"
    js_api("STREAM.CREATE.T", {"name": "T", "subjects": ["t.>"]})
    assert js_api("STREAM.NAMES")["streams"] == ["T"]
    nats_server.stop()
    assert nats_server.process.poll() is not None


def test_cluster_places_r3_streams(nats_cluster):
    reply = raw_js_api(nats_cluster[0].url, "STREAM.CREATE.R3", {"name": "R3", "subjects": ["r3.>"], "num_replicas": 3})
    assert reply["config"]["num_replicas"] == 3
    assert len(reply["cluster"]["replicas"]) == 2
    raw_js_api(nats_cluster[0].url, "STREAM.DELETE.R3")
