"""Connecting like natscli: options, contexts, every authentication method, and errors a person can act on.

Every authentication method is tested against a real nats-server configured to require it.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time

import nats
import nkeys
import pytest
import trustme
from click.testing import CliRunner

from medisync_topology.cli import main
from medisync_topology.client import JetStreamClient
from medisync_topology.errors import TopologyError
from medisync_topology.connection import JetStreamUnavailable, PermissionDenied
from medisync_topology.connectoptions import ConnectError, ConnectOptions, resolve_options
from medisync_topology.natscontext import ContextError, load_context
from medisync_topology.options import Timeout
from conftest import ONE_STREAM_TOPOLOGY
from natsauth import CLEAN_ENV, accounts_config, creds_file, new_keypair, operator_config, token_config
from natsserver import refused_url, repo_nats_conf, start_server


def run(*args, env=None):
    """The CLI as a person runs it; output holds stdout and stderr."""
    result = CliRunner().invoke(main, list(args), env={**CLEAN_ENV, "XDG_CONFIG_HOME": "/nonexistent", **(env or {})})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


@pytest.fixture(scope="module")
def topology(tmp_path_factory):
    path = tmp_path_factory.mktemp("topology") / "topology.yaml"
    path.write_text(ONE_STREAM_TOPOLOGY)
    return str(path)


# --- option resolution: flag, then environment, then natscli context --------------------------


@pytest.fixture
def config_home(tmp_path):
    """An XDG_CONFIG_HOME with natscli contexts in it."""
    directory = tmp_path / "nats" / "context"
    directory.mkdir(parents=True)
    return tmp_path


def write_context(config_home, name, **settings):
    # natscli writes every field, most of them empty; ours must ignore the empty ones.
    blank = {"description": "", "url": "", "token": "", "user": "", "password": "", "creds": "", "nkey": "",
             "cert": "", "key": "", "ca": "", "nsc": "", "jetstream_domain": "", "jetstream_api_prefix": "",
             "jetstream_event_prefix": "", "inbox_prefix": "", "user_jwt": "", "tls_first": False}
    (config_home / "nats" / "context" / f"{name}.json").write_text(json.dumps({**blank, **settings}))


def test_defaults_without_flags_environment_or_context(tmp_path):
    options = resolve_options({}, {"XDG_CONFIG_HOME": str(tmp_path)})
    assert options == ConnectOptions()
    assert options.server == "nats://127.0.0.1:4222"
    assert options.api_prefix == "$JS.API"
    assert options.timeout == 5.0


def test_selected_context_supplies_every_natscli_field(config_home, monkeypatch):
    monkeypatch.setenv("HOME", str(config_home))
    for name in ("c.pem", "k.pem", "ca.pem"):
        (config_home / name).write_text("")
    write_context(config_home, "prod", url="nats://prod:4222", user="ops", password="pw", cert="~/c.pem",
                  key="$HOME/k.pem", ca=f"{config_home}/ca.pem", tls_first=True, jetstream_domain="hub")
    (config_home / "nats" / "context.txt").write_text("prod\n")
    options = resolve_options({}, {"XDG_CONFIG_HOME": str(config_home)})
    assert options.context == "prod"
    assert (options.server, options.user, options.password) == ("nats://prod:4222", "ops", "pw")
    assert (options.tls_cert, options.tls_key) == (f"{config_home}/c.pem", f"{config_home}/k.pem")
    assert options.tls_ca == f"{config_home}/ca.pem" and options.tls_first is True
    assert options.js_domain == "hub" and options.api_prefix == "$JS.hub.API"


def test_context_paths_expand_home_and_variables(config_home, monkeypatch):
    monkeypatch.setenv("HOME", "/home/me")
    monkeypatch.setenv("CERTS", "/etc/certs")
    write_context(config_home, "c", creds="~/u.creds", cert="$CERTS/c.pem", key="${CERTS}/k.pem")
    settings = load_context("c", {"XDG_CONFIG_HOME": str(config_home)})
    assert settings == {"creds": "/home/me/u.creds", "tls_cert": "/etc/certs/c.pem", "tls_key": "/etc/certs/k.pem"}


def test_flag_beats_context_and_named_context_beats_selected(config_home):
    write_context(config_home, "prod", url="nats://prod:4222", jetstream_api_prefix="$JS.prod.API")
    write_context(config_home, "dev", url="nats://dev:4222", token="t")
    (config_home / "nats" / "context.txt").write_text("prod")
    environ = {"XDG_CONFIG_HOME": str(config_home)}
    assert resolve_options({"context": "dev"}, environ).server == "nats://dev:4222"
    options = resolve_options({"server": "nats://flag:4222", "js_domain": "edge"}, environ)
    assert options.server == "nats://flag:4222"
    # A domain on the command line replaces the context's API prefix instead of clashing with it.
    assert (options.js_domain, options.js_api_prefix, options.api_prefix) == ("edge", None, "$JS.edge.API")


def test_authentication_comes_from_the_command_line_before_the_context(config_home):
    write_context(config_home, "c", user="ctxuser", password="ctxpw")
    environ = {"XDG_CONFIG_HOME": str(config_home), "NATS_CONTEXT": "c"}
    from_flag = resolve_options({"context": "c", "token": "flagtoken"}, environ)
    assert (from_flag.token, from_flag.user, from_flag.password) == ("flagtoken", None, None)
    # A password given on the command line completes the context's user.
    completed = resolve_options({"context": "c", "password": "envpw"}, environ)
    assert (completed.user, completed.password) == ("ctxuser", "envpw")


def test_user_without_password_is_a_token_as_in_natscli():
    options = resolve_options({"user": "s3cret-token"}, {"XDG_CONFIG_HOME": "/nonexistent"})
    assert (options.user, options.token) == (None, "s3cret-token")


def test_context_may_be_a_path_to_a_json_file(tmp_path):
    path = tmp_path / "ci.json"
    path.write_text(json.dumps({"url": "ci.example:4333"}))
    options = resolve_options({"context": str(path)}, {"XDG_CONFIG_HOME": str(tmp_path)})
    # natscli contexts often hold a bare host: shown (and dialled) as nats-py reads it.
    assert options.display_server() == "nats://ci.example:4333"


def test_unknown_and_stale_contexts_are_clear_errors(config_home):
    write_context(config_home, "prod")
    write_context(config_home, "dev")
    environ = {"XDG_CONFIG_HOME": str(config_home)}
    with pytest.raises(ContextError, match=r'^unknown natscli context "staging" \(known contexts: dev, prod\)$'):
        resolve_options({"context": "staging"}, environ)
    (config_home / "nats" / "context.txt").write_text("gone")
    with pytest.raises(ContextError, match='unknown natscli context "gone"'):
        resolve_options({}, environ)
    with pytest.raises(ContextError, match=r'invalid natscli context name "\.\./x"'):
        resolve_options({"context": "../x"}, environ)


def test_context_that_is_not_json_names_the_file(config_home):
    (config_home / "nats" / "context" / "bad.json").write_text("{nope")
    with pytest.raises(ContextError, match=r"natscli context .*bad\.json is not valid JSON"):
        resolve_options({"context": "bad"}, {"XDG_CONFIG_HOME": str(config_home)})


def test_domain_and_api_prefix_together_are_refused():
    with pytest.raises(ConnectError, match="--js-domain and --js-api-prefix cannot be used together"):
        resolve_options({"js_domain": "hub", "js_api_prefix": "$JS.x.API"}, {"XDG_CONFIG_HOME": "/nonexistent"})


def test_missing_files_are_named_before_connecting(tmp_path):
    missing = tmp_path / "nope.creds"
    with pytest.raises(ConnectError, match=f"^cannot read creds file {missing}: No such file or directory$"):
        resolve_options({"creds": str(tmp_path / "nope.creds")}, {"XDG_CONFIG_HOME": "/nonexistent"})
    with pytest.raises(ConnectError, match="needs both --tlscert and --tlskey"):
        resolve_options({"tls_cert": str(tmp_path)}, {"XDG_CONFIG_HOME": "/nonexistent"})


def test_invalid_server_url_is_named_without_its_password():
    with pytest.raises(ConnectError, match=r"^invalid server URL nats://ops:\*\*\*@host:abc: Port could not be cast"):
        resolve_options({"server": "nats://ops:hunter2@host:abc"}, {"XDG_CONFIG_HOME": "/nonexistent"})


@pytest.mark.parametrize(
    "url, shown",
    [
        ("http://[::1", "http://[::1"),
        ("nats://ops:hunter2@[::1", "nats://ops:***@[::1"),
        ("tls://hunter2@[::1/x", "tls://***@[::1/x"),
    ],
)
def test_unparseable_server_url_is_a_usage_error_without_its_password(url, shown):
    result = run("plan", "-s", url)
    assert result.exit_code == 1
    assert result.output == f"Error: invalid server URL {shown}: Invalid IPv6 URL\n"


def test_display_and_repr_never_show_secrets():
    options = ConnectOptions(server="nats://ops:hunter2@a:4222,nats://tok3n@b", user="u", password="pw1", token="tk1")
    assert options.display_server() == "nats://ops:***@a:4222,nats://***@b:4222"
    for secret in ("hunter2", "tok3n", "pw1", "tk1"):
        assert secret not in repr(options)
        assert secret not in options.display_server()


@pytest.mark.parametrize("text, seconds", [("2.5", 2.5), ("5s", 5.0), ("500ms", 0.5), ("1m", 60.0)])
def test_timeout_takes_seconds_or_a_duration_like_natscli(text, seconds):
    assert Timeout().convert(text, None, None) == seconds


def test_bad_timeout_is_a_usage_error():
    result = run("plan", "--timeout", "soon")
    assert result.exit_code == 1  # never 2: plan --detailed-exitcode means "changes" by it
    assert "'soon' is not a duration" in result.output


@pytest.mark.parametrize(
    "text, why",
    [(text, "is not a duration: use seconds (2.5) or a unit (5s, 500ms, 1m)") for text in ("nan", "inf", "1e400", "-inf")]
    + [(text, "must be more than zero") for text in ("0", "-2", "0s")],
)
def test_timeout_must_be_finite_and_more_than_zero(text, why):
    result = run("plan", "--timeout", text)
    assert result.exit_code == 1
    assert result.output.endswith(f"Error: Invalid value for '--timeout' (env var: 'NATS_TIMEOUT'): '{text}' {why}\n")


# --- errors a person can act on --------------------------------------------------------------


def test_unreachable_server_fails_fast_with_exit_1(topology):
    url = refused_url()
    started = time.monotonic()
    result = run("plan", "-f", topology, "--server", url)
    assert time.monotonic() - started < 3
    assert result.exit_code == 1
    assert result.output == f"Error: cannot connect to {url}: connection refused\n"


def test_the_file_is_read_while_connecting_and_its_problems_come_first(tmp_path):
    """plan validates the file while it connects (session.plan_live): a broken file beside a server that never
    answers is reported at once, and beside one that refuses, it is the file's problem that is told."""
    broken = tmp_path / "topology.yaml"
    broken.write_text("version: 1\nowner: medisync\nstreams:\n  EVENTS: {subjects: [events.>], bogus: 1}\n")
    silent = socket.create_server(("127.0.0.1", 0))  # accepts, never sends INFO
    try:
        started = time.monotonic()
        result = run("plan", "-f", str(broken), "-s", f"nats://127.0.0.1:{silent.getsockname()[1]}", "--timeout", "30")
        assert time.monotonic() - started < 10
    finally:
        silent.close()
    problem = f"Error: the topology is invalid (1 problem):\n{broken}:4:34: streams.EVENTS.bogus: unknown field 'bogus'\n"
    assert (result.exit_code, result.output) == (1, problem)
    assert run("plan", "-f", str(broken), "-s", refused_url()).output == problem


