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
