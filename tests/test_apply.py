"""plan and apply against a real nats-server, through the CLI as a pipeline runs them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import too_new, topology_cli
from every_field import examples, groups
from natsserver import start_server

from medisync_topology.buckets import LOCK_STREAM
from medisync_topology.export import human_units
from medisync_topology.plan import OWNER_KEY

BASE = """
version: 1
owner: medisync
defaults:
  consumer: {ack_policy: explicit, max_deliver: 5}
streams:
  EVENTS:
    subjects: [medisync.etl.>, medisync.tally.>]
    max_age: 7d
    consumers:
      etl-notifier:
        filter_subject: medisync.etl.*.completed
        backoff: [1s, 2s, 4s]
  AUDIT:
    subjects: [medisync.audit.>]
    max_age: 30d
    deny_delete: true
    deny_purge: true
    protect: true
"""


def converged(run, text):
    code, out = run(text, "plan", "--detailed-exitcode")
    assert code == 0 and out.splitlines()[-1].startswith("No changes. Live JetStream matches "), out
    return True


def test_apply_then_plan_says_no_changes_and_a_second_apply_does_nothing(run, js_api):
    code, out = run(BASE, "plan", "--detailed-exitcode")
    assert code == 2 and "Plan: 3 to create, 0 to update, 0 to replace, 0 to delete." in out
    code, out = run(BASE, "apply", "--auto-approve")
    assert code == 0, out
    assert "Apply complete: 3 created, 0 updated, 0 replaced, 0 deleted." in out
    assert converged(run, BASE)
    code, out = run(BASE, "apply", "--auto-approve")
    assert code == 0 and "No changes." in out and "Apply complete" not in out
    info = js_api("STREAM.INFO.EVENTS")
    assert info["config"]["metadata"][OWNER_KEY] == "medisync"
    consumer = js_api("CONSUMER.INFO.EVENTS.etl-notifier")
    assert consumer["config"]["backoff"] == [10**9, 2 * 10**9, 4 * 10**9]


def test_update_in_place_shows_old_and_new_and_converges(run, js_api):
    run(BASE, "apply", "--auto-approve")
    changed = BASE.replace("max_age: 7d", "max_age: 14d").replace("max_deliver: 5", "max_deliver: 8")
    code, out = run(changed, "plan", "--no-color")
    assert code == 0
    assert "~ update stream EVENTS" in out and "max_age:  7d -> 14d" in out
    assert "~ update consumer EVENTS/etl-notifier" in out and "max_deliver:  5 -> 8" in out
    assert "Plan: 0 to create, 2 to update, 0 to replace, 0 to delete." in out
    code, out = run(changed, "apply", "--auto-approve")
    assert code == 0 and "stream EVENTS: updated" in out
    assert js_api("STREAM.INFO.EVENTS")["config"]["max_age"] == 14 * 86400 * 10**9
    assert converged(run, changed)


def test_replace_needs_allow_replace_and_reports_the_data_lost(run, js_api, publish):
    run(BASE, "apply", "--auto-approve")
    for i in range(3):
        publish("medisync.etl.tally.completed", b'{"id": %d}' % i)
    changed = BASE.replace("max_age: 7d", "max_age: 7d\n    storage: memory")
    code, out = run(changed, "plan", "--no-color")
    assert "-/+ replace stream EVENTS" in out and "destroys 3 messages" in out
    assert 'storage:  "file" -> "memory"   # forces replacement' in out
    code, out = run(changed, "apply", "--auto-approve")
    assert code == 1 and "--allow-replace" in out and "Nothing was applied" in out
    assert js_api("STREAM.INFO.EVENTS")["config"]["storage"] == "file"
    code, out = run(changed, "apply", "--auto-approve", "--allow-replace")
    assert code == 0, out
    assert js_api("STREAM.INFO.EVENTS")["config"]["storage"] == "memory"
    assert js_api("CONSUMER.INFO.EVENTS.etl-notifier")["name"] == "etl-notifier"  # recreated after the stream
    assert converged(run, changed)


def test_one_way_flag_and_protected_replace_are_plan_errors(run):
    run(BASE, "apply", "--auto-approve")
    code, out = run(BASE.replace("deny_delete: true", "deny_delete: false"), "plan")
    assert code == 1 and "deny_delete cannot be turned off" in out
    code, out = run(BASE.replace("max_age: 30d", "max_age: 30d\n    storage: memory"), "apply", "--auto-approve", "--allow-replace")
    assert code == 1 and "stream AUDIT is protect: true" in out and "nothing was applied" in out


def test_delete_only_with_prune_and_never_unmanaged(run, js_api):
    run(BASE, "apply", "--auto-approve")
    js_api("STREAM.CREATE.LEGACY", {"name": "LEGACY", "subjects": ["legacy.>"]})
    without_audit = BASE.split("  AUDIT:")[0]
    code, out = run(without_audit, "plan", "--no-color")
    assert code == 0 and "Unmanaged (left alone): stream LEGACY" in out
    assert "stream AUDIT is owned by medisync but not in the topology; --prune deletes it" in out
    code, out = run(without_audit, "apply", "--auto-approve")
    assert code == 0 and "AUDIT" in js_api("STREAM.NAMES")["streams"]
    code, out = run(without_audit, "apply", "--auto-approve", "--prune", "--no-color")
    assert code == 0 and "- delete stream AUDIT" in out and "stream AUDIT: deleted" in out
    assert sorted(js_api("STREAM.NAMES")["streams"]) == ["EVENTS", "KV_medisync_topology_lock", "LEGACY"]  # the lock's own


def test_prune_deletes_what_we_own(run, js_api):
    text = BASE.split("  AUDIT:")[0]
    run(text, "apply", "--auto-approve")
    code, out = run(text.split("    consumers:")[0], "apply", "--auto-approve", "--prune", "--no-color")
    assert code == 0 and "- delete consumer EVENTS/etl-notifier" in out and "1 deleted" in out
    assert js_api("CONSUMER.NAMES.EVENTS")["consumers"] in (None, [])


def test_another_owners_stream_is_a_conflict_and_untouched(run, js_api):
    js_api("STREAM.CREATE.AUDIT", {"name": "AUDIT", "subjects": ["medisync.audit.>"], "metadata": {OWNER_KEY: "billing"}})
    code, out = run(BASE, "apply", "--auto-approve", "--adopt")
    assert code == 1 and "stream AUDIT is owned by 'billing', not 'medisync'" in out
    assert js_api("STREAM.INFO.AUDIT")["config"]["max_age"] == 0


def test_adopt_takes_over_an_unowned_stream_changing_only_its_owner(run, js_api):
    js_api("STREAM.CREATE.AUDIT", {"name": "AUDIT", "subjects": ["medisync.audit.>"], "max_age": 30 * 86400 * 10**9,
                                   "deny_delete": True, "deny_purge": True})
    code, out = run(BASE, "plan")
    assert code == 1 and "--adopt takes it over" in out
    code, out = run(BASE, "apply", "--auto-approve", "--adopt")
    assert code == 0, out
    assert js_api("STREAM.INFO.AUDIT")["config"]["metadata"][OWNER_KEY] == "medisync"
    assert converged(run, BASE)


def test_out_of_band_change_is_drift_and_apply_repairs_it(run, js_api):
    run(BASE, "apply", "--auto-approve")
    config = js_api("STREAM.INFO.EVENTS")["config"]
    js_api("STREAM.UPDATE.EVENTS", {**config, "max_age": 3600 * 10**9})
    code, out = run(BASE, "plan", "--detailed-exitcode", "--no-color")
    assert code == 2 and "max_age:  1h -> 7d" in out
    run(BASE, "apply", "--auto-approve")
    assert converged(run, BASE)


def test_a_collision_with_an_unmanaged_stream_is_a_plan_error(run, js_api):
    js_api("STREAM.CREATE.SQUATTER", {"name": "SQUATTER", "subjects": ["medisync.tally.>"]})
    code, out = run(BASE, "apply", "--auto-approve")
    assert code == 1 and "nothing was applied" in out
    assert "subject 'medisync.tally.>' overlaps 'medisync.tally.>' of live stream SQUATTER" in out
    assert set(js_api("STREAM.NAMES")["streams"]) - {LOCK_STREAM} == {"SQUATTER"}


def test_partial_failure_stops_cleanly_and_a_rerun_converges(tmp_path, monkeypatch):
    """What the plan cannot know: the server has too little memory for EVENTS, so its create fails midway."""
    server = start_server(tmp_path / "nats", config=f'jetstream {{ store_dir: "{tmp_path / "store"}", max_mem: 1MB }}')
    try:
        run = topology_cli(server.url, tmp_path, monkeypatch)
        greedy = BASE.replace("max_age: 7d", "max_age: 7d\n    storage: memory\n    max_bytes: 64MiB")
        code, out = run(greedy, "apply", "--auto-approve")
        assert code == 1
        assert "stream EVENTS: create FAILED" in out and "err_code 10" in out
        assert "Done before the failure: stream AUDIT" in out
        assert "Not attempted: consumer EVENTS/etl-notifier" in out
        fitting = greedy.replace("max_bytes: 64MiB", "max_bytes: 512KiB")
        code, out = run(fitting, "apply", "--auto-approve")
        assert code == 0 and "2 created" in out, out
        assert converged(run, fitting)
    finally:
        server.stop()


def test_minimal_spec_relying_on_defaults_has_no_perpetual_diff(run):
    text = """
    version: 1
    owner: medisync
    streams:
      S: {}
      T:
        subjects: [t.>]
        consumers:
          pull: {}
          push: {deliver_subject: deliver.t}
    key_value:
      cache: {}
    object_stores:
      files: {}
    """
    code, out = run(text, "apply", "--auto-approve")
    assert code == 0, out
    assert converged(run, text)


def test_apply_refuses_without_a_terminal_or_auto_approve(run, js_api):
    code, out = run(BASE, "apply")
    assert code == 1 and "apply needs confirmation" in out and "nothing was applied" in out
    assert set(js_api("STREAM.NAMES")["streams"] or []) <= {LOCK_STREAM}  # only the lock's bucket


def test_json_and_markdown_plans(run):
    code, out = run(BASE, "plan", "--format", "json")
    document = json.loads(out)
    assert document["format_version"] == 1 and document["summary"]["create"] == 3
    assert [op["name"] for op in document["operations"]] == ["AUDIT", "EVENTS", "etl-notifier"]
    code, out = run(BASE, "plan", "--format", "markdown")
    assert "| create | stream `EVENTS` |" in out


def test_a_sealed_stream_is_created_then_sealed(run, js_api):
    text = "version: 1\nowner: medisync\nstreams:\n  ARCHIVE: {subjects: [archive.>], sealed: true}\n"
    code, out = run(text, "apply", "--auto-approve")
    assert code == 0, out
    assert js_api("STREAM.INFO.ARCHIVE")["config"]["sealed"] is True
    assert converged(run, text)


def test_pause_until_goes_through_the_pause_api(run, js_api, server_version):
    text = "version: 1\nowner: medisync\nstreams:\n  S:\n    subjects: [s.>]\n    consumers:\n      worker: {}\n"
    run(text, "apply", "--auto-approve")
    paused = text.replace("worker: {}", "worker: {pause_until: '2099-01-01T00:00:00Z'}")
    code, out = run(paused, "apply", "--auto-approve")
    refusal = too_new("consumer", "pause_until", server_version)
    if refusal:  # 2.10 has no pause: it would drop the field without a word, so the plan refuses it
        assert code == 1 and f"Error: consumer S/worker: {refusal}" in out, out
        assert "pause_until" not in js_api("CONSUMER.INFO.S.worker")["config"]
        return
    assert code == 0, out
    info = js_api("CONSUMER.INFO.S.worker")
    assert info["paused"] is True and info["config"]["pause_until"] == "2099-01-01T00:00:00Z"
    assert converged(run, paused)
    code, out = run(text, "apply", "--auto-approve")
    assert code == 0 and js_api("CONSUMER.INFO.S.worker").get("paused") is not True
    assert converged(run, text)


def every_field_topology(version) -> str:
    """Every field the registry has an example for, with a non-default value where it has one, in one topology:
    the main stream with a pull and a push consumer, a stream for each group of fields that cannot go with the
    others (counters, a mirror, sources, ...), a KV bucket and an object store."""
    main = examples("stream", version=version, stream="FULL")
    main["consumers"] = {
        group or "pull": examples("consumer", group, version, stream="FULL") for group in groups("consumer")
    }
    streams = {"FULL": main}
    for group in groups("stream")[1:]:
        streams[group.upper()] = examples("stream", group, version, stream=group.upper(), origin="FULL")
    document = {
        "version": 1,
        "owner": "medisync",
        "streams": streams,
        "key_value": {
            group or "config": examples("key_value", group, version, origin="config") for group in groups("key_value")
        },
        "object_stores": {
            group or "documents": examples("object_store", group, version) for group in groups("object_store")
        },
    }
    return yaml.safe_dump(human_units(document), sort_keys=False)  # as a person writes them: 7d, 1GiB


# A stream capturing every subject overlaps all others, so it has a topology of its own.
EVERY_SUBJECT = """
version: 1
owner: medisync
streams:
  ALL:
    subjects: [">"]
    no_ack: true
    storage: memory
    retention: interest
    discard: new
    discard_new_per_subject: true
    max_msgs_per_subject: 5
    allow_msg_ttl: true