def test_flag_beats_environment_beats_context(topology, config_home):
    flag, environment, context = refused_url(), refused_url(), refused_url()
    write_context(config_home, "c", url=context)
    env = {"XDG_CONFIG_HOME": str(config_home), "NATS_CONTEXT": "c"}
    assert context in run("plan", "-f", topology, env=env).output
    assert environment in run("plan", "-f", topology, env={**env, "NATS_URL": environment}).output
    assert flag in run("plan", "-f", topology, "-s", flag, env={**env, "NATS_URL": environment}).output


def test_every_server_of_a_list_is_tried_and_reported(topology):
    first, second = refused_url(), refused_url()
    result = run("plan", "-f", topology, "-s", f"{first},{second}")
    assert result.output == (
        f"Error: cannot connect to any of {first},{second}: {first}: connection refused; {second}: connection refused\n"
    )


def test_requests_in_flight_together_each_get_their_own_answer(nats_server):
    """Every request of a connection has its replies on one subscription (Connection.request): 100 at once, each
    answer is its own request's."""
    names = [f"S{i}" for i in range(100)]

    async def create_then_read_backwards():
        async with JetStreamClient(ConnectOptions(server=nats_server.url)) as client:
            await asyncio.gather(*(client.request(f"STREAM.CREATE.{name}", {"name": name, "subjects": [f"{name}.>"]})
                                   for name in names))
            return await asyncio.gather(*(client.request(f"STREAM.INFO.{name}") for name in reversed(names)))

    assert [info["config"]["name"] for info in asyncio.run(create_then_read_backwards())] == names[::-1]


