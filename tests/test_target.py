"""The target's facts: replicas and placement against a real single node and a real 3-node cluster, and the
account's JetStream limits from $JS.API.INFO; each plan error is proven by the server refusing the same thing."""

import asyncio
import time
from pathlib import Path

import pytest
from conftest import raw_js_api, topology_cli
from natsauth import creds_file, operator_config
from natsserver import repo_nats_conf, start_cluster, start_server
from test_rules_server import BINARIES  # the harness's binary and every older line installed

from medisync_topology import rules
from medisync_topology.client import JetStreamClient
from medisync_topology.connectoptions import ConnectOptions
from medisync_topology.live import LiveState
from medisync_topology.loader import parse_document
from medisync_topology.model import build_topology
from medisync_topology.plan import make_plan
from medisync_topology.target import TargetFacts

# Users of one account: ``deploy`` may do anything, ``narrow`` only the JetStream API (no $SYS ping).
ACCOUNTS = """
accounts {
  APP: {
    jetstream: enabled
    users: [
      {user: deploy, password: deploy}
      {user: narrow, password: narrow, permissions: {publish: ["$JS.API.>"], subscribe: ["_INBOX.>"]}}
    ]
  }
}
"""
DEPLOY = {"user": "deploy", "password": "deploy"}


def topology(name, **fields):
    lines = "".join(f"    {k}: {v}\n" for k, v in fields.items())
    return f"version: 1\nowner: medisync\nstreams:\n  {name}:\n    subjects: [{name.lower()}.>]\n{lines}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    nodes = start_cluster(tmp_path_factory.mktemp("target-cluster"), config=ACCOUNTS,
                          tags_per_node=[["ssd"], ["ssd"], []], probe_as=DEPLOY)
    wait_until_all_answer(nodes[0].url, **DEPLOY)
    yield nodes
    for node in nodes:
        node.stop()


def cli_as(url, tmp_path, monkeypatch, user):
    monkeypatch.setenv("NATS_USER", user)
    monkeypatch.setenv("NATS_PASSWORD", user)
    return topology_cli(url, tmp_path, monkeypatch)


def create_refusal(url, config, **auth):
    """What the server answers when asked to create this stream (it is deleted again if made)."""
    reply = raw_js_api(url, f"STREAM.CREATE.{config['name']}", config, **auth)
    if "error" not in reply:
        raw_js_api(url, f"STREAM.DELETE.{config['name']}", None, **auth)
    return reply.get("error")


# -- a single node -----------------------------------------------------


def test_replicas_on_a_server_that_is_not_clustered_are_a_plan_error(run, nats_url):
    code, out = run(topology("WIDE", num_replicas=3), "plan", "--no-color")
    assert code == 1, out
    assert ("Error: stream WIDE: num_replicas is 3, but the server is not clustered: it refuses more than one "
            "replica (err_code 10074)") in out
    assert create_refusal(nats_url, {"name": "WIDE", "subjects": ["wide.>"], "num_replicas": 3})["err_code"] == 10074
    # Increasing the replicas of a live stream is refused alike; placement means nothing outside a cluster.
    assert run(topology("WIDE", placement="{tags: [ssd]}"), "apply", "--auto-approve")[0] == 0
    code, out = run(topology("WIDE", num_replicas=2), "plan", "--no-color")
    assert code == 1 and "num_replicas is 2, but the server is not clustered" in out, out


ACCOUNT_LIMITS = """
accounts {
  LIMITED: {
    jetstream: {max_streams: 2, max_consumers: 1, max_file: 1MB, max_mem: 2KB, max_ack_pending: 100}
    users: [{user: limited, password: limited}]
  }
}
"""


@pytest.fixture
def limited(tmp_path, monkeypatch):
    server = start_server(tmp_path / "limited", config=ACCOUNT_LIMITS)
    yield server, cli_as(server.url, tmp_path, monkeypatch, "limited")
    server.stop()


