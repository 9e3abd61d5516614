"""Property-based fuzzing of everything a topology file reaches offline: loader, compose (several files,
environment overlays, ${VAR}), validate, and a plan and its rendering for whatever validates.

A topology comes from a pull request: whatever it holds, `topology validate` answers with exit 0, or
exit 1 and located problems, never a traceback, a hang or a runaway (issue 12). Bounded and
derandomized, so CI runs the same few hundred cases every time in a few seconds.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medisync_topology.live import LiveState, LiveStream
from medisync_topology.errors import TopologyError
from medisync_topology.loader import InvalidTopology
from medisync_topology.plan import OWNER_KEY, make_plan
from medisync_topology.render import FORMATS, render
from medisync_topology.validate import load_every_environment, load_schema

FUZZ = settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
SHIPPED = (Path(__file__).resolve().parent.parent / "topology.yaml").read_text()
VARIABLES = ("D", "N", "S")  # what ${...} references name; each set (or not) per example

# -- values: mostly plausible for their field (so enough validates to reach plan and render), some junk --

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["*", "!", "&", "=", "<<", "~", "", "yes", "0x1F", "1e400", "-0", ".nan", "1_000", "2026-01-02"]),
)
junk = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)
references = st.sampled_from(["${D}", "${N:-3}", "${S}", "$${D}", "${", "${1X}", "x${D}y", "${D:-}"])
subject = st.sampled_from(["a.>", "a.b", "a.*", "b.>", "c.*.d", ">", "*", "a..b", "a b", "a.>.b", "medisync_topology_lock.x", "$KV.x.>"]) | references
duration = st.sampled_from(["1s", "500ms", "5m", "2h", "7d", "1h30m", "0s", "-1s", "1x", "99999999999d", 0, -1, 10**9, 2**64]) | references
size = st.sampled_from(["1KiB", "512MiB", "1.5GiB", "10GB", "-1", -1, 0, 1, 1024, 2**63, "1XB"]) | references

CHOICES = {
    "retention": ["limits", "interest", "workqueue", "x"], "storage": ["file", "memory", "disk"],
    "discard": ["old", "new"], "compression": ["none", "s2"], "ack_policy": ["explicit", "none", "all"],
    "deliver_policy": ["all", "last", "new", "last_per_subject", "by_start_sequence"], "replay_policy": ["instant", "original"],
}


def value_for(name: str):
    if name in CHOICES:
        return st.sampled_from(CHOICES[name]) | references
    if name in ("subjects", "filter_subjects"):
        return st.lists(subject, max_size=3)
    if name in ("filter_subject", "deliver_subject", "deliver_group"):
        return subject
    if name == "backoff":
        return st.lists(duration, max_size=4)
    if name.endswith(("age", "window", "wait", "ttl", "heartbeat", "threshold", "expires", "timeout")):
        return duration
    if name.startswith("max_") or name.endswith("bytes") or name == "first_seq":
        return size
    if name in ("num_replicas", "history", "max_deliver", "opt_start_seq", "sample_freq"):
        return st.integers(min_value=-2, max_value=6) | references
    if name in ("description",):
        return st.text(max_size=20) | references
    if name == "metadata":
        return st.dictionaries(st.text(max_size=6), st.text(max_size=6) | references, max_size=2)
    if name in ("mirror", "sources"):
        origin = st.fixed_dictionaries({"name": st.sampled_from(["A", "B", "KV_c", "GONE"])})
        return origin if name == "mirror" else st.lists(origin, max_size=2)
    if name == "publish":
        return st.lists(subject, max_size=2)
    if name == "consume":
        return st.lists(st.sampled_from(["A/c1", "B/c2", "EVENTS/c1", "x", "A/"]), max_size=2)
    if name in ("key_value", "object_stores"):  # a service's buckets
        return st.dictionaries(st.sampled_from(["c", "d", "e"]), st.sampled_from(["read", "read-write", "write"]), max_size=2)
    if name == "values":  # policy: allowed tokens per placeholder
        return st.dictionaries(st.sampled_from(["domain", "entity", "x"]), st.lists(st.sampled_from(["a", "b", "etl", ""]), max_size=2), max_size=2)
    if name == "consumers":
        return st.dictionaries(st.sampled_from(["c1", "c2", "bad name", ""]), config_of("consumer"), max_size=2)
    return st.booleans() | junk


def config_of(kind: str):
    """A mapping of some of the schema's fields for ``kind``, with an unknown key now and then."""
    fields = sorted(load_schema()["$defs"][kind]["properties"]) + ["max_agee"]
    return st.lists(st.sampled_from(fields), max_size=4, unique=True).flatmap(
        lambda names: st.fixed_dictionaries({name: value_for(name) for name in names})
    )