def test_an_unanswered_request_times_out_and_its_late_answer_goes_nowhere(nats_server):
    async def unanswered_then_answered_late():
        silent = await nats.connect(nats_server.url)
        asked = []

        async def never_answer(msg):
            asked.append(msg.reply)

        await silent.subscribe("$JS.API.NOT.ANSWERED", cb=never_answer)
        await silent.flush()
        try:
            async with JetStreamClient(ConnectOptions(server=nats_server.url, timeout=0.5)) as client:
                with pytest.raises(TopologyError) as unanswered:
                    await client.request("NOT.ANSWERED")
                await silent.publish(asked[0], b'{"late": true}')
                await silent.flush()
                return str(unanswered.value), await client.request("STREAM.NAMES")
        finally:
            await silent.close()

    message, names = asyncio.run(unanswered_then_answered_late())
    assert message == "JetStream did not answer $JS.API.NOT.ANSWERED within 0.5s"
    assert "late" not in names and names["total"] == 0


def test_server_gone_mid_session_is_a_clean_error(nats_server):
    async def list_after_the_server_stops():
        async with JetStreamClient(ConnectOptions(server=nats_server.url, timeout=1)) as client:
            await client.request("STREAM.LIST")
            nats_server.stop()
            await client.request("STREAM.LIST")

    with pytest.raises(ConnectError) as lost:
        asyncio.run(list_after_the_server_stops())
    assert str(lost.value) == f"lost the connection to {nats_server.url} during $JS.API.STREAM.LIST"