"""


def test_every_supported_field_with_a_non_default_value_converges(run, js_api, server_version):
    every_field = every_field_topology(server_version)
    code, out = run(every_field, "apply", "--auto-approve")
    assert code == 0, out
    assert converged(run, every_field)
    assert js_api("STREAM.INFO.FULL")["config"]["first_seq"] == 42
    pull = js_api("CONSUMER.INFO.FULL.pull")["config"]
    assert pull.get("priority_groups") == (None if too_new("consumer", "priority_groups", server_version) else ["jobs"])


def test_a_stream_on_every_subject_with_no_ack(run, server_version):
    text = EVERY_SUBJECT
    refusal = too_new("stream", "allow_msg_ttl", server_version)
    if refusal:  # 2.10: refused in the plan; the rest of the stream is what this line has
        code, out = run(text, "plan")
        assert code == 1 and f"Error: stream ALL: {refusal}" in out, out
        text = text.replace("    allow_msg_ttl: true\n", "")
    code, out = run(text, "apply", "--auto-approve")
    assert code == 0, out
    assert converged(run, text)


@pytest.mark.parametrize("answer, applied", [("yes", True), ("y", False), ("", False)])
def test_apply_in_a_terminal_asks_and_only_yes_proceeds(nats_server, tmp_path, js_api, answer, applied):
    """A real terminal on stdin (a pty): the prompt is shown and only the exact word 'yes' applies."""
    path = tmp_path / "topology.yaml"
    path.write_text(BASE)
    controller, terminal = os.openpty()
    topology = Path(sys.executable).parent / "topology"
    process = subprocess.Popen(
        [str(topology), "apply", "-f", str(path), "--server", nats_server.url, "--no-color"],
        stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    os.write(controller, f"{answer}\n".encode())
    out, _ = process.communicate(timeout=30)
    os.close(controller)
    os.close(terminal)
    out = out.decode()
    assert "Only 'yes' will be accepted to approve." in out
    assert (process.returncode, "Apply complete" in out) == ((0, True) if applied else (1, False)), out
    assert ("EVENTS" in (js_api("STREAM.NAMES")["streams"] or [])) == applied
    if not applied:
        assert "apply cancelled; nothing was applied" in out


def test_sourcing_from_a_stream_managed_elsewhere(run, js_api, publish):
    js_api("STREAM.CREATE.ORDERS", {"name": "ORDERS", "subjects": ["orders.>"]})
    publish("orders.new", b"{}")
    text = "version: 1\nowner: medisync\nexisting_streams: [ORDERS]\nstreams:\n  COPY: {sources: [{name: ORDERS}]}\n"
    code, out = run(text, "apply", "--auto-approve")
    assert code == 0, out
    assert converged(run, text)
    js_api("STREAM.DELETE.ORDERS")
    code, out = run(text, "plan")
    assert code == 1 and "stream ORDERS is listed under existing_streams, but the server has no stream" in out


def test_without_a_terminal_an_apply_with_nothing_to_do_succeeds(run):
    run(BASE, "apply", "--auto-approve")
    code, out = run(BASE, "apply")
    assert code == 0 and "No changes." in out
