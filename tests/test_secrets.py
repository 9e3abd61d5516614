"""No secret ever appears in output: every command, every output format, successes and failures.

Passwords, tokens, nkey seeds, creds file contents and passwords inside server URLs are set (as
flags, environment variables and natscli contexts), then stdout, stderr and every log record of
each run are scanned for them.
"""

from __future__ import annotations

import json
import logging

import nkeys
import pytest
from click.testing import CliRunner

from medisync_topology.cli import main
from conftest import ONE_STREAM_TOPOLOGY
from natsauth import CLEAN_ENV, accounts_config, creds_file, new_keypair, operator_config, token_config
from natsserver import refused_url

PASSWORD = "pw-Qx7-never-shown"
WRONG_PASSWORD = "pw-wrong-Zk2-never-shown"
TOKEN = "tok-Rm4-never-shown"
WRONG_TOKEN = "tok-wrong-Hv8-never-shown"


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    """Key material and files; ``secrets`` lists every value that must never be shown."""
    directory = tmp_path_factory.mktemp("secrets")
    user_nkey = new_keypair(nkeys.PREFIX_BYTE_USER)
    seed_file = directory / "user.nk"
    seed_file.write_text(user_nkey.seed.decode())
    stranger = new_keypair(nkeys.PREFIX_BYTE_USER)
    stranger_file = directory / "stranger.nk"
    stranger_file.write_text(stranger.seed.decode())
    topology = directory / "topology.yaml"
    topology.write_text(ONE_STREAM_TOPOLOGY)
    return {
        "dir": directory,
        "nkey": user_nkey,
        "seed_file": str(seed_file),
        "stranger_file": str(stranger_file),
        "topology": str(topology),
        "secrets": [PASSWORD, WRONG_PASSWORD, TOKEN, WRONG_TOKEN, user_nkey.seed.decode(), stranger.seed.decode()],
    }


@pytest.fixture(scope="module")
def accounts_url(tmp_path_factory, module_servers, material):
    return module_servers("accounts", accounts_config(tmp_path_factory.mktemp("js"), PASSWORD, material["nkey"])).url


@pytest.fixture(scope="module")
def token_url(module_servers):
    return module_servers("token", token_config(TOKEN)).url


@pytest.fixture(scope="module")
def operator(tmp_path_factory, module_servers, material):
    """An operator-mode server, a valid creds file and one of an unknown account; their contents are secrets."""
    config, account = operator_config(tmp_path_factory.mktemp("operator-keys"), store_dir=tmp_path_factory.mktemp("js"))
    good = creds_file(material["dir"] / "alice.creds", account, "alice")
    bad = creds_file(material["dir"] / "mallory.creds", new_keypair(nkeys.PREFIX_BYTE_ACCOUNT), "mallory")
    for creds in (good, bad):
        material["secrets"] += [line for line in creds.read_text().splitlines() if len(line) > 40]
    return module_servers("operator", config).url, str(good), str(bad)


def with_password(url: str, password: str) -> str:
    return url.replace("nats://", f"nats://admin:{password}@")


def with_token(url: str, token: str) -> str:
    return url.replace("nats://", f"nats://{token}@")


def connections(accounts_url, token_url, operator, material):
    """(label, flags, environment, expected exit code) for every way of passing a secret, right and wrong."""
    op_url, good_creds, bad_creds = operator
    down = refused_url()
    return [
        ("password flag", ["-s", accounts_url, "--user", "admin", "--password", PASSWORD], {}, 0),
        ("password env", [], {"NATS_URL": accounts_url, "NATS_USER": "admin", "NATS_PASSWORD": PASSWORD}, 0),
        ("wrong password", ["-s", accounts_url, "--user", "admin", "--password", WRONG_PASSWORD], {}, 1),
        ("password in URL", ["-s", with_password(accounts_url, PASSWORD)], {}, 0),
        ("wrong password in URL", ["-s", with_password(accounts_url, WRONG_PASSWORD)], {}, 1),
        ("password, server down", ["-s", with_password(down, PASSWORD)], {"NATS_PASSWORD": PASSWORD}, 1),
        ("denied user", ["-s", accounts_url, "--user", "deaf", "--password", PASSWORD], {}, 1),
        ("token flag", ["-s", token_url, "--token", TOKEN], {}, 0),
        ("token env", [], {"NATS_URL": token_url, "NATS_TOKEN": TOKEN}, 0),
        ("token as --user", ["-s", token_url, "--user", TOKEN], {}, 0),
        ("wrong token", ["-s", token_url, "--token", WRONG_TOKEN], {}, 1),
        ("token in URL", ["-s", with_token(token_url, TOKEN)], {}, 0),
        ("wrong token in URL", ["-s", with_token(token_url, WRONG_TOKEN)], {}, 1),
        ("nkey", ["-s", accounts_url, "--nkey", material["seed_file"]], {}, 0),
        ("unknown nkey", ["-s", accounts_url], {"NATS_NKEY": material["stranger_file"]}, 1),
        ("creds", ["-s", op_url, "--creds", good_creds], {}, 0),
        ("unknown creds", [], {"NATS_URL": op_url, "NATS_CREDS": bad_creds}, 1),
        ("creds, wrong domain", ["-s", op_url, "--creds", good_creds, "--js-domain", "nowhere"], {}, 1),
    ]


