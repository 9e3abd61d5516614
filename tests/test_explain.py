"""`topology explain SUBJECT`: where a subject goes, offline."""

import json

import pytest
from click.testing import CliRunner

from medisync_topology.cli import main

from test_validate import REPO


def explain(*args, topology=str(REPO / "topology.yaml")):
    result = CliRunner().invoke(main, ["explain", *args, "-f", topology])
    return result.exit_code, result.output


def test_a_concrete_subject_names_its_stream_consumers_publishers_and_subscribers():
    assert explain("medisync.etl.tally.completed") == (0, (
        "medisync.etl.tally.completed\n"
        "  stream:      EVENTS\n"
        "  consumers:   EVENTS/etl-notifier\n"
        "  publishers:  etl-service\n"
        "  subscribers: etl-notifier\n"
    ))


def test_json_has_the_documented_keys():
    code, out = explain("medisync.alert.agent.created", "--format", "json")
    assert code == 0
    assert json.loads(out) == {
        "subject": "medisync.alert.agent.created", "stream": "ALERTS", "streams": ["ALERTS"], "copies": [],
        "consumers": ["ALERTS/alert-delivery"], "publishers": ["agent"], "subscribers": ["alert-worker"],
    }


def test_a_wildcard_lists_every_stream_it_overlaps():
    code, out = explain("medisync.*.sync.*", "--format", "json")
    answer = json.loads(out)
    assert (answer["stream"], answer["streams"]) == (None, ["ALERTS", "AUDIT", "EVENTS"])
    # medisync.agent.>, medisync.document.>, medisync.etl.*.synced and medisync.tally.sync.* overlap it; medisync.alert.etl.created does not
    assert answer["publishers"] == ["agent", "document-service", "etl-service", "tally-service"]
    narrower = json.loads(explain("medisync.tally.*.approved", "--format", "json")[1])
    assert (narrower["stream"], narrower["consumers"]) == ("EVENTS", ["EVENTS/tally-sync"])  # not etl-notifier's filter
    assert explain("medisync.*.sync.*")[1].splitlines()[1] == "  stream:      none captures all of it; it overlaps ALERTS, AUDIT, EVENTS"


def test_a_subject_nothing_keeps_and_a_bucket_subject():
    assert explain("medisync.billing.x.y")[1].splitlines()[1] == "  stream:      none: core NATS only, nothing keeps it"
    answer = json.loads(explain("$KV.agent-state.agent.1", "--format", "json")[1])
    assert (answer["stream"], answer["publishers"], answer["subscribers"]) == ("KV_agent-state", ["agent"], ["agent", "escalation-agent"])


def test_mirrors_and_sources_copy_what_they_filter(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("""version: 1
owner: medisync
streams:
  EVENTS:
    subjects: [a.>]
    consumers: {all: {}, only-b: {filter_subject: a.b}}
  BACKUP:
    mirror: {name: EVENTS}
    consumers: {restore: {}}
  FAR: {mirror: {name: BACKUP}}
  ONLY_C: {sources: [{name: EVENTS, filter_subject: a.c}]}
""")
    answer = json.loads(explain("a.x", "--format", "json", topology=str(path))[1])
    assert (answer["stream"], answer["copies"]) == ("EVENTS", ["BACKUP", "FAR"])
    assert answer["consumers"] == ["EVENTS/all", "BACKUP/restore"]
    assert json.loads(explain("a.c", "--format", "json", topology=str(path))[1])["copies"] == ["BACKUP", "FAR", "ONLY_C"]
    assert explain("a.x", topology=str(path))[1].splitlines()[2] == "  copied to:   BACKUP, FAR"


@pytest.mark.parametrize("subject", ["a..b", "a.>.b", ""])
def test_an_invalid_subject_is_an_error(subject):
    code, out = explain(subject)
    assert code == 1 and out.startswith("Error: subject") and "Traceback" not in out
