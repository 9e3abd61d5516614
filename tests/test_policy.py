"""policy: MediSync's conventions enforced by `topology validate`, each breach located and naming its rule."""

import pytest
from click.testing import CliRunner

from medisync_topology.cli import main
from medisync_topology.policy import pattern_problem, subject_misfit

from test_validate import REPO, problems, validate

PATTERN = "medisync.{domain}.{entity}.{action}"
VALUES = {"domain": ["etl", "alert"]}


@pytest.mark.parametrize("subject", [
    "medisync.etl.tally.completed", "medisync.etl.>", "medisync.>", "medisync.etl.*.completed", "medisync.*.*.*",
    "medisync.alert.x.>",
])
def test_subjects_that_fit(subject):
    assert subject_misfit(subject, PATTERN, VALUES) is None


@pytest.mark.parametrize("subject, why", [
    ("medisync.billing.x.y", "breaks policy.values.domain: 'billing' is not one of etl, alert"),
    ("medisync.etl.tally", "breaks policy.subjects 'medisync.{domain}.{entity}.{action}': it has 3 tokens, the pattern 4"),
    ("medisync.etl.a.b.c", "breaks policy.subjects 'medisync.{domain}.{entity}.{action}': it has 5 tokens, the pattern 4"),
    ("other.etl.a.b", "breaks policy.subjects 'medisync.{domain}.{entity}.{action}': token 1 is 'other' where the pattern has 'medisync'"),
    (">", "breaks policy.subjects 'medisync.{domain}.{entity}.{action}': '>' stands where the pattern has the literal 'medisync'"),
    ("*.etl.a.b", "breaks policy.subjects 'medisync.{domain}.{entity}.{action}': token 1 is '*' where the pattern has 'medisync'"),
])
def test_subjects_that_do_not_fit(subject, why):
    assert subject_misfit(subject, PATTERN, VALUES) == f"subject '{subject}' {why}"


def test_a_literal_after_placeholders_must_match_and_gt_may_not_cover_it():
    assert subject_misfit("app.x.events.>", "app.{tenant}.events.{kind}", {}) is None
    assert subject_misfit("app.>", "app.{tenant}.events.{kind}", {}) == (
        "subject 'app.>' breaks policy.subjects 'app.{tenant}.events.{kind}': '>' stands where the pattern has the literal 'events'")


@pytest.mark.parametrize("pattern", ["medisync.*.{a}", "medisync..{a}", "medisync.{a}.{a}", "medisync.{a b}", "medisync.x{a}"])
def test_unusable_patterns(pattern):
    assert pattern_problem(pattern)


def test_the_shipped_topology_declares_the_guides_policy_and_keeps_it():
    result = CliRunner().invoke(main, ["validate", "-f", str(REPO / "topology.yaml")])
    assert result.exit_code == 0, result.output
    text = (REPO / "topology.yaml").read_text()
    assert 'subjects: "medisync.{domain}.{entity}.{action}"' in text
    assert "values: {domain: [etl, document, tally, agent, alert, audit]}" in text


BASE = """version: 1
owner: medisync
policy:
  subjects: "medisync.{domain}.{entity}.{action}"
  values: {domain: [etl, alert]}
  names: {stream: "^[A-Z][A-Z0-9_]*$", consumer: "^[a-z][a-z0-9-]*$"}
  streams: {require: [max_age], storage: file, min_replicas: 1}
"""