def test_account_limits_are_plan_errors_the_server_agrees_with(limited):
    server, run = limited
    auth = {"user": "limited", "password": "limited"}
    text = (
        "version: 1\nowner: medisync\nstreams:\n"
        "  A: {subjects: [a], consumers: {one: {}, two: {}}}\n"
        "  B: {subjects: [b], storage: memory, max_bytes: 4KiB}\n"
        "  C: {subjects: [c], max_bytes: 2MiB, consumers: {greedy: {max_ack_pending: 500}}}\n"
    )
    code, out = run(text, "plan", "--no-color")
    assert code == 1, out
    expected = [
        ("consumer A/two: the account allows 1 consumers per stream and stream A would then have 2 (max_consumers)",
         10026),
        ("stream B: max_bytes reserves memory the account does not have: it would reserve 4096 bytes of 2048", 10028),
        # Apply makes the lock's bucket first: a stream too.
        ("stream B: the account allows 2 streams and would then have 3, with the bucket KV_medisync_topology_lock "
         "apply makes for its lock (max_streams)", 10027),
        ("stream C: the account allows 2 streams and would then have 4, with the bucket KV_medisync_topology_lock "
         "apply makes for its lock (max_streams)", 10027),
        ("stream C: max_bytes reserves file storage the account does not have: it would reserve 2097152 bytes "
         "of 1048576", 10047),
        ("consumer C/greedy: max_ack_pending 500 is more than the account allows (100)", 10121),
    ]
    for message, err_code in expected:
        assert f"Error: {message}; the server would refuse it" in out and f"(err_code {err_code})" in out, out
    assert "Plan cannot be applied (6 errors)" in out
    # The server refuses each of them for the reason given.
    assert create_refusal(server.url, {"name": "B", "subjects": ["b"], "storage": "memory", "max_bytes": 4096},
                          **auth)["err_code"] == 10028
    assert create_refusal(server.url, {"name": "C", "subjects": ["c"], "max_bytes": 2 * 2**20}, **auth)["err_code"] == 10047
    # Applied, A comes with the lock's bucket: 2 streams of 2.
    assert run("version: 1\nowner: medisync\nstreams:\n  A: {subjects: [a]}\n", "apply", "--auto-approve")[0] == 0
    assert create_refusal(server.url, {"name": "C", "subjects": ["c"]}, **auth)["err_code"] == 10027
    consumer = {"stream_name": "A", "config": {"durable_name": "one", "ack_policy": "explicit", "max_ack_pending": 500}}
    assert raw_js_api(server.url, "CONSUMER.CREATE.A.one", consumer, **auth)["error"]["err_code"] == 10121
    consumer["config"]["max_ack_pending"] = 10
    assert "error" not in raw_js_api(server.url, "CONSUMER.CREATE.A.one", consumer, **auth)
    consumer["config"]["durable_name"] = "two"
    assert raw_js_api(server.url, "CONSUMER.CREATE.A.two", consumer, **auth)["error"]["err_code"] == 10026


def test_a_topology_within_the_account_limits_applies(limited):
    server, run = limited
    text = "version: 1\nowner: medisync\nstreams:\n  A: {subjects: [a], max_bytes: 512KiB, consumers: {one: {}}}\n"
    code, out = run(text, "apply", "--auto-approve", "--no-color")
    assert code == 0, out
    assert run(text, "plan", "--detailed-exitcode")[0] == 0


# -- a 3-node cluster --------------------------------------------------


def test_more_replicas_than_the_cluster_has_servers(cluster, tmp_path, monkeypatch):
    run = cli_as(cluster[0].url, tmp_path, monkeypatch, "deploy")
    code, out = run(topology("FIVE", num_replicas=5), "plan", "--no-color")
    assert code == 1, out
    assert ("Error: stream FIVE: num_replicas is 5, but cluster 'medisync-test' has 3 JetStream servers; the server "
            "would refuse it (no suitable peers for placement, err_code 10005)") in out
    refusal = create_refusal(cluster[0].url, {"name": "FIVE", "subjects": ["five.>"], "num_replicas": 5}, **DEPLOY)
    assert refusal["err_code"] == 10005
    code, out = run(topology("THREE", num_replicas=3), "apply", "--auto-approve", "--no-color")
    assert code == 0, out


