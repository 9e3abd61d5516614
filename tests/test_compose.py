"""Composition: several files, environment overlays and ${VAR} references, with every problem still located."""

import textwrap

import pytest
from click.testing import CliRunner

from medisync_topology.cli import main
from medisync_topology.compose import environment_document, load_sources
from medisync_topology.errors import TopologyError
from medisync_topology.loader import InvalidTopology
from medisync_topology.validate import load_every_environment, load_topology

BASE = """\
version: 1
owner: medisync
defaults:
  stream: {storage: file, num_replicas: 1}
  consumer: {ack_policy: explicit}
streams:
  EVENTS:
    subjects: [medisync.etl.>]
    max_age: 1d
    consumers:
      etl-notifier: {filter_subject: medisync.etl.*.completed}
environments:
  production:
    defaults:
      stream: {num_replicas: 3}
    streams:
      EVENTS:
        max_age: 7d
        subjects: [medisync.etl.>, medisync.document.>]
  staging: {}
"""

ALERTS = """\
streams:
  ALERTS:
    subjects: [medisync.alert.>]
key_value:
  sessions: {history: 1}
"""


def write(directory, name, text):
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return str(path)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """Relative file names, so problems and output can be compared exactly."""
    monkeypatch.chdir(tmp_path)


def test_overlay_merges_mappings_key_by_key_and_replaces_lists(tmp_path):
    write(tmp_path, "t.yaml", BASE)
    production = load_topology("t.yaml", "production")
    events = production.streams["EVENTS"]
    assert events.config["subjects"] == ["medisync.etl.>", "medisync.document.>"]  # the list is replaced, not appended
    assert events.config["max_age"] == 7 * 24 * 3600 * 10**9
    assert events.config["storage"] == "file"  # untouched keys of merged mappings stay
    assert list(events.consumers) == ["etl-notifier"]
    assert (production.sources, production.environment) == (["t.yaml"], "production")
    base = load_topology("t.yaml")
    assert base.streams["EVENTS"].config["subjects"] == ["medisync.etl.>"]
    assert base.environment is None


def test_defaults_overlay_changes_only_the_keys_it_names(tmp_path):
    write(tmp_path, "t.yaml", BASE)
    config = load_topology("t.yaml", "production").streams["EVENTS"].config
    assert (config["num_replicas"], config["storage"]) == (3, "file")
    assert load_topology("t.yaml", "staging").streams["EVENTS"].config["num_replicas"] == 1


def test_an_overlay_entry_left_empty_changes_nothing(tmp_path):
    # Everything under EVENTS (and under streams) commented out leaves a null, not an empty stream.
    empty = BASE.split("environments:")[0] + "environments:\n  production:\n    streams:\n      EVENTS:\n    defaults:\n"
    write(tmp_path, "t.yaml", empty)
    production = load_topology("t.yaml", "production")
    base = load_topology("t.yaml")
    assert production.streams["EVENTS"].config == base.streams["EVENTS"].config
    assert list(production.streams["EVENTS"].consumers) == ["etl-notifier"]
    doc = environment_document(load_sources("t.yaml"), "production")
    assert doc.where(("streams", "EVENTS")) == "t.yaml:7:3"  # still the base's line


def test_overlay_values_keep_their_own_lines(tmp_path):
    write(tmp_path, "t.yaml", BASE)
    doc = environment_document(load_sources("t.yaml"), "production")
    assert doc.where(("streams", "EVENTS", "max_age")) == "t.yaml:18:9"
    assert doc.where(("streams", "EVENTS", "subjects", 1)) == "t.yaml:19:36"
    assert doc.where(("defaults", "stream", "num_replicas")) == "t.yaml:15:16"
    assert doc.where(("defaults", "stream", "storage")) == "t.yaml:4:12"  # still the base's
    assert "environments" not in doc.data


