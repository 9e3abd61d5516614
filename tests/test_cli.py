"""Exit codes a pipeline relies on: usage errors are errors (1), never "changes present" (2)."""

import io
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from medisync_topology.cli import main
from medisync_topology.validate import schema_file


@pytest.mark.parametrize(
    "args, env",
    [
        (["plan", "--detailed-exitcode", "--timeout", "abc"], {}),
        (["plan", "--detailed-exitcode"], {"NATS_TIMEOUT": "xyz"}),
        (["plan", "--detailed-exitcode", "--format", "yaml"], {}),
        (["plan", "--detailed-exitcode", "--bogus"], {}),
        (["plann"], {}),
        (["dev", "bogus"], {}),
    ],
)
def test_usage_errors_exit_1(args, env):
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 1, result.output
    assert "Error:" in result.output


def test_help_exits_0():
    assert CliRunner().invoke(main, ["plan", "--help"]).exit_code == 0


@pytest.mark.parametrize(("env", "colour"), [
    ({"TERM": "xterm-256color"}, True), ({"TERM": "dumb"}, False), ({"TERM": "xterm", "NO_COLOR": ""}, False),
])
def test_colour_only_on_a_terminal_that_can_show_it(monkeypatch, env, colour):
    from medisync_topology import cli

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "stdout", Terminal())
    assert cli._color(no_color=False) is colour
    assert cli._color(no_color=True) is False


TOPOLOGY = Path(sys.executable).parent / "topology"


def test_the_installed_command_keeps_the_exit_status_and_writes_everything():
    """`topology` (and `python -m medisync_topology`) ends its process at once (cli.run): what it wrote is all
    there, piped, and so is its status."""
    whole = subprocess.run([str(TOPOLOGY), "schema"], capture_output=True, timeout=60)
    assert (whole.returncode, whole.stdout) == (0, schema_file().read_bytes())
    missing = subprocess.run([str(TOPOLOGY), "validate", "-f", "/no/such/topology.yaml"], capture_output=True,
                             text=True, timeout=60)
    assert (missing.returncode, missing.stderr) == (1, "Error: /no/such/topology.yaml: no such file\n")
    assert subprocess.run([str(TOPOLOGY), "plann"], capture_output=True, timeout=60).returncode == 1
    module = subprocess.run([sys.executable, "-m", "medisync_topology", "--version"], capture_output=True, text=True,
                            timeout=60)
    assert (module.returncode, module.stdout) == (0, "topology, version 0.1.0\n")


@pytest.mark.parametrize(("ends", "status", "stderr"), [
    (lambda: None, 0, ""), (lambda: sys.exit(2), 2, ""), (lambda: sys.exit(None), 0, ""),
    (lambda: sys.exit("it went wrong"), 1, "it went wrong\n"),
])
def test_run_exits_with_the_status_main_ends_with(monkeypatch, capsys, ends, status, stderr):
    from medisync_topology import cli

    class Exited(Exception):
        pass

    def exit_now(code):
        raise Exited(code)

    monkeypatch.setattr(cli, "main", ends)
    monkeypatch.setattr(cli.os, "_exit", exit_now)
    with pytest.raises(Exited) as exited:
        cli.run()
    assert exited.value.args == (status,)
    assert capsys.readouterr().err == stderr


def test_run_exits_1_when_the_reader_of_its_output_went_away(monkeypatch):
    from medisync_topology import cli

    class Gone(io.StringIO):
        def flush(self):
            raise BrokenPipeError

    statuses = []
    monkeypatch.setattr(cli, "main", lambda: None)
    monkeypatch.setattr(cli.os, "_exit", statuses.append)
    monkeypatch.setattr(sys, "stdout", Gone())
    cli.run()
    assert statuses == [1]