def test_placement_no_server_offers(cluster, tmp_path, monkeypatch):
    run = cli_as(cluster[0].url, tmp_path, monkeypatch, "deploy")
    code, out = run(topology("TAGGED", num_replicas=3, placement="{tags: [ssd]}"), "plan", "--no-color")
    assert code == 1, out
    assert ("num_replicas is 3, but cluster 'medisync-test' has 3 JetStream servers, of which 2 with the tags ssd "
            "(n1, n2); the server would refuse it") in out
    code, out = run(topology("ELSEWHERE", placement="{cluster: east}"), "plan", "--no-color")
    assert code == 1, out
    assert ("Error: stream ELSEWHERE: placement.cluster is 'east', but no JetStream server is in that cluster "
            "(clusters: medisync-test); the server would refuse it (err_code 10005)") in out
    for config in ({"num_replicas": 3, "placement": {"tags": ["ssd"]}}, {"placement": {"cluster": "east"}}):
        refusal = create_refusal(cluster[0].url, {"name": "P", "subjects": ["p.>"], **config}, **DEPLOY)
        assert refusal["err_code"] == 10005
    code, out = run(topology("TAGGED", num_replicas=2, placement="{tags: [ssd]}"), "apply", "--auto-approve")
    assert code == 0, out


def test_a_user_who_may_not_list_the_servers_gets_a_note(cluster, tmp_path, monkeypatch):
    run = cli_as(cluster[0].url, tmp_path, monkeypatch, "narrow")
    code, out = run(topology("UNSURE", num_replicas=3, placement="{tags: [ssd]}"), "plan", "--no-color")
    assert code == 0, out
    assert ('Note: stream UNSURE: num_replicas 3 and placement not checked against the cluster: permission denied: '
            'user "narrow" may not publish to $SYS.REQ.ACCOUNT.PING.STATZ (which lists the cluster\'s servers)') in out
    # Nothing to check, nothing to say.
    code, out = run(topology("UNSURE"), "plan", "--no-color")
    assert code == 0 and "not checked" not in out, out


def test_the_shipped_provisioner_may_list_the_cluster(tmp_path, monkeypatch):
    # nats.conf's accounts on every node; start_cluster gives each node its own jetstream block.
    conf = repo_nats_conf(server_name=None, listen=None, http=None)
    start = conf.index("\njetstream {")
    conf = conf[:start] + conf[conf.index("}", start) + 1:]
    nodes = start_cluster(tmp_path / "shipped", config=conf, probe_as=None)  # only plans: nothing is placed
    try:
        wait_until_all_answer(nodes[0].url, user="provisioner", password="provisioner-dev")
        monkeypatch.setenv("NATS_USER", "provisioner")
        monkeypatch.setenv("NATS_PASSWORD", "provisioner-dev")
        run = topology_cli(nodes[0].url, tmp_path, monkeypatch)
        code, out = run(topology("EVENTS", num_replicas=5), "plan", "--no-color")
        assert code == 1 and "num_replicas is 5, but cluster 'medisync-test' has 3 JetStream servers" in out, out
    finally:
        for node in nodes:
            node.stop()


# -- limits per replica tier -------------------------------------------

# Tiers come only from an account JWT (a config file's account block has flat limits, opts.go). The lock's
# bucket (R1) is one of the R1 streams. Tiered storage is not multiplied by replicas (accountReservation).
TIERS = {"tiered_limits": {
    "R1": {"mem_storage": 0, "disk_storage": 2**20, "streams": 3, "consumer": -1},  # no memory at R1
    "R3": {"mem_storage": -1, "disk_storage": 2**20, "streams": 1, "consumer": -1},
}}


def tiered_account(workdir: Path, monkeypatch) -> tuple[str, dict]:
    """(server config, raw_js_api auth) of an operator whose one account has TIERS; the CLI uses its creds."""
    workdir.mkdir(parents=True, exist_ok=True)
    config, account = operator_config(workdir, None, TIERS)
    creds = creds_file(workdir / "tiered.creds", account, "tiered")
    monkeypatch.setenv("NATS_CREDS", str(creds))
    return config, {"user_credentials": str(creds)}


def streams_text(**streams: str) -> str:
    return "version: 1\nowner: medisync\nstreams:\n" + "".join(f"  {n}: {{subjects: [{n.lower()}], {f}}}\n"
                                                              for n, f in streams.items())


