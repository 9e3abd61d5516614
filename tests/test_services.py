"""services: validate checks what each service publishes and consumes against the topology."""

from click.testing import CliRunner

from medisync_topology.cli import main

from test_validate import problems, validate

TOPOLOGY = """version: 1
owner: medisync
streams:
  EVENTS:
    subjects: [medisync.etl.>]
    consumers:
      etl-notifier: {filter_subject: medisync.etl.*.completed}
      spare: {}
  BACKUP: {mirror: {name: EVENTS}}
key_value:
  state: {}
  copy: {mirror: {name: state}}
object_stores:
  documents: {}
services:
"""


def test_consumed_consumers_and_buckets_must_exist(tmp_path):
    text = TOPOLOGY + """  etl-service:
    consume: [EVENTS/etl-notifer, ORDERS/x, EVENTS/spare]
    key_value: {state: read, sessions: read-write}
    object_stores: {documents: read, photos: read}
"""
    assert problems(tmp_path, text) == [
        "t.yaml:17:15: services.etl-service.consume[0]: stream EVENTS has no consumer etl-notifer (its consumers: etl-notifier, spare)",
        "t.yaml:17:35: services.etl-service.consume[1]: stream ORDERS is not in the topology",
        "t.yaml:18:30: services.etl-service.key_value.sessions: KV bucket sessions is not in the topology",
        "t.yaml:19:38: services.etl-service.object_stores.photos: object store photos is not in the topology",
    ]


def test_writing_into_a_mirror_is_an_error(tmp_path):
    text = TOPOLOGY + """  writer:
    publish: [$KV.copy.>]
    key_value: {copy: read-write}
  reader:
    key_value: {copy: read}
"""
    assert problems(tmp_path, text) == [
        "t.yaml:17:15: services.writer.publish[0]: KV bucket copy is a mirror (of KV_state): it takes only what its origin has, nobody writes into it",
        "t.yaml:18:17: services.writer.key_value.copy: KV bucket copy is a mirror (of KV_state): it takes only what its origin has, nobody writes into it",
    ]


def test_uncaptured_subjects_and_unconsumed_consumers_are_notes(tmp_path):
    text = TOPOLOGY + """  etl-service:
    publish: [medisync.etl.x.completed, medisync.billing.x, medisync.*.x.y]
    consume: [EVENTS/etl-notifier]
"""
    code, lines = validate(tmp_path, text)
    assert code == 0, lines
    assert lines == [
        "Note: t.yaml:8:7: streams.EVENTS.consumers.spare: no service consumes EVENTS/spare",
        "Note: t.yaml:17:41: services.etl-service.publish[1]: no stream captures 'medisync.billing.x': what etl-service publishes there is not kept (core NATS only)",
        "Note: t.yaml:17:61: services.etl-service.publish[2]: 'medisync.*.x.y' is only partly captured (by EVENTS): the rest is not kept",
        "t.yaml is valid: 2 streams, 2 consumers, 2 KV buckets, 1 object store, 1 service",
    ]


def test_without_services_no_consumer_is_noted(tmp_path):
    code, lines = validate(tmp_path, TOPOLOGY.replace("services:\n", ""))
    assert (code, lines) == (0, ["t.yaml is valid: 2 streams, 2 consumers, 2 KV buckets, 1 object store"])


def test_published_subjects_follow_the_policy_and_names_fit_nats_conf(tmp_path):
    text = TOPOLOGY.replace("services:\n", """policy: {subjects: "medisync.{domain}.{entity}.{action}"}
services:
""").replace("subjects: [medisync.etl.>]", "subjects: [medisync.etl.>]\n    max_age: 1d") + """  etl-service:
    publish: [medisync.etl.completed, a..b]
  state-writer: {publish: [$KV.state.x]}  # NATS's own subjects are not MediSync's events
  ETL_SERVICE: {}
  bad/name: {}
"""
    assert problems(tmp_path, text) == [
        "t.yaml:19:15: services.etl-service.publish[0]: subject 'medisync.etl.completed' breaks policy.subjects 'medisync.{domain}.{entity}.{action}': it has 3 tokens, the pattern 4",
        "t.yaml:19:39: services.etl-service.publish[1]: subject 'a..b' has an empty token ('..'): tokens are separated by single dots",
        "t.yaml:21:3: services.ETL_SERVICE: service ETL_SERVICE and service etl-service would both be ETL_SERVICE in nats.conf; rename one",
        """t.yaml:22:3: services.bad/name: "bad/name" is not valid: a letter, then letters, digits, '_' or '-' (it names the service's NATS user, its permissions variable and its inbox)""",
    ]


def test_services_merge_by_name_across_files(tmp_path):
    (tmp_path / "a.yaml").write_text(TOPOLOGY + "  etl-service: {consume: [EVENTS/etl-notifier]}\n")
    (tmp_path / "b.yaml").write_text("services:\n  spare-worker: {consume: [EVENTS/spare]}\n")
    result = CliRunner().invoke(main, ["validate", "-f", str(tmp_path)])
    assert result.exit_code == 0 and result.output.endswith("is valid: 2 streams, 2 consumers, 2 KV buckets, 1 object store, 2 services\n"), result.output
    (tmp_path / "b.yaml").write_text("services:\n  etl-service: {}\n")
    result = CliRunner().invoke(main, ["validate", "-f", str(tmp_path)])
    assert result.exit_code == 1
    assert f"b.yaml:2:3: services.etl-service: service etl-service is also declared in {tmp_path}/a.yaml:16:3; declare each service in one file only" in result.output