# --- user/password, nkey, permissions and JetStream-less accounts on one server --------------

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def user_nkey():
    return new_keypair(nkeys.PREFIX_BYTE_USER)


@pytest.fixture(scope="module")
def accounts_server(tmp_path_factory, module_servers, user_nkey):
    return module_servers("accounts", accounts_config(tmp_path_factory.mktemp("js"), PASSWORD, user_nkey)).url


def test_user_and_bcrypt_password(accounts_server, topology):
    result = run("plan", "-f", topology, "-s", accounts_server, "--user", "admin", "--password", PASSWORD)
    assert result.exit_code == 0, result.output
    assert "EVENTS" in result.output


def test_password_from_the_environment(accounts_server, topology):
    env = {"NATS_URL": accounts_server, "NATS_USER": "admin", "NATS_PASSWORD": PASSWORD}
    assert run("plan", "-f", topology, env=env).exit_code == 0


def test_wrong_password_names_the_user(accounts_server, topology):
    result = run("plan", "-f", topology, "-s", accounts_server, "--user", "admin", "--password", "wrong")
    assert result.exit_code == 1
    assert result.output == f'Error: cannot connect to {accounts_server}: authentication failed for user "admin"\n'


def test_no_credentials_says_the_server_requires_them(accounts_server, topology):
    result = run("plan", "-f", topology, "-s", accounts_server)
    assert result.output == (
        f"Error: cannot connect to {accounts_server}: the server requires authentication: "
        "give --user and --password, --token, --creds or --nkey\n"
    )


def test_nkey_seed_file(accounts_server, topology, tmp_path, user_nkey):
    seed = tmp_path / "user.nk"
    seed.write_text(f"# a comment line, as nsc writes\n{user_nkey.seed.decode()}\n")
    result = run("plan", "-f", topology, "-s", accounts_server, "--nkey", str(seed))
    assert result.exit_code == 0, result.output