@pytest.mark.parametrize("binary", BINARIES, ids=lambda binary: _line(binary))
def test_tiered_limits_on_a_single_node_are_the_R1_tier(binary, tmp_path, monkeypatch):
    config, auth = tiered_account(tmp_path / "keys", monkeypatch)
    server = start_server(tmp_path / "tiered", config=config, binary=binary)
    try:
        run = topology_cli(server.url, tmp_path, monkeypatch)
        fits = streams_text(A="max_bytes: 256KiB", B="max_bytes: 512KiB")  # with the lock's bucket: 3 of 3
        code, out = run(fits, "apply", "--auto-approve", "--no-color")
        assert code == 0, out
        assert run(fits, "plan", "--detailed-exitcode")[0] == 0
        code, out = run(streams_text(A="max_bytes: 256KiB", B="max_bytes: 512KiB", C="max_age: 1h"), "plan", "--no-color")
        assert code == 1, out
        assert ("Error: stream C: the account allows 3 streams in tier R1 and would then have 4 (max_streams); the "
                "server would refuse it (err_code 10027)") in out
        # num_replicas given, as apply sends it: before 2.12 a request without it (0) is counted in no tier
        # (isSameTier compared the raw replicas), so the server let a fourth stream in.
        assert create_refusal(server.url, {"name": "C", "subjects": ["c"], "num_replicas": 1}, **auth)["err_code"] == 10027
        code, out = run(streams_text(A="max_bytes: 256KiB", B="max_bytes: 769KiB"), "plan", "--no-color")
        assert code == 1, out
        assert ("Error: stream B: max_bytes reserves file storage the account does not have: it would reserve "
                "1049600 bytes of 1048576 in tier R1; the server would refuse it (err_code 10047)") in out
        update = raw_js_api(server.url, "STREAM.UPDATE.B", {"name": "B", "subjects": ["b"], "max_bytes": 769 * 1024}, **auth)
        assert update["error"]["err_code"] == 10047
        # The R1 tier has no memory: even a memory stream without max_bytes needs one byte of it.
        code, out = run(streams_text(A="max_bytes: 256KiB", B="storage: memory"), "plan", "--no-color")
        assert code == 1, out
        assert ("Error: stream B: the account has no memory left in tier R1 for a stream without max_bytes: 0 of its "
                "0 bytes are reserved; the server would refuse it (err_code 10028)") in out
        raw_js_api(server.url, "STREAM.DELETE.B", None, **auth)
        assert create_refusal(server.url, {"name": "B", "subjects": ["b"], "storage": "memory"}, **auth)["err_code"] == 10028
    finally:
        server.stop()


@pytest.fixture(params=BINARIES, ids=lambda binary: _line(binary))
def tiered_cluster(request, tmp_path, monkeypatch):
    config, auth = tiered_account(tmp_path / "keys", monkeypatch)
    nodes = start_cluster(tmp_path / "cluster", config=config, binary=request.param, probe_as=auth)
    yield nodes, auth
    for node in nodes:
        node.stop()


