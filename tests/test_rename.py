"""Renaming a stream (renamed_from on a stream), against a real nats-server: the new name gets every message and
the consumers at their positions, the old stream is deleted, publishers are refused (never acknowledged and then
lost) during the one swap, and an interrupted rename is finished by the next apply."""

import asyncio
import json
import signal

import pytest
from click.testing import CliRunner
from test_migrate import (
    ORDERS, _apply_stopped_before, _apply_with_a_publisher, _consume, _killed_and_restarted,
    _killed_inside_the_consumers_step, _migrates, _publish_all, _refused_here, _stored,
)

from medisync_topology import migrate
from medisync_topology.cli import main
from medisync_topology.errors import STREAM_NOT_FOUND
from natsserver import raw_js_api

PLAIN = ORDERS.replace("    replace: migrate\n", "")
RENAMED = PLAIN.replace("  ORDERS:\n", "  ORDERS_V2:\n    renamed_from: ORDERS\n")


def _sample(run, nats_url, messages=40, acked=10):
    assert run(PLAIN, "apply", "--auto-approve")[0] == 0
    asyncio.run(_publish_all(nats_url, messages))
    asyncio.run(_consume(nats_url, "billing", acked))  # billing acknowledged orders 0, 2, .., 2 * (acked - 1)
    return asyncio.run(_stored(nats_url, "ORDERS"))


def test_a_renamed_stream_takes_the_messages_and_consumer_positions(run, nats_url, js_api, nats_server):
    before = _sample(run, nats_url)
    if _refused_here(run, RENAMED, nats_server):
        assert "stream ORDERS_V2 cannot be renamed from ORDERS: a migration needs" in run(RENAMED, "plan")[1]
        return
    code, out = run(RENAMED, "plan", "--no-color", "--prune")
    assert code == 0, out
    assert "+ rename stream ORDERS -> ORDERS_V2   (renamed; migrates 40 messages; 2 consumers keep their position)" in out
    assert "delete stream ORDERS" not in out and "Plan: 1 to create, 0 to update, 0 to replace, 0 to delete." in out
    assert "then ORDERS is deleted" in out
    code, out = run(RENAMED, "apply", "--auto-approve")
    assert code == 0 and "stream ORDERS_V2: created (renamed from ORDERS; migrated 40 messages in" in out, out
    assert [n for n in js_api("STREAM.NAMES")["streams"] if n.startswith("ORDERS")] == ["ORDERS_V2"]
    after = asyncio.run(_stored(nats_url, "ORDERS_V2"))
    assert [(s, {k: v for k, v in h.items() if k != "Nats-Stream-Source"}, d) for s, h, d in after] == before
    info = js_api("STREAM.INFO.ORDERS_V2")["config"]
    assert info["subjects"] == ["orders.>"] and "sources" not in info
    assert migrate.RENAMING_KEY not in info["metadata"]
    assert asyncio.run(_consume(nats_url, "billing", 1, "ORDERS_V2")) == [b"order 20"]
    assert asyncio.run(_consume(nats_url, "audit", 1, "ORDERS_V2")) == [b"order 0"]
    code, out = run(RENAMED, "plan", "--detailed-exitcode", "--prune")  # renamed_from left in the file: no change
    assert code == 0 and "No changes." in out, out


def test_a_publisher_through_the_rename_loses_nothing_acknowledged(run, nats_url, nats_server):
    assert run(PLAIN, "apply", "--auto-approve")[0] == 0
    asyncio.run(_publish_all(nats_url, 300))
    if _refused_here(run, RENAMED, nats_server):
        return

    (code, out), (acked, refused) = _apply_with_a_publisher(run, RENAMED, nats_url)
    assert code == 0 and "publishes refused" in out, out
    payloads = [d for _, _, d in asyncio.run(_stored(nats_url, "ORDERS_V2"))]
    assert payloads[:300] == [b"order %d" % i for i in range(300)]
    live = [int(p.split()[1]) for p in payloads[300:]]
    assert len(acked) > 10 and live == acked, (len(acked), len(live), refused)  # every acknowledged one, in order, once