def test_unknown_nkey_names_its_public_key(accounts_server, topology, tmp_path):
    stranger = new_keypair(nkeys.PREFIX_BYTE_USER)
    seed = tmp_path / "stranger.nk"
    seed.write_text(stranger.seed.decode())
    result = run("plan", "-f", topology, "-s", accounts_server, "--nkey", str(seed), env={"NATS_NKEY": "/ignored"})
    assert result.output == (
        f"Error: cannot connect to {accounts_server}: authentication failed for nkey {stranger.public_key.decode()}\n"
    )


def test_nkey_file_without_a_seed(accounts_server, topology, tmp_path):
    seed = tmp_path / "empty.nk"
    seed.write_text("not a seed\n")
    result = run("plan", "-f", topology, "-s", accounts_server, "--nkey", str(seed))
    assert result.output == f"Error: nkey file {seed} holds no user nkey seed (a line starting with SU)\n"


def test_denied_api_subject_names_subject_and_user(accounts_server):
    options = ConnectOptions(server=accounts_server, user="reader", password=PASSWORD, timeout=30)

    async def create_then_list():
        async with JetStreamClient(options) as client:
            with pytest.raises(PermissionDenied) as denied:
                await client.request("STREAM.CREATE.EVENTS", {"name": "EVENTS", "subjects": ["medisync.etl.>"]})
            # One refused subject does not poison the connection for the subjects that are allowed.
            return denied.value, await client.request("STREAM.LIST")

    started = time.monotonic()
    denied, listed = asyncio.run(create_then_list())
    # The denial arrives asynchronously as -ERR; it must not wait out the 30s request timeout.
    assert time.monotonic() - started < 5
    assert str(denied) == 'permission denied: user "reader" may not publish to $JS.API.STREAM.CREATE.EVENTS'
    assert listed["total"] == 0


def test_apply_by_a_read_only_user_names_the_denied_subject(accounts_server, topology):
    result = run("apply", "-f", topology, "-s", accounts_server, "--user", "reader", "--password", PASSWORD,
                 "--auto-approve", "--timeout", "30s")
    assert result.exit_code == 1
    assert re.fullmatch(r'Error: permission denied: user "reader" may not publish to \$JS\.API\.STREAM\.CREATE\.\S+\n',
                        result.output), result.output


def test_denied_reply_inbox_is_named(accounts_server, topology):
    result = run("plan", "-f", topology, "-s", accounts_server, "--user", "deaf", "--password", PASSWORD)
    assert result.output == (
        'Error: permission denied: user "deaf" may not subscribe to _INBOX.>, '
        "where the replies to $JS.API.STREAM.LIST arrive\n"
    )


def test_account_without_jetstream(accounts_server, topology):
    result = run("plan", "-f", topology, "-s", accounts_server, "--user", "nojs", "--password", PASSWORD)
    assert result.exit_code == 1
    assert result.output == (
        'Error: JetStream is not enabled for the account of user "nojs" ($JS.API.STREAM.LIST answered err_code 10039)\n'
    )


# --- the repository's nats.conf: the provisioner applies, a service cannot ----------------------


@pytest.fixture(scope="module")
def repo_server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("repo-conf")
    server = start_server(workdir, config=repo_nats_conf(listen=None, http=None, store_dir=str(workdir / "store")))
    yield server.url
    server.stop()


def test_service_user_cannot_plan_or_apply_and_is_told_why(repo_server, topology):
    env = {"NATS_URL": repo_server, "NATS_USER": "etl-service", "NATS_PASSWORD": "etl-service-dev"}
    plan = run("plan", "-f", topology, env=env)
    assert plan.exit_code == 1
    # A service may neither ask the JetStream API nor receive on the shared _INBOX.> (only its own prefix).
    assert plan.output == ('Error: permission denied: user "etl-service" may not subscribe to _INBOX.>, '
                           'where the replies to $JS.API.STREAM.LIST arrive\n')
    apply = run("apply", "-f", topology, "--auto-approve", env=env)
    assert apply.exit_code == 1
    # Whichever API request apply makes first (its lock bucket, or reading the streams) is the one named.
    assert re.fullmatch(r'Error: permission denied: user "etl-service" may not subscribe to _INBOX\.>, where the replies to \$JS\.API\.STREAM\.\S+ arrive\n',
                        apply.output), apply.output