def test_no_command_shows_a_secret(accounts_url, token_url, operator, material, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    runner = CliRunner()
    topology = material["topology"]
    runs = 0
    for label, flags, env, expected in connections(accounts_url, token_url, operator, material):
        env = {**CLEAN_ENV, "XDG_CONFIG_HOME": str(tmp_path), "NATS_TIMEOUT": "2s", **env}
        commands = [["validate", "-f", topology]]
        commands += [["plan", "-f", topology, "--format", fmt, *flags] for fmt in ("text", "json", "markdown")]
        commands += [["apply", "-f", topology, "--auto-approve", *flags]]
        for command in commands:
            result = runner.invoke(main, command, env=env)
            runs += 1
            want = 0 if command[0] == "validate" else expected
            assert result.exit_code == want, (label, command[0], result.output)
            assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
            shown = result.output + result.stdout + result.stderr + caplog.text
            leaked = [secret for secret in material["secrets"] if secret in shown]
            assert not leaked, f"{label}: {' '.join(command[:1])} showed a secret:\n{result.output}"
    assert runs == 5 * 18


def test_secrets_from_a_context_are_not_shown(accounts_url, material, tmp_path):
    """A natscli context holding the password and a URL password, connecting and failing."""
    contexts = tmp_path / "nats" / "context"
    contexts.mkdir(parents=True)
    good = {"url": accounts_url, "user": "admin", "password": PASSWORD}
    (contexts / "good.json").write_text(json.dumps(good))
    (contexts / "bad.json").write_text(json.dumps({**good, "password": WRONG_PASSWORD}))
    (contexts / "urlpw.json").write_text(json.dumps({"url": with_password(refused_url(), PASSWORD)}))
    runner = CliRunner()
    for name, expected in (("good", 0), ("bad", 1), ("urlpw", 1)):
        result = runner.invoke(main, ["plan", "-f", material["topology"], "--context", name],
                               env={**CLEAN_ENV, "XDG_CONFIG_HOME": str(tmp_path)})
        assert result.exit_code == expected, result.output
        assert PASSWORD not in result.output and WRONG_PASSWORD not in result.output, result.output
    assert "nats://admin:***@127.0.0.1:" in result.output  # the URL is still named, its password hidden


def test_the_plan_signing_key_is_not_shown_nor_written(nats_server, material, tmp_path, caplog):
    """TOPOLOGY_PLAN_KEY signs and checks saved plans; it is in no output, log line or file."""
    caplog.set_level(logging.DEBUG)
    key = "plan-key-Tq9-never-shown"
    plan_file = tmp_path / "plan.json"
    env = {**CLEAN_ENV, "NATS_URL": nats_server.url, "TOPOLOGY_PLAN_KEY": key}
    runner = CliRunner()
    commands = [
        (["plan", "-f", material["topology"], "--out", str(plan_file)], env, 0),
        (["show", str(plan_file)], env, 0),
        (["apply", str(plan_file), "--format", "json"], {**env, "TOPOLOGY_PLAN_KEY": "a-wrong-key"}, 1),
        (["apply", str(plan_file)], env, 0),
        (["apply", str(plan_file)], env, 1),  # stale the second time
    ]
    for command, command_env, expected in commands:
        result = runner.invoke(main, command, env=command_env)
        assert result.exit_code == expected, (command, result.output)
        assert key not in result.output + result.stdout + result.stderr + caplog.text, (command, result.output)
        assert "a-wrong-key" not in result.output
    assert key not in plan_file.read_text() and '"signature": "hmac-sha256:' in plan_file.read_text()