def test_a_consumer_renamed_inside_a_renamed_stream_takes_the_old_ones_position(run, nats_url, js_api, nats_server):
    _sample(run, nats_url, 30, 5)  # billing acknowledged orders 0..8
    text = RENAMED.replace("      billing: {", "      invoicing: {renamed_from: billing, ")
    if _refused_here(run, text, nats_server):
        return
    code, out = run(text, "plan", "--no-color")
    assert code == 0, out
    assert "consumers resuming after their acknowledged floor: audit, invoicing (from billing)" in out
    assert run(text, "apply", "--auto-approve")[0] == 0
    assert sorted(js_api("CONSUMER.NAMES.ORDERS_V2")["consumers"]) == ["audit", "invoicing"]
    assert asyncio.run(_consume(nats_url, "invoicing", 1, "ORDERS_V2")) == [b"order 10"]
    assert run(text, "plan", "--detailed-exitcode")[0] == 0


def test_what_the_plan_refuses_before_anything_is_done(run, js_api, nats_server):
    code, out = run(RENAMED, "plan", "--no-color")
    assert code == 1 and "stream ORDERS_V2 cannot be renamed from ORDERS: the server has no stream ORDERS" in out, out
    sourcing = PLAIN + "  ALL:\n    sources: [{name: ORDERS}]\n"
    assert run(sourcing, "apply", "--auto-approve")[0] == 0
    code, out = run(RENAMED + PLAIN.split("streams:\n")[1], "plan", "--no-color")
    assert code == 1 and ("topology.yaml:6:5: streams.ORDERS_V2.renamed_from: stream ORDERS is declared too: the rename "
                          "deletes it, so its declaration goes") in out, out
    code, out = run(PLAIN + "  COPY:\n    renamed_from: ALL\n    subjects: [copy.>]\n", "plan", "--no-color")
    assert code == 1 and "stream COPY cannot be renamed from ALL: the live stream has sources" in out, out
    code, out = run(RENAMED + "  ALL:\n    sources: [{name: ORDERS_V2}]\n", "plan", "--no-color")
    assert code == 1 and ("stream ORDERS_V2 cannot be renamed from ORDERS: stream ALL mirrors or sources it, and would "
                          "repeat or miss messages") in out, out
    small = RENAMED.replace("    duplicate_window: 1m\n", "    duplicate_window: 1m\n    max_msgs: 5\n")
    asyncio.run(_publish_all(nats_server.url, 8))
    code, out = run(small, "plan", "--no-color")
    assert code == 1 and ("cannot be renamed from ORDERS: the new stream's max_msgs (5) is below the 8 messages it "
                          "would copy: some would be lost") in out, out
    sealed = RENAMED.replace("    duplicate_window: 1m\n", "    duplicate_window: 1m\n    sealed: true\n")
    code, out = run(sealed + "  ALL:\n    sources: [{name: ORDERS_V2}]\n", "plan", "--no-color")
    assert code == 1 and "cannot be renamed from ORDERS: the new stream is sealed" in out, out

    other = PLAIN.replace("owner: medisync", "owner: billing").replace("ORDERS", "OTHERS").replace("orders.", "others.")
    assert run(other, "apply", "--auto-approve")[0] == 0
    code, out = run(RENAMED.replace("renamed_from: ORDERS", "renamed_from: OTHERS"), "plan", "--no-color")
    assert code == 1 and "stream OTHERS is owned by 'billing', not 'medisync'" in out, out
    js_api("STREAM.CREATE.LOOSE", {"name": "LOOSE", "subjects": ["loose.>"]})
    loose = "version: 1\nowner: medisync\nstreams:\n  TIDY:\n    renamed_from: LOOSE\n    subjects: [loose.>]\n"
    code, out = run(loose, "plan", "--no-color")
    assert code == 1 and "stream LOOSE already exists and is not managed by this tool; --adopt takes it over" in out
    code, out = run(loose, "plan", "--no-color", "--adopt")
    if _migrates(nats_server):
        assert code == 0 and "+ rename stream LOOSE -> TIDY   (renamed; migrates 0 messages)" in out, out
    else:
        assert code == 1 and "a migration needs nats-server 2.14 or newer" in out, out