def test_provisioner_applies(repo_server, topology):
    env = {"NATS_URL": repo_server, "NATS_USER": "provisioner", "NATS_PASSWORD": "provisioner-dev"}
    result = run("apply", "-f", topology, "--auto-approve", env=env)
    assert result.exit_code == 0, result.output
    assert "stream EVENTS: created" in result.output


# --- token -----------------------------------------------------------------------------------

TOKEN = "s3cr3t-t0ken"


@pytest.fixture(scope="module")
def token_server(module_servers):
    return module_servers("token", token_config(TOKEN)).url


def test_token(token_server, topology):
    assert run("plan", "-f", topology, "-s", token_server, "--token", TOKEN).exit_code == 0
    assert run("plan", "-f", topology, env={"NATS_URL": token_server, "NATS_TOKEN": TOKEN}).exit_code == 0


def test_wrong_token(token_server, topology):
    result = run("plan", "-f", topology, "-s", token_server, "--token", "nope")
    assert result.output == f"Error: cannot connect to {token_server}: authentication failed for a token\n"


# --- TLS with client certificates ------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(str(directory / "server.pem"))
    client = ca.issue_cert("topology@medisync.example")
    client.cert_chain_pems[0].write_to_path(str(directory / "client.pem"))
    client.private_key_pem.write_to_path(str(directory / "client.key"))
    other = trustme.CA()
    other.cert_pem.write_to_path(str(directory / "other-ca.pem"))
    stranger = other.issue_cert("stranger@elsewhere.example")
    stranger.cert_chain_pems[0].write_to_path(str(directory / "stranger.pem"))
    stranger.private_key_pem.write_to_path(str(directory / "stranger.key"))
    return directory


def tls_config(tmp_path_factory, pki, extra=""):
    return f"""
jetstream {{ store_dir: "{tmp_path_factory.mktemp('js')}" }}
tls {{ cert_file: "{pki}/server.pem", key_file: "{pki}/server.pem", ca_file: "{pki}/ca.pem", verify: true {extra} }}
"""


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, module_servers, pki):
    return module_servers("tls", tls_config(tmp_path_factory, pki)).url


def tls_flags(pki):
    return ["--tlsca", f"{pki}/ca.pem", "--tlscert", f"{pki}/client.pem", "--tlskey", f"{pki}/client.key"]


def test_tls_client_certificate(tls_server, topology, pki):
    result = run("plan", "-f", topology, "-s", tls_server, *tls_flags(pki))
    assert result.exit_code == 0, result.output
    assert "eof_received" not in result.output


def test_tls_from_the_environment(tls_server, topology, pki):
    env = {"NATS_URL": tls_server, "NATS_CA": f"{pki}/ca.pem", "NATS_CERT": f"{pki}/client.pem",
           "NATS_KEY": f"{pki}/client.key"}
    assert run("plan", "-f", topology, env=env).exit_code == 0


def test_tls_without_the_ca_says_which_flag_fixes_it(tls_server, topology):
    result = run("plan", "-f", topology, "-s", tls_server)
    assert result.output == (
        f"Error: cannot connect to {tls_server}: TLS certificate verification failed: unable to get local issuer "
        "certificate (give the CA that signed the server's certificate with --tlsca)\n"
    )


def test_tls_without_a_client_certificate(tls_server, topology, pki):
    result = run("plan", "-f", topology, "-s", tls_server, "--tlsca", f"{pki}/ca.pem")
    assert result.output == (
        f"Error: cannot connect to {tls_server}: the server requires a TLS client certificate: "
        "give --tlscert and --tlskey\n"
    )


def test_tls_with_the_wrong_ca(tls_server, topology, pki):
    flags = tls_flags(pki)
    flags[1] = f"{pki}/other-ca.pem"
    result = run("plan", "-f", topology, "-s", tls_server, *flags)
    assert f"(is {pki}/other-ca.pem the CA that signed the server's certificate?)" in result.output