def test_unknown_environment_lists_the_known_ones(tmp_path):
    write(tmp_path, "t.yaml", BASE)
    with pytest.raises(TopologyError) as exc:
        load_topology("t.yaml", "prod")
    assert str(exc.value) == "unknown environment 'prod' (known environments: production, staging)"
    write(tmp_path, "plain.yaml", ALERTS)
    with pytest.raises(TopologyError) as exc:
        load_topology("plain.yaml", "prod")
    assert str(exc.value) == "unknown environment 'prod' (the topology declares no environments)"


def test_variables_are_substituted_and_typed_like_yaml(tmp_path, monkeypatch):
    write(tmp_path, "t.yaml", """\
        version: 1
        owner: ${OWNER}
        streams:
          EVENTS:
            subjects: ["medisync.${DOMAIN:-etl}.>"]
            num_replicas: ${REPLICAS:-1}
            description: "${DESCRIPTION:-built by ci}"
            max_age: ${DAYS}d
        """)
    monkeypatch.setenv("OWNER", "medisync")
    monkeypatch.setenv("DAYS", "3")
    monkeypatch.delenv("DOMAIN", raising=False)
    monkeypatch.delenv("REPLICAS", raising=False)
    monkeypatch.setenv("DESCRIPTION", "")  # :- also covers a variable set to the empty string
    topology = load_topology("t.yaml")
    config = topology.streams["EVENTS"].config
    assert topology.owner == "medisync"
    assert config["subjects"] == ["medisync.etl.>"]
    assert config["num_replicas"] == 1 and isinstance(config["num_replicas"], int)
    assert config["description"] == "built by ci"
    assert config["max_age"] == 3 * 24 * 3600 * 10**9
    monkeypatch.setenv("REPLICAS", "3")
    assert load_topology("t.yaml").streams["EVENTS"].config["num_replicas"] == 3


def test_unset_variable_is_a_problem_at_its_line(tmp_path, monkeypatch):
    write(tmp_path, "t.yaml", "version: 1\nowner: o\nstreams:\n  EVENTS:\n    subjects: [a.b]\n    num_replicas: ${REPLICAS}\n")
    monkeypatch.delenv("REPLICAS", raising=False)
    with pytest.raises(InvalidTopology) as exc:
        load_topology("t.yaml")
    assert [str(p) for p in exc.value.problems] == [
        "t.yaml:6:5: streams.EVENTS.num_replicas: environment variable REPLICAS is not set (give a default with ${REPLICAS:-value})"
    ]


def test_dollar_dollar_escapes_a_literal_reference(tmp_path, monkeypatch):
    write(tmp_path, "t.yaml", 'version: 1\nowner: o\nstreams:\n  EVENTS:\n    subjects: [a.b]\n    description: "costs $${AMOUNT} and $5"\n')
    monkeypatch.delenv("AMOUNT", raising=False)
    assert load_topology("t.yaml").streams["EVENTS"].config["description"] == "costs ${AMOUNT} and $5"


def test_malformed_reference_is_a_problem(tmp_path):
    write(tmp_path, "t.yaml", "version: 1\nowner: o\nstreams:\n  EVENTS:\n    subjects: [a.b]\n    description: ${not valid}\n")
    with pytest.raises(InvalidTopology) as exc:
        load_topology("t.yaml")
    assert str(exc.value) == (
        "t.yaml:6:5: streams.EVENTS.description: write ${NAME} or ${NAME:-default} for an environment variable, or $${ for a literal ${"
    )


def test_unset_variable_in_an_unselected_environment_does_not_matter(tmp_path, monkeypatch):
    write(tmp_path, "t.yaml", BASE + "  other:\n    owner: ${OTHER_OWNER}\n")
    monkeypatch.delenv("OTHER_OWNER", raising=False)
    assert load_topology("t.yaml", "production").owner == "medisync"
    with pytest.raises(InvalidTopology) as exc:
        load_topology("t.yaml", "other")
    assert str(exc.value).startswith("t.yaml:22:5: owner: environment variable OTHER_OWNER is not set")