def test_json_markdown_and_a_saved_plan_show_the_rename(run, nats_url, js_api, nats_server, tmp_path):
    _sample(run, nats_url, 20, 3)
    if _refused_here(run, RENAMED, nats_server):
        assert run(RENAMED, "plan", "--out", str(tmp_path / "plan.json"))[0] == 1  # refused, so never saved
        assert not (tmp_path / "plan.json").exists()
        return
    code, out = run(RENAMED, "plan", "--format", "json")
    assert code == 0, out
    (op,) = json.loads(out)["operations"]
    assert (op["action"], op["kind"], op["name"], op["renamed_from"]) == ("create", "stream", "ORDERS_V2", "ORDERS")
    assert op["migration"]["messages"] == 20 and op["migration"]["kept"] == ["audit", "billing"]
    assert op["migration"]["temp"] == "ORDERS" and op["data_at_risk"] is None
    code, out = run(RENAMED, "plan", "--format", "markdown")
    assert "| rename | stream `ORDERS_V2` (was `ORDERS`) | renamed; migrates 20 messages; 2 consumers keep their" in out
    assert "[!CAUTION]" not in out  # a rename destroys nothing

    code, out = run(RENAMED, "plan", "--out", str(tmp_path / "plan.json"), "--no-color")
    assert code == 0, out
    shown = CliRunner().invoke(main, ["show", str(tmp_path / "plan.json"), "--no-color"]).output
    assert "+ rename stream ORDERS -> ORDERS_V2   (renamed; migrates 20 messages" in shown
    js_api("CONSUMER.CREATE.ORDERS.late", {"stream_name": "ORDERS", "config": {"durable_name": "late"}})
    result = CliRunner().invoke(main, ["apply", str(tmp_path / "plan.json")])
    assert result.exit_code == 1 and "consumer ORDERS/late appeared since the plan was made" in result.output, result.output
    js_api("CONSUMER.DELETE.ORDERS.late")
    result = CliRunner().invoke(main, ["apply", str(tmp_path / "plan.json")])
    assert result.exit_code == 0 and "stream ORDERS_V2: created (renamed from ORDERS" in result.output, result.output
    assert js_api("STREAM.INFO.ORDERS_V2")["state"]["messages"] == 20
    result = CliRunner().invoke(main, ["apply", str(tmp_path / "plan.json")])  # the world has moved on: refused
    assert result.exit_code == 1 and "stream ORDERS was deleted since the plan was made" in result.output, result.output


def test_without_renamed_from_a_rename_is_a_create_and_a_delete_that_says_what_it_loses(run, nats_url):
    _sample(run, nats_url, 20, 3)
    code, out = run(RENAMED.replace("    renamed_from: ORDERS\n", ""), "plan", "--no-color", "--prune")
    assert code == 0 and "+ create stream ORDERS_V2" in out and "rename stream" not in out, out
    assert "- delete stream ORDERS   (destroys 20 messages, " in out and ", 2 consumers)" in out
    assert "- delete consumer ORDERS/billing   (loses 7 pending messages" in out


@pytest.mark.parametrize("step", migrate.RENAME_STEPS[1:-1])  # each after the first, which a test below stops
def test_a_rename_killed_and_the_server_restarted_is_finished_by_the_next_apply(step, run, nats_server, js_api,
                                                                                tmp_path, monkeypatch):
    before = _sample(run, nats_server.url, 40, 10)
    if _refused_here(run, RENAMED, nats_server):
        return
    _killed_and_restarted(step, RENAMED, tmp_path, nats_server, js_api, monkeypatch)
    code, out = run(RENAMED, "plan", "--no-color", "--prune")
    assert code == 0, out
    assert f"+ rename stream ORDERS -> ORDERS_V2   (renamed; resumes an interrupted rename at step {step!r}" in out
    assert "Unmanaged" not in out and "- delete" not in out and "Plan: 1 to create, 0 to update" in out
    code, out = run(RENAMED, "apply", "--auto-approve", "--prune")
    assert code == 0, out
    assert [n for n in js_api("STREAM.NAMES")["streams"] if n.startswith("ORDERS")] == ["ORDERS_V2"]
    after = asyncio.run(_stored(nats_server.url, "ORDERS_V2"))
    assert [d for _, _, d in after] == [d for _, _, d in before]  # all 40, in order, once
    assert asyncio.run(_consume(nats_server.url, "billing", 1, "ORDERS_V2")) == [b"order 20"]
    assert run(RENAMED, "plan", "--detailed-exitcode", "--prune")[0] == 0


