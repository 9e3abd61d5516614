"""The audit event of an apply, stored in a real AUDIT stream; and `apply --format json`."""

import base64
import json
import re
import subprocess
import uuid

import pytest
from click.testing import CliRunner

from medisync_topology.cli import main

BASE = """
version: 1
owner: medisync
audit: {subject: medisync.audit.topology.applied}
streams:
  EVENTS:
    subjects: [medisync.etl.>]
    consumers:
      etl-notifier: {filter_subject: medisync.etl.*.completed, ack_policy: explicit}
  AUDIT:
    subjects: [medisync.audit.>]
"""
# A config the server refuses at create time, which the plan does not foresee (a transform with a mapping
# function the server does not know; err 10156, 10049 before 2.11): apply fails midway.
REFUSED_EVENTS = BASE.replace(
    "    subjects: [medisync.etl.>]\n",
    "    subjects: [medisync.etl.>]\n    subject_transform: {src: medisync.etl.>, dest: 'x.{{nosuch()}}.>'}\n", 1)
REFUSED_CODES = (10049, 10156)
RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def stored_events(js_api):
    """The audit events the AUDIT stream holds, oldest first."""

    def read() -> list[dict]:
        state = js_api("STREAM.INFO.AUDIT")["state"]
        events = []
        for seq in range(state["first_seq"], state["last_seq"] + 1) if state["messages"] else []:
            message = js_api("STREAM.MSG.GET.AUDIT", {"seq": seq})["message"]
            assert message["subject"] == "medisync.audit.topology.applied"
            events.append(json.loads(base64.b64decode(message["data"])))
        return events

    return read