def test_tiered_limits_on_a_cluster_count_each_replica_tier_apart(tiered_cluster, tmp_path, monkeypatch):
    nodes, auth = tiered_cluster
    run = topology_cli(nodes[0].url, tmp_path, monkeypatch)
    # 768 KiB at R3 fits the R3 tier's 1 MiB: a tier's storage already counts the replicas. ONE and THREE are
    # created together, which a cluster before 2.12 refuses at first (apply tries again: _counted_in_flight).
    fits = streams_text(ONE="max_bytes: 512KiB", THREE="num_replicas: 3, max_bytes: 768KiB")
    code, out = run(fits, "apply", "--auto-approve", "--no-color")
    assert code == 0, out
    assert run(fits, "plan", "--detailed-exitcode")[0] == 0
    more = streams_text(ONE="max_bytes: 512KiB", TWO="max_bytes: 256KiB", THREE="num_replicas: 3, max_bytes: 768KiB",
                        FOUR="num_replicas: 3")
    code, out = run(more, "plan", "--no-color")
    assert code == 1, out
    assert ("Error: stream FOUR: the account allows 1 streams in tier R3 and would then have 2 (max_streams); the "
            "server would refuse it (err_code 10027)") in out
    assert "Plan cannot be applied (1 error)" in out, out  # R1 has room for TWO: 3 of 3 with the lock's bucket
    refusal = create_refusal(nodes[0].url, {"name": "FOUR", "subjects": ["four"], "num_replicas": 3}, **auth)
    assert refusal["err_code"] == 10027
    code, out = run(streams_text(ONE="max_bytes: 512KiB", THREE="num_replicas: 3, max_bytes: 2MiB"), "plan", "--no-color")
    assert code == 1, out
    assert ("Error: stream THREE: max_bytes reserves file storage the account does not have: it would reserve "
            "2097152 bytes of 1048576 in tier R3; the server would refuse it (err_code 10047)") in out
    update = raw_js_api(nodes[0].url, "STREAM.UPDATE.THREE",
                        {"name": "THREE", "subjects": ["three"], "num_replicas": 3, "max_bytes": 2 * 2**20}, **auth)
    assert update["error"]["err_code"] == 10047


# Flat limits in a cluster: each line counts replicas its own way (target.py, _reserved).
FLAT = "accounts { FLAT: { jetstream: {max_file: 1MB, max_mem: 1MB}, users: [{user: flat, password: flat}] } }\n"
FLAT_USER = {"user": "flat", "password": "flat"}


@pytest.mark.parametrize("binary", BINARIES, ids=lambda binary: _line(binary))
def test_flat_limits_in_a_cluster_count_replicas_as_each_line_does(binary, tmp_path, monkeypatch):
    nodes = start_cluster(tmp_path / "flat", config=FLAT, binary=binary, probe_as=FLAT_USER)
    try:
        run = cli_as(nodes[0].url, tmp_path, monkeypatch, "flat")
        version = rules.parse_version(nodes[0].version)

        def check(streams: dict, reserved: int | None) -> None:
            """Plan refuses the last stream, the server too, saying it would reserve ``reserved`` bytes; None:
            both take it, and apply makes it."""
            text = streams_text(**{name: f"num_replicas: {r}, max_bytes: {kib}KiB" for name, (r, kib) in streams.items()})
            code, out = run(text, "plan", "--no-color")
            name, (replicas, kib) = list(streams.items())[-1]
            refusal = create_refusal(nodes[0].url, {"name": name, "subjects": [name.lower()], "num_replicas": replicas,
                                                    "max_bytes": kib * 1024}, **FLAT_USER)
            if reserved is None:
                assert code == 0 and refusal is None, (out, refusal)
                assert run(text, "apply", "--auto-approve")[0] == 0
            else:
                assert code == 1 and f"it would reserve {reserved} bytes of 1048576;" in out, out
                assert refusal["err_code"] == 10047

        newest, middle = version >= (2, 14, 0), version >= (2, 12, 0)
        check({"A": (3, 512)}, 3 * 524288 if newest else None)  # 2.14+: a new stream's replicas count
        if not newest:
            raw_js_api(nodes[0].url, "STREAM.DELETE.A", None, **FLAT_USER)
        check({"A": (3, 300)}, None)
        # The others' replicas: their own (2.12+), or the new stream's (before).
        check({"A": (3, 300), "B": (1, 200)}, 3 * 307200 + 204800 if middle else None)
        if not middle:
            check({"A": (3, 300), "B": (1, 200), "C": (3, 100)}, 3 * (307200 + 204800) + 102400)
    finally:
        for node in nodes:
            node.stop()


# -- the pure check ----------------------------------------------------