def test_a_rename_killed_inside_its_consumers_step_keeps_the_consumers_it_positioned(run, js_api, tmp_path,
                                                                                     nats_server, monkeypatch):
    before = _sample(run, nats_server.url, 30, 4)  # billing acknowledged orders 0, 2, 4, 6
    asyncio.run(_consume(nats_server.url, "audit", 5))
    if _refused_here(run, RENAMED, nats_server):
        return
    # The server restarted as well: ORDERS_V2 (file storage) keeps audit, and the record of it, over the restart.
    acked = _killed_inside_the_consumers_step(run, RENAMED, "ORDERS_V2", tmp_path, js_api, nats_server, monkeypatch)
    nats_url = nats_server.url
    assert acked == [b"order 5", b"order 6", b"order 7"]
    assert asyncio.run(_consume(nats_url, "audit", 1, "ORDERS_V2")) == [b"order 8"]
    assert asyncio.run(_consume(nats_url, "billing", 1, "ORDERS_V2")) == [b"order 8"]
    assert [d for _, _, d in asyncio.run(_stored(nats_url, "ORDERS_V2"))] == [d for _, _, d in before]
    assert migrate.POSITIONED_KEY not in js_api("STREAM.INFO.ORDERS_V2")["config"]["metadata"]
    assert run(RENAMED, "plan", "--detailed-exitcode")[0] == 0


def test_a_rename_stopped_by_ctrl_c_is_kept_until_the_topology_finishes_it(run, nats_url, js_api, nats_server,
                                                                           tmp_path):
    _sample(run, nats_url, 20, 3)
    if _refused_here(run, RENAMED, nats_server):
        return
    code, out = _apply_stopped_before("consumers", RENAMED, tmp_path, nats_url, signal.SIGINT)
    assert code == 1 and "Apply interrupted (Ctrl-C)." in out, out
    # The file no longer renames: neither stream is compared, pruned nor shown as unmanaged; the plan says why.
    code, out = run(PLAIN, "plan", "--no-color", "--prune")
    assert code == 1, out
    assert ("stream ORDERS_V2: an interrupted rename from ORDERS is not finished; declare ORDERS_V2 with "
            "renamed_from: ORDERS to finish it") in out
    assert "delete" not in out.split("Error:")[0] and "ORDERS/billing" not in out
    result = CliRunner().invoke(main, ["export"])  # NATS_URL is this server's
    assert result.exit_code == 0 and "ORDERS" not in result.stdout, result.output
    for name in ("ORDERS", "ORDERS_V2"):  # ORDERS' subjects are on the holding subject, ORDERS_V2 has its messages
        assert (f"Warning: stream {name} holds messages of a migration or rename under way (apply finishes it); not "
                "exported") in result.stderr
    code, out = run(RENAMED, "apply", "--auto-approve")
    assert code == 0 and js_api("STREAM.INFO.ORDERS_V2")["state"]["messages"] == 20, out
    assert asyncio.run(_consume(nats_url, "billing", 1, "ORDERS_V2")) == [b"order 6"]


def test_the_old_streams_consumers_the_new_one_lacks_go_only_with_prune(run, nats_url, js_api, nats_server):
    _sample(run, nats_url, 10, 2)
    without_audit = RENAMED.replace("      audit: {ack_policy: explicit}\n", "")
    if _refused_here(run, without_audit, nats_server):
        return
    code, out = run(without_audit, "plan", "--no-color")
    assert code == 1 and ("stream ORDERS_V2 cannot be renamed from ORDERS: deleting ORDERS deletes its consumers "
                          "audit, which ORDERS_V2 does not declare") in out, out
    code, out = run(without_audit, "plan", "--no-color", "--prune")
    assert code == 0 and "then ORDERS is deleted, with its consumers audit (ORDERS_V2 does not declare them)" in out
    assert run(without_audit, "apply", "--auto-approve", "--prune")[0] == 0
    assert js_api("CONSUMER.NAMES.ORDERS_V2")["consumers"] == ["billing"]