def test_an_apply_that_changed_something_is_stored_in_the_audit_stream(run, stored_events, tmp_path):
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "topology.yaml").write_text(BASE)
    subprocess.run([*git, "add", "topology.yaml"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "topology"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    code, out = run(BASE, "apply", "--auto-approve", "--user", "deployer", "--password", "s3cret-pw")
    assert code == 0 and "Warning" not in out, out
    [event] = stored_events()
    assert "s3cret-pw" not in json.dumps(event)
    assert set(event) == {"id", "type", "timestamp", "source", "payload"}
    assert uuid.UUID(event["id"]).version == 4
    assert event["type"] == "topology.applied" and event["source"] == "medisync-topology"
    assert RFC3339_UTC.fullmatch(event["timestamp"])
    payload = event["payload"]
    assert payload["nats_user"] == 'user "deployer"' and payload["os_user"] and payload["host"]
    assert payload["git_commit"] == head and payload["topology_hash"].startswith("sha256:")
    assert payload["owner"] == "medisync" and payload["sources"] == [str(tmp_path / "topology.yaml")]
    assert [(op["action"], op["kind"], op["name"], op["outcome"]) for op in payload["operations"]] == [
        ("create", "stream", "AUDIT", "done"), ("create", "stream", "EVENTS", "done"),
        ("create", "consumer", "etl-notifier", "done"),
    ]
    # Nothing changed, nothing to audit.
    assert run(BASE, "apply", "--auto-approve")[0] == 0
    assert len(stored_events()) == 1
    # An update records the fields it changed, old and new.
    run(BASE.replace("ack_policy: explicit", "ack_policy: explicit, max_deliver: 3"), "apply", "--auto-approve")
    update = stored_events()[-1]["payload"]["operations"][0]
    assert update["changes"] == [{"path": "max_deliver", "old": -1, "new": 3, "forces_replacement": False,
                                  "drift": False}]


def test_a_failed_apply_records_what_was_done_before_the_failure(run, js_api, stored_events):
    run(BASE.split("  EVENTS:")[0] + "  AUDIT:\n    subjects: [medisync.audit.>]\n", "apply", "--auto-approve")
    code, out = run(REFUSED_EVENTS + "  LATER:\n    subjects: [later.>]\n", "apply", "--auto-approve")
    assert code == 1
    event = stored_events()[-1]
    assert event["type"] == "topology.apply_failed"
    outcomes = [(op["name"], op["outcome"]) for op in event["payload"]["operations"]]
    # LATER was sent beside EVENTS (they are independent): in flight, so awaited and recorded as done.
    assert outcomes == [("EVENTS", "failed"), ("LATER", "done"), ("etl-notifier", "not attempted")]
    assert event["payload"]["operations"][0]["err_code"] in REFUSED_CODES
    assert event["payload"]["error"].startswith("stream EVENTS: ") and "transform" in event["payload"]["error"]
    assert event["payload"]["git_commit"] is None  # not a git checkout: no error either


def test_a_saved_plan_audits_the_file_it_came_from(run, stored_events, tmp_path, monkeypatch):
    plan = tmp_path / "plan.json"
    assert run(BASE, "plan", "--out", str(plan))[0] == 0
    result = CliRunner().invoke(main, ["apply", str(plan)])
    assert result.exit_code == 0, result.output
    payload = stored_events()[0]["payload"]
    assert payload["plan_file"] == str(plan)
    assert payload["topology_hash"] == json.loads(plan.read_text())["topology"]["hash"]


def test_an_audit_subject_no_stream_stores_warns_but_the_apply_succeeds(run):
    text = BASE.replace("medisync.audit.topology.applied", "nowhere.audit")
    code, out = run(text, "apply", "--auto-approve")
    assert code == 0 and "Apply complete" in out
    assert "Warning: no stream captures nowhere.audit, so the audit event was published but not stored" in out


def test_apply_format_json_lists_every_outcome_and_nothing_else_on_stdout(run, nats_server, tmp_path, js_api):
    run(BASE.split("  EVENTS:")[0] + "  AUDIT:\n    subjects: [medisync.audit.>]\n", "apply", "--auto-approve")
    (tmp_path / "topology.yaml").write_text(REFUSED_EVENTS + "  LATER:\n    subjects: [later.>]\n")
    result = CliRunner().invoke(main, ["apply", "-f", str(tmp_path / "topology.yaml"), "--auto-approve", "--format", "json"])
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    rows = [(op["action"], op["name"], op["outcome"]) for op in document["operations"]]
    # LATER was in flight beside EVENTS: awaited, and done.
    assert rows == [("create", "EVENTS", "failed"), ("create", "LATER", "done"), ("create", "etl-notifier", "not attempted")]
    assert document["operations"][0]["err_code"] in REFUSED_CODES and "transform" in document["operations"][0]["error"]
    assert [op["err_code"] for op in document["operations"][1:]] == [None, None]
    assert document["summary"] == {"created": 1, "updated": 0, "replaced": 0, "deleted": 0, "failed": 1, "interrupted": 0,
                                   "not_attempted": 1}
    assert document["error"].startswith("stream EVENTS: ")
    assert document["findings"] == []
    assert document["audit"]["type"] == "topology.apply_failed" and document["audit"]["warning"] is None
    assert "Topology plan" in result.stderr and "create FAILED" in result.stderr

    (tmp_path / "topology.yaml").write_text(BASE + "  LATER:\n    subjects: [later.>]\n")
    result = CliRunner().invoke(main, ["apply", "-f", str(tmp_path / "topology.yaml"), "--auto-approve", "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [(op["name"], op["outcome"]) for op in document["operations"]] == [("EVENTS", "done"), ("etl-notifier", "done")]
    assert document["summary"]["created"] == 2 and document["error"] is None


def test_apply_format_json_when_nothing_is_applied(run, js_api, tmp_path):
    js_api("STREAM.CREATE.EVENTS", {"name": "EVENTS", "subjects": ["medisync.etl.>"]})
    (tmp_path / "topology.yaml").write_text(BASE)
    result = CliRunner().invoke(main, ["apply", "-f", str(tmp_path / "topology.yaml"), "--auto-approve", "--format", "json"])
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert {op["outcome"] for op in document["operations"]} == {"not attempted"}
    assert document["error"] == "the plan has errors (above); nothing was applied"
    assert [f["reason"] for f in document["findings"]] == ["needs_adopt"]
    assert result.stderr.endswith("Error: the plan has errors (above); nothing was applied\n")


def test_the_git_commit_says_when_a_topology_file_has_uncommitted_changes(tmp_path):
    from medisync_topology.audit import git_commit

    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    topology, other = tmp_path / "topology.yaml", tmp_path / "README"
    topology.write_text(BASE)
    other.write_text("x")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "topology"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    assert git_commit([str(topology)]) == head
    other.write_text("changed")  # another file's changes are not the topology's
    assert git_commit([str(topology)]) == head
    topology.write_text(BASE + "# edited\n")
    assert git_commit([str(topology)]) == f"{head}-dirty"
    subprocess.run([*git, "checkout", "-q", "topology.yaml"], check=True)
    (tmp_path / "extra.yaml").write_text("streams: {}\n")  # a second file never committed
    assert git_commit([str(topology), str(tmp_path / "extra.yaml")]) == f"{head}-dirty"
    assert git_commit([str(tmp_path)]) == f"{head}-dirty"  # a directory of topology files
