"""A saved plan can do only what a plan can: `apply PLANFILE` checks every operation against plan's own
rules on the live state it reads, so a plan file edited by hand (its checksum recomputed) is refused,
naming each forged operation, before anything is applied (issue 12). Against a real server."""

import json

import pytest
from click.testing import CliRunner

from medisync_topology.cli import main
from medisync_topology.planfile import _canonical, _sha256

OWNER_KEY = "medisync-topology.owner"
BASE = """
version: 1
owner: medisync
streams:
  EVENTS:
    subjects: [medisync.etl.>]
    max_age: 7d
    consumers:
      etl-notifier: {filter_subject: medisync.etl.>, ack_policy: explicit}
  AUDIT:
    subjects: [medisync.audit.>]
    protect: true
"""
LATER = BASE.replace("max_age: 7d", "max_age: 14d")


@pytest.fixture
def world(run, js_api, tmp_path, nats_server, monkeypatch):
    """EVENTS and AUDIT applied (so the lock bucket exists), LEGACY unmanaged, THEIRS another owner's;
    a plan that updates EVENTS saved to plan.json. ``world.apply()`` runs `apply plan.json`."""
    code, out = run(BASE, "apply", "--auto-approve")
    assert code == 0, out
    js_api("STREAM.CREATE.LEGACY", {"name": "LEGACY", "subjects": ["legacy.>"]})
    js_api("STREAM.CREATE.THEIRS", {"name": "THEIRS", "subjects": ["theirs.>"], "metadata": {OWNER_KEY: "other"}})
    path = tmp_path / "plan.json"
    code, out = run(LATER, "plan", "--out", str(path), "--no-color")
    assert code == 0, out
    monkeypatch.setenv("NATS_URL", nats_server.url)

    class World:
        document = json.loads(path.read_text())

        @staticmethod
        def live(name):
            return js_api(f"STREAM.INFO.{name}")["config"]

        @staticmethod
        def apply(document):
            content = {k: v for k, v in document.items() if k != "checksum"}
            path.write_text(json.dumps({**content, "checksum": _sha256(_canonical(content))}))  # the forger's checksum
            result = CliRunner().invoke(main, ["apply", str(path), "--no-color"])
            assert "Traceback" not in result.output, result.output
            return result.exit_code, result.output

    return World


def operation(kind, name, action, before=None, after=None, stream=None):
    return {"kind": kind, "name": name, "stream": stream, "action": action, "before": before, "after": after,
            "changes": [], "forces_replacement": [], "data_at_risk": None, "adopt": False,
            **({"settings": {}} if action == "create" else {})}


def owned(config, owner="medisync"):
    return {**config, "metadata": {**(config.get("metadata") or {}), OWNER_KEY: owner}}


FORGERIES = {
    "delete-unmanaged": (lambda w: [operation("stream", "LEGACY", "delete", w.live("LEGACY"))],
                         "delete stream LEGACY: it is not managed by this tool (no owner metadata)"),
    "delete-another-owners": (lambda w: [operation("stream", "THEIRS", "delete", w.live("THEIRS"))],
                              "delete stream THEIRS: it is owned by 'other', not 'medisync'"),
    "delete-the-lock": (lambda w: [operation("key_value", "medisync_topology_lock", "delete", {})],
                        "delete key_value medisync_topology_lock: it is the bucket of the tool's apply lock"),
    "delete-without-prune": (lambda w: [operation("stream", "EVENTS", "delete", w.live("EVENTS"))],
                             "delete stream EVENTS: the plan was made without --prune"),
    "delete-protected-with-prune": (lambda w: [operation("stream", "AUDIT", "delete", w.live("AUDIT"))],
                                    "delete stream AUDIT: it is protect: true"),
    "rewrite-an-owner": (lambda w: [operation("stream", "THEIRS", "update", w.live("THEIRS"), owned(w.live("THEIRS")))],
                         "update stream THEIRS: it is owned by 'other', not 'medisync'"),
    "give-ours-away": (lambda w: [operation("stream", "EVENTS", "update", w.live("EVENTS"), owned(w.live("EVENTS"), "other"))],
                       "update stream EVENTS: it would set the owner metadata to 'other', but the plan is 'medisync''s"),
    "adopt-without-adopt": (lambda w: [operation("stream", "LEGACY", "update", w.live("LEGACY"), owned(w.live("LEGACY")))],
                            "update stream LEGACY: it is not managed by this tool, and the plan was made without --adopt"),
    "take-unmanaged-subjects": (lambda w: [operation("stream", "GRAB", "create", after=owned({"name": "GRAB", "subjects": ["legacy.x"]}))],
                                "stream GRAB: subject 'legacy.x' overlaps 'legacy.>' of live stream LEGACY, which this topology "
                                "does not manage; the server would refuse it (err_code 10065)"),
    "consumer-in-another-owners-stream": (
        lambda w: [operation("consumer", "spy", "create", after=owned({"durable_name": "spy"}), stream="THEIRS")],
        "create consumer THEIRS/spy: its stream THEIRS is not the plan's: it is owned by 'other', not 'medisync'"),
    "a-name-that-is-a-subject": (lambda w: [operation("stream", "LEGACY.x", "delete", {})],
                                 "delete stream LEGACY.x: stream name 'LEGACY.x' contains '.': names cannot contain '.', '*', '>', '/' or '\\'"),
}


@pytest.mark.parametrize("forge", FORGERIES, ids=list(FORGERIES))
def test_a_forged_operation_is_refused_by_name_before_anything_is_applied(world, forge):
    operations, refusal = FORGERIES[forge]
    document = world.document
    options = {**document["options"], "prune": forge == "delete-protected-with-prune"}
    before = {name: world.live(name) for name in ("EVENTS", "LEGACY", "THEIRS", "KV_medisync_topology_lock")}
    # The genuine update of EVENTS stays first: it must not be applied either.
    code, out = world.apply({**document, "options": options,
                             "plan": {**document["plan"], "operations": document["plan"]["operations"] + operations(world)}})
    assert code == 1, out
    assert f"holds operations `topology plan` could not make against this server (was it edited?):\n  {refusal}\n" in out, out
    assert out.endswith("Nothing was applied.\n"), out
    assert {name: world.live(name) for name in before} == before


def test_the_genuine_plan_still_applies(world):
    code, out = world.apply(world.document)
    assert code == 0 and "stream EVENTS: updated" in out, out
    assert world.live("EVENTS")["max_age"] == 14 * 86400 * 10**9