def test_tls_client_certificate_the_server_does_not_trust(tls_server, topology, pki):
    flags = ["--tlsca", f"{pki}/ca.pem", "--tlscert", f"{pki}/stranger.pem", "--tlskey", f"{pki}/stranger.key"]
    result = run("plan", "-f", topology, "-s", tls_server, *flags)
    assert result.output == (
        f"Error: cannot connect to {tls_server}: "
        f"the server did not accept the TLS client certificate {pki}/stranger.pem\n"
    )


def test_tls_first(tmp_path_factory, topology, pki):
    config = tls_config(tmp_path_factory, pki, extra=", handshake_first: true")
    server = start_server(tmp_path_factory.mktemp("tlsfirst"), config=config)
    try:
        assert run("plan", "-f", topology, "-s", server.url, *tls_flags(pki), "--tlsfirst").exit_code == 0
        without = run("plan", "-f", topology, "-s", server.url, *tls_flags(pki), "--timeout", "0.5")
        assert without.output == f"Error: cannot connect to {server.url}: no answer within 0.5s\n"
    finally:
        server.stop()


def test_a_tls_url_never_falls_back_to_plaintext(nats_server, topology):
    # natscli refuses too (nats.go ErrSecureConnWanted): the password must not cross the wire in clear.
    url = nats_server.url.replace("nats://", "tls://ops:hunter2@")
    result = run("plan", "-f", topology, "-s", url)
    shown = url.replace("hunter2", "***")
    assert result.output == f"Error: cannot connect to {shown}: the server does not offer TLS\n"
    assert result.exit_code == 1


def test_a_tls_url_upgrades_where_tls_is_offered_but_optional(tmp_path_factory, topology, pki):
    # allow_non_tls: INFO says tls_available, not tls_required; nats.go then upgrades for a tls:// URL.
    # The server verifies TLS clients, so only an upgraded connection is asked for a certificate.
    config = tls_config(tmp_path_factory, pki) + "allow_non_tls: true\n"
    server = start_server(tmp_path_factory.mktemp("optional-tls"), config=config)
    try:
        assert run("plan", "-f", topology, "-s", server.url, "--tlsca", f"{pki}/ca.pem").exit_code == 0
        url = server.url.replace("nats://", "tls://")
        result = run("plan", "-f", topology, "-s", url, "--tlsca", f"{pki}/ca.pem")
        assert result.output == (
            f"Error: cannot connect to {url}: the server requires a TLS client certificate: give --tlscert and --tlskey\n"
        )
        assert run("plan", "-f", topology, "-s", url, *tls_flags(pki)).exit_code == 0
    finally:
        server.stop()


# --- JetStream domain ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def domain_server(tmp_path_factory, module_servers):
    return module_servers("domain", f'jetstream {{ store_dir: "{tmp_path_factory.mktemp("js")}", domain: hub }}\n').url


def test_js_domain(domain_server, topology):
    result = run("apply", "-f", topology, "-s", domain_server, "--js-domain", "hub", "--auto-approve")
    assert result.exit_code == 0, result.output
    again = run("plan", "-f", topology, "-s", domain_server, "--js-api-prefix", "$JS.hub.API", "--detailed-exitcode")
    assert again.exit_code == 0, again.output  # what apply made through the domain is there


def test_js_domain_leaves_the_replicas_unchecked_and_says_so(domain_server, tmp_path):
    path = tmp_path / "wide.yaml"
    path.write_text("version: 1\nowner: medisync\nstreams:\n  WIDE: {subjects: [wide.>], num_replicas: 3}\n")
    result = run("plan", "-f", str(path), "-s", domain_server, "--js-domain", "hub", "--no-color")
    # The domain's JetStream may sit behind a leafnode: the connected server's cluster says nothing of it.
    assert result.exit_code == 0, result.output
    assert ("Note: stream WIDE: num_replicas 3 not checked against the cluster: the JetStream domain hub may be "
            "served by other servers than this connection's, which the tool cannot list") in result.output
    # Without the domain, the same server answers for itself: it is not clustered, and the plan knows it.
    result = run("plan", "-f", str(path), "-s", domain_server, "--no-color")
    assert result.exit_code == 1 and "num_replicas is 3, but the server is not clustered" in result.output, result.output


def test_js_domain_from_a_context(domain_server, topology, config_home):
    write_context(config_home, "hub", url=domain_server, jetstream_domain="hub")
    result = run("plan", "-f", topology, "--context", "hub", env={"XDG_CONFIG_HOME": str(config_home)})
    assert result.exit_code == 0, result.output


