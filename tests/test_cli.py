"""Exit codes a pipeline relies on: usage errors are errors (1), never "changes present" (2)."""

import pytest
from click.testing import CliRunner

from medisync_topology.cli import main


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
    import io
    import sys

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
