"""topology export --merge FILE: live values written back into a topology file, everything else kept as written."""

from __future__ import annotations

import difflib

from click.testing import CliRunner

from medisync_topology import buckets, migrate
from medisync_topology.cli import main
from medisync_topology.merge import _explicit, _indentation
from medisync_topology.plan import OWNER_KEY
from test_drift import set_consumer, set_stream

# Comments everywhere, flow and block styles, quotes, blank lines, `defaults:` and units as a person writes them.
TOPOLOGY = """\
# yaml-language-server: $schema=schema/topology.schema.json
#
# Our topology: reviewed in pull requests.
version: 1
owner: medisync

defaults:
  consumer: {ack_policy: explicit, max_deliver: 5}   # every worker retries five times

streams:
  EVENTS:
    description: "Everything the ETL does"
    # the ETL publishes completions and failures
    subjects:
      - medisync.etl.>
    max_age: 168h   # a week, in hours on purpose
    consumers:
      etl-notifier:
        filter_subject: medisync.etl.*.completed
        backoff: [30s, 60s]
      etl-audit: {filter_subject: medisync.etl.>}   # keeps everything

  ALERTS:
    subjects: [medisync.alert.>]

# Shared state of the agents.
key_value:
  agent-state: {history: 5}
"""


def merge(run, *extra: str):
    """``topology export --merge`` of the test's topology.yaml (the run fixture writes it) -> (code, output)."""
    result = CliRunner().invoke(main, ["export", "--merge", str(run.path), *extra])
    return result.exit_code, result.output


