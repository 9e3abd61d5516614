"""The plan is a promise (issue 10), tried as a new user would: random schema-valid topologies, and
changes between them, against a real nats-server.

For each generated topology (and then a change of it):
- what validate and plan accept, apply does, and the next plan says No changes;
- what plan predicts, the server agrees with: every request plan says the server refuses is refused
  with one of the err_codes it names; every request it plans without objection is accepted; a
  replacement is needed (the server refuses the update in place, or does not carry it out).
A disagreement fails the test; no case is skipped. Requests that follow one the server refused
(a consumer of a stream that was not created) are not judged. Hypothesis is derandomized, so CI
always tries the same cases; PROMISE_EXAMPLES sets how many (the count tried is printed).
"""

from __future__ import annotations

import asyncio
import collections
import copy
import dataclasses
import os
import re
import time

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from natsserver import start_server

from medisync_topology import errors, rules
from medisync_topology.apply import apply_plan
from medisync_topology.client import JetStreamAPIError, JetStreamClient
from medisync_topology.connectoptions import ConnectOptions
from medisync_topology.loader import InvalidTopology, parse_document
from medisync_topology.model import build_topology
from medisync_topology.ops import Ref, ReplaceResource, resulting_config
from medisync_topology.plan import make_plan
from medisync_topology.validate import load_topology

EXAMPLES = int(os.environ.get("PROMISE_EXAMPLES", "100"))

# Values a person might write, some of them refused by the server (that is the point). {p} is the
# stream's subject prefix, {s} the stream's name, {c} the consumer's.
STREAM_VALUES = {
    "retention": ["limits", "interest", "workqueue"],
    "storage": ["file", "memory"],
    "max_msgs": [-1, 100],
    "max_age": ["50ms", "1s", "1h"],
    "duplicate_window": ["50ms", "500ms", "2m", "2h"],
    "max_msgs_per_subject": [1, 10],
    "max_msg_size": ["1KiB", "4KiB"],
    "max_consumers": [1, 10],
    "discard": ["old", "new"],
    "discard_new_per_subject": [True],
    "deny_delete": [True],
    "deny_purge": [True, False],
    "allow_rollup_hdrs": [True, False],
    "allow_direct": [True, False],
    "no_ack": [True],
    "description": ["generated"],
    "compression": ["s2"],
    "first_seq": [5],
    "consumer_limits": [{"max_ack_pending": 100}, {"inactive_threshold": "1h"}],
    "republish": [{"src": ">", "dest": "rp.{s}.>"}, {"src": ">", "dest": "{p}.loop"}],
    "allow_msg_ttl": [True],
    "subject_delete_marker_ttl": ["500ms", "1m"],
    "allow_msg_counter": [True],
    "allow_atomic": [True],
    "allow_msg_schedules": [True],
    "persist_mode": ["async"],
    "allow_batched": [True],
}
CONSUMER_VALUES = {
    "ack_policy": ["none", "all", "explicit", "flow_control"],
    "deliver_policy": ["all", "last", "new", "last_per_subject", "by_start_sequence"],
    "opt_start_seq": [1],
    "filter_subject": ["{p}.x", "{p}.>"],
    "filter_subjects": [["{p}.x", "{p}.y"], ["{p}.>", "{p}.x"]],
    "deliver_subject": ["d.{s}.{c}", "{p}.loop"],
    "max_ack_pending": [10, 500],
    "max_deliver": [2, 5],
    "backoff": [["1s", "2s", "3s"]],
    "ack_wait": ["10s"],
    "max_waiting": [10],
    "idle_heartbeat": ["50ms", "5s"],
    "flow_control": [True],
    "rate_limit_bps": [1000],
    "inactive_threshold": ["1m", "1d"],
    "max_expires": ["500us", "1m"],
    "headers_only": [True],
    "description": ["generated"],
    "priority_policy": ["overflow", "pinned_client"],
    "priority_groups": [["g"]],
    "priority_timeout": ["1m"],
}
# How stream B takes messages from stream A, if at all.
ORIGINS = [
    {},
    {"mirror": {"name": "A"}},
    {"sources": [{"name": "A"}]},
    {"sources": [{"name": "A", "filter_subject": "a.x"}]},
    {"sources": [{"name": "A", "filter_subject": "a.>", "subject_transforms": [{"src": "a.x", "dest": "t.x"}]}]},
]


def known_values(kind: str, values: dict, version) -> dict:
    """The fields (and values) the connected server line knows: the older ones' proofs are elsewhere."""
    table = rules.RULES[kind]
    out = {}
    for key, choices in values.items():
        if version < table[key].since:
            continue
        out[key] = [v for v in choices if not isinstance(v, str) or version >= table[key].value_since.get(v, (0, 0, 0))]
    return out