def test_a_replicated_stream_is_renamed_on_a_3_node_cluster(nats_cluster, tmp_path, monkeypatch):
    from conftest import topology_cli

    url = nats_cluster[0].url
    run = topology_cli(",".join(node.url for node in nats_cluster), tmp_path, monkeypatch)
    replicated = PLAIN.replace("duplicate_window: 1m", "duplicate_window: 1m\n    num_replicas: 3")
    assert run(replicated, "apply", "--auto-approve")[0] == 0
    asyncio.run(_publish_all(url, 100))
    asyncio.run(_consume(url, "billing", 25))  # acknowledged orders 0..48
    renamed = replicated.replace("  ORDERS:\n", "  ORDERS_V2:\n    renamed_from: ORDERS\n")
    if _refused_here(run, renamed, nats_cluster[0]):
        return
    (code, out), (acked, _) = _apply_with_a_publisher(run, renamed, url)
    assert code == 0 and "stream ORDERS_V2: created (renamed from ORDERS; migrated " in out, out
    info = raw_js_api(url, "STREAM.INFO.ORDERS_V2")
    assert info["config"]["num_replicas"] == 3 and len(info["cluster"]["replicas"]) == 2
    assert raw_js_api(url, "STREAM.INFO.ORDERS")["error"]["err_code"] == STREAM_NOT_FOUND  # deleted
    payloads = [d for _, _, d in asyncio.run(_stored(url, "ORDERS_V2"))]
    assert payloads[:100] == [b"order %d" % i for i in range(100)]
    assert acked and [int(p.split()[1]) for p in payloads[100:]] == acked  # every acknowledged publish, once, in order
    assert asyncio.run(_consume(url, "billing", 1, "ORDERS_V2")) == [b"order 50"]
    assert run(renamed, "plan", "--detailed-exitcode")[0] == 0


def test_where_a_rename_stands_is_read_from_the_two_streams():
    old, new = {"name": "ORDERS", "subjects": ["orders.>"]}, {"name": "ORDERS_V2", "subjects": ["orders.>"]}
    staged = migrate.rename_staging_config(new, old)
    assert staged["subjects"] == [] and staged["sources"] == [{"name": "ORDERS"}]
    holding = {**old, "subjects": [migrate.holding_subject("ORDERS")]}
    taking = migrate.rename_taking_config(new, staged)
    assert taking["subjects"] == ["orders.>"] and "sources" not in taking and migrate.renaming(taking) == "ORDERS"
    states = [(old, None), (old, staged), (holding, staged), (holding, taking), (None, taking), (None, new)]
    assert [migrate.rename_step(*state) for state in states] == ["copy", *migrate.RENAME_STEPS]
    assert migrate.old_subjects(staged) == ["orders.>"]


def test_a_rename_interrupted_while_copying_is_finished_by_the_next_apply(run, nats_url, js_api, nats_server):
    before = _sample(run, nats_url, 30, 4)
    if _refused_here(run, RENAMED, nats_server):
        return
    # What a run stopped inside the copy leaves: ORDERS_V2 sourcing ORDERS, ORDERS still taking publishes.
    old = js_api("STREAM.INFO.ORDERS")["config"]
    new = {"name": "ORDERS_V2", "subjects": ["orders.>"], "metadata": {"medisync-topology.owner": "medisync"}}
    js_api("STREAM.CREATE.ORDERS_V2", migrate.rename_staging_config(new, old))
    code, out = run(RENAMED, "plan", "--no-color", "--prune")
    assert code == 0 and "(renamed; resumes an interrupted rename at step 'copy'; migrates 30 messages" in out, out
    assert run(RENAMED, "apply", "--auto-approve")[0] == 0
    assert [d for _, _, d in asyncio.run(_stored(nats_url, "ORDERS_V2"))] == [d for _, _, d in before]
    assert asyncio.run(_consume(nats_url, "billing", 1, "ORDERS_V2")) == [b"order 8"]
    assert run(RENAMED, "plan", "--detailed-exitcode")[0] == 0


def test_a_rename_is_undone_by_renaming_back(run, nats_url, js_api, nats_server):
    before = _sample(run, nats_url, 20, 5)
    if _refused_here(run, RENAMED, nats_server):
        return
    assert run(RENAMED, "apply", "--auto-approve")[0] == 0
    back = PLAIN.replace("  ORDERS:\n", "  ORDERS:\n    renamed_from: ORDERS_V2\n")
    code, out = run(back, "plan", "--no-color")
    assert code == 0 and "+ rename stream ORDERS_V2 -> ORDERS   (renamed; migrates 20 messages" in out, out
    assert run(back, "apply", "--auto-approve")[0] == 0
    assert [n for n in js_api("STREAM.NAMES")["streams"] if n.startswith("ORDERS")] == ["ORDERS"]
    assert [d for _, _, d in asyncio.run(_stored(nats_url, "ORDERS"))] == [d for _, _, d in before]
    assert asyncio.run(_consume(nats_url, "billing", 1)) == [b"order 10"]