def changed_lines(before: str, after: str) -> list[str]:
    """The lines removed (-) and added (+), each in file order: the removed first."""
    lines = [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
             if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    return [line for line in lines if line[0] == "-"] + [line for line in lines if line[0] == "+"]


def applied(run, tmp_path):
    code, out = run(TOPOLOGY, "apply", "--auto-approve")
    assert code == 0, out
    run.path = tmp_path / "topology.yaml"
    return run


def test_nothing_drifted_leaves_the_file_byte_for_byte(run, tmp_path):
    run = applied(run, tmp_path)
    code, out = merge(run)
    assert code == 0 and out == f"{run.path} matches the server; nothing written\n"
    assert run.path.read_text() == TOPOLOGY


def test_drift_is_written_back_keeping_comments_order_and_style(run, tmp_path, nats_url):
    run = applied(run, tmp_path)
    set_stream(nats_url, "EVENTS", max_msgs=1000, description="Everything the ETL does, and more")
    set_consumer(nats_url, "EVENTS", "etl-notifier", backoff=[30.0, 60.0, 120.0])  # nats-py takes seconds
    set_consumer(nats_url, "EVENTS", "etl-audit", max_deliver=-1)  # back to the server's default, which defaults: hides
    set_stream(nats_url, "KV_agent-state", max_msgs_per_subject=10)
    code, out = merge(run)
    assert code == 0, out
    merged = run.path.read_text()
    assert changed_lines(TOPOLOGY, merged) == [
        '-    description: "Everything the ETL does"',
        "-        backoff: [30s, 60s]",
        "-      etl-audit: {filter_subject: medisync.etl.>}   # keeps everything",
        "-  agent-state: {history: 5}",
        '+    description: "Everything the ETL does, and more"',
        "+    max_msgs: 1000",
        "+        backoff: [30s, 60s, 2m]",  # what the file wrote is kept where it still holds
        # in the server's order; a comment the longer line reaches is moved after it
        "+      etl-audit: {max_deliver: -1, filter_subject: medisync.etl.>} # keeps everything",
        "+  agent-state: {history: 10}",
    ]
    assert "Wrote" in out and "stream EVENTS: max_msgs" in out and "key_value agent-state: history" in out
    code, out = run(merged, "plan")
    assert code == 0 and out.startswith("No changes."), out


def test_the_owners_resources_the_file_does_not_declare_are_appended(run, tmp_path, js_api):
    run = applied(run, tmp_path)
    consumer = js_api("CONSUMER.INFO.EVENTS.etl-audit")["config"]
    consumer.update(name="etl-late", durable_name="etl-late", filter_subject="medisync.etl.*.late")
    js_api("CONSUMER.CREATE.EVENTS.etl-late", {"stream_name": "EVENTS", "config": consumer})
    bucket = {**buckets.bucket_stream_config("key_value", "sessions", {"history": 2}), "metadata": {OWNER_KEY: "medisync"}}
    js_api("STREAM.CREATE.KV_sessions", bucket)
    js_api("STREAM.CREATE.THEIRS", {"name": "THEIRS", "subjects": ["theirs.>"]})  # no owner: not ours to write
    code, out = merge(run)
    assert code == 0, out
    merged = run.path.read_text()
    added = changed_lines(TOPOLOGY, merged)
    assert added == [
        "+      etl-late:", "+        ack_policy: explicit", "+        max_deliver: 5",
        "+        filter_subject: medisync.etl.*.late",
        "+  sessions:", "+    history: 2",
    ]
    # Appended after the last consumer and the last bucket, above the comments and blank lines that followed them.
    assert "etl-late:" in merged.split("\n\n  ALERTS:")[0] and merged.endswith("    history: 2\n")
    assert "THEIRS" not in merged
    code, out = run(merged, "plan")
    assert code == 0 and "No changes. Live JetStream matches" in out, out


def test_an_interrupted_migrations_stream_is_not_appended(run, tmp_path, js_api):
    run = applied(run, tmp_path)
    temp = migrate.temp_name("ALERTS")  # messages in transit, carrying the owner: the next apply's business
    js_api(f"STREAM.CREATE.{temp}", {"name": temp, "subjects": ["transit.>"],
                                     "metadata": {OWNER_KEY: "medisync", migrate.MIGRATING_KEY: "ALERTS"}})
    code, out = merge(run)
    assert code == 0 and "nothing written" in out and run.path.read_text() == TOPOLOGY


def test_output_writes_elsewhere_and_leaves_the_file(run, tmp_path, nats_url, js_api):
    run = applied(run, tmp_path)
    set_stream(nats_url, "ALERTS", max_msgs=5)
    js_api("CONSUMER.DELETE.EVENTS.etl-audit")
    target = tmp_path / "merged.yaml"
    code, out = merge(run, "--output", str(target))
    assert code == 0, out
    assert "Warning: consumer EVENTS/etl-audit is not on the server; left in the file as it is" in out
    assert run.path.read_text() == TOPOLOGY
    assert changed_lines(TOPOLOGY, target.read_text()) == ["+    max_msgs: 5"]


def test_bad_input_is_a_clear_error(run, tmp_path, nats_url):
    run = applied(run, tmp_path)
    missing = tmp_path / "missing.yaml"
    result = CliRunner().invoke(main, ["export", "--merge", str(missing)])
    assert result.exit_code == 1 and result.output == f"Error: {missing}: no such file\n"
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nstreams: [\n")
    result = CliRunner().invoke(main, ["export", "--merge", str(broken)])
    assert result.exit_code == 1 and f"{broken}:3:1: YAML syntax error" in result.output
    assert broken.read_text() == "version: 1\nstreams: [\n"
    result = CliRunner().invoke(main, ["export", "--merge", str(run.path), "--stream", "EVENTS"])
    assert result.exit_code == 1 and "no --stream or --owner" in result.output
    # The file's own error comes first, also when no server answers.
    result = CliRunner().invoke(main, ["export", "--merge", str(broken), "--server", "nats://127.0.0.1:1"])
    assert result.exit_code == 1 and f"{broken}:3:1: YAML syntax error" in result.output


def test_a_merge_the_files_rules_refuse_writes_nothing(run, tmp_path, nats_url):
    policed = TOPOLOGY.replace("defaults:", "policy:\n  streams: {require: [max_age]}\n\ndefaults:").replace(
        "subjects: [medisync.alert.>]", "subjects: [medisync.alert.>]\n    max_age: 1d")
    code, out = run(policed, "apply", "--auto-approve")
    assert code == 0, out
    run.path = tmp_path / "topology.yaml"
    set_stream(nats_url, "EVENTS", max_age=0.0)  # no max_age: the policy requires one
    code, out = merge(run)
    assert code == 1 and "would not be valid with the live values merged in, so nothing was written" in out
    assert f"{run.path}:" in out and "policy.streams.require" in out and "Traceback" not in out
    assert run.path.read_text() == policed


def test_indentation_is_read_from_the_file():
    assert _indentation(TOPOLOGY) == (2, 4, 2)
    assert _indentation("streams:\n    A:\n        subjects:\n        - a\n") == (4, 2, 0)


def test_a_value_written_where_the_server_omits_it_is_what_the_omission_means():
    # A field the defaults set but whose live value is the server's own: written out as the server's zero,
    # the registry's where it names one (an empty string would be refused by the schema's enum).
    assert _explicit("priority_policy", None) == "none"
    assert _explicit("persist_mode", None) == "default"
    assert _explicit("description", None) == ""
    assert _explicit("max_age", None) == 0