def test_several_files_merge_by_name(tmp_path):
    write(tmp_path, "a.yaml", BASE)
    write(tmp_path, "b.yaml", ALERTS)
    topology = load_topology(["a.yaml", "b.yaml"], "production")
    assert list(topology.streams) == ["EVENTS", "ALERTS"]
    assert topology.buckets["KV_sessions"].config["max_msgs_per_subject"] == 1  # history
    assert topology.streams["ALERTS"].config["num_replicas"] == 3  # a.yaml's environment reaches b.yaml's streams
    assert topology.sources == ["a.yaml", "b.yaml"]


def test_a_directory_means_its_yaml_files_sorted(tmp_path):
    (tmp_path / "topology.d").mkdir()
    write(tmp_path, "topology.d/20-alerts.yml", ALERTS)
    write(tmp_path, "topology.d/10-base.yaml", BASE)
    write(tmp_path, "topology.d/notes.txt", "not yaml: [")
    topology = load_topology("topology.d")
    assert topology.sources == ["topology.d/10-base.yaml", "topology.d/20-alerts.yml"]
    assert list(topology.streams) == ["EVENTS", "ALERTS"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(TopologyError) as exc:
        load_topology("empty")
    assert str(exc.value) == "empty: no *.yaml or *.yml files in this directory"


def test_same_stream_in_two_files_names_both(tmp_path):
    write(tmp_path, "a.yaml", BASE)
    write(tmp_path, "b.yaml", "owner: someone-else\nstreams:\n  ALERTS: {subjects: [x.y]}\n  EVENTS: {subjects: [a.b]}\n")
    with pytest.raises(InvalidTopology) as exc:
        load_topology(["a.yaml", "b.yaml"])
    assert [str(p) for p in exc.value.problems] == [
        "b.yaml:1:1: owner: also set in a.yaml:2:1 to a different value; set owner in one file only, or the same in each",
        "b.yaml:4:3: streams.EVENTS: stream EVENTS is also declared in a.yaml:7:3; declare each stream in one file only",
    ]


def test_equal_singular_keys_may_repeat(tmp_path):
    write(tmp_path, "a.yaml", BASE)
    write(tmp_path, "b.yaml", "version: 1\nowner: medisync\n" + ALERTS)
    assert load_topology(["a.yaml", "b.yaml"]).owner == "medisync"


def test_a_problem_in_the_second_file_names_the_second_file(tmp_path):
    write(tmp_path, "a.yaml", BASE)
    write(tmp_path, "b.yaml", "streams:\n  ALERTS:\n    subjects: [medisync.alert.>]\n    consumers:\n      pager: {filter_subject: medisync.etl.>}\n")
    with pytest.raises(InvalidTopology) as exc:
        load_topology(["a.yaml", "b.yaml"])
    assert [str(p) for p in exc.value.problems] == [
        "b.yaml:5:15: streams.ALERTS.consumers.pager.filter_subject: "
        "filter 'medisync.etl.>' matches none of stream ALERTS's subjects: medisync.alert.>"
    ]


def test_every_environment_is_validated_and_named(tmp_path):
    # broken's EXTRA takes a subject EVENTS already has: only that environment is invalid.
    write(tmp_path, "t.yaml", BASE + "  broken:\n    streams:\n      EXTRA: {subjects: [medisync.etl.x]}\n")
    with pytest.raises(InvalidTopology) as exc:
        load_every_environment("t.yaml")
    assert [str(p) for p in exc.value.problems] == [
        "t.yaml:23:26: streams.EXTRA.subjects[0]: in environment broken: "
        "subject 'medisync.etl.x' overlaps 'medisync.etl.>' of stream EVENTS: a subject may belong to one stream only"
    ]
    write(tmp_path, "t.yaml", BASE)
    assert list(load_every_environment("t.yaml")) == [None, "production", "staging"]


def test_environment_must_be_a_mapping(tmp_path):
    write(tmp_path, "t.yaml", BASE + "  qa: [1]\n")
    with pytest.raises(InvalidTopology) as exc:
        load_topology("t.yaml")
    assert str(exc.value) == "t.yaml:21:3: environments.qa: an environment is a mapping merged over the top level (streams, defaults, ...)"


def test_cli_validates_composed_files_with_an_environment(tmp_path):
    write(tmp_path, "a.yaml", BASE)
    write(tmp_path, "b.yaml", ALERTS)
    runner = CliRunner()
    result = runner.invoke(main, ["validate", "-f", "a.yaml", "-f", "b.yaml", "--env", "production"])
    assert (result.exit_code, result.output) == (0, "a.yaml, b.yaml is valid in environment production: 2 streams, 1 consumer, 1 KV bucket\n")
    result = runner.invoke(main, ["validate", "-f", "a.yaml", "-f", "b.yaml"])
    assert (result.exit_code, result.output.splitlines()) == (0, [
        "a.yaml, b.yaml is valid: 2 streams, 1 consumer, 1 KV bucket",
        "a.yaml, b.yaml is valid in environment production: 2 streams, 1 consumer, 1 KV bucket",
        "a.yaml, b.yaml is valid in environment staging: 2 streams, 1 consumer, 1 KV bucket",
    ])
    result = runner.invoke(main, ["validate", "-f", "a.yaml", "-f", "b.yaml"], env={"TOPOLOGY_ENV": "prod"})
    assert (result.exit_code, result.output) == (1, "Error: unknown environment 'prod' (known environments: production, staging)\n")


def test_cli_reports_a_problem_in_the_environment_it_was_given(tmp_path):
    write(tmp_path, "a.yaml", BASE)
    write(tmp_path, "b.yaml", "environments:\n  qa:\n    streams:\n      EVENTS: {num_replicas: '${QA_REPLICAS}'}\n")
    result = CliRunner().invoke(main, ["validate", "-f", "a.yaml", "-f", "b.yaml", "--env", "qa"], env={"QA_REPLICAS": None})
    assert (result.exit_code, result.output.splitlines()) == (1, [
        "Error: the topology is invalid (1 problem):",
        "b.yaml:4:16: streams.EVENTS.num_replicas: environment variable QA_REPLICAS is not set (give a default with ${QA_REPLICAS:-value})",
    ])
    result = CliRunner().invoke(main, ["validate", "-f", "a.yaml", "-f", "b.yaml", "--env", "qa"], env={"QA_REPLICAS": "3"})
    assert (result.exit_code, result.output) == (0, "a.yaml, b.yaml is valid in environment qa: 1 stream, 1 consumer\n")


@pytest.mark.parametrize("value", ["*", "!", "&", "=", "<<", "*x", "!!bool", "&a b"])
def test_a_variable_holding_yaml_punctuation_is_that_text(tmp_path, monkeypatch, value):
    # `D='*' topology validate` with `description: ${D}` was a yaml ConstructorError traceback.
    write(tmp_path, "t.yaml", "version: 1\nowner: o\nstreams:\n  EVENTS:\n    subjects: [a.b]\n    description: ${D}\n")
    monkeypatch.setenv("D", value)
    assert load_topology("t.yaml").streams["EVENTS"].config["description"] == value
    result = CliRunner().invoke(main, ["validate", "-f", "t.yaml"])
    assert (result.exit_code, result.output) == (0, "t.yaml is valid: 1 stream, 0 consumers\n")


def test_a_variable_too_long_for_its_type_is_a_problem_at_its_line(tmp_path, monkeypatch):
    write(tmp_path, "t.yaml", "version: 1\nowner: o\nstreams:\n  EVENTS:\n    subjects: [a.b]\n    num_replicas: ${R}\n")
    monkeypatch.setenv("R", "1" * 5000)  # Python converts at most 4,300 digits to an int
    with pytest.raises(InvalidTopology) as exc:
        load_topology("t.yaml")
    assert [str(p) for p in exc.value.problems] == [
        "t.yaml:6:5: streams.EVENTS.num_replicas: '1111111111111111111111111111111111111...' is not a valid !!int"
    ]