def test_every_breach_is_located_and_names_its_rule(tmp_path):
    text = BASE + """streams:
  EVENTS:
    subjects: [medisync.etl.>, medisync.billing.x.y]
    max_age: 1d
    consumers:
      Bad_Name: {filter_subject: medisync.etl.*.done}
      ok: {filter_subject: medisync.etl.*}
  lower:
    subjects: [medisync.alert.>]
    storage: memory
"""
    assert problems(tmp_path, text) == [
        "t.yaml:10:32: streams.EVENTS.subjects[1]: subject 'medisync.billing.x.y' breaks policy.values.domain: 'billing' is not one of etl, alert",
        "t.yaml:13:7: streams.EVENTS.consumers.Bad_Name: consumer name 'Bad_Name' breaks policy.names.consumer: it does not match '^[a-z][a-z0-9-]*$'",
        "t.yaml:14:12: streams.EVENTS.consumers.ok.filter_subject: subject 'medisync.etl.*' breaks policy.subjects 'medisync.{domain}.{entity}.{action}': it has 3 tokens, the pattern 4",
        "t.yaml:15:3: streams.lower: breaks policy.streams.require: max_age is not set (on the stream or in defaults.stream)",
        "t.yaml:15:3: streams.lower: stream name 'lower' breaks policy.names.stream: it does not match '^[A-Z][A-Z0-9_]*$'",
        "t.yaml:17:5: streams.lower.storage: breaks policy.streams.storage: storage is memory, the policy requires file",
    ]


def test_values_need_a_pattern(tmp_path):
    text = "version: 1\nowner: medisync\npolicy: {values: {domain: [etl]}}\nstreams: {}\n"
    assert problems(tmp_path, text) == ["t.yaml:3:10: policy.values: values restrict the placeholders of policy.subjects, which is not set"]


def test_defaults_count_for_require_and_the_policy_itself_is_checked(tmp_path):
    text = """version: 1
owner: medisync
policy:
  subjects: "medisync.{domain}.*"
  values: {area: [x]}
  names: {stream: "^[A-Z"}
  streams: {require: [max_agee]}
defaults: {stream: {max_age: 1d}}
streams:
  EVENTS: {subjects: [medisync.etl.>]}
"""
    assert problems(tmp_path, text) == [
        "t.yaml:4:3: policy.subjects: pattern 'medisync.{domain}.*' has the token '*': each token is a literal (no wildcards, no spaces) or one {placeholder}, separated by single dots",
        "t.yaml:6:11: policy.names.stream: '^[A-Z' is not a regular expression: unterminated character set at position 1",
        "t.yaml:7:23: policy.streams.require[0]: 'max_agee' is not a stream field",
    ]


def test_an_environment_may_tighten_policy_streams(tmp_path):
    text = BASE + """streams:
  EVENTS: {subjects: [medisync.etl.>], max_age: 1d, num_replicas: 1}
environments:
  production:
    policy: {streams: {min_replicas: 3}}
"""
    assert problems(tmp_path, text) == [
        "t.yaml:9:53: streams.EVENTS.num_replicas: in environment production: breaks policy.streams.min_replicas: num_replicas is 1, the policy requires at least 3",
    ]
    fixed = text.replace("    policy:", "    streams: {EVENTS: {num_replicas: 3}}\n    policy:")
    code, lines = validate(tmp_path, fixed)
    assert code == 0 and lines[-1] == "t.yaml is valid in environment production: 1 stream, 0 consumers", lines


def test_an_environment_may_not_loosen_policy_streams(tmp_path):
    text = BASE + """streams:
  EVENTS: {subjects: [medisync.etl.>], max_age: 1d}
environments:
  dev:
    policy: {streams: {require: [], storage: memory, min_replicas: 1}}
  prod:
    policy: {streams: {min_replicas: 3}, subjects: "x.{y}"}
"""
    assert problems(tmp_path, text) == [
        "t.yaml:12:24: environments.dev.policy.streams.require: in environment dev: an environment may only tighten policy.streams: this drops max_age from the base policy's require",
        "t.yaml:12:37: environments.dev.policy.streams.storage: in environment dev: an environment may only tighten policy.streams: this changes the base policy's storage file to memory",
        "t.yaml:14:42: environments.prod.policy.subjects: in environment prod: an environment may only tighten policy.streams; policy.subjects holds for every environment",
    ]