def fill(value, **names):
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, list):
        return [fill(v, **names) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, **names) for k, v in value.items()}
    return value


def some_of(values: dict, at_most: int):
    """A few fields, each with one of its values."""
    keys = sorted(values)
    return st.lists(st.sampled_from(keys), max_size=at_most, unique=True).flatmap(
        lambda chosen: st.fixed_dictionaries({k: st.sampled_from(values[k]) for k in chosen}))


@st.composite
def topologies(draw, version):
    stream_values, consumer_values = known_values("stream", STREAM_VALUES, version), known_values("consumer", CONSUMER_VALUES, version)
    streams = {}
    for name in draw(st.sampled_from([["A"], ["A", "B"]])):
        prefix = name.lower()
        origin = draw(st.sampled_from(ORIGINS)) if name == "B" else {}
        stream = {} if "mirror" in origin else {"subjects": [f"{prefix}.>"]}
        stream.update(copy.deepcopy(origin))
        stream.update(fill(draw(some_of(stream_values, 3)), p=prefix, s=name))
        consumers = {}
        for cname in draw(st.sampled_from([[], ["c0"], ["c0", "c1"]])):
            consumers[cname] = fill(draw(some_of(consumer_values, 3)), p=prefix, s=name, c=cname)
        if consumers:
            stream["consumers"] = consumers
        streams[name] = stream
    return {"version": 1, "owner": "medisync", "streams": streams}


@st.composite
def changes_of(draw, topology: dict, version):
    """The same streams and consumers with a few fields added, changed or removed."""
    changed = copy.deepcopy(topology)
    stream_values, consumer_values = known_values("stream", STREAM_VALUES, version), known_values("consumer", CONSUMER_VALUES, version)
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(sorted(changed["streams"])))
        stream = changed["streams"][name]
        target, values = stream, stream_values
        if stream.get("consumers") and draw(st.booleans()):
            target, values = stream["consumers"][draw(st.sampled_from(sorted(stream["consumers"])))], consumer_values
        key = draw(st.sampled_from(sorted(values)))
        if key in target and draw(st.booleans()):
            del target[key]
        else:
            target[key] = fill(draw(st.sampled_from(values[key])), p=name.lower(), s=name, c="c")
    return changed


# -- judging one plan against the server ------------------------------------------------------

CODE = re.compile(r"err_code (\d+)")
# Refusals of a consumer because of its stream's other consumers (max_consumers, workqueue sharing).
BETWEEN_CONSUMERS = {errors.MAXIMUM_CONSUMERS, errors.WORKQUEUE_UNFILTERED, errors.WORKQUEUE_NOT_UNIQUE}


