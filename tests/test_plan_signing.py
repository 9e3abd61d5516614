"""Signed plans: with TOPOLOGY_PLAN_KEY set, `plan --out` signs the file (HMAC-SHA256 over its canonical
content) and `apply PLANFILE` refuses one unsigned or signed with another key; without it, as before."""

import json

import pytest
from click.testing import CliRunner

from medisync_topology.cli import main
from medisync_topology.planfile import _canonical, _sha256

KEY = "plan-key-Jw3-never-shown"
BASE = """
version: 1
owner: medisync
streams:
  EVENTS:
    subjects: [medisync.etl.>]
"""


@pytest.fixture
def signing(run, nats_server, tmp_path, monkeypatch):
    """``plan(key)`` saves a plan of BASE, signed with ``key`` (None: unsigned); ``apply(key)`` applies it."""
    monkeypatch.setenv("NATS_URL", nats_server.url)
    (tmp_path / "topology.yaml").write_text(BASE)
    path = tmp_path / "plan.json"
    runner = CliRunner()

    def invoke(args, key):
        result = runner.invoke(main, args, env={"TOPOLOGY_PLAN_KEY": key})
        assert "Traceback" not in result.output and KEY not in result.output, result.output
        return result.exit_code, result.output

    class Signing:
        file = path

        @staticmethod
        def plan(key):
            code, out = invoke(["plan", "-f", str(tmp_path / "topology.yaml"), "--out", str(path), "--no-color"], key)
            assert code == 0, out
            return json.loads(path.read_text())

        @staticmethod
        def apply(key):
            return invoke(["apply", str(path), "--no-color"], key)

    return Signing


def test_a_signed_plan_applies_with_its_key_and_the_key_is_in_no_file(signing):
    document = signing.plan(KEY)
    assert document["signature"].startswith("hmac-sha256:") and KEY not in signing.file.read_text()
    code, out = signing.apply(KEY)
    assert code == 0 and "Apply complete: 1 created" in out, out


def test_without_a_key_plans_are_unsigned_and_apply_as_before(signing):
    assert "signature" not in signing.plan(None)
    code, out = signing.apply(None)
    assert code == 0 and "Apply complete: 1 created" in out, out


def test_an_unsigned_plan_is_refused_when_a_key_is_set(signing):
    signing.plan(None)
    code, out = signing.apply(KEY)
    assert (code, out) == (1, f"Error: {signing.file} is not signed, but TOPOLOGY_PLAN_KEY is set: only plans signed "
                              "with that key are applied; make the plan with TOPOLOGY_PLAN_KEY set\n")


@pytest.mark.parametrize("forge", ["other-key", "edited-checksum-recomputed"])
def test_a_wrongly_signed_plan_is_refused(signing, forge):
    document = signing.plan("another-key" if forge == "other-key" else KEY)
    if forge == "edited-checksum-recomputed":
        document["options"]["prune"] = True
        content = {k: v for k, v in document.items() if k != "checksum"}
        signing.file.write_text(json.dumps({**content, "checksum": _sha256(_canonical(content))}))
    code, out = signing.apply(KEY)
    assert (code, out) == (1, f"Error: {signing.file} is not signed with the key in TOPOLOGY_PLAN_KEY (its signature "
                              "does not match): it was made with another key or changed after it was signed; make a new plan\n")


def test_an_empty_key_is_refused_not_taken_for_no_key(signing):
    signing.plan(None)
    code, out = signing.apply("")
    assert (code, out) == (1, "Error: TOPOLOGY_PLAN_KEY is set but empty: give the key plans are signed with, or unset it\n")
