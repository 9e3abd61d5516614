"""`topology graph`: the topology as Mermaid and DOT, offline."""

import re

import pydot
import pytest
from click.testing import CliRunner

from medisync_topology.cli import main

from test_validate import REPO

TOPOLOGY = """version: 1
owner: medisync
streams:
  EVENTS:
    subjects: [a.>]
    consumers: {work: {}}
  BACKUP: {mirror: {name: EVENTS}}
  MERGED: {sources: [{name: EVENTS}, {name: ELSEWHERE, external: {api: "$JS.hub.API"}}]}
key_value:
  state: {}
services:
  "publisher":  {publish: ['a.b', 'core.only']}
  "worker": {consume: [EVENTS/work], key_value: {state: read-write}}
  "reader": {key_value: {state: read}}
"""


def graph(tmp_path, fmt, text=TOPOLOGY):
    path = tmp_path / "t.yaml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["graph", "-f", str(path), "--format", fmt])
    assert result.exit_code == 0, result.output
    return result.output


def test_dot_parses_as_graphviz_and_has_every_relation(tmp_path):
    [dot] = pydot.graph_from_dot_data(graph(tmp_path, "dot"))
    edges = {(e.get_source().strip('"'), e.get_destination().strip('"'), (e.get_label() or "").strip('"'), e.get_style(), e.get("dir"))
             for e in dot.get_edges()}
    assert edges == {
        ("service:publisher", "stream:EVENTS", "a.b", None, None),
        ("service:publisher", "subject:core.only", "", None, None),
        ("stream:EVENTS", "stream:BACKUP", "mirror", "dashed", None),
        ("stream:EVENTS", "stream:MERGED", "source", "dashed", None),
        ("stream:ELSEWHERE", "stream:MERGED", "source", "dashed", None),
        ("stream:EVENTS", "consumer:EVENTS/work", "", None, None),
        ("consumer:EVENTS/work", "service:worker", "", None, None),
        ("service:worker", "key_value:state", "read-write", None, "both"),
        ("key_value:state", "service:reader", "read", None, None),
    }
    labels = {n.get_name().strip('"'): n.get_label().strip('"') for n in dot.get_nodes() if n.get_label()}
    assert labels["stream:EVENTS"] == "EVENTS\\na.>"
    assert labels["stream:ELSEWHERE"] == "ELSEWHERE\\n(external)"
    assert labels["subject:core.only"] == "core.only\\n(core NATS, not kept)"


def test_mermaid_declares_every_node_it_links_with_ids_mermaid_accepts(tmp_path):
    text = graph(tmp_path, "mermaid")
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    nodes = dict(re.fullmatch(r'  (\w+)(\S{1,2}".*"\S{1,2})', line).groups() for line in lines[1:] if '"' in line.split(" ")[2][:3] or not re.search(r" (-->|<-->|-\.->)", line))
    edges = [re.fullmatch(r"  (\w+) (-->|<-->|-\.->)(\|\"[^\"]*\"\|)? (\w+)", line).groups() for line in lines[1:] if re.search(r" (-->|<-->|-\.->)", line)]
    assert len(edges) == 9
    assert all(source in nodes and target in nodes for source, _, _, target in edges)
    assert nodes["stream_EVENTS"] == '[("EVENTS<br/>a.>")]'
    assert ("service_worker", "<-->", '|"read-write"|', "key_value_state") in edges
    assert ("stream_EVENTS", "-.->", '|"mirror"|', "stream_BACKUP") in edges


def test_mermaid_ids_stay_distinct_and_labels_cannot_break_out(tmp_path):
    text = TOPOLOGY.replace("publish: ['a.b', 'core.only']", """publish: ['x.y', 'x_y', 'q."z', 'h.<b>']""")
    out = graph(tmp_path, "mermaid", text)
    assert '  subject_x_y>"x.y<br/>(core NATS, not kept)"]' in out and '  subject_x_y_2>"x_y<br/>(core NATS, not kept)"]' in out
    assert '  subject_q__z>"q.#quot;z<br/>(core NATS, not kept)"]' in out
    assert '  subject_h__b_>"h.#lt;b><br/>(core NATS, not kept)"]' in out


@pytest.mark.parametrize("fmt", ["mermaid", "dot"])
def test_the_shipped_topology_draws(fmt):
    result = CliRunner().invoke(main, ["graph", "-f", str(REPO / "topology.yaml"), "--format", fmt])
    assert result.exit_code == 0 and "alert-worker" in result.output and "agent-state" in result.output