class Judge:
    def __init__(self, client: JetStreamClient, loop, tally: collections.Counter):
        self.client, self.loop, self.tally = client, loop, tally

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    def reset(self) -> None:
        names = self.run(self.client.request("STREAM.NAMES", {})).get("streams") or []
        for name in names:
            self.run(self.client.request(f"STREAM.DELETE.{name}", None))

    def plan(self, text: str, tmp_path) -> tuple:
        """(plan, validate's problems, whether validate accepted the file)."""
        path = tmp_path / "topology.yaml"
        path.write_text(text)
        try:
            topology, problems = load_topology(path), []
        except InvalidTopology as exc:
            topology, _ = build_topology(parse_document(text, str(path)))
            problems = exc.problems
        live = self.run(self.client.read_live())
        return make_plan(topology, live), problems

    def check(self, text: str, tmp_path) -> bool:
        """Judge the plan for ``text`` against the server; True when it was applied in full."""
        plan, problems = self.plan(text, tmp_path)
        if not problems and not plan.errors:
            result = self.run(apply_plan(self.client, plan))
            assert result.failed is None, f"apply failed where validate and plan saw nothing wrong:\n{text}\n{result.failure()}"
            self.settle()
            again, _ = self.plan(text, tmp_path)
            assert not again.operations and not again.errors, f"the plan after apply is not empty:\n{text}\n{again.operations}"
            self.tally["applied, then No changes"] += 1
            return True
        self.tally["validate or plan found errors"] += 1
        self.judge_each(plan, problems, text)
        return False

    def judge_each(self, plan, problems, text: str) -> None:
        refused: dict[Ref, set[int]] = collections.defaultdict(set)
        for finding in plan.errors:
            if finding.reason == "refused":
                refused[finding.ref] |= {int(code) for code in CODE.findall(finding.message)}
        unsure = {_resource_of(p.path) for p in problems if "the server refuses it" not in p.message}
        failed: set[Ref] = set()
        for op in plan.operations:
            depends = _depends_on(op)
            if refused.get(op.ref) and refused[op.ref] <= BETWEEN_CONSUMERS:
                # Foreseen because of the consumers planned before it on its stream: they must exist.
                depends |= {o.ref for o in plan.operations if o.ref.kind == "consumer" and o.ref.stream == op.ref.stream}
                depends.discard(op.ref)
            if depends & failed:
                failed.add(op.ref)  # not judged: what it needs was refused
                continue
            if isinstance(op, ReplaceResource):
                self.judge_replacement(op, text)
            code = self.execute(plan, op)
            if code is not None:
                failed.add(op.ref)
            if op.ref in refused:
                assert code in refused[op.ref], (
                    f"plan said the server refuses {op.ref} with {sorted(refused[op.ref])}, it answered {code}:\n{text}")
                self.tally["refusal foreseen"] += 1
            elif _key(op.ref) not in unsure:
                assert code is None, f"the server refused {op.ref} (err_code {code}), which plan did not foresee:\n{text}"
                self.tally[f"{op.action} accepted"] += 1

    def settle(self) -> None:
        """Wait until every mirror and source has connected to its origin (through a consumer the
        server makes in the background), as it has on a server some time after an apply."""
        deadline = time.monotonic() + 5
        for name in self.run(self.client.request("STREAM.NAMES", {})).get("streams") or []:
            while True:
                info = self.run(self.client.request(f"STREAM.INFO.{name}", None))
                links = [info["mirror"]] if info.get("mirror") else list(info.get("sources") or [])
                if all(link.get("active", -1) >= 0 for link in links) or time.monotonic() > deadline:
                    break
                time.sleep(0.02)

    def execute(self, plan, op) -> int | None:
        """Carry out one operation alone, whatever the plan's findings; the server's err_code, if it refuses."""
        one = dataclasses.replace(plan, operations=[op], findings=[])
        try:
            outcome = self.run(apply_plan(self.client, one)).outcomes[0]
        except JetStreamAPIError as exc:
            return exc.err_code
        return outcome.err_code if outcome.status == "failed" else None

    def judge_replacement(self, op: ReplaceResource, text: str) -> None:
        """A replacement is right when the server refuses the update in place, or keeps the old value."""
        kind = "consumer" if op.ref.kind == "consumer" else "stream"
        if kind == "consumer":
            subject, body = f"CONSUMER.CREATE.{op.ref.stream}.{op.ref.name}", {
                "stream_name": op.ref.stream, "config": op.after, "action": "update", "pedantic": True}
        else:
            subject, body = f"STREAM.UPDATE.{op.ref.stream_name}", {**op.after, "pedantic": True}
        try:
            reply = self.run(self.client.request(subject, body))
        except JetStreamAPIError:
            self.tally["replacement confirmed"] += 1
            return
        assert rules.strip_live(reply["config"], kind) != op.after, f"plan replaces {op.ref}, the server updates it in place:\n{text}"
        self.tally["replacement confirmed"] += 1


def _depends_on(op) -> set[Ref]:
    if op.ref.kind == "consumer":
        return {Ref("stream", op.ref.stream)}
    config = resulting_config(op) or {}
    entries = [config.get("mirror")] + list(config.get("sources") or [])
    return {Ref("stream", e["name"]) for e in entries if e and e.get("name")}


def _resource_of(path: str) -> tuple:
    parts = path.split(".")
    if parts[:1] == ["streams"] and len(parts) > 1:
        return (parts[1], parts[3]) if len(parts) > 3 and parts[2] == "consumers" else (parts[1], None)
    return (None, None)


def _key(ref: Ref) -> tuple:
    return (ref.stream, ref.name) if ref.kind == "consumer" else (ref.stream_name, None)


@pytest.fixture(scope="module")
def judge(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("promise"))
    loop = asyncio.new_event_loop()
    client = JetStreamClient(ConnectOptions(server=server.url))
    loop.run_until_complete(client.connect())
    tally: collections.Counter = collections.Counter()
    yield Judge(client, loop, tally)
    loop.run_until_complete(client.close())
    loop.close()
    server.stop()


def test_what_plan_promises_the_server_does(judge, tmp_path, capsys):
    version = rules.parse_version(judge.client.server_version)

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None, print_blob=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=st.data())
    def case(data):
        first = data.draw(topologies(version), label="topology")
        judge.tally["cases"] += 1
        judge.reset()
        if judge.check(yaml.safe_dump(first, sort_keys=False), tmp_path):
            second = data.draw(changes_of(first, version), label="changed to")
            judge.check(yaml.safe_dump(second, sort_keys=False), tmp_path)

    case()
    with capsys.disabled():
        print(f"\npromise: {judge.tally['cases']} cases tried on nats-server {judge.client.server_version}: "
              f"{dict(sorted(judge.tally.items()))}")
    assert judge.tally["applied, then No changes"] > 0 and judge.tally["refusal foreseen"] > 0