names = st.sampled_from(["A", "B", "EVENTS", "a.b", "", "KV_c", "medisync_topology_lock", "x" * 300])
streams = st.dictionaries(names, config_of("stream") | st.none(), max_size=3)
overlay = st.fixed_dictionaries({}, optional={
    "streams": st.dictionaries(names, config_of("stream") | st.none(), max_size=2),
    "defaults": st.fixed_dictionaries({}, optional={"stream": config_of("stream_defaults"), "consumer": config_of("consumer_defaults")}),
    "owner": st.sampled_from(["medisync", "other", "${D}"]),
})
topology_data = st.fixed_dictionaries(
    {"version": st.sampled_from([1] * 8 + [2, "1"]), "owner": st.sampled_from(["medisync"] * 6 + ["${D}", "", 7]), "streams": streams},
    optional={
        "key_value": st.dictionaries(st.sampled_from(["c", "d", "bad.name"]), config_of("key_value") | st.none(), max_size=2),
        "object_stores": st.dictionaries(st.sampled_from(["c", "e"]), config_of("object_store") | st.none(), max_size=2),
        "environments": st.dictionaries(st.sampled_from(["production", "staging", ""]), overlay | st.none(), max_size=2),
        "existing_streams": st.lists(st.sampled_from(["ORDERS", "A", ""]), max_size=2),
        "audit": st.fixed_dictionaries({"subject": subject}),
        "defaults": st.fixed_dictionaries({}, optional={"stream": config_of("stream_defaults"), "consumer": config_of("consumer_defaults")}),
        "policy": config_of("policy"),
        "services": st.dictionaries(st.sampled_from(["etl", "ocr", "bad name"]), config_of("service") | st.none(), max_size=2),
        "nonsense": junk,
    },
)
environment = st.fixed_dictionaries({}, optional={v: st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8) | st.sampled_from(["*", "!", "&", "=", "<<", "3", "true"]) for v in VARIABLES})


def mutated(text: str):
    """``text`` with a few edits at random places: YAML punctuation, control characters, cut lines."""
    edit = st.tuples(st.integers(min_value=0, max_value=len(text)), st.integers(min_value=0, max_value=8),
                     st.sampled_from(["*", "&a ", "*a", "!!bool ", "!!int ", "[", "{", "}", ":", "- ", "? ", "|", "\t", "\x00",
                                      "\x1b", "\ufeff", "\n  ", "\n", "${D}", "'", '"', "<<: ", "%YAML 1.1\n", "---\n", "\\"]))

    def apply(edits):
        out = text
        for at, cut, insert in edits:
            at = min(at, len(out))
            out = out[:at] + insert + out[at + cut:]
        return out

    return st.lists(edit, min_size=1, max_size=4).map(apply)


# -- the properties ---------------------------------------------------------------------------


def check_files(texts: list[str], variables: dict[str, str]) -> None:
    """validate's path answers with the topologies or located problems (which cli.py prints, exit 1),
    never another exception; what validates plans and renders."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, text in enumerate(texts):
            path = Path(tmp) / f"t{i}.yaml"
            path.write_text(text, encoding="utf-8")
            paths.append(str(path))
        saved = {v: os.environ.pop(v, None) for v in VARIABLES}
        os.environ.update({v: value for v, value in variables.items() if value is not None})
        try:
            topologies = load_every_environment(paths)
        except InvalidTopology as exc:
            assert exc.problems and all(p.file in paths for p in exc.problems), exc.problems
            return
        except TopologyError:  # cli.py's "Error: ..." and exit 1, as test_cli proves
            return
        finally:
            for v, value in saved.items():
                os.environ.pop(v, None)
                os.environ.update({v: value} if value is not None else {})
    for topology in topologies.values():
        plan_and_render(topology)


def plan_and_render(topology) -> None:
    """Plan against nothing (every format rendered), and with --prune --adopt against a server holding
    each of the streams, unmanaged or owned by another (JSON rendered)."""
    taken = LiveState("2.10.26", {
        name: LiveStream({"name": name, "subjects": [f"live.{i}.>"], **({"metadata": {OWNER_KEY: "other"}} if i % 2 else {})},
                         {"messages": 1, "bytes": 10})
        for i, name in enumerate(sorted({**topology.streams, **topology.buckets}))
    })
    plan = make_plan(topology, LiveState("2.15.1", {}))
    for fmt in FORMATS:
        assert render(plan, fmt, color=fmt == "text")
    assert render(make_plan(topology, taken, prune=True, adopt=True), "json", color=False)


@FUZZ
@given(data=topology_data, variables=environment, split=st.booleans())
def test_generated_topologies_validate_or_fail_cleanly(data, variables, split):
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    texts = [text]
    if split and data.get("streams"):
        second = {"streams": data["streams"]}
        texts = [yaml.safe_dump({**data, "streams": {}}, sort_keys=False, allow_unicode=True), yaml.safe_dump(second)]
    check_files(texts, variables)


@FUZZ
@given(text=mutated(SHIPPED), variables=environment)
def test_edited_shipped_topology_validates_or_fails_cleanly(text, variables):
    check_files([text], variables)


@FUZZ
@given(text=st.lists(st.sampled_from(list("ab:- \n[]{},*&!?|>'\"#%@`\t\x00\x85~") + ["${D}", "&x ", "*x", "!!bool "]), max_size=40).map("".join))
def test_arbitrary_short_yaml_validates_or_fails_cleanly(text):
    check_files([text], {"D": "*"})


def test_fuzzing_reaches_plan_and_render():
    """The shipped topology, through the same path: the property tests above are not vacuous."""
    topology = load_every_environment([str(Path(__file__).resolve().parent.parent / "topology.yaml")])[None]
    plan = make_plan(topology, LiveState("2.15.1", {}))
    assert plan.operations and all(op.action == "create" for op in plan.operations) and "create" in render(plan, "text", color=False)