def test_wrong_js_domain(domain_server, topology):
    result = run("plan", "-f", topology, "-s", domain_server, "--js-domain", "edge")
    assert result.output == (
        "Error: no JetStream answered $JS.edge.API.STREAM.LIST: JetStream is not enabled for the account used "
        'without credentials, or it has no JetStream domain "edge"\n'
    )


# --- decentralised JWT authentication (creds files) ------------------------------------------


@pytest.fixture(scope="module")
def operator_server(tmp_path_factory, module_servers):
    config, account = operator_config(tmp_path_factory.mktemp("operator-keys"), store_dir=tmp_path_factory.mktemp("js"))
    return module_servers("operator", config).url, account


def test_creds_file(operator_server, topology, tmp_path):
    url, account = operator_server
    creds = creds_file(tmp_path / "alice.creds", account, "alice")
    result = run("plan", "-f", topology, "-s", url, "--creds", str(creds))
    assert result.exit_code == 0, result.output


def test_creds_from_a_context(operator_server, topology, tmp_path, config_home):
    url, account = operator_server
    creds = creds_file(tmp_path / "alice.creds", account, "alice")
    write_context(config_home, "ngs", url=url, creds=str(creds))
    (config_home / "nats" / "context.txt").write_text("ngs")
    assert run("plan", "-f", topology, env={"XDG_CONFIG_HOME": str(config_home)}).exit_code == 0


def test_creds_of_an_unknown_account_name_the_user(operator_server, topology, tmp_path):
    url, _ = operator_server
    stranger = new_keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    creds = creds_file(tmp_path / "mallory.creds", stranger, "mallory")
    result = run("plan", "-f", topology, "-s", url, "--creds", str(creds))
    assert result.output == (
        f'Error: cannot connect to {url}: authentication failed for user "mallory" (creds {creds})\n'
    )


def test_a_scheme_nats_does_not_speak_is_named_not_taken_for_a_host_problem():
    result = run("plan", "-s", "http://ops:hunter2@127.0.0.1:4222")
    assert result.exit_code == 1
    assert result.output == (
        "Error: invalid server URL http://ops:***@127.0.0.1:4222: the scheme must be one of nats://, tls://, ws://, wss://\n"
    )


def test_two_ways_to_authenticate_are_refused_not_silently_ranked(tmp_path):
    creds = tmp_path / "user.creds"
    creds.write_text("not a creds file")
    result = run("plan", "--creds", str(creds), "--user", "ops", "--password", "hunter2")
    assert result.exit_code == 1
    assert result.output == "Error: --user (or NATS_USER) and --creds (or NATS_CREDS) both given: choose one way to authenticate\n"


def test_a_publish_no_stream_hears_yet_is_sent_again_and_stored_once(nats_server):
    """As nats.go does: a stream just created in a cluster has no one listening on its subjects for a moment."""

    async def publish_then_create_the_stream():
        async with JetStreamClient(ConnectOptions(server=nats_server.url)) as client:
            publishing = asyncio.ensure_future(client.publish("late.one", b"hello"))
            await asyncio.sleep(0.1)  # the first attempt has met no responders by now
            assert not publishing.done()
            await client.request("STREAM.CREATE.LATE", {"name": "LATE", "subjects": ["late.>"]})
            ack = await publishing
            info = await client.request("STREAM.INFO.LATE")
            await client.request("STREAM.DELETE.LATE")
            return ack, info["state"]["messages"]

    ack, stored = asyncio.run(publish_then_create_the_stream())
    assert ack["stream"] == "LATE" and stored == 1


def test_a_publish_no_stream_ever_hears_fails_after_its_retries(nats_server):
    async def publish_nowhere():
        async with JetStreamClient(ConnectOptions(server=nats_server.url)) as client:
            started = time.monotonic()
            with pytest.raises(JetStreamUnavailable) as failed:
                await client.publish("nowhere.one", b"hello")
            return str(failed.value), time.monotonic() - started

    message, seconds = asyncio.run(publish_nowhere())
    assert message.startswith("no JetStream answered nowhere.one") and 0.5 <= seconds < 3