def test_tiered_limits_are_read_per_replica_count():
    account = {"tiers": {
        "R1": {"streams": 0, "reserved_storage": 0, "reserved_memory": 0, "limits": {"max_streams": 5}},
        "R3": {"streams": 1, "reserved_storage": 0, "reserved_memory": 0, "limits": {"max_streams": 1}},
    }}
    facts = TargetFacts(True, "c", tuple({"name": f"n{i}", "cluster": "c", "tags": []} for i in range(3)),
                        account=account)
    live = LiveState("2.15.1", {}, facts)
    text = ("version: 1\nowner: o\nstreams:\n  ONE: {subjects: [one]}\n"
            "  THREE: {subjects: [three], num_replicas: 3}\n  FIVE: {subjects: [five], num_replicas: 5}\n")
    model, problems = build_topology(parse_document(text, "t.yaml"))
    errors = [f.message for f in make_plan(model, live).errors]
    assert errors == [
        "num_replicas is 5, but cluster 'c' has 3 JetStream servers; the server would refuse it (no suitable peers "
        "for placement, err_code 10005)",
        "the account has no JetStream limits for R5 (its tiers: R1, R3); the server would refuse it (err_code 10120)",
        "the account allows 1 streams in tier R3 and would then have 2 (max_streams); the server would refuse it "
        "(err_code 10027)",
    ]


def test_the_lock_bucket_apply_makes_counts_unless_a_stream_takes_its_subject():
    facts = TargetFacts(False, account={"streams": 0, "limits": {"max_streams": 1}})

    def errors(subjects: str) -> list[str]:
        model, _ = build_topology(parse_document(f"version: 1\nowner: o\nstreams:\n  S: {{subjects: [{subjects}]}}\n",
                                                 "t.yaml"))
        return [f.message for f in make_plan(model, LiveState("2.15.1", {}, facts)).errors]

    assert errors("s") == [
        "the account allows 1 streams and would then have 2, with the bucket KV_medisync_topology_lock apply makes "
        "for its lock (max_streams); the server would refuse it (err_code 10027)",
    ]
    assert errors("'>'") == []  # apply goes without the lock then: its subject is taken (lock.py)


# -- every server line -------------------------------------------------

def _line(binary):
    return "default" if binary == BINARIES[0] else Path(binary).parent.parent.name


def wait_until_all_answer(url, **auth):
    """A cluster just started answers the servers ping (and places streams) only once its routes all stand."""

    async def answering() -> int:
        async with JetStreamClient(ConnectOptions(server=url, **auth)) as client:
            return len((await client.read_target_facts()).servers or ())

    deadline = time.monotonic() + 15
    while asyncio.run(answering()) < 3:
        assert time.monotonic() < deadline, "the cluster's servers did not all answer"
        time.sleep(0.2)


@pytest.mark.parametrize("binary", BINARIES, ids=_line)
def test_each_server_line_lists_its_cluster_and_refuses_what_plan_predicts(binary, tmp_path, monkeypatch):
    nodes = start_cluster(tmp_path / "line", tags_per_node=[["ssd"], ["ssd"], []], binary=binary)
    try:
        wait_until_all_answer(nodes[0].url)
        run = topology_cli(nodes[0].url, tmp_path, monkeypatch)
        for fields, predicted in ((dict(num_replicas=5), "has 3 JetStream servers;"),
                                  (dict(num_replicas=3, placement="{tags: [ssd]}"), "of which 2 with the tags ssd")):
            code, out = run(topology("LINE", **fields), "plan", "--no-color")
            assert code == 1 and predicted in out and "(no suitable peers for placement, err_code 10005)" in out, out
        config = {"name": "LINE", "subjects": ["line.>"], "num_replicas": 3, "placement": {"tags": ["ssd"]}}
        assert create_refusal(nodes[0].url, config)["err_code"] == 10005
        assert run(topology("LINE", num_replicas=2, placement="{tags: [ssd]}"), "apply", "--auto-approve")[0] == 0
    finally:
        for node in nodes:
            node.stop()


@pytest.mark.parametrize("binary", BINARIES, ids=_line)
def test_each_server_line_refuses_replicas_outside_a_cluster(binary, tmp_path, monkeypatch):
    server = start_server(tmp_path / "single", binary=binary)
    try:
        code, out = topology_cli(server.url, tmp_path, monkeypatch)(topology("WIDE", num_replicas=3), "plan")
        assert code == 1 and "the server is not clustered" in out and "(err_code 10074)" in out, out
        assert create_refusal(server.url, {"name": "WIDE", "subjects": ["w"], "num_replicas": 3})["err_code"] == 10074
    finally:
        server.stop()
